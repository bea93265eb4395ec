"""`lop sweep resume`: finish an interrupted sweep from its folder alone. Done trials stay done; interrupted and
errored ones continue from their last checkpoint, after the repairs a damaged folder needs (a lost or unreadable
checkpoint, a damaged Tune snapshot), with the sweep's plugins and trackers, and optionally with other resources
per trial.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

from ray import tune

from lopmodels.errors import ConfigError
from sweeps import loggers as trackers
from sweeps.cluster import Resources, check_reachable, check_resources, connect
from sweeps.launch import echo, fit, trainable
from sweeps.manifest import DriverLock, Manifest
from sweeps.ray_adapter import (SNAPSHOTS, latest_checkpoints, requeue_finished, set_max_concurrent,
                                snapshot_readable, snapshot_trials)
from sweeps.status import all_finished, damaged_trials, trial_dirs, tune_states
from sweeps.storage import StoragePath, local_path, location
from sweeps.tune_state import SET_ASIDE, run_command, set_aside_damaged_snapshots
from trainables.config import TrialConfig
from trainables.plugins import import_plugins, shipped
from trainables.tune_trial import STATE_FILE


def check_configs(folder: StoragePath, manifest: Manifest) -> None:
    """Every trial's config must still validate with this code, before anything is restarted."""
    for trial in snapshot_trials(folder):
        try:
            TrialConfig.from_dict(trial["config"]["run"]["trial"])
        except ConfigError as error:
            raise ConfigError(f"trial {trial['trial_id']} of {folder} no longer validates ({error}); finish it "
                              f"with the code that started it ({manifest.code_version}) or start a new sweep") from None


def kept_checkpoints(trial_dir: Path) -> list[Path]:
    """The trial's checkpoint folders Tune wrote (`checkpoint_000010`), oldest first; set-aside ones excluded."""
    return sorted(p for p in trial_dir.glob("checkpoint_*") if p.is_dir() and re.fullmatch(r"checkpoint_\d+", p.name))


def checkpoint_readable(checkpoint: Path) -> bool:
    """Whether torch reads the checkpoint's state (an empty stand-in counts: the trial starts again)."""
    try:
        checkpoint_task(checkpoint)
    except Exception:  # a file cut short or overwritten fails as a zip, pickle, EOF or key error alike
        return False
    return True


def set_aside_unreadable_checkpoints(folder: StoragePath) -> None:
    """Rename every checkpoint whose state does not read (a disk fault, a copy cut short) to
    `<name>.damaged`, kept, never restored from: `restore_lost_checkpoints` then treats it as lost. Without
    this the restored trial fails on the file at every retry."""
    local = local_path(folder)
    if local is None:
        return  # a bucket: the trial's own error stands
    for trial_dir in trial_dirs(local).values():
        for checkpoint in kept_checkpoints(trial_dir):
            if checkpoint_readable(checkpoint):
                continue
            aside, n = checkpoint.with_name(checkpoint.name + SET_ASIDE), 1
            while aside.exists():  # an earlier repair set aside a checkpoint of the same name
                n += 1
                aside = checkpoint.with_name(f"{checkpoint.name}{SET_ASIDE}-{n}")
            checkpoint.rename(aside)
            echo(f"trial {trial_dir.name}: {checkpoint.name} cannot be read (set aside as {aside.name})")


def restore_lost_checkpoints(folder: StoragePath) -> None:
    """Where the checkpoint Tune will restore a trial from is gone, put the trial's newest older checkpoint in
    its place (or an empty one: the trial starts again); the records after it are re-run, and the export keeps
    each epoch's last report, so it stays exact. Without this Tune fails the trial on every resume."""
    local = local_path(folder)
    if local is None:
        return  # a bucket: Tune's own error stands
    dirs = trial_dirs(local)
    for trial_id, name in latest_checkpoints(local).items():
        trial_dir = dirs.get(trial_id)
        if trial_dir is None or (trial_dir / name).exists():
            continue
        older = [p for p in kept_checkpoints(trial_dir) if p.name < name]
        if older:
            shutil.copytree(older[-1], trial_dir / name)
            echo(f"trial {trial_dir.name}: {name} is missing; it resumes from {older[-1].name} and re-runs the "
                 "tasks after it")
        else:
            (trial_dir / name).mkdir()
            echo(f"trial {trial_dir.name}: {name} is missing and no older checkpoint is left; it starts again")


def checkpoint_task(checkpoint: Path) -> int | None:
    """The task a kept checkpoint would resume at (None: an empty stand-in, which starts the trial again)."""
    import torch
    state_file = checkpoint / STATE_FILE
    return torch.load(state_file, map_location="cpu", weights_only=False)["next_task"] if state_file.exists() else None


def rerun_damaged_records(folder: StoragePath) -> None:
    """A trial whose records have gaps (`sweeps.record_check`) runs again from its newest kept checkpoint before
    the first gap, put where Tune will restore it from (or from its start: Tune keeps only the last checkpoints);
    a finished one is requeued. It re-reports every epoch after that checkpoint, which the export keeps."""
    local = local_path(folder)
    damaged = damaged_trials(folder)
    if not damaged:
        return
    if local is None:
        raise ConfigError(f"{len(damaged)} trial(s) of {folder} have damaged records ({next(iter(damaged.values())).describe()}, "
                          "...); a sweep in a bucket is repaired on a local copy: copy it to a folder, resume "
                          "that, and copy it back")
    dirs, latest, states = trial_dirs(local), latest_checkpoints(local), tune_states(local)
    for trial_id, damage in damaged.items():
        trial_dir, name = dirs[trial_id], latest.get(trial_id)
        if name is not None:
            usable = [p for p in kept_checkpoints(trial_dir) if (checkpoint_task(p) or 0) <= damage.first_task]
            start = usable[-1] if usable else None
            if start is None or start.name != name:
                shutil.rmtree(trial_dir / name, ignore_errors=True)
                shutil.copytree(start, trial_dir / name) if start is not None else (trial_dir / name).mkdir()
        resumes_at = checkpoint_task(trial_dir / name) if name is not None else None
        echo(f"trial {trial_dir.name}: its records are damaged ({damage.describe()}); it re-runs from "
             + (f"task {resumes_at + 1}" if resumes_at else "its start"))
    requeue_finished(local, {trial_id for trial_id in damaged if states.get(trial_id) == "TERMINATED"})


def resume_sweep(folder: str | Path, *, address: str | None, max_concurrent: int | None,
                 cpus_per_trial: float | None = None, gpus_per_trial: float | None = None) -> int:
    """Finish an interrupted sweep: done trials stay done, interrupted ones continue from their last task.

    `cpus_per_trial`/`gpus_per_trial` change what the trials ask for (a request the cluster can never meet is
    how a sweep gets stuck); the restored trials take them from the trainable given to Tune, and the manifest
    records them for the next resume."""
    folder = location(folder)
    manifest = Manifest.read(folder)
    plugins = import_plugins(manifest.plugins)  # before the configs are checked: they may name its entries
    for name in manifest.loggers:  # tuner.pkl rebuilds them: their packages must be here, before Ray starts
        trackers.check_installed(name)
    if not tune.Tuner.can_restore(str(folder)):
        raise ConfigError(f"{folder} has a manifest but no Tune state; move the folder aside (its records, if "
                          f"any, stay readable) and start the sweep anew with `{run_command(manifest, folder)}`")
    check_configs(folder, manifest)
    if all_finished(folder, manifest.trials):  # nothing to restart: no Ray, no new files
        echo(f"sweep {manifest.sweep} at {folder} is finished: {manifest.trials} trials done, 0 errored; "
             f"nothing to resume (inspect: lop sweep status {folder})")
        return 0
    resources = Resources(manifest.cpus_per_trial if cpus_per_trial is None else cpus_per_trial,
                          manifest.gpus_per_trial if gpus_per_trial is None else gpus_per_trial,
                          max_concurrent or manifest.max_concurrent, manifest.max_failures)
    local = local_path(folder)
    with DriverLock(folder):  # a second driver is refused before Ray starts; the lock file names this one
        if local is not None and not any(snapshot_readable(s) for s in local.glob(SNAPSHOTS)):
            set_aside_damaged_snapshots(local, manifest, echo)  # no snapshot reads: its one-line error, pre-Ray
        connect(address, ship=shipped(plugins))  # every check before any repair: a refused resume leaves the
        check_resources(resources)               # sweep's files as they were
        check_reachable(folder)
        if local is not None:
            set_aside_damaged_snapshots(local, manifest, echo)
        set_aside_unreadable_checkpoints(folder)
        rerun_damaged_records(folder)
        restore_lost_checkpoints(folder)
        changed = (resources.cpus_per_trial, resources.gpus_per_trial) != (manifest.cpus_per_trial,
                                                                           manifest.gpus_per_trial)
        if changed:
            dataclasses.replace(manifest, cpus_per_trial=resources.cpus_per_trial,
                                gpus_per_trial=resources.gpus_per_trial).write(folder)
            echo(f"trials now ask for {resources.cpus_per_trial:g} CPU(s) and {resources.gpus_per_trial:g} GPU(s) "
                 f"each (were {manifest.cpus_per_trial:g} and {manifest.gpus_per_trial:g})")
        tuner = tune.Tuner.restore(str(folder), trainable=trainable(resources), resume_errored=True)
        if max_concurrent is not None:
            set_max_concurrent(tuner, max_concurrent)
        echo(f"resuming sweep {manifest.sweep} at {folder}: {manifest.trials} trials")
        return fit(tuner, folder, manifest.trials)
