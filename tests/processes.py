"""Process bookkeeping for tests that start Ray: every process they start is found and killed by PID.

The test process becomes a child subreaper, so the Ray daemons that outlive a `kill -9`ed driver are
re-parented to it instead of to init, and can be found as its descendants.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, stack = children_map(), [], [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_descendants(grace_seconds: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL, every descendant of this process; reap them. Returns the PIDs."""
    pids = descendants(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids):
            _reap()
            time.sleep(0.1)
    _reap()
    return pids


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


LOP = [sys.executable, "-m", "sweeps.cli"]


def lop(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `lop` command as a user would, in a child process."""
    return subprocess.run([*LOP, *args], capture_output=True, text=True, env=env, timeout=timeout)


def lop_imports_torch(*args: str, env: dict | None = None) -> bool:
    """Run `lop *args` in a child process (it must succeed) and tell whether it imported torch."""
    code = ("import atexit, sys; atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr)); "
            "from sweeps.cli import main; main(sys.argv[1:])")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stderr.strip().splitlines()[-1] == "True"


@contextlib.contextmanager
def ray_environment(data_dir: Path) -> Iterator[dict[str, str]]:
    """Environment for driver subprocesses: a short Ray temp dir of their own (Unix socket paths are short);
    on exit every process they left behind is killed by PID."""
    become_subreaper()
    temp = Path(tempfile.mkdtemp(prefix="lopray", dir="/tmp"))
    env = {**os.environ, "RAY_TMPDIR": str(temp), "LOP_DATA_DIR": str(data_dir)}
    env.pop("RAY_ADDRESS", None)
    try:
        yield env
    finally:
        kill_descendants()
        shutil.rmtree(temp, ignore_errors=True)
