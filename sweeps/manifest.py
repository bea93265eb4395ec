"""A sweep's folder: its manifest (what was asked for) and the lock that keeps a second driver off it.

The folder is a local or network path or a `pyarrow.fs` URI (`sweeps.storage`); the lock is an `flock`,
so it guards sweeps on a local or network filesystem only (a bucket has no lock).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from lopmodels.errors import ConfigError, NoResults, StorageUnreachable, SweepLocked
from sweeps.storage import StoragePath, local_path, write_text_atomic

MANIFEST = "lop-sweep.json"
LOCK = "lop-driver.lock"


@dataclass(frozen=True)
class Manifest:
    """What `lop sweep run` was asked for; `status`, `resume` and `report` read it."""

    sweep: str
    title: str
    scale: str
    arms: list[str]
    seeds: int | None  # --seeds; None: each arm its default number (`arm_seeds`)
    seed_start: int
    trials: int
    tasks: int  # tasks summed over all trials: the denominator of the progress line
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int | None
    max_failures: int
    code_version: str
    data_hash: dict[str, str]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    arm_seeds: dict[str, int] = field(default_factory=dict)  # replicates per arm (empty in older manifests)
    plugins: list[str] = field(default_factory=list)  # `lop --plugin` modules the trials need (trainables/plugins.py)
    overrides: list[str] = field(default_factory=list)  # `--set field=value` applied to every arm
    sweep_file: str | None = None  # the YAML file of a sweep from a file, for the command that runs it again
    loggers: list[str] = field(default_factory=list)  # `--logger` trackers (sweeps/loggers.py); none in older ones
    # the sweep's note on what its scale can show (`Sweep.notes`), as it was when the sweep was launched, so the
    # report prints the note the results were run under; None in older manifests (the report reads the registry)
    notes: str | None = None

    def replicates(self, arm: str) -> range:
        """The seeds (= stream seeds) that `arm` was asked to run."""
        return range(self.seed_start, self.seed_start + self.arm_seeds.get(arm, self.seeds or 0))

    def write(self, folder: StoragePath) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / MANIFEST, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: StoragePath) -> "Manifest":
        path = folder / MANIFEST
        if not path.is_file():
            if any(folder.glob("experiment_state-*.json")):
                raise ConfigError(f"{folder} has lost its {MANIFEST}; rebuild it from the sweep's own records with "
                                  f"`lop sweep repair {folder}`")
            raise NoResults(f"{folder} is not a sweep (no {MANIFEST}); give the folder that `lop sweep run` "
                            "printed, e.g. lop-results/fig1")
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0]}" if str(error) else type(error).__name__
            raise ConfigError(f"{path} is damaged ({reason}); rebuild it from the sweep's own records with "
                              f"`lop sweep repair {folder}`") from None


def is_sweep(folder: StoragePath) -> bool:
    return (folder / MANIFEST).is_file()


class DriverLock:
    """An exclusive `flock` on the sweep folder, held while a driver runs it (released by the OS if it dies).

    Storage in a bucket has no lock: one driver per sweep is then the user's to keep.
    """

    def __init__(self, folder: StoragePath) -> None:
        local = local_path(folder)
        self.path = local / LOCK if local is not None else None
        self._file: IO[str] | None = None

    def __enter__(self) -> "DriverLock":
        if self.path is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        if not take_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise SweepLocked(f"sweep {self.path.parent} is being run by another driver ({holder}); "
                              "wait for it to finish or stop it first")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def take_lock(handle: IO[str]) -> bool:
    """An exclusive `flock` on `handle` if no other process holds one, without waiting."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def driver_running(folder: StoragePath) -> bool | None:
    """Whether a driver holds the sweep's lock; None where there is no lock (storage in a bucket)."""
    local = local_path(folder)
    if local is None:
        return None
    if not (local / LOCK).exists():
        return False
    with open(local / LOCK) as handle:
        if not take_lock(handle):
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def refuse_existing(folder: StoragePath) -> None:
    """Never overwrite results: a folder that holds a sweep is resumed, not run again."""
    if is_sweep(folder) or (folder / "tuner.pkl").exists():
        raise ConfigError(f"a sweep already exists at {folder}; resume it with `lop sweep resume {folder}` "
                          "or choose another --name")


def claim_folder(folder: StoragePath, storage: str | Path) -> bool:
    """Create the sweep's folder (True if this call made it); refuse one that cannot be written."""
    existed = folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageUnreachable(f"cannot write --storage {storage}: {error.strerror or error}; "
                                 "choose a writable folder") from None
    local = local_path(folder)
    if local is not None and not os.access(local, os.W_OK):
        raise StorageUnreachable(f"cannot write --storage {storage}; choose a writable folder")
    return not existed
