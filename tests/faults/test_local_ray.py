"""A driver given no address starts a local Ray of its own, as the CLI promises ("default: $RAY_ADDRESS, else a
local Ray"), even where a cluster started with `ray start` is running on the machine: `ray.init()` would join that
cluster (found through RAY_TMPDIR/ray/ray_current_cluster), take its session folder for its own and delete it on
shutdown (tests/faults)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import kill_descendants

RAY = str(Path(sys.executable).with_name("ray"))

# the driver's side of `lop sweep run` without --address: join or start Ray, say where, end it
DRIVER = """
import ray
from sweeps.cluster import connect, shutdown
connect(None)  # as `lop sweep run` calls it
print(ray.get_runtime_context().gcs_address, flush=True)
shutdown()
"""

HEAD_IP = "127.0.0.2"  # Ray would advertise 127.0.0.1 as the machine's own address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HEAD_IP, 0))
        return sock.getsockname()[1]


def test_a_driver_without_an_address_never_joins_a_cluster_started_on_the_machine(ray_env):
    port = free_port()
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--node-ip-address={HEAD_IP}", f"--port={port}",
                             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
                             f"--dashboard-agent-listen-port={free_port()}"],
                            env=ray_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ray_dir = Path(ray_env["RAY_TMPDIR"]) / "ray"
        current = ray_dir / "ray_current_cluster"  # written once the head's processes are up
        deadline = time.monotonic() + 90
        while not current.is_file() and time.monotonic() < deadline and head.poll() is None:
            time.sleep(0.2)
        assert current.read_text().strip() == f"{HEAD_IP}:{port}"  # what a bare `ray.init()` would join
        cluster_session = (ray_dir / "session_latest").resolve()
        assert cluster_session.is_dir()

        driver = subprocess.run([sys.executable, "-c", DRIVER], env=ray_env, capture_output=True, text=True,
                                timeout=120)
        assert driver.returncode == 0, driver.stderr[-2000:]
        assert not driver.stdout.strip().endswith(f":{port}"), driver.stdout  # a Ray of its own
        assert "Connecting to existing Ray cluster" not in driver.stderr, driver.stderr[-2000:]
        assert cluster_session.is_dir(), f"the cluster's session folder {cluster_session} was deleted"
        assert head.poll() is None
    finally:
        kill_descendants()
