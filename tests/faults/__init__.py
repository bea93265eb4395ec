"""Faults injected into the folder of a real sweep, each checked for its exit code, its one-line message and that
no finished record is lost.

Here: a damaged or lost Tune state (`test_tune_state.py`) and a changed resource request on resume. The other
faults of the same kind are tested beside the code they exercise: a lost checkpoint and a driver killed with
kill -9, SIGTERM, an impossible CPU request, a trial that fails once, a second driver (tests/test_sweeps.py);
unreachable storage (tests/test_storage.py); a damaged manifest (tests/test_sweeps.py, `lop sweep repair`);
output paths and overwrites, non-finite values (tests/test_cli.py); a damaged compact export (tests/test_report.py).
"""
