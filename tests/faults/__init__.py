"""Faults injected into the folder of a real sweep, each checked for its exit code, its one-line message and that
no finished record is lost.

Here: a damaged or lost Tune state, bytes that are not UTF-8 in it and in the records, damaged records and a changed
resource request on resume (`test_tune_state.py`); a driver killed with kill -9 and its checkpoints lost, a second
driver, SIGTERM, Ctrl-C once and twice, a trial that fails once (`test_driver.py`); requests no node can meet
(`test_preflight.py`); a cluster that `ray start` left on the machine, which a driver without --address must not
join (`test_local_ray.py`). The other faults are tested beside the code they exercise: unreachable storage
(tests/test_storage.py); a damaged manifest (tests/test_sweeps.py, `lop sweep repair`);
output paths and overwrites, non-finite values (tests/test_cli.py); a damaged compact export (tests/test_report.py).
"""
