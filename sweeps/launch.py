"""`lop sweep run`: a sweep's trials (one per arm x replicate) as one Ray Tune experiment at STORAGE/NAME.

The checks come first (sweeps/cluster.py), then the folder is claimed and its manifest written (sweeps/manifest.py),
then one Tuner runs; `lop sweep resume` continues it (sweeps/resume.py). The Tune settings below keep the
driver's cost per trial small at 1,000 trials (docs/performance.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from pathlib import Path

from ray import tune
from ray.tune.logger import JsonLoggerCallback

from lopmodels.errors import LopError
from sweeps import loggers as trackers
from sweeps.base import (Sweep, Trial, check_name, estimated_cpu_seconds, replicate_counts, shared_arms,
                         unmeasured_models)
from sweeps.cluster import Resources, check_models, check_reachable, check_resources, connect, shutdown
from sweeps.manifest import DriverLock, Manifest, claim_folder, refuse_existing
from sweeps.progress import Progress, trial_label
from sweeps.record_check import is_finished
from sweeps.status import last_rows, tune_states
from sweeps.storage import StoragePath, location
from trainables import data as datasets
from trainables.overrides import apply_overrides
from trainables.plugins import import_plugins, plugin_specs, shipped
from trainables.records import code_version
from trainables.tune_trial import lop_trial

CHECKPOINTS_KEPT = 2
REUSE_ACTORS = True  # a trial starts in a finished trial's process: no new Python, no torch import


def echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def describe(trials: list[Trial]) -> str:
    hours = sum(estimated_cpu_seconds(t.config) for t in trials) / 3600
    counts = sorted(set(replicate_counts(trials).values()))
    replicates = " or ".join(str(c) for c in counts)
    line = f"{len(trials)} trials ({replicates} replicates per arm), roughly {hours:.2f} CPU-hours on a 2-core CPU"
    return line + unmeasured_note(trials)


def unmeasured_note(trials: list[Trial]) -> str:
    """Where an estimate is a model's guessed cost, not a measured one: which models, and how to measure them."""
    models = unmeasured_models(trials)
    if not models:
        return ""
    return (f" (a guess for {', '.join(models)}, not measured: python benchmarks/trial_costs.py --models "
            f"{','.join(models)})")


def trial_name(trial: tune.experiment.Trial) -> str:
    """A trial's folder name (kept in this module: tuner.pkl names it by its module path)."""
    return f"{trial_label(trial)}-{trial.trial_id}"


def prepare_data(trials: list[Trial]) -> dict[str, str]:
    """Prepare each dataset once on the driver, so trials find it cached; return its hash."""
    hashes = {}
    for trial in trials:
        cfg = trial.config
        key = cfg.stream_spec.dataset
        if key not in hashes:
            hashes[key] = datasets.load(key, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size).data_hash
    return hashes


def fit(tuner: tune.Tuner, folder: StoragePath, trials: int) -> int:
    """Run the sweep to its end or to a stop: SIGTERM (what schedulers and `ray job stop` send) stops it as
    Ctrl-C does, through Tune's own graceful stop (it saves the experiment state once more); a second Ctrl-C
    during that stop ends it at once. Either way the lines say what is left and how to resume; the exit code is
    then non-zero. Interrupts after Tune has returned are ignored until Ray is shut down: cut short, its shutdown
    leaves Ray's processes running."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGUSR1))
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:  # Tune's graceful stop restores Python's handler: this is the second interrupt
        grid = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, previous)
    try:
        if grid is None:
            counts = counts_from_files(folder)
            return 130 if conclude(folder, trials, *counts, stopped="stopped at once (a second interrupt)") else 0
        return summarize(folder, grid, trials)
    finally:
        shutdown()
        signal.signal(signal.SIGINT, interrupt)


def summarize(folder: StoragePath, grid: tune.ResultGrid, trials: int) -> int:
    """The end-of-run lines from Tune's results (`conclude`)."""
    done = sum(1 for result in grid if result.error is None and is_finished(result.metrics))
    return conclude(folder, trials, done, grid.num_errors)


def counts_from_files(folder: StoragePath) -> tuple[int, int]:
    """(done, errored) as the sweep's files say: a Tuner stopped at once returns no results."""
    rows, states = last_rows(folder), tune_states(folder)
    done = sum(1 for row in rows.values() if is_finished(row))
    errored = sum(1 for trial_id, state in states.items() if state == "ERROR" and not is_finished(rows.get(trial_id)))
    return done, errored


def conclude(folder: StoragePath, trials: int, done: int, errored: int, stopped: str = "stopped") -> int:
    """The end-of-run lines; non-zero when a trial errored or was left unfinished (Ctrl-C, SIGTERM). Of the
    sweep's `trials`, those Tune had not created yet count as unfinished."""
    unfinished = trials - errored - done
    echo(f"sweep {'finished' if not unfinished else stopped}: {done} trials done, {errored} errored"
         + (f", {unfinished} unfinished" if unfinished else "") + f"; results in {folder}")
    echo(f"  inspect: lop sweep status {folder}")
    echo(f"  export:  lop results export {folder} --out {folder.name}.parquet")
    if errored or unfinished:
        echo(f"  finish the {errored + unfinished} errored or unfinished trial(s) with `lop sweep resume {folder}`")
        return 1
    return 0


def tune_callbacks(total_tasks: int, total_trials: int, loggers: list[str], folder: StoragePath) -> list[tune.Callback]:
    """Progress, the records (result.json) and the `--logger` trackers; `resume` gets them back from tuner.pkl."""
    return [Progress(total_tasks, total_trials), JsonLoggerCallback(), *trackers.callbacks(loggers, folder)]


def run_sweep(sweep: Sweep, *, scale: str, seeds: int | None, seed_start: int, arms: list[str] | None,
              storage: str | Path, name: str | None, address: str | None, resources: Resources,
              dry_run: bool, overrides: tuple[str, ...] = (), loggers: tuple[str, ...] = ()) -> int:
    """Launch every trial of `sweep` as one Tune experiment at storage/name; returns the exit code.

    `overrides`: `--set field=value` pairs applied to every arm (trainables/overrides.py); `loggers`: `--logger`
    names (sweeps/loggers.py; none given: the default)."""
    chosen = trackers.chosen(loggers)
    trials = sweep.trials(scale, seeds, seed_start, arms)
    if overrides:
        configs = apply_overrides([t.config for t in trials], overrides, f"sweep {sweep.name!r}")
        trials = [dataclasses.replace(t, config=cfg) for t, cfg in zip(trials, configs)]
    folder = location(storage) / check_name(name or sweep.name)
    specs = plugin_specs()
    plugins = import_plugins(specs)
    if not dry_run:
        refuse_existing(folder)
        created = claim_folder(folder, storage)
        try:
            connect(address, ship=shipped(plugins))
            check_resources(resources)
            check_models(trials, resources)
            check_reachable(folder)
        except LopError:
            if created:  # refused before any trial started: leave no trace
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
    echo(f"sweep {sweep.name} ({sweep.title}), scale {scale}: {describe(trials)}")
    echo(f"  {sweep.notes.get(scale, '')}")
    if overrides:
        echo(f"  every arm with --set {' '.join(overrides)}")
    shared = {} if overrides else shared_arms(sweep, scale, sorted({t.arm for t in trials}))
    if shared:
        echo("  arms with the configuration of another sweep's arm (`lop report` uses one run for both; leave out "
             "with --arms what you have run): " + "; ".join(f"{arm} = {', '.join(labels)}"
                                                           for arm, labels in shared.items()))
    if dry_run:
        for t in trials:
            echo(f"  {t.arm:<16} replicate {t.replicate}  {t.config.model} on {t.config.stream}")
        return 0
    with DriverLock(folder):
        manifest = Manifest(
            sweep=sweep.name, title=sweep.title, scale=scale, arms=sorted({t.arm for t in trials}),
            seeds=seeds, seed_start=seed_start, trials=len(trials), arm_seeds=replicate_counts(trials),
            tasks=sum(t.config.resolved().tasks for t in trials),
            cpus_per_trial=resources.cpus_per_trial, gpus_per_trial=resources.gpus_per_trial,
            max_concurrent=resources.max_concurrent, max_failures=resources.max_failures,
            code_version=code_version(), data_hash=prepare_data(trials), plugins=specs, overrides=list(overrides),
            loggers=chosen, sweep_file=sweep.source, notes=sweep.notes.get(scale, ""),
        )
        manifest.write(folder)
        runs = [{"arm": t.arm, "replicate": t.replicate, "trial": t.config.to_dict()} for t in trials]
        tuner = tune.Tuner(
            trainable(resources),
            param_space={"sweep": sweep.name, "plugins": [module.__name__ for module in plugins],
                         "run": tune.grid_search(runs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=resources.max_concurrent, reuse_actors=REUSE_ACTORS,
                                        trial_dirname_creator=trial_name, trial_name_creator=trial_name),
            run_config=tune.RunConfig(
                name=folder.name, storage_path=str(folder.parent), verbose=0,
                failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
                callbacks=tune_callbacks(manifest.tasks, manifest.trials, chosen, folder),
            ),
        )
        return fit(tuner, folder, manifest.trials)


def trainable(resources: Resources):
    return tune.with_resources(lop_trial, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial})
