"""Live progress of a sweep: trials done/running/pending, tasks finished, elapsed, an ETA, and each running
trial's latest accuracy.

On a terminal it is one line rewritten in place; in a log (stderr not a terminal) one line per finished task.
The counts agree with `lop sweep status`: trials Tune has not created yet (under `--max-concurrent`) are
pending, and a trial counts as done from its last result on.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ray import tune

from sweeps.status import exception_line
from trainables.streams import accuracy_measure

REDRAW_EVERY_SECONDS = 1.0  # on a terminal
SHOWN_RUNNING = 4  # running trials whose accuracy the line names; the rest are counted


def clock(seconds: float) -> str:
    """1:02:03 for an hour, two minutes and three seconds."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def trial_label(trial: Any) -> str:
    """`<arm>-r<replicate>`: the start of the trial's folder name."""
    run = trial.config["run"]
    return f"{run['arm']}-r{run['replicate']}"


class Progress(tune.Callback):
    """The sweep's progress line; every trial error on a line of its own.

    `total_tasks` sums the tasks of all `total_trials` trials. The ETA divides the tasks left by the rate at
    which this driver has finished tasks (a resumed sweep's earlier tasks do not count towards the rate)."""

    def __init__(self, total_tasks: int, total_trials: int | None = None) -> None:
        self.total_tasks = total_tasks
        self.total_trials = total_trials
        self.tasks_done: dict[str, int] = {}  # trial id -> tasks finished
        self.accuracy: dict[str, tuple[int, float]] = {}  # trial id -> (its latest task, that task's accuracy)
        self.ended: dict[str, str] = {}  # trial id -> "done" or "errored", from Tune's callbacks
        self._start_clock()

    def _start_clock(self) -> None:
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.tasks_at_start = sum(self.tasks_done.values())
        self.on_terminal = sys.stderr.isatty()
        self.drawn = False  # a live line is on the terminal, unterminated

    # Tune saves the counts with each experiment snapshot and gives them back on resume (`Tuner.restore`); a
    # resumed trial's next result corrects its count if the snapshot lagged behind.
    def get_state(self) -> dict[str, Any]:
        return {"tasks_done": dict(self.tasks_done), "accuracy": dict(self.accuracy)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.tasks_done = dict(state["tasks_done"])
        self.accuracy = {k: tuple(v) for k, v in state.get("accuracy", {}).items()}
        self.tasks_at_start = sum(self.tasks_done.values())

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in a resuming driver (the RunConfig's copy in tuner.pkl): the clock and the terminal are
        this process's; a sweep started by an older lop has no trial total or accuracies."""
        self.__dict__.update({"total_trials": None, "accuracy": {}, "ended": {}, **state})
        self._start_clock()

    def line(self, trials: list) -> str:
        states = {t.trial_id: self.ended.get(t.trial_id, t.status) for t in trials}
        done = sum(s in ("done", "TERMINATED") for s in states.values())
        errored = sum(s in ("errored", "ERROR") for s in states.values())
        running = [t for t in trials if states[t.trial_id] == "RUNNING"]
        total = max(self.total_trials or 0, len(trials))
        pending = total - done - errored - len(running)
        tasks = sum(self.tasks_done.values())
        elapsed = time.monotonic() - self.started
        rate = (tasks - self.tasks_at_start) / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {clock((self.total_tasks - tasks) / rate)}" if rate > 0 and tasks < self.total_tasks else ""
        shown = sorted((trial_label(t), self.accuracy[t.trial_id]) for t in running if t.trial_id in self.accuracy)
        accuracies = ", ".join(f"{name} {acc:.3f} (task {task + 1})" for name, (task, acc) in shown[:SHOWN_RUNNING])
        if len(shown) > SHOWN_RUNNING:
            accuracies += f", +{len(shown) - SHOWN_RUNNING} more"
        return (f"[{clock(elapsed)}] trials {done}/{total} done, {len(running)} running, {pending} pending"
                + (f", {errored} errored" if errored else "") + f" | tasks {tasks}/{self.total_tasks}{eta}"
                + (f" | accuracy {accuracies}" if accuracies else ""))

    def _show(self, trials: list, *, task_finished: bool = False, force: bool = False) -> None:
        """A terminal gets the line redrawn at most every second; a log gets one per finished task or trial."""
        now = time.monotonic()
        if self.on_terminal:
            if force or now - self.last_draw >= REDRAW_EVERY_SECONDS:
                self.last_draw = now
                print("\r" + self.line(trials) + "\x1b[K", end="", file=sys.stderr, flush=True)
                self.drawn = True
        elif task_finished or force:
            print(self.line(trials), file=sys.stderr, flush=True)

    def _say(self, message: str) -> None:
        """A line of its own, after the live line if one is drawn."""
        print(("\n" if self.drawn else "") + message, file=sys.stderr, flush=True)
        self.drawn = False

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        finished = result.get("epoch") == result.get("epochs_per_task", 0) - 1 or result.get("diverged")
        if finished:
            self.tasks_done[trial.trial_id] = result["task"] + 1
            accuracy = result.get(accuracy_measure(result.get("stream", "")))
            if accuracy is not None:
                self.accuracy[trial.trial_id] = (result["task"], accuracy)
        self._show(trials, task_finished=bool(finished))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended[trial.trial_id] = "done"  # Tune sets TERMINATED only after its callbacks
        self._show(trials, force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended[trial.trial_id] = "errored"
        self._say(f"trial {trial} errored: {last_error_line(trial)}; the others go on")
        self._show(trials, force=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended.pop(trial.trial_id, None)  # a retried or resumed trial runs again

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.drawn:  # end the live line: what follows goes below it
            print(file=sys.stderr, flush=True)
            self.drawn = False


def last_error_line(trial: Any) -> str:
    """The exception of the trial's error file (not Ray's traceback), else a pointer."""
    line = exception_line(Path(trial.error_file)) if trial.error_file else None
    return line[:300] if line else "see `lop sweep status`"
