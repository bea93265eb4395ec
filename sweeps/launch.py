"""Run and resume sweeps as Ray Tune experiments (one trial per arm x replicate) at STORAGE/NAME.

Before any trial starts on a cluster, three checks: a cluster answers at `--address` (within seconds),
one node can hold `--gpus-per-trial`, and every node can reach a storage path that is a plain folder.
The Tune settings below keep the driver's cost per trial small at 1,000 trials (docs/performance.md).
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import ray
import yaml
from ray import tune
from ray.tune.logger import JsonLoggerCallback
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from lopmodels.errors import ClusterUnreachable, ConfigError, LopError, StorageUnreachable
from sweeps import loggers as trackers
from sweeps.base import (Sweep, Trial, check_name, estimated_cpu_seconds, replicate_counts, shared_arms,
                         unmeasured_models)
from sweeps.manifest import DriverLock, Manifest, is_sweep
from sweeps.progress import Progress, trial_label
from sweeps.ray_adapter import (autoscaler_config, check_address, latest_checkpoints, session_dir, set_max_concurrent,
                                set_tune_defaults)
from sweeps.status import all_finished, is_finished, snapshot_trials, trial_dirs
from sweeps.tune_state import run_command, set_aside_damaged_snapshots
from sweeps.storage import BUCKET_EXAMPLE, StoragePath, local_path, location, probe_folder
from trainables.config import TrialConfig
from trainables import data as datasets
from trainables.overrides import apply_overrides
from trainables.plugins import import_plugins, plugin_specs, shipped
from trainables.records import code_version
from trainables.trial import lop_trial

CHECKPOINTS_KEPT = 2
REUSE_ACTORS = True  # a trial starts in a finished trial's process: no new Python, no torch import
CONNECT_SECONDS = 3  # to open a TCP connection to --address
GCS_CONNECT_TRIES = 10  # then Ray's own connection attempts, about 1 s each (Ray's default: 20)
REACH_SECONDS = 60  # for every node to report whether it sees the storage


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0  # two one-thread trials beat one two-thread trial (docs/performance.md)
    gpus_per_trial: float = 0.0  # a fraction packs trials onto one GPU (0.25: four per GPU)
    max_concurrent: int | None = None
    max_failures: int = 2

    def __post_init__(self) -> None:
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ConfigError("--cpus-per-trial must be positive and --gpus-per-trial non-negative")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise ConfigError(f"--gpus-per-trial above 1 must be a whole number (Ray's rule), "
                              f"got {self.gpus_per_trial}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent must be at least 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures must be non-negative, got {self.max_failures}")


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
    return f"{trial_label(trial)}-{trial.trial_id}"


def probe_address(address: str) -> None:
    """Refuse within seconds an address where nothing listens (`ray.init` would retry for minutes)."""
    if address in ("auto", "local") or "://" in address:
        return  # Ray finds or refuses these itself, quickly
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not HOST:PORT; give the head node's GCS address, "
                          "e.g. 10.0.0.5:6379 (`ray start --head` prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterUnreachable(f"no Ray cluster answers at {address} ({reason}); start one with `ray start "
                                 f"--head --port={port}` or `ray up cluster.yaml`, or drop --address to run on a "
                                 "local Ray") from None


LOCAL_SESSIONS: list[Path | None] = []  # the local Ray sessions this driver started (`shutdown` removes them)


def connect(address: str | None, local_cpus: int | None = None, ship: list[ModuleType] | None = None) -> None:
    """Join the Ray cluster at `address` (or $RAY_ADDRESS), else start a local one; `ship`: plugin modules every
    worker of this job gets on its path (Ray's `py_modules`)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    check_address(address)
    set_tune_defaults()
    runtime_env = {"py_modules": ship} if ship else None
    try:
        if address:
            probe_address(address)
            os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(GCS_CONNECT_TRIES))
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        else:
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
            LOCAL_SESSIONS.append(session_dir())  # this driver's own Ray: its folder goes when the sweep ends
            atexit.register(shutdown)  # also when a check refuses the sweep after Ray started
    except (ConnectionError, RuntimeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        if "InvalidAuthToken" in f"{error} {error.__cause__}":
            raise ClusterUnreachable(f"the Ray cluster at {address} refused this driver's authentication token; "
                                     "set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or a file "
                                     "named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token), as `ray get-auth-token` "
                                     "prints it on the head node") from None
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ClusterUnreachable(f"cannot connect to a Ray cluster at {address!r}: {first}; "
                                 "start one with `ray start --head` or drop --address to run locally") from None


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node["Alive"]]


def autoscaler_node_resources(name: str) -> list[float | None]:
    """How much of resource `name` ("CPU", "GPU") each worker type the cluster's autoscaler may still start
    declares; None where a type leaves it to be detected on start. Empty without an autoscaler."""
    config = autoscaler_config()  # set by the v2 autoscaler and KubeRay
    if config is not None and config.node_group_configs:
        return [group.resources.get(name) for group in config.node_group_configs if group.max_count != 0]
    bootstrap = Path.home() / "ray_bootstrap_config.yaml"  # where `ray up` leaves the config on the head node
    if not bootstrap.is_file():
        return []
    types = (yaml.safe_load(bootstrap.read_text()) or {}).get("available_node_types", {})
    return [(kind.get("resources") or {}).get(name) for kind in types.values() if kind.get("max_workers", 1) != 0]


def autoscaler_node_gpus() -> list[float]:
    """GPUs per node of each worker type the autoscaler may still start (a type that declares none has none)."""
    return [float(gpus or 0) for gpus in autoscaler_node_resources("GPU")]


def gpu_shortfall(gpus_per_trial: float, node_gpus: list[float], scalable_gpus: list[float]) -> str | None:
    """Why no node can hold a trial's GPUs (now or once the autoscaler adds one), or None if one can."""
    if gpus_per_trial <= max(node_gpus + scalable_gpus, default=0):
        return None
    total = sum(node_gpus)
    if total == 0:
        offer = f"no GPU on any of its {len(node_gpus)} node(s)"
    else:
        offer = f"{total:g} GPU(s) in all, at most {max(node_gpus):g} on one node"
    scaling = f"; its autoscaler adds nodes of at most {max(scalable_gpus):g} GPU(s)" if scalable_gpus else ""
    fix = ("run with --gpus-per-trial 0 (CPU) or on a cluster with GPUs" if total == 0 and not any(scalable_gpus)
           else f"give at most {max(node_gpus + scalable_gpus):g} (a fraction such as 0.25 packs four trials on a GPU)")
    return f"--gpus-per-trial {gpus_per_trial:g} is more than this cluster offers: {offer}{scaling}; {fix}"


def cpu_shortfall(cpus_per_trial: float, node_cpus: list[float], scalable_cpus: list[float | None]) -> str | None:
    """Why no node can hold a trial's CPUs (now or once the autoscaler adds one), or None if one can."""
    if None in scalable_cpus or cpus_per_trial <= max(node_cpus + scalable_cpus, default=0):
        return None
    most = max(node_cpus + scalable_cpus, default=0)
    scaling = f"; its autoscaler adds nodes of at most {max(scalable_cpus):g}" if scalable_cpus else ""
    return (f"--cpus-per-trial {cpus_per_trial:g} is more than any node of this cluster has: at most "
            f"{max(node_cpus, default=0):g} CPUs on one of its {len(node_cpus)} node(s){scaling}; give at most "
            f"{most:g} (a trial runs on one node)")


def check_resources(resources: Resources) -> None:
    """A trial runs on one node: refuse a CPU or GPU request that no node can meet, before any trial starts
    (Tune would wait for ever)."""
    cpus = cpu_shortfall(resources.cpus_per_trial, [float(node["Resources"].get("CPU", 0)) for node in alive_nodes()],
                         autoscaler_node_resources("CPU"))
    if cpus:
        raise ConfigError(cpus)
    if resources.gpus_per_trial == 0:
        return
    node_gpus = [float(node["Resources"].get("GPU", 0)) for node in alive_nodes()]
    shortfall = gpu_shortfall(resources.gpus_per_trial, node_gpus, autoscaler_node_gpus())
    if shortfall:
        raise ConfigError(shortfall)


def check_reachable(folder: StoragePath) -> None:
    """On a cluster of several nodes, every node must read and write the sweep folder; a bucket always qualifies.

    The driver writes a marker file; a task pinned to each node looks for it and writes beside it.
    """
    local = local_path(folder)
    nodes = alive_nodes()
    if local is None or len(nodes) < 2:
        return
    marker = local / f".lop-reach-{uuid.uuid4().hex}"
    marker.write_text(marker.name)
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(probe_folder)
        answers = {
            node["NodeManagerAddress"] + " " + node["NodeID"][:8]: probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(str(marker), marker.name)
            for node in nodes
        }
        ready, _ = ray.wait(list(answers.values()), num_returns=len(answers), timeout=REACH_SECONDS)
        problems = {name: ray.get(ref) for name, ref in answers.items() if ref in ready}
    finally:
        marker.unlink(missing_ok=True)
    silent = sorted(set(answers) - set(problems))
    if silent:
        echo(f"warning: node(s) {', '.join(silent)} did not say within {REACH_SECONDS} s whether they can "
             f"reach {folder}; going on")
    blind = sorted((name, problem) for name, problem in problems.items() if problem)
    if blind:
        (name, problem), more = blind[0], f" and {len(blind) - 1} more node(s)" if len(blind) > 1 else ""
        raise StorageUnreachable(f"storage {folder.parent} is not reachable from every node of this cluster "
                                 f"(node {name}: {problem}{more}); use a folder that every node mounts at the "
                                 f"same path (NFS, EFS) or a bucket URI such as {BUCKET_EXAMPLE}")


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
    stops at once. Either way the lines say what is left and how to resume; the exit code is then non-zero."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGUSR1))
    try:
        return summarize(folder, tuner.fit(), trials)
    except KeyboardInterrupt:
        echo(f"sweep stopped at once (a second interrupt); finish it with `lop sweep resume {folder}`")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutdown()


def shutdown() -> None:
    """End this driver's Ray; remove the session folders of the local Ray it started (never a cluster's)."""
    ray.shutdown()
    while LOCAL_SESSIONS:
        folder = LOCAL_SESSIONS.pop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            latest = folder.parent / "session_latest"
            if latest.is_symlink() and not latest.exists():
                latest.unlink(missing_ok=True)


def summarize(folder: StoragePath, grid: tune.ResultGrid, trials: int) -> int:
    """The end-of-run lines; non-zero when a trial errored or was left unfinished (Ctrl-C, SIGTERM). Of the
    sweep's `trials`, those Tune had not created yet count as unfinished."""
    errored = grid.num_errors
    done = sum(1 for result in grid if result.error is None and is_finished(result.metrics))
    unfinished = trials - errored - done
    echo(f"sweep {'finished' if not unfinished else 'stopped'}: {done} trials done, {errored} errored"
         + (f", {unfinished} unfinished" if unfinished else "") + f"; results in {folder}")
    echo(f"  inspect: lop sweep status {folder}")
    echo(f"  export:  lop results export {folder} --out {folder.name}.parquet")
    if errored or unfinished:
        echo(f"  finish the {errored + unfinished} errored or unfinished trial(s) with `lop sweep resume {folder}`")
        return 1
    return 0


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
            loggers=chosen, sweep_file=sweep.source,
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


def check_configs(folder: StoragePath, manifest: Manifest) -> None:
    """Every trial's config must still validate with this code, before anything is restarted."""
    for trial in snapshot_trials(folder):
        try:
            TrialConfig.from_dict(trial["config"]["run"]["trial"])
        except ConfigError as error:
            raise ConfigError(f"trial {trial['trial_id']} of {folder} no longer validates ({error}); finish it "
                              f"with the code that started it ({manifest.code_version}) or start a new sweep") from None


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
        older = sorted(p for p in trial_dir.glob("checkpoint_*") if p.is_dir() and p.name < name)
        if older:
            shutil.copytree(older[-1], trial_dir / name)
            echo(f"trial {trial_dir.name}: {name} is missing; it resumes from {older[-1].name} and re-runs the "
                 "tasks after it")
        else:
            (trial_dir / name).mkdir()
            echo(f"trial {trial_dir.name}: {name} is missing and no older checkpoint is left; it starts again")


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
    with DriverLock(folder):
        local = local_path(folder)
        if local is not None:
            set_aside_damaged_snapshots(local, manifest, echo)
        restore_lost_checkpoints(folder)
        connect(address, ship=shipped(plugins))
        check_resources(resources)
        check_reachable(folder)
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
