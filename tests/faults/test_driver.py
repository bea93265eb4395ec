"""Faults injected into real sweeps (tests/faults): a driver killed with kill -9 and its checkpoints deleted, a
second driver on a locked sweep, SIGTERM to a driver in its own session, a trial that raises; each checked for the
exit code, the message, no lost record (exports compared with an undisturbed run) and no process left behind."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sweeps.manifest import DriverLock, Manifest
from tests.processes import LOP, kill_descendants, lop

TIMING_COLUMNS = ["seconds", "pid", "node_ip", "trial_id"]

RESUME_DRIVER = """
import sys
from pathlib import Path
from sweeps.base import Sweep
from sweeps.launch import Resources, run_sweep
sweep = Sweep(name="resumable", title="resume test",
              base={"model": "mlp", "stream": "mnist-reshuffle", "tasks": 10, "epochs_per_task": 3,
                    "train_limit": 20000, "test_limit": 1000, "batch_size": 1000},
              arms={"wide": {"hidden": 32}, "narrow": {"hidden": 8}})
sys.exit(run_sweep(sweep, scale="paper", seeds=1, seed_start=0, arms=None, storage=Path(sys.argv[1]),
                   name=None, address=None, resources=Resources(max_concurrent=2), dry_run=False))
"""


def wait_for_checkpointed_task(folder: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for result in folder.glob("*/result.json"):
            lines = result.read_text().splitlines()
            if any(json.loads(l)["task"] >= 1 and json.loads(l)["epoch"] == 2 for l in lines[:-1] if l.strip()):
                return
        time.sleep(0.2)
    raise AssertionError("no trial finished a task in time")


def test_killed_driver_resumes_to_the_same_records(tmp_path, ray_env):
    script = tmp_path / "driver.py"
    script.write_text(RESUME_DRIVER)
    reference = subprocess.run([sys.executable, str(script), str(tmp_path / "straight")], env=ray_env,
                               capture_output=True, text=True, timeout=400)
    assert reference.returncode == 0, reference.stderr[-3000:]
    kill_descendants()

    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], env=ray_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "killed" / "resumable"
    wait_for_checkpointed_task(folder)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    kill_descendants()

    status = lop("sweep", "status", str(folder), env=ray_env)
    assert status.returncode == 0 and "lop sweep resume" in status.stdout, status.stdout
    partial = lop("results", "export", str(folder), "--out", str(tmp_path / "partial.parquet"), env=ray_env)
    assert partial.returncode == 0, partial.stderr
    assert len(pd.read_parquet(tmp_path / "partial.parquet")) < 2 * 10 * 3

    # and the checkpoints Tune would restore from are lost: one trial's latest (it resumes from an older one, or
    # starts again if that was its first), every checkpoint of the other (it starts again)
    from sweeps.ray_adapter import latest_checkpoints
    from sweeps.status import trial_dirs
    recorded = sorted(latest_checkpoints(folder).items())  # under load the other trial may have none yet
    (first, name), others = recorded[0], recorded[1:]
    folders = trial_dirs(folder)
    shutil.rmtree(folders[first] / name)
    for second, _ in others:
        for checkpoint in folders[second].glob("checkpoint_*"):
            shutil.rmtree(checkpoint)
    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{folders[first].name}: {name} is missing" in resumed.stderr
    for second, other in others:
        assert f"{folders[second].name}: {other} is missing and no older checkpoint is left" in resumed.stderr
    keys = ["arm", "seed", "task", "epoch"]
    frames = []
    for name in ("straight", "killed"):
        out = tmp_path / f"{name}.parquet"
        assert lop("results", "export", str(tmp_path / name / "resumable"), "--out", str(out)).returncode == 0
        frames.append(pd.read_parquet(out).drop(columns=TIMING_COLUMNS).sort_values(keys).reset_index(drop=True))
    straight, killed = frames
    assert len(straight) == 2 * 10 * 3
    pd.testing.assert_frame_equal(killed, straight)


def test_a_second_driver_is_refused(tmp_path):
    """While one process holds a sweep's driver lock, `resume` from another process exits 2 and touches nothing."""
    folder = tmp_path / "locked"
    Manifest(sweep="fig1", title="t", scale="smoke", arms=["mlp"], seeds=1, seed_start=0, trials=1, tasks=2,
             cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, max_failures=0, code_version="x",
             data_hash={}).write(folder)
    (folder / "tuner.pkl").write_bytes(b"")
    with DriverLock(folder):
        second = lop("sweep", "resume", str(folder))
    assert second.returncode == 2 and "another driver" in second.stderr, second.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["lop-driver.lock", "lop-sweep.json", "tuner.pkl"]


def assert_session_ended(session: int) -> None:
    """No process of the stopped driver's session is left once Ray's daemons had a moment to exit (any left are
    killed, then reported)."""
    deadline = time.monotonic() + 30
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_processes(session)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the stopped sweep still alive: {left}"


def session_processes(sid: int) -> list[int]:
    """Live processes of session `sid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(stat.parent.name))
    return found


def test_sigterm_stops_a_sweep_cleanly_with_the_resume_command(tmp_path, ray_env):
    """What a cluster scheduler or `ray job stop` sends: Tune's graceful stop, the summary, no process left."""
    script = tmp_path / "driver.py"
    script.write_text(RESUME_DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "termed")], env=ray_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    folder = tmp_path / "termed" / "resumable"
    try:
        wait_for_checkpointed_task(folder)
        driver.send_signal(signal.SIGTERM)
        _, stderr = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 1, stderr[-3000:]
    assert "sweep stopped:" in stderr and f"lop sweep resume {folder}" in stderr and "Fatal Python" not in stderr
    assert "Tuner.restore" not in stderr  # Tune's own hint, which cannot resume a lop sweep, is ours instead
    assert_session_ended(driver.pid)
    status = lop("sweep", "status", str(folder), env=ray_env)
    assert "lop sweep resume" in status.stdout, status.stdout


FLAKY_PLUGIN = '''
import os
from dataclasses import dataclass
from pathlib import Path

from lopmodels.mitigations import MITIGATIONS, Mitigation
from sweeps.base import Sweep, register_sweep


@MITIGATIONS.register("fails-once")
@dataclass
class FailsOnce(Mitigation):
    """No mitigation, but the first attempt raises at the start of task 2."""

    def on_task_start(self, ctx):
        marker = Path(os.environ["LOP_TEST_MARKER"])
        if ctx.task == 1 and not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("injected failure at task 2")


register_sweep(Sweep(name="flaky", title="a trial that fails once",
                     base={"model": "mlp", "stream": "mnist-reshuffle", "tasks": 3, "epochs_per_task": 2,
                           "train_limit": 500, "test_limit": 200},
                     arms={"steady": {}, "flaky": {"mitigation": "fails-once"}}))
'''


def test_a_trial_that_fails_once_is_reported_readably_and_finished_by_resume(tmp_path, ray_env):
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text(FLAKY_PLUGIN)
    env = {**ray_env, "LOP_TEST_MARKER": str(tmp_path / "marker")}
    run = lop("--plugin", str(plugin), "sweep", "run", "flaky", "--seeds", "1", "--max-failures", "0",
              "--storage", str(tmp_path), env=env)
    assert run.returncode == 1, run.stderr[-3000:]
    assert re.search(r"trial flaky-r0-\w+ errored: RuntimeError: injected failure at task 2; the others go on",
                     run.stderr), run.stderr[-3000:]
    for said in (run.stdout, run.stderr):  # the trial's name and the error's last line, not Ray's report of it
        assert "Traceback" not in said and "Error file" not in said, said[-3000:]
        assert "/tmp/ray" not in said and f"{env['RAY_TMPDIR']}/ray" not in said, said[-3000:]
    folder = tmp_path / "flaky"
    status = lop("sweep", "status", str(folder), env=env)
    assert "error: RuntimeError: injected failure at task 2" in status.stdout, status.stdout
    resumed = lop("sweep", "resume", str(folder), env=env)  # the plugin comes from the manifest
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = tmp_path / "flaky.parquet"
    assert lop("results", "export", str(folder), "--out", str(out), env=env).returncode == 0
    frame = pd.read_parquet(out)
    kept = ["task", "epoch", "train_loss", "train_accuracy", "test_accuracy", "effective_rank", "grad_norm"]
    flaky = frame[frame["arm"] == "flaky"][kept].reset_index(drop=True)
    steady = frame[frame["arm"] == "steady"][kept].reset_index(drop=True)
    assert len(flaky) == 3 * 2  # each epoch once: the failed attempt's task 2 is not kept
    pd.testing.assert_frame_equal(flaky, steady)  # resumed from its task-1 checkpoint: the same numbers


THREE_TRIALS = """
name: three
title: three trials, one at a time
base: {model: mlp, stream: mnist-reshuffle, tasks: 10, epochs_per_task: 3, train_limit: 20000, test_limit: 1000,
       batch_size: 1000}
arms:
  only: {hidden: 16}
"""


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.2)


@pytest.mark.parametrize("interrupts", [1, 2])
def test_ctrl_c_early_in_a_sweep_of_three_trials_one_at_a_time_counts_them_all_and_leaves_no_process(
        tmp_path, ray_env, interrupts):
    """Ctrl-C once (Tune's graceful stop) or twice (at once) while the first of three trials runs: the two trials
    Tune never created count as unfinished, the resume command is printed, and Ray's processes all end."""
    (tmp_path / "three.yaml").write_text(THREE_TRIALS)
    log = tmp_path / "driver.log"
    with open(log, "w") as stderr:
        driver = subprocess.Popen([*LOP, "sweep", "run", str(tmp_path / "three.yaml"), "--scale", "paper", "--seeds",
                                   "3", "--max-concurrent", "1", "--storage", str(tmp_path)], env=ray_env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    folder = tmp_path / "three"
    try:
        wait_for(lambda: any(path.read_text().strip() for path in folder.glob("*/result.json")), 240,
                 "a first result")
        driver.send_signal(signal.SIGINT)
        if interrupts == 2:  # once Tune's graceful stop has begun: the first interrupt reached it
            wait_for(lambda: "Stop signal received" in log.read_text(), 60, "Tune's graceful stop")
            driver.send_signal(signal.SIGINT)
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    said = log.read_text()
    assert driver.returncode in ((1,) if interrupts == 1 else (1, 130)), said[-3000:]
    assert "Traceback" not in said and "KeyboardInterrupt" not in said and "Aborted!" not in said, said[-3000:]
    assert "0 trials done, 0 errored, 3 unfinished" in said and f"lop sweep resume {folder}" in said, said[-3000:]
    assert_session_ended(driver.pid)
