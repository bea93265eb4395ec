"""Requests that no node can meet, refused before any trial starts and leaving no folder behind (tests/faults)."""
from __future__ import annotations

from tests.processes import lop


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
