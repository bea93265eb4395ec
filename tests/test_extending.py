"""A new model, dataset, stream, mitigation and sweep are each one definition plus one registry line: a plugin
module registers one of each from outside the repository, and `lop` lists, plans and runs them.

In a subprocess, because registries are per process and the other tests must not see the throwaway entries.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = textwrap.dedent('''
    """Throwaway entries of every kind, registered as a user's own module would."""
    from dataclasses import dataclass

    import numpy as np
    import torch

    from lopmodels.base import MODELS
    from lopmodels.catalog import ModelInfo, register_model_info
    from lopmodels.mitigations import MITIGATIONS, Mitigation
    from lopmodels.mlp import MLP
    from sweeps.base import Sweep, register_sweep
    from sweeps.scales import STANDARD
    from trainables.data.cache import bundle_stamp, cached_bundle, npy_bytes, write_bundle
    from trainables.data.dataset import Dataset, Split
    from trainables.data.source import SOURCES, DataSource
    from trainables.datasets import DatasetInfo, register_dataset
    from trainables.streams import StreamSpec, register_stream


    @MODELS.register("tiny-mlp")
    class TinyMLP(MLP):
        """An MLP under another name (a real model: the unit map and every hook work on it)."""


    register_model_info(ModelInfo("tiny-mlp", __name__, default_hidden=8, reads=("image",), recurrent=False,
                                  fallback_seconds_per_sample=1e-6, floats_per_unit_step=4))


    class Blobs(DataSource):
        """Four classes of noisy 28 x 28 images, each with its own lit band of rows: written to and read from the cache."""

        def folder(self, data_dir, *, tokenizer, vocab_size):
            return data_dir / "blobs"

        def stamp(self, data_dir, *, tokenizer, vocab_size):
            return bundle_stamp(data_dir / "blobs")[0]

        def prepare(self, data_dir, echo, *, tokenizer, vocab_size, **options):
            return self.read(data_dir, echo, tokenizer=tokenizer, vocab_size=vocab_size), [data_dir / "blobs"]

        def read(self, data_dir, echo, *, tokenizer, vocab_size):
            def build():
                rng = np.random.default_rng(0)
                files = {}
                for split, n in (("train", 40), ("test", 10)):
                    labels = np.repeat(np.arange(4), n)
                    stripe = np.arange(28)[None, :] // 7 == labels[:, None]  # class c: rows 7c to 7c + 6 lit
                    images = (rng.normal(0, 0.25, (len(labels), 28, 28)) + stripe[:, :, None]).astype(np.float32)
                    files[f"{split}_images.npy"], files[f"{split}_labels.npy"] = npy_bytes(images), npy_bytes(labels)
                write_bundle(data_dir / "blobs", files, {"source": "synthetic blobs", "classes": list("abcd")})

            bundle = cached_bundle(data_dir / "blobs", lambda bundle: True, build, echo)

            def split(name):
                return Split(torch.from_numpy(bundle.array(f"{name}_images.npy")),
                             torch.from_numpy(bundle.array(f"{name}_labels.npy")).long())

            return Dataset(name="blobs", kind="image", classes=tuple(bundle.meta["classes"]), train=split("train"),
                           test=split("test"), source=bundle.meta["source"], data_hash=bundle.digest)


    SOURCES.register("blobs")(Blobs())
    register_dataset(DatasetInfo("blobs", "image", train_per_class=40, module=__name__))
    register_stream(StreamSpec("blobs-reshuffle", "blobs", tuple("abcd"), "reshuffle", tasks=4, epochs_per_task=10,
                               lr=0.01, batch_size=32, seq_len=28))


    @MITIGATIONS.register("weight-clip")
    @dataclass
    class WeightClip(Mitigation):
        """Every weight clamped to [-bound, bound] after each step."""

        sweep_arms = {"clip-1": {"bound": 1.0}}
        bound: float = 0.5

        def after_step(self, ctx):
            with torch.no_grad():
                for param in ctx.net.parameters():
                    param.clamp_(-self.bound, self.bound)


    register_sweep(Sweep(name="blobs", title="Clipping on blobs", base={"model": "tiny-mlp", "stream": "blobs-reshuffle"},
                         arms={"baseline": {}, "clip": {"mitigation": "weight-clip"}}, scales=STANDARD))
''')


def lop(plugin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`lop ARGS` in a fresh process that imported the plugin first."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(ROOT)]), "LOP_DATA_DIR": str(plugin_dir)}
    code = "import lop_test_plugin; from sweeps.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)


def test_entries_registered_from_outside_are_listed_planned_and_trained(tmp_path: Path) -> None:
    (tmp_path / "lop_test_plugin.py").write_text(PLUGIN)

    listed = lop(tmp_path, "sweep", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Clipping on blobs" in listed.stdout and "tiny-mlp-blobs-reshuffle-clip-1" not in listed.stdout
    assert "(a guess for tiny-mlp: not measured)" in listed.stdout  # no row in the cost table

    prepared = lop(tmp_path, "data", "prepare", "blobs")
    assert prepared.returncode == 0, prepared.stderr
    assert "blobs: synthetic blobs" in prepared.stdout and re.search(r"total +160 +40\n", prepared.stdout)

    out = tmp_path / "trial.parquet"
    trained = lop(tmp_path, "trial", "--model", "tiny-mlp", "--stream", "blobs-reshuffle", "--mitigation",
                  "weight-clip", "--set", "mitigation.bound=0.25", "--set", "hidden=12", "--device", "cpu", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    records = pd.read_parquet(out)
    assert len(records) == 4 * 10 and set(records["mitigation.bound"]) == {0.25} and set(records["hidden"]) == {12}
    assert records.groupby("task")["test_accuracy"].last().mean() > 0.5  # it learns: chance is 0.25

    # the mitigations sweep takes the new mitigation's arm on every model x stream that can read it, the new ones too
    planned = lop(tmp_path, "sweep", "run", "mitigations", "--scale", "smoke", "--dry-run", "--storage",
                  str(tmp_path / "runs"), "--arms", "tiny-mlp-blobs-reshuffle-clip-1,lstm-mnist-reshuffle-clip-1")
    assert planned.returncode == 0, planned.stderr
    assert "tiny-mlp-blobs-reshuffle-clip-1" in planned.stdout + planned.stderr
    refused = lop(tmp_path, "sweep", "run", "mitigations", "--scale", "smoke", "--dry-run", "--storage",
                  str(tmp_path / "runs"), "--arms", "tiny-mlp-lang-reshuffle-clip-1")
    assert refused.returncode == 2 and "unknown arm of sweep 'mitigations'" in refused.stderr  # it reads images only
    assert not (tmp_path / "runs").exists()


def test_a_plugin_that_fails_to_import_is_one_line_before_any_work(tmp_path: Path) -> None:
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise ValueError('broken on purpose')\n")
    cli = [sys.executable, "-m", "sweeps.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for spec, message in ((str(broken), f"plugin '{broken}' failed to import: ValueError: broken on purpose"),
                          (str(tmp_path / "missing.py"), "no such file"),
                          ("no_such_module_xyz", "ModuleNotFoundError: No module named 'no_such_module_xyz'")):
        run = subprocess.run([*cli, "--plugin", spec, "sweep", "list"], capture_output=True, text=True, env=env,
                             timeout=120)
        assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    via_env = subprocess.run([*cli, "sweep", "list"], capture_output=True, text=True, timeout=120,
                             env={**env, "LOP_PLUGINS": str(broken)})
    assert via_env.returncode == 2 and "broken on purpose" in via_env.stderr


def test_a_plugin_given_as_a_file_registers_its_sweep(tmp_path: Path) -> None:
    plugin = tmp_path / "file_plugin.py"
    plugin.write_text(PLUGIN)
    run = subprocess.run([sys.executable, "-m", "sweeps.cli", "--plugin", str(plugin), "sweep", "run", "blobs",
                          "--scale", "smoke", "--dry-run"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "sweep blobs (Clipping on blobs), scale smoke" in run.stderr and "(a guess for tiny-mlp" in run.stderr


WIDTH_SWEEP = """name: mlp-width-test
title: MLP width
base: {model: mlp, stream: mnist-reshuffle}
arms:
  h8: {hidden: 8}
  h16: {hidden: 16}
scales: standard
"""


def test_a_sweep_file_is_validated_before_anything_runs(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "sweeps.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    good = tmp_path / "width.yaml"
    good.write_text(WIDTH_SWEEP)
    listed = subprocess.run([*cli, "sweep", "list", "--file", str(good)], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0 and listed.stdout.startswith("mlp-width-test") and "h8, h16" in listed.stdout
    for text, message in (("name: x\narms: {a: {hiden: 3}}\n", "arm 'a': unknown config field(s) hiden"),
                          ("name: x\narms: [a\n", "line 3: not valid YAML"),
                          ("name: fig1\narms: {a: {}}\n", "a sweep named 'fig1' is already registered"),
                          ("arms: {a: {}}\nseeds: 3\n", "unknown key(s) seeds; missing name")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        run = subprocess.run([*cli, "sweep", "run", str(bad), "--dry-run", "--storage", str(tmp_path / "runs")],
                             capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 2 and f"{bad}" in run.stderr and message in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.ray
def test_a_yaml_sweep_runs_and_its_folder_stands_alone(tmp_path: Path, ray_env) -> None:
    from tests.processes import lop as run_lop
    sweep_file = tmp_path / "width.yaml"
    sweep_file.write_text(WIDTH_SWEEP)
    run = run_lop("sweep", "run", str(sweep_file), "--scale", "smoke", "--seeds", "1", "--storage", str(tmp_path),
                  env=ray_env)
    assert run.returncode == 0, run.stderr[-3000:]
    sweep_file.unlink()  # the folder alone serves every later command
    folder = tmp_path / "mlp-width-test"
    assert "2 terminated" in run_lop("sweep", "status", str(folder), env=ray_env).stdout
    report = run_lop("report", str(folder), "--out", str(tmp_path / "report"), env=ray_env)
    assert report.returncode == 0, report.stderr[-2000:]
    resumed = run_lop("sweep", "resume", str(folder), env=ray_env)
    assert resumed.returncode == 0 and "nothing to resume" in resumed.stderr
