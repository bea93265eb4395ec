"""A sweep whose Tune state is damaged or lost, and a resume that changes the trials' CPUs: on one interrupted
sweep of a YAML sweep file, each fault on a copy of its folder."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.processes import LOP, kill_descendants, lop



def sweep_yaml(name: str, title: str, tasks: int, train_limit: int, test_limit: int) -> str:
    """A two-arm MLP sweep file, small enough for fault tests (docs/sweep-files.md)."""
    return f"""
name: {name}
title: {title}
base: {{model: mlp, stream: mnist-reshuffle, tasks: {tasks}, epochs_per_task: 3, train_limit: {train_limit},
       test_limit: {test_limit}, batch_size: 1000}}
arms:
  wide: {{hidden: 32}}
  narrow: {{hidden: 8}}
"""


SWEEP_FILE = sweep_yaml("faults", "fault injection", tasks=10, train_limit=20000, test_limit=1000)
TIMING_COLUMNS = ["seconds", "pid", "node_ip", "trial_id"]
KEYS = ["arm", "seed", "task", "epoch"]


def checkpointed(folder: Path) -> bool:
    """Some trial has recorded the end of its second task (checkpointed) and still has tasks to go."""
    for result in folder.glob("*/result.json"):
        rows = [json.loads(line) for line in result.read_text().splitlines()[:-1] if line.strip()]
        if any(row["task"] >= 1 and row["epoch"] == 2 for row in rows):
            return True
    return False


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, ray_env) -> Path:
    """The sweep folder of a driver stopped by SIGTERM after some trial finished two tasks."""
    root = tmp_path_factory.mktemp("faults")
    (root / "faults.yaml").write_text(SWEEP_FILE)
    return stopped_when_checkpointed([str(root / "faults.yaml"), "--scale", "paper", "--seeds", "1",
                                      "--max-concurrent", "2"], root / "interrupted", ray_env)


def stopped_when_checkpointed(run_args: list[str], folder: Path, ray_env: dict) -> Path:
    """`folder` of `lop sweep run *run_args` stopped by SIGTERM once some trial has finished two tasks."""
    driver = subprocess.Popen([*LOP, "sweep", "run", *run_args, "--storage", str(folder.parent), "--name",
                               folder.name], env=ray_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not checkpointed(folder) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)
    _, stderr = driver.communicate(timeout=120)
    kill_descendants()
    assert driver.returncode == 1 and "sweep stopped" in stderr, stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def finished(interrupted, tmp_path_factory, ray_env) -> Path:
    """The interrupted sweep, resumed to its end: the records every repair must reproduce."""
    folder = copy(interrupted, tmp_path_factory.mktemp("finished"), "reference")
    assert lop("sweep", "resume", str(folder), env=ray_env, timeout=400).returncode == 0
    kill_descendants()
    return folder


def copy(folder: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name / folder.name
    shutil.copytree(folder, target)
    return target


def export(folder: Path, env: dict) -> pd.DataFrame:
    out = folder.parent / f"{folder.name}.parquet"
    run = lop("results", "export", str(folder), "--out", str(out), "--force", env=env)
    assert run.returncode == 0, run.stderr
    return pd.read_parquet(out).sort_values(KEYS).reset_index(drop=True)


def truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def snapshots(folder: Path) -> list[Path]:
    return sorted(folder.glob("experiment_state-*.json"))


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_tune_state_that_cannot_be_restored_gets_the_command_that_runs_the_trials_again(
        interrupted, tmp_path, ray_env, damage):
    folder = copy(interrupted, tmp_path, damage)
    before = export(folder, ray_env)
    for snapshot in snapshots(folder):
        truncate(snapshot) if damage == "truncated" else snapshot.unlink()
    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=120)
    assert resumed.returncode == 2 and len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr[-3000:]
    assert (f"`lop sweep run {interrupted.parent / 'faults.yaml'} --scale paper --arms narrow,wide --seeds 1 --storage "
            f"{folder.parent} --name interrupted-again") in resumed.stderr, resumed.stderr
    assert "lop results export" in resumed.stderr
    pd.testing.assert_frame_equal(export(folder, ray_env), before)  # nothing lost, nothing added


def test_a_damaged_newest_tune_state_is_set_aside_and_the_older_one_resumes_to_the_same_records(
        interrupted, finished, tmp_path, ray_env):
    folder = copy(interrupted, tmp_path, "damaged")
    newest = snapshots(folder)[-1]
    shutil.copy(newest, folder / "experiment_state-2000-01-01_00-00-00.json")  # an older driver's copy
    truncate(newest)
    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
    kill_descendants()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{newest.name} is damaged (set aside as {newest.name}.damaged)" in resumed.stderr
    assert (folder / f"{newest.name}.damaged").is_file()  # kept, never deleted
    records = export(folder, ray_env)
    assert len(records) == 2 * 10 * 3
    pd.testing.assert_frame_equal(records.drop(columns=TIMING_COLUMNS),
                                  export(finished, ray_env).drop(columns=TIMING_COLUMNS))


def test_a_checkpoint_that_does_not_read_is_set_aside_and_the_trial_resumes_to_the_same_records(
        interrupted, finished, tmp_path, ray_env):
    from sweeps.ray_adapter import latest_checkpoints
    from sweeps.status import trial_dirs
    from trainables.tune_trial import STATE_FILE
    folder = copy(interrupted, tmp_path, "unreadable-checkpoint")
    trial_id, name = sorted(latest_checkpoints(folder).items())[0]
    trial_dir = trial_dirs(folder)[trial_id]
    state = trial_dir / name / STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # a copy cut short
    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
    kill_descendants()
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    assert f"trial {trial_dir.name}: {name} cannot be read (set aside as {name}.damaged)" in resumed.stderr
    assert f"trial {trial_dir.name}: {name} is missing" in resumed.stderr  # then mended as a lost one
    assert (trial_dir / f"{name}.damaged" / STATE_FILE).is_file()  # kept, never deleted
    pd.testing.assert_frame_equal(export(folder, ray_env).drop(columns=TIMING_COLUMNS),
                                  export(finished, ray_env).drop(columns=TIMING_COLUMNS))


def corrupt_bytes(path: Path, at: int) -> None:
    """Overwrite four bytes at `at` with bytes that are not UTF-8 (a disk fault, a bad copy)."""
    data = bytearray(path.read_bytes())
    data[at:at + 4] = b"\xff\xfe\xfd\xfc"
    path.write_bytes(bytes(data))


def test_bytes_that_are_not_utf8_in_the_tune_state_and_the_records_are_damage_not_a_traceback(
        interrupted, tmp_path, ray_env):
    folder = copy(interrupted, tmp_path, "bad-bytes")
    newest = snapshots(folder)[-1]
    shutil.copy(newest, folder / "experiment_state-2000-01-01_00-00-00.json")  # an older driver's copy
    corrupt_bytes(newest, newest.stat().st_size // 2)
    result = max(folder.glob("*/result.json"), key=lambda path: path.stat().st_size)
    second_line = len(result.read_bytes().split(b"\n")[0]) + 1
    corrupt_bytes(result, second_line + 10)  # task 1, epoch 2 of that trial
    trial = result.parent.name

    status = lop("sweep", "status", str(folder), "--json", env=ray_env)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr[-3000:]
    data = json.loads(status.stdout)
    damage = {entry["name"]: entry["damaged_records"] for entry in data["trials"]}
    assert damage[trial].startswith("1 of ") and damage[trial].endswith("epochs unreadable, from task 1"), damage
    assert data["resume"] == f"lop sweep resume {folder}"
    out = tmp_path / "bad-bytes.parquet"
    short = lop("results", "export", str(folder), "--out", str(out), env=ray_env)
    assert short.returncode == 0 and f"trial {trial}: its result.json is damaged" in short.stderr, short.stderr
    assert len(pd.read_parquet(out)) < 2 * 10 * 3

    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
    kill_descendants()
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    assert f"{newest.name} is damaged (set aside as {newest.name}.damaged)" in resumed.stderr
    assert f"trial {trial}: its records are damaged" in resumed.stderr
    records = export(folder, ray_env)
    assert len(records) == 2 * 10 * 3 and not records.duplicated(KEYS).any()


def test_damaged_records_of_finished_trials_are_named_and_re_run_to_the_same_records(finished, tmp_path, ray_env):
    folder = copy(finished, tmp_path, "damaged-records")
    results = sorted(folder.glob("*/result.json"))
    lines = results[0].read_text().splitlines()  # one trial loses task 4's epochs from the middle of its file
    results[0].write_text("\n".join(l for l in lines if json.loads(l)["task"] != 3) + "\n")
    lines = results[1].read_text().splitlines()  # the other is cut short inside its last task
    results[1].write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:40])

    status = lop("sweep", "status", str(folder), "--json", env=ray_env)
    data = json.loads(status.stdout)
    assert data["damaged_records"] == 2 and data["resume"] == f"lop sweep resume {folder}", status.stdout
    damage = {trial["name"]: trial["damaged_records"] for trial in data["trials"]}
    assert damage == {results[0].parent.name: "3 of 30 epochs unreadable, from task 4",
                      results[1].parent.name: "2 of 30 epochs unreadable, from task 10"}
    out = tmp_path / "short.parquet"
    short = lop("results", "export", str(folder), "--out", str(out), env=ray_env)
    assert short.returncode == 0 and short.stderr.count("warning: trial ") == 2, short.stderr
    assert f"is damaged (3 of 30 epochs unreadable, from task 4); `lop sweep resume {folder}` re-runs it" in short.stderr
    assert len(pd.read_parquet(out)) == 2 * 10 * 3 - 5

    resumed = lop("sweep", "resume", str(folder), env=ray_env, timeout=400)
    kill_descendants()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"trial {results[0].parent.name}: its records are damaged" in resumed.stderr
    assert "it re-runs from its start" in resumed.stderr and "it re-runs from task 10" in resumed.stderr
    pd.testing.assert_frame_equal(export(folder, ray_env).drop(columns=TIMING_COLUMNS),
                                  export(finished, ray_env).drop(columns=TIMING_COLUMNS))
    again = lop("sweep", "resume", str(folder), env=ray_env)
    assert again.returncode == 0 and "nothing to resume" in again.stderr, again.stderr


def test_resume_changes_the_cpus_each_trial_asks_for_and_the_restored_trials_get_them(interrupted, tmp_path, ray_env):
    folder = copy(interrupted, tmp_path, "cpus")
    done = export(folder, ray_env)
    refused = lop("sweep", "resume", str(folder), "--cpus-per-trial", "64", env=ray_env, timeout=120)
    kill_descendants()
    assert refused.returncode == 2 and "--cpus-per-trial 64" in refused.stderr, refused.stderr[-3000:]
    resumed = lop("sweep", "resume", str(folder), "--cpus-per-trial", "2", "--max-concurrent", "1", env=ray_env,
                  timeout=400)
    kill_descendants()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trials now ask for 2 CPU(s) and 0 GPU(s) each (were 1 and 0)" in resumed.stderr
    assert json.loads((folder / "lop-sweep.json").read_text())["cpus_per_trial"] == 2
    records = export(folder, ray_env)
    ahead = done.loc[(done["task"] == 1) & (done["epoch"] == 2), "arm"]  # checkpointed its first task before
    before = records[records["arm"].isin(ahead) & (records["task"] == 0)]
    after = records[records["task"] == records["tasks"] - 1]  # every trial's last task ran after the resume
    assert len(before) and (before["threads"] == 1).all() and (after["threads"] == 2).all()
    assert len(records) == 2 * 10 * 3
