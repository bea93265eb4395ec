"""Sweeps through real Ray: a smoke sweep end to end, a diverged trial, every sweep's plan, bad input (the faults
injected into sweeps are in tests/faults)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweeps.base import SCALES
from sweeps.registry import SWEEPS
from tests.processes import lop

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
    (["results", "export", "/nonexistent", "--out", "{tmp}/x.parquet"], "no sweep at"),
    (["sweep", "run", "fig1", "--name", "../elsewhere", "--dry-run"], "--name '../elsewhere' must be one folder name"),
    (["sweep", "run", "fig1", "--arms", ",", "--dry-run"], "--arms ',' names no arm"),
    (["sweep", "run", "fig1", "--address", "ray://head:10001"], "Ray Client addresses (ray://head:10001) are not"),
])
def test_bad_sweep_input_exits_2(args, message, tmp_path):
    run = lop(*(a.replace("{tmp}", str(tmp_path)) for a in args))
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
