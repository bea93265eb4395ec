"""Tune's experiment snapshot of a sweep, checked before a resume, and the exact command that runs a sweep anew.

Tune restores an experiment from its newest `experiment_state-*.json` (one per driver session, rewritten as the
sweep runs). A truncated newest copy makes Tune start the experiment again from nothing and then crash; so a
damaged copy is set aside (renamed, never deleted) and Tune restores the newest copy that reads: trials then
continue from the checkpoints that copy names (`resume.restore_lost_checkpoints` repairs those that are gone),
and the records of the tasks they re-run replace the earlier ones in the export, so it stays exact.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from lopmodels.errors import ConfigError
from sweeps.loggers import NONE
from sweeps.manifest import Manifest
from sweeps.ray_adapter import SNAPSHOTS, snapshot_readable
from sweeps.storage import StoragePath

SET_ASIDE = ".damaged"


def run_command(manifest: Manifest, folder: StoragePath, name: str | None = None) -> str:
    """The `lop sweep run` that starts this sweep's trials again, as they were asked for, at `name` beside it."""
    parts = ["lop"] + [a for plugin in manifest.plugins for a in ("--plugin", plugin)]
    parts += ["sweep", "run", manifest.sweep_file or manifest.sweep, "--scale", manifest.scale,
              "--arms", ",".join(manifest.arms)]
    if manifest.seeds is not None:
        parts += ["--seeds", str(manifest.seeds)]
    if manifest.seed_start:
        parts += ["--seed-start", str(manifest.seed_start)]
    parts += ["--storage", str(folder.parent), "--name", name or folder.name,
              "--cpus-per-trial", f"{manifest.cpus_per_trial:g}", "--gpus-per-trial", f"{manifest.gpus_per_trial:g}",
              "--max-failures", str(manifest.max_failures)]
    if manifest.max_concurrent is not None:
        parts += ["--max-concurrent", str(manifest.max_concurrent)]
    parts += [a for override in manifest.overrides for a in ("--set", override)]
    parts += [a for logger in manifest.loggers or [NONE] for a in ("--logger", logger)]  # [] is `--logger none`
    return shlex.join(parts)


def lost_state(folder: Path, manifest: Manifest, problem: str) -> ConfigError:
    """The error for a Tune state that cannot be restored: the records stay, the trials start again elsewhere."""
    return ConfigError(f"{problem}; its finished records stay readable (lop results export {folder} --out "
                       f"{folder.name}.parquet); run its trials again in a new folder with "
                       f"`{run_command(manifest, folder, folder.name + '-again')}`")


def set_aside_damaged_snapshots(folder: Path, manifest: Manifest, echo: Callable[[str], None]) -> None:
    """Rename the newest snapshots that do not read, so Tune restores the newest that does; none left: a
    one-line error with the way out (`lost_state`)."""
    snapshots = sorted(folder.glob(SNAPSHOTS))
    if not snapshots:
        raise lost_state(folder, manifest, f"{folder} has lost its Tune state (no {SNAPSHOTS})")
    damaged = []
    for snapshot in reversed(snapshots):
        if snapshot_readable(snapshot):
            break
        damaged.append(snapshot)
    else:
        raise lost_state(folder, manifest, f"the Tune state of {folder} is damaged ({', '.join(s.name for s in damaged)} "
                                           "does not read) and no older copy is left")
    for snapshot in damaged:
        aside = snapshot.with_name(snapshot.name + SET_ASIDE)
        snapshot.rename(aside)
        echo(f"{snapshot.name} is damaged (set aside as {aside.name}); resuming from the older "
             f"{snapshots[-1 - len(damaged)].name}: trials re-run the tasks after the checkpoints it names")
