"""Bad input to `lop` (tests/faults): a missing sweep file, a `.py` sweep file that defines no sweep, an arm label
that would write outside its folder, a bad `--set`; each one line, exit 2, no folder and no Ray started. Beside
them, what the good inputs must give: `--set` recorded in the manifest and every record, `lop --version`, and a
plugin found through an installed package's `lop.plugins` entry point."""
from __future__ import annotations

import json
import os
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from tests.processes import lop, ray_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_ray(data_dir) -> Iterator[dict[str, str]]:
    """An environment whose Ray would start its session under an empty folder of its own (no cluster joined):
    still empty after a command refused before Ray; whatever a failing case started is killed by PID."""
    with ray_environment(data_dir) as env:
        yield env


def refused(run, message: str, env: dict[str, str]) -> None:
    """Exit 2, one line holding `message`, and Ray never started."""
    assert run.returncode == 2, run.stderr[-2000:]
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not any(Path(env["RAY_TMPDIR"]).iterdir())


def test_a_missing_sweep_file_names_the_fix(tmp_path, no_ray):
    missing = tmp_path / "missing.yaml"
    run = lop("sweep", "run", str(missing), "--scale", "smoke", "--storage", str(tmp_path / "runs"), env=no_ray,
              timeout=120)
    refused(run, f"no sweep file at {missing}; give the path of a .yaml or .py file defining a Sweep", no_ray)
    assert "`lop sweep list`" in run.stderr and not (tmp_path / "runs").exists()


def test_a_python_sweep_file_that_registers_no_sweep_is_one_line(tmp_path, no_ray):
    source = tmp_path / "no_sweep.py"
    source.write_text("from sweeps.base import Sweep\n\n"  # built, never registered
                      "SWEEP = Sweep(name='unregistered', title='t', base={}, arms={'a': {}})\n")
    run = lop("sweep", "run", str(source), "--scale", "smoke", "--storage", str(tmp_path / "runs"), env=no_ray,
              timeout=120)
    refused(run, f"{source} registers 0 new sweeps (none); a sweep file registers exactly one, with "
                 "register_sweep(Sweep(...))", no_ray)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("label", ["../../x", ".."])
def test_an_arm_label_that_leaves_the_sweep_folder_is_refused_and_nothing_is_written(tmp_path, no_ray, label):
    sweep_file = tmp_path / "escape.yaml"
    sweep_file.write_text(f"name: escape\narms:\n  {json.dumps(label)}: {{}}\nscales: standard\n")
    before = sorted(tmp_path.rglob("*"))
    run = lop("sweep", "run", str(sweep_file), "--scale", "smoke", "--seeds", "1", "--storage",
              str(tmp_path / "a" / "b" / "runs"), env=no_ray, timeout=120)
    refused(run, f"{sweep_file}: arm of sweep 'escape' {label!r} must be one folder name", no_ray)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("given,message", [
    ("nosuch=1", "--set nosuch=1: unknown field 'nosuch'; set a config field"),
    ("hidden=abc", "--set hidden=abc: hidden takes an integer"),
    ("hidden=0", "hidden must be a positive integer in [1, 2^63-1], got 0"),
    ("lr=1e308", "lr must be positive and finite in (0, 3.4e+38], got 1e+308"),
    ("mitigation.weight_decay=1e-3", "--set mitigation.weight_decay: no arm of sweep 'fig1' has a mitigation"),
])
def test_a_bad_set_on_a_sweep_is_one_line_and_leaves_no_folder(tmp_path, no_ray, given, message):
    for dry in ([], ["--dry-run"]):  # refused before the plan is printed, and before Ray without --dry-run
        run = lop("sweep", "run", "fig1", "--scale", "smoke", "--arms", "mlp", "--seeds", "1", "--set", given,
                  "--storage", str(tmp_path / "runs"), *dry, env=no_ray, timeout=120)
        refused(run, message, no_ray)
    assert not (tmp_path / "runs").exists()


def test_set_values_are_recorded_in_the_manifest_and_in_every_record(tmp_path, ray_env):
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--seeds", "1", "--arms", "mlp", "--set", "hidden=7",
              "--set", "lr=0.02", "--storage", str(tmp_path), "--logger", "none", env=ray_env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "every arm with --set hidden=7 lr=0.02" in run.stderr
    folder = tmp_path / "fig1"
    assert json.loads((folder / "lop-sweep.json").read_text())["overrides"] == ["hidden=7", "lr=0.02"]
    out = tmp_path / "fig1.parquet"
    export = lop("results", "export", str(folder), "--out", str(out), env=ray_env)
    assert export.returncode == 0, export.stderr[-2000:]
    records = pd.read_parquet(out)
    assert len(records) == 2 and set(records["hidden"]) == {7} and set(records["lr"]) == {0.02}


def test_lop_version_names_the_installed_package():
    run = lop("--version", timeout=120)
    assert run.returncode == 0 and run.stdout == f"lop (recurrent-lop) {version('recurrent-lop')}\n", run.stdout


ENTRY_POINT_PLUGIN = textwrap.dedent('''
    """A mitigation that an installed package registers through its `lop.plugins` entry point."""
    from dataclasses import dataclass

    from lopmodels.mitigations import MITIGATIONS, Mitigation


    @MITIGATIONS.register("entry-point-noop")
    @dataclass
    class EntryPointNoop(Mitigation):
        """Changes nothing: its name and field in the records show that it was found."""

        strength: float = 0.5
''')


def test_a_plugin_of_an_installed_package_s_entry_point_is_imported(tmp_path, data_dir):
    site = tmp_path / "site"  # a folder on sys.path as site-packages is: a module and its package's dist-info
    site.mkdir()
    (site / "lop_entry_point_plugin.py").write_text(ENTRY_POINT_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "LOP_DATA_DIR": str(data_dir)}
    env.pop("LOP_PLUGINS", None)
    out = tmp_path / "trial.parquet"
    trial = ("trial", "--mitigation", "entry-point-noop", "--set", "mitigation.strength=0.25", "--tasks", "1",
             "--epochs", "1", "--train-limit", "100", "--test-limit", "50", "--hidden", "4", "--device", "cpu",
             "--out", str(out))
    unknown = lop(*trial, env=env, timeout=300)  # the module alone is on the path, no package declares it
    assert unknown.returncode == 2 and "unknown mitigation 'entry-point-noop'" in unknown.stderr, unknown.stderr

    info = site / "lop_entry_point_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lop-entry-point-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lop.plugins]\nnoop = lop_entry_point_plugin\n")
    trained = lop(*trial, env=env, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    records = pd.read_parquet(out)
    assert set(records["mitigation"]) == {"entry-point-noop"} and set(records["mitigation.strength"]) == {0.25}
