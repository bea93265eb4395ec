"""Sweeps through real Ray: a smoke sweep end to end, a driver killed with kill -9 and resumed, bad input."""
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

from sweeps.base import SCALES
from sweeps.registry import SWEEPS
from sweeps.manifest import DriverLock, Manifest
from tests.processes import kill_descendants, lop

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


def test_smoke_sweep_end_to_end(tmp_path, ray_env):
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "2", "--arms", "mlp,lstm", "--storage",
              str(tmp_path), "--max-concurrent", "2", env=ray_env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "4 trials" in run.stderr and "lop sweep status" in run.stderr
    # progress, one line per finished task in a log: the trials Tune has not created yet count as pending
    lines = [line for line in run.stderr.splitlines() if "| tasks " in line]
    assert re.search(r"trials 0/4 done, [12] running, [23] pending \| tasks 1/8, ETA \d+:\d\d:\d\d", lines[0]), lines
    assert "trials 4/4 done, 0 running, 0 pending | tasks 8/8" in lines[-1], lines
    folder = tmp_path / "fig1"
    out = tmp_path / "fig1.parquet"
    export = lop("results", "export", str(folder), "--out", str(out), env=ray_env)
    assert export.returncode == 0, export.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == 4 * 2 * 1  # trials x tasks x epochs
    assert set(frame["arm"]) == {"mlp", "lstm"} and set(frame["seed"]) == {0, 1}
    assert (frame["seed"] == frame["stream_seed"]).all()
    for column in ("sweep", "arm", "trial_id", "model", "stream", "mitigation", "seed", "stream_seed", "tasks",
                   "epochs_per_task", "hidden", "task", "epoch", "task_classes", "train_loss", "train_accuracy",
                   "test_accuracy", "seconds", "diverged", "code_version", "data_hash", "device", "threads",
                   "node_ip", "pid"):
        assert column in frame.columns, column
    assert frame.groupby("trial_id").size().tolist() == [2] * 4
    # paired arms: the same replicate sees the same tasks in every arm
    classes = frame.groupby(["seed", "task"])["task_classes"].apply(lambda s: len({tuple(c) for c in s}))
    assert (classes == 1).all()
    assert (frame["threads"] == 1).all()
    status = lop("sweep", "status", str(folder), env=ray_env)
    assert status.returncode == 0 and "4 terminated" in status.stdout, status.stdout
    # Tune's own readers work on the folder (docs/tune-interop.md)
    from ray import tune
    from sweeps.launch import Resources, trainable
    analysis = tune.ExperimentAnalysis(str(folder))
    assert sum(len(df) for df in analysis.trial_dataframes.values()) == len(frame)
    grid = tune.Tuner.restore(str(folder), trainable=trainable(Resources())).get_results()
    assert len(grid) == 4 and all(result.checkpoint is not None for result in grid)
    again = lop("sweep", "run", "fig1", "--scale", "smoke", "--storage", str(tmp_path), env=ray_env)
    assert again.returncode == 2 and "already exists" in again.stderr and "lop sweep resume" in again.stderr

    # a damaged manifest: one line naming the repair, which rebuilds it from Tune's snapshot and the records
    manifest = folder / "lop-sweep.json"
    original = json.loads(manifest.read_text())
    manifest.write_text(manifest.read_text()[:80])
    for command in (("sweep", "status"), ("sweep", "resume")):
        damaged = lop(*command, str(folder), env=ray_env)
        assert damaged.returncode == 2 and f"lop sweep repair {folder}" in damaged.stderr, damaged.stderr[-2000:]
        assert len(damaged.stderr.strip().splitlines()) == 1
    manifest.unlink()
    lost = lop("sweep", "status", str(folder), env=ray_env)
    assert lost.returncode == 2 and "has lost its lop-sweep.json" in lost.stderr
    repaired = lop("sweep", "repair", str(folder), "--max-concurrent", "2", env=ray_env)  # not in Tune's files
    assert repaired.returncode == 0, repaired.stderr
    rebuilt = json.loads(manifest.read_text())
    assert {k: v for k, v in rebuilt.items() if k != "created"} == {k: v for k, v in original.items() if k != "created"}


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


DIVERGING_DRIVER = """
import sys
from pathlib import Path
from sweeps.base import Sweep
from sweeps.launch import Resources, run_sweep
sweep = Sweep(name="diverging", title="divergence test",
              base={"model": "mlp", "stream": "mnist-reshuffle", "tasks": 3, "epochs_per_task": 2,
                    "train_limit": 500, "test_limit": 200},
              arms={"stable": {}, "explodes": {"lr": 1e30}})
sys.exit(run_sweep(sweep, scale="paper", seeds=1, seed_start=0, arms=None, storage=Path(sys.argv[1]),
                   name=None, address=None, resources=Resources(max_failures=3), dry_run=False))
"""


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


def test_diverged_trial_ends_normally_is_counted_and_a_broken_config_refuses_resume(tmp_path, ray_env):
    script = tmp_path / "driver.py"
    script.write_text(DIVERGING_DRIVER)
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], env=ray_env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]  # a diverged trial is no error
    folder = tmp_path / "diverging"
    status = lop("sweep", "status", str(folder))
    assert "1 diverged" in status.stdout and "1 terminated" in status.stdout, status.stdout
    out = tmp_path / "x.parquet"
    assert lop("results", "export", str(folder), "--out", str(out)).returncode == 0
    frame = pd.read_parquet(out)
    exploded = frame[frame["arm"] == "explodes"]
    assert exploded["diverged"].iloc[-1] and len(exploded) < 6  # stopped early, not retried
    assert len(frame[frame["arm"] == "stable"]) == 6

    # a config that this code no longer accepts: resume refuses before touching anything
    snapshot = sorted(folder.glob("experiment_state-*.json"))[-1]
    state = json.loads(snapshot.read_text())
    trial = json.loads(state["trial_data"][0][0])
    trial["config"]["run"]["trial"]["model"] = "mpl"
    state["trial_data"][0][0] = json.dumps(trial)
    snapshot.write_text(json.dumps(state))
    before = sorted(p.name for p in folder.rglob("*"))
    resumed = lop("sweep", "resume", str(folder), env=ray_env)
    assert resumed.returncode == 2 and "no longer validates" in resumed.stderr, resumed.stderr
    assert sorted(p.name for p in folder.rglob("*")) == before


@pytest.mark.parametrize("name", SWEEPS.names())
def test_every_sweep_validates_at_every_scale(name):
    for scale in SCALES:
        trials = SWEEPS[name].trials(scale)
        arms = SWEEPS[name].arms_at(scale)
        assert sorted({t.arm for t in trials}) == sorted(arms)
        for arm in arms:  # 10 replicates of an MLP arm, 5 of any other, seeds 0, 1, ...
            seeds = [t.config.seed for t in trials if t.arm == arm]
            assert seeds == list(range(10 if SWEEPS[name].config(arm, scale, 0).model == "mlp" else 5))


def test_dry_run_lists_the_trials_and_writes_nothing(tmp_path):
    run = lop("sweep", "run", "fig6", "--scale", "smoke", "--seeds", "2", "--arms", "len15-h32,len75-h128",
              "--storage", str(tmp_path), "--dry-run")
    assert run.returncode == 0, run.stderr
    listed = [l for l in run.stderr.splitlines() if re.search(r"replicate \d", l)]
    assert len(listed) == 4 and sum("len75-h128" in l for l in listed) == 2
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args,message", [
    (["sweep", "run", "fig9"], "unknown sweep 'fig9'"),
    (["sweep", "run", "fig1", "--scale", "huge"], "unknown scale 'huge'"),
    (["sweep", "run", "fig1", "--arms", "rnn"], "unknown arm of sweep 'fig1' 'rnn'"),
    (["sweep", "run", "fig1", "--seeds", "0"], "--seeds must be at least 1"),
    (["sweep", "run", "fig1", "--storage", "/proc/nope"], "cannot write --storage"),
    (["sweep", "status", "/tmp"], "is not a sweep"),
    (["sweep", "resume", "/tmp"], "is not a sweep"),
    (["results", "export", "/nonexistent", "--out", "/tmp/x.parquet"], "no sweep at"),
    (["sweep", "run", "fig1", "--name", "../elsewhere", "--dry-run"], "--name '../elsewhere' must be one folder name"),
    (["sweep", "run", "fig1", "--arms", ",", "--dry-run"], "--arms ',' names no arm"),
    (["sweep", "run", "fig1", "--address", "ray://head:10001"], "Ray Client addresses (ray://head:10001) are not"),
])
def test_bad_sweep_input_exits_2(args, message):
    run = lop(*args)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_cpu_requests_no_node_can_meet_are_refused_with_what_the_cluster_offers():
    from sweeps.cluster import cpu_shortfall
    assert cpu_shortfall(2, [2.0, 1.0], []) is None and cpu_shortfall(8, [2.0], [16.0]) is None
    assert cpu_shortfall(100, [2.0], [None]) is None  # a node type whose CPUs are detected on start: may fit
    assert cpu_shortfall(100, [2.0, 4.0], []) == ("--cpus-per-trial 100 is more than any node of this cluster has: "
                                                  "at most 4 CPUs on one of its 2 node(s); give at most 4 (a trial "
                                                  "runs on one node)")
    assert "its autoscaler adds nodes of at most 8; give at most 8" in cpu_shortfall(100, [2.0], [8.0])


def test_an_impossible_cpu_request_fails_before_any_trial_and_leaves_no_folder(tmp_path, ray_env):
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--cpus-per-trial", "1000", "--storage", str(tmp_path),
              env=ray_env, timeout=120)
    assert run.returncode == 2 and "--cpus-per-trial 1000 is more than any node" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "fig1").exists()


def test_a_model_no_node_can_hold_fails_before_any_trial_and_leaves_no_folder(tmp_path, ray_env):
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--set", "hidden=3000000", "--storage", str(tmp_path),
              env=ray_env, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("lop: error")]
    assert "model 'mlp' at hidden 3,000,000 needs about" in error and "--set hidden=N" in error
    assert not (tmp_path / "fig1").exists()


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
    deadline = time.monotonic() + 30  # Ray's daemons exit a moment after the driver
    while session_processes(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_processes(driver.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the stopped sweep still alive: {left}"
    status = lop("sweep", "status", str(folder), env=ray_env)
    assert "lop sweep resume" in status.stdout, status.stdout


def test_a_sweep_removes_the_local_ray_session_it_started(tmp_path, ray_env):
    ray_tmp = Path(ray_env["RAY_TMPDIR"])
    before = set(ray_tmp.glob("**/session_2*"))
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "1", "--arms", "mlp", "--storage",
              str(tmp_path), env=ray_env)
    assert run.returncode == 0, run.stderr[-2000:]
    refused = lop("sweep", "run", "fig1", "--scale", "smoke", "--cpus-per-trial", "1000", "--storage",
                  str(tmp_path / "b"), env=ray_env)  # refused after its Ray started
    assert refused.returncode == 2
    assert set(ray_tmp.glob("**/session_2*")) == before


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
