"""The cost model: estimates follow the measured table's row of each trial's model and stream (else a fallback row),
a model without a row gets its catalog entry's guess, flagged as unmeasured, every registered pair has a row, and
the benchmark that writes the table runs (on a tiny config, in seconds)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lopmodels.catalog import MODEL_INFO
from sweeps.base import (SCALES, TRIAL_COSTS, TRIAL_OVERHEAD_SECONDS, Trial, cost_pairs, estimated_cpu_seconds,
                         read_costs, trial_cost, unmeasured_models)
from sweeps.cli import main
from sweeps.registry import SWEEPS
from trainables.config import TrialConfig

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [TrialConfig(model="mlp"), TrialConfig(model="lstm", stream="mnist-binary"),
           TrialConfig(model="gru", stream="lang-reshuffle"), TrialConfig(model="gru", stream="mnist-reshuffle"),
           TrialConfig(model="gru", stream="lang-binary", hidden=128)]


def write_table(path: Path, rows: dict[str, dict]) -> Path:
    path.write_text(json.dumps({"models": rows}))
    return path


def committed_rows() -> dict[str, dict[str, dict]]:
    return json.loads(TRIAL_COSTS.read_text())["models"]


def row(seconds: float, hidden: int, seq_len: int) -> dict:
    return {"seconds_per_sample": seconds, "hidden": hidden, "seq_len": seq_len}


def training_seconds(cfg: TrialConfig, table: Path) -> float:
    return estimated_cpu_seconds(cfg, table) - TRIAL_OVERHEAD_SECONDS


def test_the_estimate_follows_the_row_of_its_model_and_stream(tmp_path: Path) -> None:
    rows = committed_rows()
    table = write_table(tmp_path / "costs.json", rows)
    doubled = write_table(tmp_path / "doubled.json", {
        model: {stream: {**r, "seconds_per_sample": 2 * r["seconds_per_sample"]} for stream, r in streams.items()}
        for model, streams in rows.items()})
    for cfg in CONFIGS:
        assert training_seconds(cfg, doubled) == pytest.approx(2 * training_seconds(cfg, table))
    # at the measured shapes: tasks x epochs x training samples x the pair's seconds per sample
    assert training_seconds(TrialConfig(model="mlp"), table) == pytest.approx(
        50 * 30 * 60_000 * rows["mlp"]["mnist-reshuffle"]["seconds_per_sample"])
    assert training_seconds(TrialConfig(model="gru", stream="lang-binary"), table) == pytest.approx(
        100 * 30 * 1_600 * rows["gru"]["lang-binary"]["seconds_per_sample"])
    # only the pair's own row counts: tripling GRU/lang-binary leaves GRU/lang-reshuffle alone
    tripled = write_table(tmp_path / "tripled.json", {**rows, "gru": {
        **rows["gru"], "lang-binary": {**rows["gru"]["lang-binary"],
                                       "seconds_per_sample": 3 * rows["gru"]["lang-binary"]["seconds_per_sample"]}}})
    binary = TrialConfig(model="gru", stream="lang-binary")
    reshuffle = TrialConfig(model="gru", stream="lang-reshuffle")
    assert training_seconds(binary, tripled) == pytest.approx(3 * training_seconds(binary, table))
    assert training_seconds(reshuffle, tripled) == pytest.approx(training_seconds(reshuffle, table))
    # scaled from the row's shapes: hidden size squared, sequence length
    assert (rows["gru"]["lang-reshuffle"]["hidden"], rows["gru"]["lang-reshuffle"]["seq_len"]) == (64, 25)
    assert training_seconds(TrialConfig(model="gru", stream="lang-reshuffle", hidden=128, seq_len=50), table) \
        == pytest.approx(8 * training_seconds(reshuffle, table))


def test_a_pair_without_a_row_falls_back_to_the_same_dataset_then_any_row(tmp_path: Path) -> None:
    table = write_table(tmp_path / "costs.json", {"gru": {"lang-reshuffle": row(1e-4, 64, 25),
                                                          "mnist-binary": row(2e-4, 64, 28),
                                                          "mnist-reshuffle": row(3e-4, 64, 28)}})
    lang_binary = TrialConfig(model="gru", stream="lang-binary")  # length 50: twice the row's 25
    assert trial_cost(lang_binary, table).stream == "lang-reshuffle"
    assert training_seconds(lang_binary, table) == pytest.approx(100 * 30 * 1_600 * 1e-4 * 50 / 25)
    # two rows of the dataset: the pair's own one wins; without it, the first stream by name
    assert trial_cost(TrialConfig(model="gru", stream="mnist-reshuffle"), table).seconds_per_sample == 3e-4
    lstm = write_table(tmp_path / "lstm.json", {"lstm": {"mnist-reshuffle": row(3e-4, 25, 28),
                                                         "mnist-binary": row(2e-4, 25, 28)}})
    assert trial_cost(TrialConfig(model="lstm", stream="lang-reshuffle"), lstm).stream == "mnist-binary"
    # no row of the dataset: any row of the model, scaled to the trial's hidden size and length
    only = write_table(tmp_path / "only.json", {"gru": {"mnist-binary": row(2e-4, 25, 28)}})
    assert training_seconds(lang_binary, only) == pytest.approx(100 * 30 * 1_600 * 2e-4 * (64 / 25) ** 2 * 50 / 28)


def test_a_model_without_a_row_gets_its_entrys_guess_flagged_as_unmeasured(tmp_path: Path) -> None:
    rows = committed_rows()
    del rows["gru"]
    table = write_table(tmp_path / "costs.json", rows)
    assert trial_cost(TrialConfig(model="mlp"), table).measured
    guess = MODEL_INFO["gru"].fallback_seconds_per_sample
    # tasks x epochs x samples a task: 100 x 30 x 8,000 sentences; 50 x 30 x 60,000 digits
    for stream, samples, steps in (("lang-reshuffle", 100 * 30 * 8_000, 25), ("mnist-reshuffle", 50 * 30 * 60_000, 28)):
        cfg = TrialConfig(model="gru", stream=stream, hidden=32)
        cost = trial_cost(cfg.resolved(), table)
        assert not cost.measured and cost.hidden == 64 and cost.seq_len == 28
        assert training_seconds(cfg, table) == pytest.approx(samples * guess * (32 / 64) ** 2 * steps / 28)
    trials = [Trial("a", 0, TrialConfig(model="gru", stream="lang-reshuffle")), Trial("b", 0, TrialConfig())]
    assert unmeasured_models(trials, table) == ["gru"]
    empty = write_table(tmp_path / "empty.json", {**rows, "gru": {}})
    assert unmeasured_models(trials, empty) == ["gru"]
    assert unmeasured_models(trials) == []  # the committed table measures every built-in model


def test_every_registered_pair_has_a_row_at_its_shapes_and_every_sweep_an_estimate() -> None:
    pairs = cost_pairs("paper")
    assert ("gru", "lang-binary") in pairs and ("mlp", "mnist-reshuffle") in pairs
    rows = committed_rows()
    for (model, stream), hidden in pairs.items():
        assert stream in rows.get(model, {}), f"no row for {model}/{stream}: python benchmarks/trial_costs.py " \
                                              f"--pairs {model}/{stream}"
        cfg = TrialConfig(model=model, stream=stream, hidden=hidden).resolved()
        measured = rows[model][stream]
        assert (measured["stream"], measured["hidden"], measured["seq_len"], measured["batch"]) \
            == (stream, cfg.hidden, cfg.seq_len, cfg.batch_size)
        assert measured["train_limit"] is None and measured["seconds_per_sample"] > 0
        assert trial_cost(cfg).stream == stream
    assert set(read_costs()) == {model for model, _ in pairs}
    for _, sweep in SWEEPS.items():
        for scale in SCALES:
            for trial in sweep.trials(scale):
                assert math.isfinite(estimated_cpu_seconds(trial.config))
    listing = CliRunner().invoke(main, ["sweep", "list"])
    assert listing.exit_code == 0, listing.output
    assert listing.output.count("CPU-hours") == len(SWEEPS.names()) * len(SCALES)


def run_benchmark(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trial_costs.py"), *args,
                          "--epochs", "1", "--train-limit", "100"],
                         capture_output=True, text=True, env={**os.environ, "LOP_DATA_DIR": str(data_dir)}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_the_benchmark_writes_a_table_that_the_estimate_reads(tmp_path: Path, data_dir: Path) -> None:
    kept = {"seconds_per_sample": 1e-3, "hidden": 25, "seq_len": 28, "batch": 6000, "stream": "mnist-reshuffle"}
    kept_gru = row(2e-3, 64, 25)
    # an old one-row-per-model table: its row goes under the row's stream, and is kept
    table = tmp_path / "costs.json"
    table.write_text(json.dumps({"models": {"lstm": kept}}))
    run_benchmark(data_dir, "--output", str(table), "--pairs", "mlp/mnist-reshuffle,gru/lang-binary")
    written = json.loads(table.read_text())
    written["models"]["gru"]["lang-reshuffle"] = kept_gru  # another stream of a measured model: kept too
    table.write_text(json.dumps(written))
    run = run_benchmark(data_dir, "--output", str(table), "--models", "mlp")
    mlp_streams = sorted(stream for model, stream in cost_pairs() if model == "mlp")
    assert [line.split()[0] for line in run.stdout.splitlines()] == [f"mlp/{stream}" for stream in mlp_streams]
    rows = json.loads(table.read_text())["models"]
    assert rows["lstm"] == {"mnist-reshuffle": kept}  # rows of pairs not measured are kept
    assert rows["gru"]["lang-reshuffle"] == kept_gru and set(rows["gru"]) == {"lang-binary", "lang-reshuffle"}
    assert set(rows["mlp"]) == set(mlp_streams)
    for model, stream, hidden, seq_len, samples in (("mlp", "mnist-reshuffle", 25, 28, 100),
                                                    ("mlp", "mnist-binary", 25, 28, 20),
                                                    ("gru", "lang-binary", 64, 50, 10)):
        measured = rows[model][stream]
        assert (measured["stream"], measured["hidden"], measured["seq_len"], measured["threads"]) \
            == (stream, hidden, seq_len, 1)
        assert measured["train_samples"] == samples and measured["train_limit"] == 100
        assert measured["seconds_per_sample"] > 0
    assert training_seconds(TrialConfig(model="mlp"), table) == pytest.approx(
        50 * 30 * 60_000 * rows["mlp"]["mnist-reshuffle"]["seconds_per_sample"])
    assert training_seconds(TrialConfig(model="gru", stream="lang-binary"), table) == pytest.approx(
        100 * 30 * 1_600 * rows["gru"]["lang-binary"]["seconds_per_sample"])
