"""The sweep's progress line, driven through Tune's callback hooks with real `Trial` objects (no Ray needed)."""
from __future__ import annotations

import pickle

import pytest
from ray.tune.experiment import Trial

from sweeps import progress as progress_module
from sweeps.progress import Progress, clock


def trial(arm: str, replicate: int) -> Trial:
    return Trial("lop", config={"run": {"arm": arm, "replicate": replicate}}, trial_id=f"{arm}{replicate}", stub=True)


def task_end(task: int, accuracy: float, stream: str = "mnist-reshuffle", **extra) -> dict:
    return {"task": task, "epoch": 1, "epochs_per_task": 2, "stream": stream, "test_accuracy": accuracy,
            "train_accuracy": 0.99, **extra}


@pytest.fixture
def clock_at(monkeypatch):
    """Progress's clock, set by the test."""
    now = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    return now


def test_trials_tune_has_not_created_yet_are_pending_and_a_completed_trial_is_done(capsys, clock_at):
    progress = Progress(total_tasks=8, total_trials=4)  # 4 trials of 2 tasks; max-concurrent 1: one created
    first = trial("mlp", 0)
    first.set_status(Trial.RUNNING)
    clock_at[0] += 10
    progress.on_trial_result(0, [first], first, {"task": 0, "epoch": 0, "epochs_per_task": 2})
    assert capsys.readouterr().err == ""  # a log gets a line per finished task, not per epoch
    clock_at[0] += 10
    progress.on_trial_result(0, [first], first, task_end(0, 0.9))
    line = capsys.readouterr().err.strip()
    assert line.startswith("[0:00:20] trials 0/4 done, 1 running, 3 pending | tasks 1/8, ETA 0:02:20")
    assert line.endswith("| accuracy mlp-r0 0.900 (task 1)")
    progress.on_trial_result(0, [first], first, task_end(1, 0.8))
    progress.on_trial_complete(0, [first], first)  # Tune marks it TERMINATED only after this callback
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "trials 1/4 done, 0 running, 3 pending | tasks 2/8" in last and "accuracy" not in last


def test_the_eta_counts_only_tasks_this_driver_finished(clock_at, capsys):
    progress = Progress(total_tasks=10, total_trials=1)
    progress.set_state({"tasks_done": {"mlp0": 5}})  # what Tune gives back on resume
    running = trial("mlp", 0)
    running.set_status(Trial.RUNNING)
    clock_at[0] += 60
    progress.on_trial_result(0, [running], running, task_end(5, 0.5))
    assert "tasks 6/10, ETA 0:04:00" in capsys.readouterr().err  # one task a minute, four left


def test_random_labels_report_training_accuracy_and_many_running_trials_are_counted(capsys):
    progress = Progress(total_tasks=60, total_trials=6)
    trials = [trial("a", k) for k in range(6)]
    for t in trials:
        t.set_status(Trial.RUNNING)
    for t in trials:
        progress.on_trial_result(0, trials, t, task_end(0, 0.1, stream="mnist-random-labels"))
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "a-r0 0.990 (task 1)" in line and "a-r3 0.990" in line and "a-r4" not in line and "+2 more" in line


def test_an_errored_trial_gets_its_own_line_and_is_counted(capsys, monkeypatch):
    # reading the error file needs the trial's storage, which needs Ray: tests/test_sweeps.py does it for real
    monkeypatch.setattr(progress_module, "last_error_line", lambda trial: "ValueError: boom")
    progress = Progress(total_tasks=4, total_trials=2)
    good, bad = trial("a", 0), trial("a", 1)
    for t in (good, bad):
        t.set_status(Trial.RUNNING)
    progress.on_trial_error(0, [good, bad], bad)
    out = capsys.readouterr().err.splitlines()
    assert out[0] == f"trial {bad} errored: ValueError: boom; the others go on"
    assert "trials 0/2 done, 1 running, 0 pending, 1 errored" in out[1]


def test_on_a_terminal_one_line_is_redrawn_and_ended_at_the_experiments_end(capsys, clock_at):
    progress = Progress(total_tasks=4, total_trials=1)
    progress.on_terminal = True
    running = trial("a", 0)
    running.set_status(Trial.RUNNING)
    for epoch in range(2):
        clock_at[0] += 2
        progress.on_trial_result(0, [running], running, {"task": 0, "epoch": epoch, "epochs_per_task": 2,
                                                         "stream": "mnist-reshuffle", "test_accuracy": 0.5})
    progress.on_experiment_end([running])
    err = capsys.readouterr().err
    assert err.count("\r") == 2 and "\n" not in err[:-1] and err.endswith("\n")


def test_a_progress_pickled_by_an_older_lop_resumes():
    old = Progress(total_tasks=10)
    del old.__dict__["total_trials"], old.__dict__["accuracy"], old.__dict__["ended"]
    old.tasks_done = {"a0": 3}
    restored = pickle.loads(pickle.dumps(old))  # the RunConfig's copy in tuner.pkl
    running = trial("a", 0)
    running.set_status(Trial.RUNNING)
    assert "trials 0/1 done, 1 running, 0 pending | tasks 3/10" in restored.line([running])


def test_clock():
    assert clock(0) == "0:00:00" and clock(3723.9) == "1:02:03"
