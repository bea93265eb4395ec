"""The Ray cluster a driver runs on: joining it (or starting a local Ray, removed again at the end), what each
trial asks of it, and the checks made before any trial starts: a cluster answers at `--address` within seconds,
one node can hold a trial's CPUs and GPUs (counting what the autoscaler can add) and its model's memory, and every
node reaches the sweep folder.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterable

import ray
import yaml
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from lopmodels.errors import ClusterUnreachable, ConfigError, StorageUnreachable
from sweeps.ray_adapter import autoscaler_config, check_address, session_dir, set_tune_defaults
from sweeps.storage import BUCKET_EXAMPLE, StoragePath, local_path, probe_folder

if TYPE_CHECKING:
    from sweeps.base import Trial

CONNECT_SECONDS = 3  # to open a TCP connection to --address
GCS_CONNECT_TRIES = 10  # then Ray's own connection attempts, about 1 s each (Ray's default: 20)
REACH_SECONDS = 60  # for every node to report whether it sees the storage


@dataclass(frozen=True)
class Resources:
    """What each trial asks of the cluster, and how many run and retry."""

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
            # "local": a bare ray.init() would join a cluster that `ray start` left on this machine, take its
            # session folder for this driver's own and delete it on shutdown
            ray.init(address="local", num_cpus=local_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env=runtime_env)
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


def check_models(trials: Iterable[Trial], resources: Resources) -> None:
    """Build every distinct model of the sweep on PyTorch's meta device (nothing is allocated), so a configuration
    that no model accepts is refused before any trial starts, not raised (and retried `--max-failures` times) in
    every trial; and refuse a CPU trial whose model and batches no node's memory holds. Each trial checks its own
    node again, and a GPU trial its GPU (trainables/memory.py): those depend on where it lands, so Tune's retries
    on another node stay."""
    from trainables.loop import largest_batch
    from trainables.memory import config_spec, over, parameter_count
    memory = None  # the GPU's memory is not a Ray resource; an autoscaler may add nodes of unknown memory
    if resources.gpus_per_trial == 0 and None not in autoscaler_node_resources("memory"):
        memory = max(int(node["Resources"].get("memory", 0)) for node in alive_nodes())
    checked = set()
    for trial in trials:
        cfg = trial.config.resolved()
        key = (cfg.model, config_spec(cfg), largest_batch(cfg), cfg.seq_len)
        if key in checked:
            continue
        checked.add(key)
        try:
            if memory is None:
                parameter_count(cfg.model, key[1])
                continue
            problem = over(*key, free=memory, where="of memory Ray gives tasks on this cluster's largest node")
        except ConfigError as error:
            raise ConfigError(f"arm {trial.arm!r}: {error}") from None
        if problem:
            raise ConfigError(f"arm {trial.arm!r}: {problem}; lower it with --set hidden=N (or embed, batch_size)")


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
        print(f"warning: node(s) {', '.join(silent)} did not say within {REACH_SECONDS} s whether they can "
             f"reach {folder}; going on", file=sys.stderr, flush=True)
    blind = sorted((name, problem) for name, problem in problems.items() if problem)
    if blind:
        (name, problem), more = blind[0], f" and {len(blind) - 1} more node(s)" if len(blind) > 1 else ""
        raise StorageUnreachable(f"storage {folder.parent} is not reachable from every node of this cluster "
                                 f"(node {name}: {problem}{more}); use a folder that every node mounts at the "
                                 f"same path (NFS, EFS) or a bucket URI such as {BUCKET_EXAMPLE}")
