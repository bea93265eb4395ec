"""Run and resume sweeps as Ray Tune experiments (one trial per arm x replicate) at STORAGE/NAME."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

# Keeping few checkpoints forces an experiment snapshot after every few: the intended cost, not news.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
import ray  # noqa: E402
from ray import tune  # noqa: E402

from lopmodels.registry import ConfigError
from sweeps.base import Sweep, Trial, estimated_cpu_seconds
from sweeps.manifest import DriverLock, Manifest, is_sweep
from sweeps.progress import Progress
from sweeps.status import snapshot_trials
from trainables.config import TrialConfig
from trainables import data as datasets
from trainables.records import code_version
from trainables.trial import lop_trial

CHECKPOINTS_KEPT = 2


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0  # two one-thread trials beat one two-thread trial (MACHINE-NOTES.md)
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = 2

    def __post_init__(self) -> None:
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ConfigError("--cpus-per-trial must be positive and --gpus-per-trial non-negative")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent must be at least 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures must be non-negative, got {self.max_failures}")


def echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def describe(trials: list[Trial]) -> str:
    hours = sum(estimated_cpu_seconds(t.config) for t in trials) / 3600
    return f"{len(trials)} trials, roughly {hours:.2f} CPU-hours on a 2-core CPU"


def trial_name(trial: tune.experiment.Trial) -> str:
    run = trial.config["run"]
    return f"{run['arm']}-r{run['replicate']}-{trial.trial_id}"


def connect(address: str | None, local_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (or $RAY_ADDRESS), else start a local one."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot connect to a Ray cluster at {address!r}: {first}; "
                          "start one with `ray start --head` or drop --address to run locally") from None


def prepare_data(trials: list[Trial]) -> dict[str, str]:
    """Prepare each dataset once on the driver, so trials find it cached; return its hash."""
    hashes = {}
    for trial in trials:
        cfg = trial.config
        key = cfg.stream_spec.dataset
        if key not in hashes:
            hashes[key] = datasets.load(key, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size).data_hash
    return hashes


def summarize(folder: Path, grid: tune.ResultGrid) -> int:
    errored = grid.num_errors
    echo(f"sweep finished: {len(grid) - errored} trials done, {errored} errored; results in {folder}")
    echo(f"  inspect: lop sweep status {folder}")
    echo(f"  export:  lop results export {folder} --out {folder.name}.parquet")
    if errored:
        echo(f"  {errored} trial(s) errored: finish them with `lop sweep resume {folder}`")
        return 1
    return 0


def claim_folder(folder: Path, storage: Path) -> None:
    """Create the sweep's folder; refuse one that holds a sweep already (never overwrite results)."""
    if is_sweep(folder) or (folder / "tuner.pkl").exists():
        raise ConfigError(f"a sweep already exists at {folder}; resume it with `lop sweep resume {folder}` "
                          "or choose another --name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write --storage {storage}: {error.strerror}; choose a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"cannot write --storage {storage}; choose a writable folder")


def run_sweep(sweep: Sweep, *, scale: str, seeds: int, seed_start: int, arms: list[str] | None,
              storage: Path, name: str | None, address: str | None, resources: Resources,
              dry_run: bool) -> int:
    """Launch every trial of `sweep` as one Tune experiment at storage/name; returns the exit code."""
    trials = sweep.trials(scale, seeds, seed_start, arms)
    folder = (storage / (name or sweep.name)).resolve()
    if not dry_run:
        claim_folder(folder, storage)
    echo(f"sweep {sweep.name} ({sweep.title}), scale {scale}: {describe(trials)}")
    echo(f"  {sweep.notes.get(scale, '')}")
    if dry_run:
        for t in trials:
            echo(f"  {t.arm:<16} replicate {t.replicate}  {t.config.model} on {t.config.stream}")
        return 0
    with DriverLock(folder):
        manifest = Manifest(
            sweep=sweep.name, title=sweep.title, scale=scale, arms=sorted({t.arm for t in trials}),
            seeds=seeds, seed_start=seed_start, trials=len(trials),
            tasks=sum(t.config.resolved().tasks for t in trials),
            cpus_per_trial=resources.cpus_per_trial, gpus_per_trial=resources.gpus_per_trial,
            max_concurrent=resources.max_concurrent, max_failures=resources.max_failures,
            code_version=code_version(), data_hash=prepare_data(trials),
        )
        manifest.write(folder)
        connect(address)
        runs = [{"arm": t.arm, "replicate": t.replicate, "trial": t.config.to_dict()} for t in trials]
        tuner = tune.Tuner(
            trainable(resources),
            param_space={"sweep": sweep.name, "run": tune.grid_search(runs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=resources.max_concurrent,
                                        trial_dirname_creator=trial_name, trial_name_creator=trial_name),
            run_config=tune.RunConfig(
                name=folder.name, storage_path=str(folder.parent), verbose=0,
                failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
                callbacks=[Progress(manifest.tasks)],
            ),
        )
        return summarize(folder, tuner.fit())


def trainable(resources: Resources):
    return tune.with_resources(lop_trial, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial})


def check_configs(folder: Path, manifest: Manifest) -> None:
    """Every trial's config must still validate with this code, before anything is restarted."""
    for trial in snapshot_trials(folder):
        try:
            TrialConfig.from_dict(trial["config"]["run"]["trial"])
        except ConfigError as error:
            raise ConfigError(f"trial {trial['trial_id']} of {folder} no longer validates ({error}); finish it "
                              f"with the code that started it ({manifest.code_version}) or start a new sweep") from None


def resume_sweep(folder: Path, *, address: str | None, max_concurrent: int | None) -> int:
    """Finish an interrupted sweep: done trials stay done, interrupted ones continue from their last task."""
    folder = folder.resolve()
    manifest = Manifest.read(folder)
    if not (folder / "tuner.pkl").exists():
        raise ConfigError(f"{folder} has a manifest but Tune never started there; start it anew with "
                          f"`lop sweep run {manifest.sweep} --name {folder.name}` after removing the folder")
    check_configs(folder, manifest)
    with DriverLock(folder):
        connect(address)
        resources = Resources(manifest.cpus_per_trial, manifest.gpus_per_trial,
                              max_concurrent or manifest.max_concurrent, manifest.max_failures)
        tuner = tune.Tuner.restore(str(folder), trainable=trainable(resources), resume_errored=True)
        if max_concurrent is not None:
            # Tuner.restore takes no TuneConfig; the restored one is the only place the limit lives
            tuner._local_tuner._tune_config.max_concurrent_trials = max_concurrent
        echo(f"resuming sweep {manifest.sweep} at {folder}: {manifest.trials} trials")
        return summarize(folder, tuner.fit())
