"""`lop sweep status`: what a sweep's trials are doing, read from its files (no Ray, no running driver needed).

The folder may be local, on a network filesystem, or at a `pyarrow.fs` URI (`sweeps.storage`).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from sweeps.record_check import Damage, is_finished, trial_damage
from sweeps.results import RESULT_FILE, latest_attempts, read_rows
from sweeps.manifest import Manifest, driver_running
from sweeps.ray_adapter import snapshot_trials
from sweeps.storage import StoragePath, location


DRIVER_STATES = {True: "running", False: "not running", None: "unknown (storage in a bucket has no driver lock)"}


def trial_dirs(folder: StoragePath) -> dict[str, StoragePath]:
    """trial id -> its folder (`<arm>-r<replicate>-<trial id>`)."""
    return {p.name.rsplit("-", 1)[-1]: p for p in folder.iterdir() if p.is_dir() and "-r" in p.name}


def rounded(seconds: float) -> str:
    """`about 2 h 05 min`, `about 14 min`, `under a minute`: an estimate, not a clock."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"about {minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"about {minutes} min"


RECENT_EPOCHS = 20  # the pace a running trial's time left is estimated from: recent, as the machine's load changes


def attempt_rows(trial_dir: StoragePath) -> list[dict]:
    """The records of the trial's latest attempt, none before its first."""
    if not (trial_dir / RESULT_FILE).exists():
        return []
    return latest_attempts(read_rows(trial_dir / RESULT_FILE))


def last_row(trial_dir: StoragePath) -> dict | None:
    """The last record of the trial's latest attempt, None before its first."""
    attempt = attempt_rows(trial_dir)
    return attempt[-1] if attempt else None


def seconds_left(rows: list[dict]) -> float | None:
    """Seconds until the trial's last epoch at the pace of its last `RECENT_EPOCHS` epochs (None before one)."""
    recent = [row["seconds"] for row in rows[-RECENT_EPOCHS:] if isinstance(row.get("seconds"), (int, float))]
    if not recent:
        return None
    last, epochs = rows[-1], rows[-1]["epochs_per_task"]
    left = (last["tasks"] - last["task"] - 1) * epochs + epochs - last["epoch"] - 1
    return left * sum(recent) / len(recent)


def last_rows(folder: StoragePath) -> dict[str, dict]:
    """trial id -> the last record of its latest attempt, for every trial folder with records."""
    rows = {trial_id: last_row(trial_dir) for trial_id, trial_dir in trial_dirs(folder).items()}
    return {trial_id: row for trial_id, row in rows.items() if row is not None}


def all_finished(folder: StoragePath, trials: int) -> bool:
    """Every one of the sweep's `trials` is TERMINATED in Tune's snapshot and its records, whole, say it finished."""
    states, rows = tune_states(folder), last_rows(folder)
    return (len(states) == trials and not damaged_trials(folder)
            and all(state == "TERMINATED" and is_finished(rows.get(trial_id)) for trial_id, state in states.items()))


def damaged_trials(folder: StoragePath) -> dict[str, Damage]:
    """trial id -> what its records lack, for every trial whose `result.json` has gaps (sweeps.record_check)."""
    states = tune_states(folder)
    found = {trial_id: trial_damage(trial_dir, finished=states.get(trial_id) == "TERMINATED")
             for trial_id, trial_dir in trial_dirs(folder).items()}
    return {trial_id: damage for trial_id, damage in found.items() if damage is not None}


def tune_states(folder: StoragePath) -> dict[str, str]:
    """trial id -> Tune's status (RUNNING in a snapshot whose driver is gone means interrupted)."""
    return {trial["trial_id"]: trial["status"] for trial in snapshot_trials(folder)}


def exception_line(error_file: StoragePath) -> str | None:
    """The last line of a Tune error file: the exception itself (the first is "Failure # 1 (occurred at ...)")."""
    try:
        text = error_file.read_bytes().decode(errors="replace")  # shown, never parsed: a bad byte shows as such
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1] if lines else None


def trial_summary(trial_id: str, state: str, trial_dir: StoragePath | None, live: bool | None,
                  damage: Damage | None = None) -> dict:
    """One trial's entry of `status_data`: its state as shown (DIVERGED, INTERRUPTED beside Tune's), last
    record, for an errored trial the exception (the last line of Tune's error.txt), and damaged records."""
    rows = attempt_rows(trial_dir) if trial_dir else []
    last = rows[-1] if rows else None
    if last and last.get("diverged"):
        state = "DIVERGED"
    elif state == "RUNNING" and live is False:
        state = "INTERRUPTED"
    error = exception_line(trial_dir / "error.txt") if trial_dir and state == "ERROR" else None
    return {"trial_id": trial_id, "name": trial_dir.name if trial_dir else trial_id, "state": state,
            "task": last["task"] if last else None, "tasks": last["tasks"] if last else None,
            "epoch": last["epoch"] if last else None, "test_accuracy": last["test_accuracy"] if last else None,
            "seconds_left": seconds_left(rows) if rows and state == "RUNNING" else None,
            "error": error, "damaged_records": damage.describe() if damage else None}


def status_data(path: str | Path) -> dict:
    """A sweep's state as one JSON-ready object (`lop sweep status --json`; keys in docs/analysis.md)."""
    folder = location(path)
    manifest = Manifest.read(folder)
    states = tune_states(folder)
    live = driver_running(folder)
    folders = trial_dirs(folder)
    damaged = damaged_trials(folder)
    trials = [trial_summary(trial_id, states.get(trial_id, "PENDING"), folders.get(trial_id), live,
                            damaged.get(trial_id)) for trial_id in sorted(set(states) | set(folders))]
    counts = Counter(trial["state"] for trial in trials)
    pending = manifest.trials - len(trials)
    if pending > 0:
        counts["PENDING"] += pending
    resumable = bool(counts["INTERRUPTED"] or counts["ERROR"] or damaged or (pending > 0 and not live))
    return {"sweep": manifest.sweep, "title": manifest.title, "scale": manifest.scale, "folder": str(folder),
            "planned_trials": manifest.trials, "driver": DRIVER_STATES[live], "driver_running": live,
            "counts": dict(sorted(counts.items())), "damaged_records": len(damaged),
            "resume": f"lop sweep resume {folder}" if resumable else None,
            "trials": trials}


def sweep_status(path: str | Path) -> str:
    """A text report: counts by state, per-trial last task and accuracy, errors with their last line."""
    data = status_data(path)
    lines = []
    for trial in data["trials"]:
        if trial["task"] is None:
            detail = "no results yet"
        else:
            detail = (f"task {trial['task'] + 1}/{trial['tasks']} epoch {trial['epoch'] + 1}  "
                      f"test acc {trial['test_accuracy']:.3f}")
        if trial["seconds_left"] is not None:
            detail += f"  {rounded(trial['seconds_left'])} left"
        if trial["error"] is not None:
            detail += f"  error: {trial['error'][:160]}"
        if trial["damaged_records"] is not None:
            detail += f"  records damaged: {trial['damaged_records']}"
        lines.append(f"  {trial['name']:<36} {trial['state']:<11} {detail}")
    summary = ", ".join(f"{n} {s.lower()}" for s, n in data["counts"].items())
    if data["damaged_records"]:
        summary += f"; {data['damaged_records']} with damaged records"
    head = [f"sweep {data['sweep']} ({data['title']}), scale {data['scale']}, {data['planned_trials']} trials at "
            f"{data['folder']}", f"driver: {data['driver']}; {summary}"]
    if data["resume"]:
        head.append(f"finish it with: {data['resume']}")
    return "\n".join(head + lines)
