"""A real multi-node Ray cluster on loopback: a sweep across two nodes, a node killed mid-sweep, and the
checks made before any trial starts (GPU share, storage every node can reach, an address with no cluster);
cluster.yaml against Ray's own cluster-config schema.

The cluster is two `ray start --block` processes with token authentication on (docs/cluster.md): a head
node at 127.0.0.2 and a worker node at 127.0.0.3, one CPU each, sharing this machine's filesystem. Each
declares one GPU that this machine does not have (Ray schedules GPUs as numbers), so fractional GPU
requests are scheduled for real while the trials themselves run on the CPU. Where
this test may create a mount namespace (root), the worker node runs in one that hides a folder under an
empty tmpfs: a storage path that the head node has and the worker node does not. Every process started
here is killed by PID (tests/processes.py), never with `ray stop`.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.processes import LOP, become_subreaper, descendants, kill_descendants

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).with_name("ray"))
HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"
MACHINE_COLUMNS = ["seconds", "pid", "node_ip", "trial_id"]  # where and when, not what

# Two trials, one per node (each node has one CPU), long enough to lose the worker in the middle.
CLUSTER_DRIVER = """
import sys
from pathlib import Path
from sweeps.base import Sweep
from sweeps.launch import Resources, run_sweep
sweep = Sweep(name="lossy", title="lost node test",
              base={"model": "mlp", "stream": "mnist-reshuffle", "tasks": 8, "epochs_per_task": 4,
                    "test_limit": 2000, "batch_size": 1000, "device": "cpu"},
              arms={"wide": {"hidden": 32}, "narrow": {"hidden": 8}})
sys.exit(run_sweep(sweep, scale="paper", seeds=1, seed_start=0, arms=None, storage=sys.argv[1], name=None,
                   address=sys.argv[2], resources=Resources(max_failures=2), dry_run=False))
"""

WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 60
while sum(n["Alive"] for n in ray.nodes()) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit(f"only {sum(n['Alive'] for n in ray.nodes())} nodes came up")
    time.sleep(0.5)
"""


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def can_hide_folders() -> bool:
    """Whether a child may get its own mount namespace (root, or unprivileged user namespaces)."""
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@dataclass
class Cluster:
    address: str
    env: dict
    storage: Path  # a folder both nodes see
    hidden: Path | None  # a folder the head node sees and the worker node does not (None: cannot hide)
    worker: subprocess.Popen

    def lop(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*LOP, *args], capture_output=True, text=True, env=self.env, timeout=timeout)

    def kill_worker_node(self) -> list[int]:
        """SIGKILL the worker node: its `ray start`, raylet, agents and trial processes, all at once."""
        pids = [self.worker.pid, *descendants(self.worker.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.worker.wait()
        return pids


@pytest.fixture(scope="module")
def cluster(data_dir):
    """A head node and a worker node on loopback, with token authentication; killed by PID afterwards."""
    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="lopcl", dir="/tmp"))  # short: Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "LOP_DATA_DIR": str(data_dir)}
    env.pop("RAY_ADDRESS", None)
    port = free_port(HEAD_IP)
    address = f"{HEAD_IP}:{port}"
    common = ["--num-cpus=1", "--num-gpus=1", "--disable-usage-stats", "--block"]
    subprocess.Popen([RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={port}",
                      f"--temp-dir={work / 'ray'}", "--include-dashboard=false", *common], env=env, cwd=work,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage, hidden = work / "shared", work / "hidden"
    storage.mkdir()
    hidden.mkdir()
    worker_start = [RAY, "start", f"--address={address}", f"--node-ip-address={WORKER_IP}", *common]
    if can_hide_folders():
        command = f"mount -t tmpfs lop-hidden {hidden} && exec {' '.join(worker_start)}"
        worker_command = ["unshare", "-m", "sh", "-c", command]
    else:
        worker_command, hidden = worker_start, None
    try:
        wait = subprocess.run([sys.executable, "-c", WAIT_FOR_NODES, address, "1"], env=env, capture_output=True,
                              text=True, timeout=90)
        assert wait.returncode == 0, wait.stderr[-2000:]
        worker = subprocess.Popen(worker_command, env=env, cwd=work, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait = subprocess.run([sys.executable, "-c", WAIT_FOR_NODES, address, "2"], env=env, capture_output=True,
                              text=True, timeout=90)
        assert wait.returncode == 0, wait.stderr[-2000:]
        yield Cluster(address, env, storage, hidden, worker)
    finally:
        kill_descendants()
        time.sleep(0.5)  # daemons of a killed `ray start` reach this subreaper as zombies a moment later
        kill_descendants()
        shutil.rmtree(work, ignore_errors=True)


def export(cluster: Cluster, folder: Path) -> pd.DataFrame:
    out = folder.parent / f"{folder.name}.parquet"
    run = cluster.lop("results", "export", str(folder), "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    return pd.read_parquet(out)


def test_cluster_yaml_is_a_valid_ray_cluster_config():
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    validate_config(prepare_config(config))  # what `ray up` checks before it launches anything
    nodes = config["available_node_types"]
    assert nodes[config["head_node_type"]]["resources"]["GPU"] == 0
    assert any(kind.get("resources", {}).get("GPU") == 1 and kind["max_workers"] > 0 for kind in nodes.values())
    assert any("pip install" in c and "recurrent-lop" in c for c in config["setup_commands"])
    assert "lop data prepare all" in config["setup_commands"]
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "RAY_AUTH_MODE=disabled" not in command
    assert any("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"])
    broken = {**config, "max_worker": 8}  # a misspelt key: the schema must catch it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_address_with_no_cluster_fails_within_seconds(tmp_path):
    port = free_port("127.0.0.1")  # nothing listens there once the probe socket is closed
    started = time.monotonic()
    run = subprocess.run([*LOP, "sweep", "run", "fig1", "--scale", "smoke", "--storage", str(tmp_path),
                          "--address", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in run.stderr and "ray start --head" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert seconds < 20, seconds
    assert not any(tmp_path.iterdir())


def test_gpu_share_is_checked_against_the_largest_node_and_the_autoscaler(tmp_path, monkeypatch):
    from sweeps.cluster import autoscaler_node_gpus, gpu_shortfall
    assert gpu_shortfall(0.25, [1.0], []) is None and gpu_shortfall(1, [0.0, 1.0], []) is None
    assert "no GPU on any of its 2 node(s)" in gpu_shortfall(0.25, [0.0, 0.0], [])
    assert "2 GPU(s) in all, at most 1 on one node; give at most 1" in gpu_shortfall(2, [1.0, 1.0], [])
    # a head node started by `ray up cluster.yaml` has no GPU yet, but its autoscaler adds one-GPU nodes
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    assert autoscaler_node_gpus() == []
    shutil.copy(ROOT / "cluster.yaml", tmp_path / "ray_bootstrap_config.yaml")
    assert sorted(autoscaler_node_gpus()) == [0.0, 1.0]
    assert gpu_shortfall(0.25, [0.0], autoscaler_node_gpus()) is None
    assert "its autoscaler adds nodes of at most 1 GPU(s); give at most 1" in gpu_shortfall(2, [0.0], [0.0, 1.0])


def test_local_ray_refuses_a_gpu_share_it_does_not_have(tmp_path, data_dir):
    env = {**os.environ, "LOP_DATA_DIR": str(data_dir), "RAY_TMPDIR": tempfile.mkdtemp(prefix="lopray", dir="/tmp")}
    env.pop("RAY_ADDRESS", None)
    become_subreaper()
    try:
        run = subprocess.run([*LOP, "sweep", "run", "fig1", "--scale", "smoke", "--storage", str(tmp_path),
                              "--gpus-per-trial", "0.5"], capture_output=True, text=True, env=env, timeout=120)
    finally:
        kill_descendants()
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1] == (
        "lop: error: --gpus-per-trial 0.5 is more than this cluster offers: no GPU on any of its 1 node(s); "
        "run with --gpus-per-trial 0 (CPU) or on a cluster with GPUs")
    assert not any(tmp_path.iterdir())


def test_cluster_refuses_a_driver_without_its_token(cluster, tmp_path):
    env = {**cluster.env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    run = subprocess.run([*LOP, "sweep", "run", "fig1", "--scale", "smoke", "--storage", str(tmp_path), "--address",
                          cluster.address], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith(
        f"lop: error: the Ray cluster at {cluster.address} refused this driver's authentication token")
    assert not any(tmp_path.iterdir())


def test_cluster_refuses_a_gpu_share_it_does_not_have(cluster, tmp_path):
    run = cluster.lop("sweep", "run", "fig1", "--scale", "smoke", "--storage", str(tmp_path),
                      "--address", cluster.address, "--gpus-per-trial", "2")
    assert run.returncode == 2, run.stderr[-2000:]
    assert ("--gpus-per-trial 2 is more than this cluster offers: 2 GPU(s) in all, at most 1 on one node; "
            "give at most 1") in run.stderr
    assert not any(tmp_path.iterdir())


def test_cluster_refuses_storage_that_a_node_cannot_reach(cluster):
    if cluster.hidden is None:
        pytest.skip("needs a mount namespace (root or user namespaces) to hide a folder from the worker node")
    run = cluster.lop("sweep", "run", "fig1", "--scale", "smoke", "--storage", str(cluster.hidden),
                      "--address", cluster.address)
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"storage {cluster.hidden} is not reachable from every node" in run.stderr
    assert f"node {WORKER_IP}" in run.stderr and "s3://" in run.stderr
    assert not any(cluster.hidden.iterdir()), "a refused sweep leaves nothing behind"


def test_a_plugin_known_only_to_the_driver_runs_on_every_node(cluster, tmp_path):
    """The plugin file is on no node's path: the trials find its model, dataset, stream, mitigation and sweep
    only because the driver ships it to the workers (Ray's runtime_env)."""
    from tests.test_extending import PLUGIN
    plugin = tmp_path / "lop_cluster_plugin.py"
    plugin.write_text(PLUGIN)
    folder = cluster.storage / "plugin-sweep"
    run = cluster.lop("--plugin", str(plugin), "sweep", "run", "blobs", "--scale", "smoke", "--seeds", "1",
                      "--storage", str(cluster.storage), "--name", folder.name, "--address", cluster.address)
    assert run.returncode == 0, run.stderr[-3000:]
    frame = export(cluster, folder)
    assert set(frame["arm"]) == {"baseline", "clip"} and set(frame["model"]) == {"tiny-mlp"}
    assert frame["node_ip"].nunique() == 2  # one trial on each node
    assert json.loads((folder / "lop-sweep.json").read_text())["plugins"] == [str(plugin)]


def wait_for_first_checkpoints(folder: Path, trials: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(folder.glob("*/checkpoint_000000"))) >= trials:
            return
        time.sleep(0.1)
    raise AssertionError(f"{trials} trials did not checkpoint their first task in {timeout} s")


def test_multinode_sweep_survives_a_lost_worker_node(cluster):
    """Runs last in this module: it kills the worker node."""
    # a sweep from the command line, two trials per GPU, lands on both nodes and exports completely
    smoke = cluster.lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "2", "--arms", "mlp,lstm", "--storage",
                        str(cluster.storage), "--address", cluster.address, "--gpus-per-trial", "0.5",
                        "--cpus-per-trial", "0.5")
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    frame = export(cluster, cluster.storage / "fig1")
    assert len(frame) == 4 * 2 and frame.groupby("trial_id").size().tolist() == [2] * 4
    per_node = frame.groupby("node_ip")["trial_id"].nunique().to_dict()
    assert set(per_node) == {HEAD_IP, WORKER_IP}, per_node
    assert set(frame["device"]) == {"cpu"}  # the GPUs are declared, not there: each trial says where it ran
    print(f"\nsmoke sweep over two nodes at 0.5 GPU per trial: trials per node {per_node}")

    script = cluster.storage / "driver.py"
    script.write_text(CLUSTER_DRIVER)
    straight = subprocess.run([sys.executable, str(script), str(cluster.storage / "straight"), cluster.address],
                              env=cluster.env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]

    driver = subprocess.Popen([sys.executable, str(script), str(cluster.storage / "lossy"), cluster.address],
                              env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = cluster.storage / "lossy" / "lossy"
    wait_for_first_checkpoints(folder, 2)
    killed = cluster.kill_worker_node()
    killed_at = time.monotonic()
    _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr[-3000:]
    print(f"worker node killed after both trials checkpointed task 1 ({len(killed)} processes); "
          f"the sweep finished {time.monotonic() - killed_at:.0f} s later")

    status = cluster.lop("sweep", "status", str(folder))
    assert status.returncode == 0 and "2 terminated" in status.stdout, status.stdout
    reference = export(cluster, cluster.storage / "straight" / "lossy")
    survived = export(cluster, folder)
    assert set(reference["node_ip"]) == {HEAD_IP, WORKER_IP}
    # the trial that lost its node: its first task stayed where it was computed, the rest ran on the head
    moved = survived.groupby("trial_id").filter(lambda rows: rows["node_ip"].nunique() == 2)
    assert moved["trial_id"].nunique() == 1, survived.groupby("trial_id")["node_ip"].unique()
    assert set(moved.loc[moved["task"] == 0, "node_ip"]) == {WORKER_IP}, "task 1 was not redone"
    assert set(moved.loc[moved["task"] == moved["task"].max(), "node_ip"]) == {HEAD_IP}
    snapshot = json.loads(sorted(folder.glob("experiment_state-*.json"))[-1].read_text())
    failures = {json.loads(trial)["trial_id"]: json.loads(metadata)["num_failures"]
                for trial, metadata in snapshot["trial_data"]}
    assert failures[moved["trial_id"].iloc[0]] == 1 and sum(failures.values()) == 1, failures
    resumed_from = moved.loc[moved["node_ip"] == HEAD_IP, "task"].min()
    print(f"trial {moved['trial_id'].iloc[0]} lost its node, failed once, resumed on {HEAD_IP} at task "
          f"{resumed_from + 1} of 8 from its checkpoint")

    keys = ["arm", "seed", "task", "epoch"]
    reference = reference.drop(columns=MACHINE_COLUMNS).sort_values(keys).reset_index(drop=True)
    survived = survived.drop(columns=MACHINE_COLUMNS).sort_values(keys).reset_index(drop=True)
    assert len(reference) == 2 * 8 * 4
    pd.testing.assert_frame_equal(survived, reference)
    print(f"{len(survived)} records equal to the undisturbed run's (all columns but {', '.join(MACHINE_COLUMNS)})")

