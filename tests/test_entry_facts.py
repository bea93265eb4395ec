"""Facts carried by what owns them: the scale note a report prints travels in the sweep's manifest (written at
launch, read back by the report even when the registered sweep's note has changed since; a manifest from before
the field loads and falls back to the registry); the `pixels` switch follows the dataset's declared fact, not its
name; and "the last epoch of its task", one definition for every reader of records."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from analysis.prose import sweep_notes
from analysis.sources import SweepRun
from sweeps.manifest import MANIFEST, Manifest
from sweeps.registry import SWEEPS
from sweeps.results import last_epoch

REGISTERED = SWEEPS["fig1"].notes["smoke"]
ROOT = Path(__file__).resolve().parent.parent


def manifest(**fields) -> Manifest:
    return Manifest(sweep="fig1", title="t", scale="smoke", arms=["mlp"], seeds=1, seed_start=0, trials=1, tasks=2,
                    cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, max_failures=0, code_version="x",
                    data_hash={}, **fields)


def run_of(folder) -> SweepRun:
    return SweepRun((folder,), (Manifest.read(folder),), pd.DataFrame())


def test_the_report_prints_the_note_its_manifest_recorded_not_the_registry_s_of_today(tmp_path):
    recorded = "the note this sweep was launched under"
    assert recorded != REGISTERED
    manifest(notes=recorded).write(tmp_path)
    assert Manifest.read(tmp_path).notes == recorded
    assert sweep_notes(run_of(tmp_path)) == recorded
    manifest(notes="").write(tmp_path / "none")  # a scale without a note: none printed, whatever the registry says
    assert sweep_notes(run_of(tmp_path / "none")) == ""


def test_a_manifest_written_before_notes_loads_and_falls_back_to_the_registry(tmp_path):
    manifest(notes="dropped below").write(tmp_path)
    values = json.loads((tmp_path / MANIFEST).read_text())
    del values["notes"]
    (tmp_path / MANIFEST).write_text(json.dumps(values))
    assert Manifest.read(tmp_path).notes is None
    assert sweep_notes(run_of(tmp_path)) == REGISTERED


def test_last_epoch_of_its_task_reads_a_frame_and_a_row_alike():
    records = pd.DataFrame({"epoch": [0, 1, 2, 0], "epochs_per_task": [3, 3, 3, 1]})
    assert last_epoch(records).tolist() == [False, False, True, True]
    assert last_epoch({"epoch": 2, "epochs_per_task": 3}) and not last_epoch({"epoch": 1, "epochs_per_task": 3})


def test_the_pixels_switch_follows_the_dataset_s_declared_fact_not_its_name():
    """Two image datasets but MNIST, one declaring raw pixels: `pixels="raw"` is taken on its stream only. In a
    subprocess, so the throwaway entries stay out of the other tests' registries."""
    code = textwrap.dedent("""
        from lopmodels.errors import ConfigError
        from trainables.config import TrialConfig
        from trainables.datasets import DatasetInfo, register_dataset
        from trainables.streams import StreamSpec, register_stream

        register_dataset(DatasetInfo("scans", "image", train_per_class=10, module="none", raw_pixels=True))
        register_dataset(DatasetInfo("drawings", "image", train_per_class=10, module="none"))
        for name in ("scans", "drawings"):
            register_stream(StreamSpec(f"{name}-reshuffle", name, ("a", "b"), "reshuffle", tasks=2,
                                       epochs_per_task=1, lr=0.01, batch_size=2, seq_len=28))
        TrialConfig(model="mlp", stream="scans-reshuffle", pixels="raw")
        try:
            TrialConfig(model="mlp", stream="drawings-reshuffle", pixels="raw")
        except ConfigError as error:
            print(error)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pixels='raw' applies to" in done.stdout and "'drawings-reshuffle'" in done.stdout
