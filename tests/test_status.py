"""`lop sweep status` from a trial's files: a running trial's time left at the pace of its recent epochs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeps.status import RECENT_EPOCHS, rounded, seconds_left, trial_summary


def rows(tasks: int, epochs: int, done: int, seconds: list[float]) -> list[dict]:
    """The first `done` epochs of a trial of `tasks` x `epochs`, epoch i taking `seconds[i]`."""
    return [{"task": i // epochs, "epoch": i % epochs, "tasks": tasks, "epochs_per_task": epochs,
             "test_accuracy": 0.5, "seconds": seconds[i]} for i in range(done)]


def test_the_time_left_is_the_epochs_left_at_the_pace_of_the_recent_epochs():
    # 3 tasks x 4 epochs, 6 done (task 1, epoch 1): 6 left; slow at first, then 2 s an epoch
    early = rows(3, 4, 6, [100.0] * 2 + [2.0] * 4)
    assert seconds_left(early) == pytest.approx(6 * (100.0 * 2 + 2.0 * 4) / 6)
    late = rows(10, 10, 50, [100.0] * 30 + [2.0] * 20)
    assert len(late[-RECENT_EPOCHS:]) == 20 and seconds_left(late) == pytest.approx(50 * 2.0)
    assert seconds_left(rows(1, 2, 2, [1.0, 1.0])) == 0
    assert seconds_left([{**row, "seconds": None} for row in early]) is None


@pytest.mark.parametrize("seconds, text", [(20, "under a minute"), (14 * 60 + 10, "about 14 min"),
                                           (3600 + 5 * 60, "about 1 h 05 min"), (7199, "about 2 h 00 min")])
def test_the_time_left_reads_as_an_estimate(seconds, text):
    assert rounded(seconds) == text


def trial_folder(tmp_path: Path, records: list[dict]) -> Path:
    folder = tmp_path / "mlp-r0-abc_00000"
    folder.mkdir()
    (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


@pytest.mark.parametrize("state, live, left", [("RUNNING", True, 6 * 3.0), ("RUNNING", False, None),
                                               ("TERMINATED", True, None)])
def test_only_a_trial_running_under_a_live_driver_has_a_time_left(tmp_path, state, live, left):
    folder = trial_folder(tmp_path, rows(3, 4, 6, [3.0] * 6))
    summary = trial_summary("abc_00000", state, folder, live)
    assert summary["seconds_left"] == left and summary["task"] == 1 and summary["epoch"] == 1
    assert summary["state"] == ("INTERRUPTED" if live is False else state)
