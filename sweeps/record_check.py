"""Damaged records: a trial whose `result.json` lacks epochs it reported (a disk fault, a bad copy, an edit).

Tune marks the trial finished and never looks at the file again, so without this check `export` and `report`
would read it silently short. A gap is any (task, epoch) missing before the trial's last readable record, or,
for a trial Tune finished, before the end of its stream (a file cut short). `status` and `export` name the
damage; `lop sweep resume` re-runs each damaged trial from its newest kept checkpoint before the gap (or from its
start), and the export keeps each epoch's last report, so the records come out whole and exact.
"""
from __future__ import annotations

from dataclasses import dataclass

from sweeps.results import RESULT_FILE, last_epoch, latest_attempts, read_rows
from sweeps.storage import StoragePath


def is_finished(row: dict | None) -> bool:
    """A trial's last record says it ran its last epoch of its last task, or diverged."""
    if not row or "task" not in row:
        return False
    return bool(row.get("diverged")) or (row["task"] == row["tasks"] - 1 and last_epoch(row))


@dataclass(frozen=True)
class Damage:
    """What a trial's records lack: `missing` of its `expected` epochs (None: no record is readable), the first
    of them in `first_task`."""
    trial: str  # the trial's folder name
    first_task: int
    missing: int | None = None
    expected: int | None = None

    def describe(self) -> str:
        if self.missing is None:
            return "no record readable"
        return f"{self.missing} of {self.expected} epochs unreadable, from task {self.first_task + 1}"

    def line(self, folder: StoragePath) -> str:
        return (f"trial {self.trial}: its {RESULT_FILE} is damaged ({self.describe()}); `lop sweep resume {folder}` "
                "re-runs it")


def trial_damage(trial_dir: StoragePath, finished: bool) -> Damage | None:
    """The gaps in one trial's records; `finished`: Tune says the trial ran to its end."""
    path = trial_dir / RESULT_FILE
    rows = latest_attempts(read_rows(path)) if path.exists() else []
    if not rows:
        return Damage(trial_dir.name, 0) if finished else None  # a finished trial reported at least once
    last = rows[-1]
    epochs = int(last["epochs_per_task"])
    if finished and not is_finished(last):
        end = (int(last["tasks"]) - 1, epochs - 1)  # cut short: its last tasks are gone
    else:
        end = (int(last["task"]), int(last["epoch"]))
    present = {(int(row["task"]), int(row["epoch"])) for row in rows}
    expected = [(task, epoch) for task in range(end[0] + 1) for epoch in range(epochs) if (task, epoch) <= end]
    missing = [key for key in expected if key not in present]
    if not missing:
        return None
    return Damage(trial_dir.name, missing[0][0], len(missing), len(expected))
