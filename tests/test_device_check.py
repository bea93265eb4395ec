"""benchmarks/device_check.py as a user runs it, without a GPU: the one-line exit, the CPU smoke run of every phase
(with Ray and `datasets` made unimportable, as on the lent GPU machine), a budget that cuts every phase short, and a
terminated run that still leaves its results."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.py"
ABSENT_ON_GPU_MACHINE = ("ray", "datasets")
PHASES = ("tests", "epochs", "packing", "grid")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """No visible GPU, the repository on the path, and Ray and `datasets` failing to import, as there."""
    blocked = tmp_path_factory.mktemp("blocked")
    for name in ABSENT_ON_GPU_MACHINE:
        (blocked / name).mkdir()
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not on the GPU machine')\n")
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join((str(blocked), str(ROOT)))}


def device_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(env, tmp_path):
    done = device_check(env, "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and "no CUDA device" in done.stdout
    assert not (tmp_path / "out").exists()


def test_cpu_smoke_runs_every_phase_and_writes_json_and_markdown(env, tmp_path):
    from sweeps.registry import SWEEPS

    done = device_check(env, "--device", "cpu", "--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GPU-hours" in done.stdout
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["status"] == "complete" and report["settings"]["smoke"]
    assert {"machine", "settings", *PHASES} <= set(report)
    assert report["tests"]["status"] == "skipped" and report["tests"]["counts"]["skipped"] > 0

    epochs = report["epochs"]
    assert epochs["status"] == "ok"
    assert {(c["model"], c["stream"]) for c in epochs["cases"]} >= {
        ("mlp", "mnist-reshuffle"), ("lstm", "mnist-reshuffle"), ("gru", "lang-reshuffle"), ("gru", "lang-binary")}
    assert all(c["seconds_per_step"] > 0 and c["epochs_timed"] == 2 for c in epochs["cases"])

    packing = report["packing"]
    assert packing["status"] == "ok" and packing["best"] in (1, 2)
    assert [r["concurrent"] for r in packing["rounds"]] == [1, 2]
    assert all(r["complete"] and r["epochs"] == 2 * r["concurrent"] and r["trials_per_hour"] > 0
               for r in packing["rounds"])

    grid = report["grid"]
    assert grid["status"] == "ok" and not grid["not_estimated"]
    assert grid["trials"] == sum(len(SWEEPS[name].trials("paper")) for name in SWEEPS.names())
    assert 0 < grid["gpu_hours_at_best_packing"] <= grid["gpu_hours_one_per_gpu"]

    summary = (tmp_path / "device_check.md").read_text()
    for heading in ("## GPU tests", "## Seconds per epoch", "## Trials per GPU", "## The paper's grid"):
        assert heading in summary
    assert "## Errors" not in summary


def test_a_spent_budget_cuts_phases_short_and_still_writes_the_results(env, tmp_path):
    """A second cannot hold the tests' subprocess: it is stopped, the rest ends early, and the JSON is written."""
    done = device_check(env, "--device", "cpu", "--smoke", "--budget", "1", "--out", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr  # the tests did not run to the end: nothing proven
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["status"] == "complete" and report["tests"]["status"] == "timeout"
    assert all(report[phase]["status"] != "error" for phase in PHASES), [report[p] for p in PHASES]
    assert report["seconds"] < 30


def test_a_terminated_run_leaves_its_json(env, tmp_path):
    """SIGTERM (a timeout's first signal) while the tests run: exit 143, and the JSON says interrupted."""
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--out", str(tmp_path)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = tmp_path / "device_check.json"
    deadline = time.monotonic() + 120
    while not result.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, output
    report = json.loads(result.read_text())
    assert report["status"] == "interrupted" and report["tests"]["status"] == "running"
