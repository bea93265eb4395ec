"""What `lop sweep resume` is given (tests/faults), on one interrupted sweep of a YAML sweep file: resources no node
has, refused before the repairs a damaged folder needs touch it; a folder without its tuner.pkl, answered with the
exact command that runs this sweep again; and the sweep file deleted, resumed from the folder alone to the records
of an uninterrupted run. Beside them, a plugin that imports on the driver but not in Ray's workers."""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sweeps.manifest import LOCK
from tests.faults.test_tune_state import (KEYS, TIMING_COLUMNS, copy, export, snapshots,
                                          stopped_when_checkpointed, sweep_yaml, truncate)
from tests.processes import kill_descendants, lop

SWEEP_FILE = sweep_yaml("resumed", "resume inputs", tasks=6, train_limit=10000, test_limit=500)
RUN = ["--scale", "paper", "--seeds", "1", "--max-concurrent", "2"]
RECORDS = 2 * 6 * 3


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume-inputs") / "resumed.yaml"
    path.write_text(SWEEP_FILE)
    return path


@pytest.fixture(scope="module")
def interrupted(sweep_file, ray_env) -> Path:
    """The sweep folder of a driver stopped by SIGTERM after some trial finished two tasks."""
    return stopped_when_checkpointed([str(sweep_file), *RUN], sweep_file.parent / "interrupted", ray_env)


def hashes(folder: Path) -> dict[str, str]:
    """Every path under `folder`: a file's SHA-256, a folder as one; the driver lock's holder line (whichever
    driver took it last) only as present."""
    return {str(path.relative_to(folder)): "folder" if path.is_dir() else "" if path.name == LOCK
            else hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("flag,offer", [
    ("--gpus-per-trial", r"--gpus-per-trial 1 is more than this cluster offers: no GPU on any of its 1 node\(s\)"),
    ("--cpus-per-trial", r"--cpus-per-trial 100 is more than any node of this cluster has: at most \d+ CPUs on one "
                         r"of its 1 node\(s\); give at most \d+"),
])
def test_a_resume_refused_for_resources_leaves_a_folder_that_needs_repairs_as_it_was(
        interrupted, tmp_path, ray_env, flag, offer):
    folder = copy(interrupted, tmp_path, "refused")
    newest = snapshots(folder)[-1]  # two repairs a resume makes: a damaged newest Tune state set aside ...
    shutil.copy(newest, folder / "experiment_state-2000-01-01_00-00-00.json")
    truncate(newest)
    for checkpoint in folder.glob("*/checkpoint_*"):  # ... and lost checkpoints replaced
        shutil.rmtree(checkpoint)
    before = hashes(folder)
    refused = lop("sweep", "resume", str(folder), flag, "1" if flag == "--gpus-per-trial" else "100", env=ray_env,
                  timeout=120)
    kill_descendants()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    (error,) = [line for line in refused.stderr.splitlines() if line.startswith("lop: error")]  # after Ray's log
    assert re.search(offer, error), error
    assert hashes(folder) == before


def test_a_folder_without_its_tuner_pkl_gets_the_exact_command_that_runs_this_sweep_again(
        interrupted, sweep_file, tmp_path, ray_env):
    folder = copy(interrupted, tmp_path, "no-tuner")
    (folder / "tuner.pkl").unlink()
    before = hashes(folder)
    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=120)
    assert resumed.returncode == 2 and len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr[-3000:]
    command = (f"lop sweep run {sweep_file} --scale paper --arms narrow,wide --seeds 1 --storage {folder.parent} "
               f"--name {folder.name} --cpus-per-trial 1 --gpus-per-trial 0 --max-failures 2 --max-concurrent 2 "
               "--logger tensorboard")
    assert "has a manifest but no Tune state; move the folder aside" in resumed.stderr
    assert f"start the sweep anew with `{command}`" in resumed.stderr, resumed.stderr
    assert hashes(folder) == before

    # what that command would run is this sweep: its name, scale and each arm's replicates, as the manifest says
    manifest = json.loads((folder / "lop-sweep.json").read_text())
    plan = lop(*shlex.split(command)[1:], "--dry-run", env=ray_env, timeout=120)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert plan.stderr.startswith(f"sweep {manifest['sweep']} ({manifest['title']}), scale {manifest['scale']}: ")
    planned = sorted(tuple(line.split()[:3:2]) for line in plan.stderr.splitlines() if " replicate " in line)
    assert planned == sorted((arm, str(seed)) for arm in manifest["arms"]
                             for seed in range(manifest["seed_start"], manifest["seed_start"] + manifest["seeds"]))


@pytest.fixture(scope="module")
def straight(sweep_file, ray_env) -> pd.DataFrame:
    """The records of the same sweep run without a stop."""
    run = lop("sweep", "run", str(sweep_file), *RUN, "--storage", str(sweep_file.parent), "--name", "straight",
              env=ray_env, timeout=400)
    kill_descendants()
    assert run.returncode == 0, run.stderr[-3000:]
    return export(sweep_file.parent / "straight", ray_env)


def test_a_sweep_whose_file_is_deleted_resumes_from_its_folder_to_the_records_of_an_uninterrupted_run(
        interrupted, straight, sweep_file, tmp_path, ray_env):
    folder = copy(interrupted, tmp_path, "file-gone")
    assert len(export(folder, ray_env)) < RECORDS
    aside = sweep_file.with_suffix(".aside")
    sweep_file.rename(aside)
    try:
        status = lop("sweep", "status", str(folder), env=ray_env)
        assert status.returncode == 0 and f"lop sweep resume {folder}" in status.stdout, status.stderr[-3000:]
        resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
        kill_descendants()
    finally:
        aside.rename(sweep_file)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    records = export(folder, ray_env)
    assert len(records) == RECORDS and not records.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(records.drop(columns=TIMING_COLUMNS), straight.drop(columns=TIMING_COLUMNS))


DRIVER_ONLY_PLUGIN = '''
"""A plugin that keeps a helper module beside it and puts its own folder on the path to import it: the driver
finds the helper, a worker gets only the plugin's own module (Ray's `py_modules`), as on any cluster."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import lop_helper_beside  # noqa: E402,F401
'''


def test_a_plugin_that_imports_on_the_driver_but_not_on_a_worker_names_itself_and_the_fix(tmp_path, ray_env):
    plugin = tmp_path / "plugin" / "lop_driver_only_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(DRIVER_ONLY_PLUGIN)
    (plugin.parent / "lop_helper_beside.py").write_text("")
    run = lop("--plugin", str(plugin), "sweep", "run", "fig1", "--scale", "smoke", "--arms", "mlp", "--seeds", "1",
              "--max-failures", "0", "--logger", "none", "--storage", str(tmp_path / "runs"), env=ray_env, timeout=300)
    kill_descendants()
    problem = "plugin 'lop_driver_only_plugin' failed to import on Ray node "  # the name a trial imports it by
    assert run.returncode == 1 and "1 errored" in run.stderr, run.stderr[-3000:]
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("trial mlp-r0-")]
    assert problem in line and ("ModuleNotFoundError: No module named 'lop_helper_beside'; workers get only a "
                                "plugin's own module") in line and "install what else it needs on every node" in line
    status = lop("sweep", "status", str(tmp_path / "runs" / "fig1"), "--json", env=ray_env)
    (trial,) = json.loads(status.stdout)["trials"]
    assert problem in trial["error"] and "install what else it needs on every node" in trial["error"], trial
