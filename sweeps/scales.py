"""Shared `small` and `smoke` scales (the `paper` scale has no overrides).

`small` keeps the paper's per-task training (all the data, its batch size, learning rate and 30 epochs a
task) and cuts only the number of tasks: fewer epochs per task inflate degradation and IAA (in the
reference's own saved results the LSTM had lost 8.4 % of its first-task accuracy by task 20 at the 30th
epoch of each task, but 24.3 % at the 10th). The task counts leave room for each effect to appear where
the reference's curves show it: the MLP and LSTM curves separate within the first 20 MNIST tasks, while the
GRU lost only about 3 % by language task 20 and collapses after task 33, so language streams keep 50.
"""
from typing import Any, Mapping

from trainables.streams import STREAMS

MNIST_SMOKE = {"tasks": 2, "epochs_per_task": 1, "train_limit": 500, "test_limit": 200}
LANGUAGE_SMOKE = {"tasks": 2, "epochs_per_task": 1, "train_limit": 200, "test_limit": 100}


def small(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The `small` scale of an arm: its stream's own task count for it (`StreamSpec.small_tasks`), nothing else
    changed."""
    return {"tasks": STREAMS[fields.get("stream", "mnist-reshuffle")].tasks_at_small_scale}


def smoke(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The `smoke` scale of an arm: two one-epoch tasks on a few hundred samples of its stream's data."""
    return LANGUAGE_SMOKE if STREAMS[fields.get("stream", "mnist-reshuffle")].is_language else MNIST_SMOKE


STANDARD = {"small": small, "smoke": smoke}  # the scales of every figure's sweep


SMALL_NOTE = ("the paper's per-task training (all the data, its batch size, learning rate and 30 epochs a task), "
              "fewer tasks: {tasks}")
SMOKE_NOTE = "seconds: checks the plumbing, shows nothing about plasticity"

MNIST_NOTES = {
    "paper": "the paper's 50 tasks x 30 epochs on all 60,000 digits",
    "small": SMALL_NOTE.format(tasks="25 of the paper's 50; shows the decline of the MLP and whether the "
                                     "recurrent models decline more slowly, not where the decline levels off"),
    "smoke": SMOKE_NOTE,
}
LANGUAGE_NOTES = {
    "paper": "the paper's 100 tasks x 30 epochs (the paper used Tatoeba's 2,600 sentences per language; "
             "the offline corpus has 800, so an epoch has about a third of the paper's steps)",
    "small": SMALL_NOTE.format(tasks="50 of the paper's 100; long enough for the collapse the reference's GRU "
                                     "shows after task 33, not for the level after 100 tasks"),
    "smoke": SMOKE_NOTE,
}
