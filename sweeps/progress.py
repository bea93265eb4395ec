"""Live progress of a sweep on the terminal: trials done/running/pending and tasks finished."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ray import tune

PRINT_EVERY_SECONDS = 5.0


class Progress(tune.Callback):
    """Prints a line when a task or trial finishes (at most every few seconds), and every trial error."""

    def __init__(self, total_tasks: int) -> None:
        self.total_tasks = total_tasks
        self.tasks_done: dict[str, int] = {}  # trial id -> tasks finished
        self.started = time.monotonic()
        self.last_print = 0.0

    # Tune saves the counts with each experiment snapshot and gives them back on resume (`Tuner.restore`); a
    # resumed trial's next result corrects its count if the snapshot lagged behind.
    def get_state(self) -> dict[str, Any]:
        return {"tasks_done": dict(self.tasks_done)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.tasks_done = dict(state["tasks_done"])

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in a resuming driver: the clock is this process's."""
        self.__dict__.update(state, started=time.monotonic(), last_print=0.0)

    def _line(self, trials: list, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_print < PRINT_EVERY_SECONDS:
            return
        self.last_print = now
        states = [t.status for t in trials]
        done = sum(s == "TERMINATED" for s in states)
        errored = sum(s == "ERROR" for s in states)
        running = sum(s == "RUNNING" for s in states)
        pending = len(states) - done - errored - running
        tasks = sum(self.tasks_done.values())
        print(f"[{now - self.started:7.0f}s] trials {done} done, {running} running, {pending} pending"
              + (f", {errored} errored" if errored else "")
              + f" | tasks {tasks}/{self.total_tasks}", file=sys.stderr, flush=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("epoch") == result.get("epochs_per_task", 0) - 1 or result.get("diverged"):
            self.tasks_done[trial.trial_id] = result["task"] + 1
            self._line(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(f"trial {trial} errored: {last_error_line(trial)}; the others go on", file=sys.stderr, flush=True)
        self._line(trials, force=True)


def last_error_line(trial: Any) -> str:
    """The last line of the trial's error file (the exception itself, not Ray's traceback), else a pointer."""
    try:
        lines = [line.strip() for line in Path(trial.error_file).read_text().splitlines() if line.strip()]
    except (OSError, TypeError):
        lines = []
    return lines[-1][:300] if lines else "see `lop sweep status`"
