"""`lop trial` and `lop data prepare` as a user runs them: records on disk, and exit 2 with one line on bad input."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sweeps.cli import main
from tests.processes import lop, lop_imports_torch

@pytest.fixture
def env(data_dir, monkeypatch):
    import os
    return {**os.environ, "LOP_DATA_DIR": str(data_dir)}


def test_trial_writes_every_epoch(tmp_path, env):
    out = tmp_path / "trial.parquet"
    run = lop("trial", "--model", "gru", "--stream", "lang-binary", "--tasks", "3", "--epochs", "2",
              "--train-limit", "200", "--test-limit", "100", "--seq-len", "20", "--hidden", "8",
              "--device", "cpu", "--out", str(out), env=env)
    assert run.returncode == 0, run.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == 3 * 2
    assert list(frame["task"]) == [0, 0, 1, 1, 2, 2] and list(frame["epoch"]) == [0, 1] * 3
    assert (frame["sweep"] == "trial").all() and (frame["arm"] == "none").all()
    assert frame["tokenizer"].iloc[0].startswith("bpe") and frame["seq_len"].iloc[0] == 20
    assert all(len(c) == 2 for c in frame["task_classes"])
    assert run.stderr.count("task ") >= 3  # one progress line per task


@pytest.mark.parametrize("args,message", [
    (["--model", "mpl"], "unknown model 'mpl'; choose one of: gru, lstm, mlp"),
    (["--stream", "cifar"], "unknown stream 'cifar'"),
    (["--tokenizer", "bert"], "unknown tokenizer 'bert'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--model", "mlp", "--stream", "lang-reshuffle"], "cannot read stream 'lang-reshuffle'"),
    (["--tasks", "0"], "tasks must be a positive integer"),
    (["--epochs", "-1"], "epochs_per_task must be a positive integer"),
    (["--batch-size", "0"], "batch_size must be a positive integer"),
    (["--lr", "0"], "lr must be positive and finite"),
    (["--lr", "inf"], "lr must be positive and finite"),
    (["--lr", "1e308"], "lr must be positive and finite in (0, 3.4e+38], got 1e+308"),
    (["--set", "lr=1e308"], "lr must be positive and finite in (0, 3.4e+38], got 1e+308"),
    (["--seed", "-1"], "seed must be a non-negative integer in [0, 2^63-1], got -1"),
    (["--mitigation", "l2", "--set", "mitigation.weight_decay=inf"], "mitigation 'l2': weight_decay must be finite"),
    (["--mitigation", "noise", "--set", "mitigation.sigma=inf"], "mitigation 'noise': sigma must be finite"),
    (["--mitigation", "l2", "--set", "mitigation.weight_decay=1e308"],
     "mitigation 'l2': weight_decay must be finite in float32"),
    (["--mitigation", "l2", "--set", "weight_decay=1e-3"], "set it as --set mitigation.weight_decay=1e-3"),
    (["--set", "hidden=abc"], "--set hidden=abc: hidden takes an integer"),
    (["--train-limit", "5"], "train_limit must be at least the number of classes"),
    (["--stream", "lang-binary", "--model", "gru", "--languages", "spa"], "at least two distinct"),
    (["--mitigation", "magic"], "unknown mitigation 'magic'"),
    (["--set", "mitigation.x=1"], "unknown field 'x' for mitigation 'none'"),
    (["--set", "x=1"], "--set x=1: unknown field 'x'"),
    (["--hidden", "0"], "hidden must be a positive integer"),
    (["--hidden-layers", "0"], "hidden_layers must be a positive integer"),
])
def test_bad_trial_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "never.parquet"
    run = CliRunner().invoke(main, ["trial", *args, "--out", str(out)])  # in this process: no subprocess needed
    assert run.exit_code == 2, run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert not out.exists()


def test_out_folder_must_exist(tmp_path):
    run = lop("trial", "--out", str(tmp_path / "missing" / "x.parquet"))
    assert run.returncode == 2 and "does not exist" in run.stderr


@pytest.mark.parametrize("module", ["sweeps.cli", "sweeps.status", "sweeps.results", "analysis.compact",
                                    "analysis.report", "sweeps.registry", "lopmodels.mitigations",
                                    "trainables.tokenizer_names", "trainables.schema", "lopmodels.errors",
                                    "lopmodels.registry"])
def test_the_cli_and_the_folder_readers_do_not_import_torch(module):
    """`lop --help`, `status` and `export` read files only: importing torch would cost them seconds."""
    import subprocess
    import sys
    code = f"import sys, {module}; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"


@pytest.mark.parametrize("args", [["--help"], ["sweep", "list"], ["sweep", "list", "--json"]])
def test_listing_the_sweeps_validates_every_config_without_torch(args):
    """Every registered sweep's configs are built and checked (mitigation fields included) from files alone."""
    assert not lop_imports_torch(*args)


def test_every_config_field_is_an_option_of_lop_trial():
    import dataclasses

    from click.testing import CliRunner

    from sweeps.cli import main
    from sweeps.trial_options import option_name
    from trainables.config import TrialConfig
    shown = CliRunner().invoke(main, ["trial", "--help"]).output
    for f in dataclasses.fields(TrialConfig):
        assert f" {option_name(f)} " in shown, f"TrialConfig.{f.name} has no lop trial option"


def test_outputs_are_checked_before_any_work_and_never_replaced_unasked(tmp_path):
    existing = tmp_path / "done.parquet"
    existing.write_bytes(b"finished results")
    refused = lop("trial", "--out", str(existing))
    assert refused.returncode == 2 and "exists; give another path or --force" in refused.stderr
    assert existing.read_bytes() == b"finished results"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker / "x.parquet", Path("/proc/lop-test.parquet")):
        run = lop("trial", "--out", str(out))  # refused at once, not after training a task
        assert run.returncode == 2 and f"cannot write --out {out}" in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "task" not in run.stderr
    export = lop("results", "export", str(tmp_path), "--out", str(blocker / "y.parquet"))
    assert export.returncode == 2 and "cannot write --out" in export.stderr
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").write_text("an earlier report")
    again = lop("report", str(tmp_path), "--out", str(folder))
    assert again.returncode == 2 and "holds a report; give another folder or --force" in again.stderr
    assert (folder / "report.md").read_text() == "an earlier report"


def test_report_out_under_a_file_or_in_proc_is_one_line_naming_the_problem(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("kept")
    for out, message in ((blocker, f"--out {blocker} is a file; give a folder"),
                         (blocker / "report", f"{blocker} is a file, not a folder"),
                         (blocker / "deeper" / "report", f"{blocker} is a file, not a folder"),
                         (Path("/proc/lop-test-report"), "cannot write --out /proc/")):
        run = lop("report", str(tmp_path), "--out", str(out))
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "does not exist" not in run.stderr
    assert blocker.read_text() == "kept"


# a published compact export of a small sweep: `lop report` reads it in seconds, without Ray
EXPORT = Path(__file__).resolve().parent.parent / "docs" / "results" / "issue15-runs" / "exports" / "fig1-small-d.parquet"


def test_force_replaces_a_trial_output_and_a_report(tmp_path, env):
    out = tmp_path / "trial.parquet"
    out.write_bytes(b"an earlier trial")
    tiny = ("trial", "--tasks", "1", "--epochs", "1", "--train-limit", "100", "--test-limit", "50", "--hidden", "4",
            "--device", "cpu", "--out", str(out))
    refused = lop(*tiny, env=env)
    assert refused.returncode == 2 and "exists; give another path or --force" in refused.stderr
    assert out.read_bytes() == b"an earlier trial"
    replaced = lop(*tiny, "--force", env=env)
    assert replaced.returncode == 0, replaced.stderr
    assert len(pd.read_parquet(out)) == 1

    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").write_text("an earlier report")
    refused = lop("report", str(EXPORT), "--out", str(folder), env=env)
    assert refused.returncode == 2 and "holds a report; give another folder or --force" in refused.stderr
    assert (folder / "report.md").read_text() == "an earlier report" and not (folder / "figures").exists()
    replaced = lop("report", str(EXPORT), "--out", str(folder), "--force", env=env)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert (folder / "report.md").read_text().startswith("# Loss of plasticity") and (folder / "figures").is_dir()
