"""Shared fixtures: the real datasets, prepared once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts Ray (it uses `ray_env`, or runs a loopback cluster) `ray`: `-m "not ray"`
    is the unit tier."""
    for item in items:
        if "ray_env" in getattr(item, "fixturenames", ()) or item.module.__name__.endswith("test_cluster"):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A prepared data cache: $LOP_DATA_DIR when set (CI prepares it once), else a fresh temporary one."""
    from trainables import data
    path = Path(os.environ["LOP_DATA_DIR"]) if os.environ.get("LOP_DATA_DIR") else tmp_path_factory.mktemp("data")
    for name in ("mnist", "languages"):
        data.load(name, data_dir=path)
    return path


@pytest.fixture(scope="session")
def mnist(data_dir):
    from trainables import data
    return data.load("mnist", data_dir=data_dir)


@pytest.fixture(scope="session")
def languages(data_dir):
    from trainables import data
    return data.load("languages", data_dir=data_dir)


@pytest.fixture(scope="module")
def ray_env(data_dir):
    """Environment for `lop` driver subprocesses that start Ray; their leftovers are killed after the module."""
    from tests.processes import ray_environment
    with ray_environment(data_dir) as env:
        yield env


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny tensors: a second intra-op thread only adds spin-waiting."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
