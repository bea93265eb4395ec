"""CPU seconds per training sample per epoch of each model on each stream, measured on the real loop: the cost table.

`lop sweep list` and `lop sweep run`'s plan estimate CPU-hours from `sweeps/trial_costs.json`
(`sweeps.base.estimated_cpu_seconds`, which takes the row of a trial's own model and stream and scales it from
the shapes it was measured at). This writes that table: one row per (model, stream) pair that the registered
sweeps run at scale "paper" (`sweeps.base.cost_pairs`), each at that stream's paper defaults
(`TrialConfig(model, stream).resolved()`) with the hidden size most of those trials use, and the prepared data
a trial reads (MNIST and the offline language corpus, `trainables.data.load`). For each pair, one task of a
warm-up epoch plus `--epochs` epochs runs through `trainables.loop.run_stream` on the CPU with one torch
thread, as a sweep runs each trial. An epoch is its training, test pass and host sync (and, on the task's last
epoch, the diagnostics: under 0.4 % of an epoch, docs/performance.md); the row is the median epoch, the warm-up
not counted, over the task's training samples.

The seconds are the process's CPU time (user + system) per epoch, what a CPU-hour counts: on a shared
machine an epoch's wall time also holds the time other work had the core (the median wall time is kept
beside it), while its CPU time grows only from shared caches and cores. Each row carries what it was
measured on (CPU, load average before and after, threads, torch, code version, date, `--note`). Rows
of pairs not measured are kept from an existing `--output`.

    python benchmarks/trial_costs.py [--pairs gru/lang-binary,mlp/mnist-reshuffle | --models mlp,lstm,gru]
        [--epochs 5] [--output sweeps/trial_costs.json] [--note TEXT]

`--pairs` defaults to every registered pair; `--models` means every registered pair of those models. Prints,
per pair, `<model>/<stream> seconds_per_sample=<s> epoch_cpu=<s>s epoch_wall=<s>s samples=<n>`; the machine
goes to stderr.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from arguments import names_among, positive  # benchmarks/arguments.py, beside this script

from lopmodels import MODELS
from sweeps.base import TRIAL_COSTS, cost_pairs
from trainables import data as datasets
from trainables.config import TrialConfig
from trainables.loop import run_stream
from trainables.records import code_version
from trainables.stream_data import task_train_size
from trainables.streams import STREAMS

Pair = tuple[str, str]  # (model, stream)
THREADS = 1  # a sweep gives each trial one CPU, and Ray sets its torch threads to that


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def measure(model: str, stream: str, hidden: int | None, epochs: int, limit: int | None,
            loaded: dict[tuple, datasets.Dataset]) -> dict[str, Any]:
    """One pair's row: the median epoch's CPU time over its training samples, the shapes, where it was measured.

    `loaded` keeps each prepared dataset across pairs (loading it is not timed)."""
    cfg = TrialConfig(model=model, stream=stream, hidden=hidden, tasks=1, epochs_per_task=1 + epochs, device="cpu",
                      train_limit=limit, test_limit=limit).resolved()
    key = (cfg.stream_spec.dataset, cfg.tokenizer, cfg.vocab_size)
    if key not in loaded:
        loaded[key] = datasets.load(cfg.stream_spec.dataset, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size)
    data = loaded[key]
    samples = task_train_size(cfg, data)
    load_before = load_average()
    cpu, wall, started = [], [], time.process_time()
    for record, _ in run_stream(cfg, data):  # the generator runs one epoch between yields
        now = time.process_time()
        cpu.append(now - started)
        wall.append(record.seconds)
        started = now
    epoch = statistics.median(cpu[1:])
    return {
        "seconds_per_sample": float(f"{epoch / samples:.4g}"), "hidden": cfg.hidden, "seq_len": cfg.seq_len,
        "batch": cfg.batch_size, "stream": cfg.stream, "train_samples": samples, "train_limit": limit,
        "epoch_cpu_seconds": round(epoch, 4), "epoch_wall_seconds": round(statistics.median(wall[1:]), 4),
        "epochs_timed": epochs, "data_hash": data.data_hash,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores", "load_average": [load_before, load_average()],
        "threads": torch.get_num_threads(), "torch": torch.__version__, "code_version": code_version(),
        "date": datetime.date.today().isoformat(),
    }


def parse_pairs(text: str) -> list[Pair]:
    """`gru/lang-binary,mlp/mnist-reshuffle`: any model and stream, registered by a sweep or not."""
    pairs, bad = [], []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        model, _, stream = item.partition("/")
        if model in MODELS and stream in STREAMS:
            pairs.append((model, stream))
        else:
            bad.append(item)
    if bad or not pairs:
        raise argparse.ArgumentTypeError(f"unknown pair(s) {', '.join(bad) or repr(text)}: write model/stream, "
                                         f"models: {', '.join(MODELS.names())}; streams: {', '.join(STREAMS.names())}")
    return pairs


def previous_rows(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> stream -> row of an existing table; a row of the old one-row-per-model layout goes under its stream."""
    if not path.is_file():
        return {}
    models = json.loads(path.read_text())["models"]
    return {model: ({rows["stream"]: rows} if "seconds_per_sample" in rows else dict(rows))
            for model, rows in models.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pairs", type=parse_pairs, default=None,
                       help="comma-separated model/stream, e.g. gru/lang-binary,mlp/mnist-reshuffle "
                            "(default: every pair the registered sweeps run)")
    which.add_argument("--models", type=names_among(MODELS.names()), default=None,
                       help="comma-separated models: every registered pair of these (mlp,lstm,gru)")
    parser.add_argument("--epochs", type=positive, default=5, help="timed epochs per pair, after a warm-up")
    parser.add_argument("--output", type=Path, default=TRIAL_COSTS, help="the table to write (rows merged)")
    parser.add_argument("--note", default=None, help="what else ran on the machine, kept in each new row")
    # tests only: both splits cut to N samples, so a run takes seconds (the numbers then mean nothing)
    parser.add_argument("--train-limit", type=positive, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    registered = cost_pairs("paper")  # (model, stream) -> the hidden size the sweeps mostly use there
    if args.pairs is not None:
        pairs = list(dict.fromkeys(args.pairs))
    elif args.models is not None:
        pairs = [pair for pair in registered if pair[0] in args.models]
        if not pairs:
            parser.error(f"no registered sweep runs model(s) {', '.join(args.models)}; name pairs with --pairs")
    else:
        pairs = list(registered)

    torch.set_num_threads(THREADS)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {THREADS} thread, "
          f"load average {load_average()}", file=sys.stderr, flush=True)
    rows = previous_rows(args.output)
    loaded: dict[tuple, datasets.Dataset] = {}
    for model, stream in pairs:
        row = measure(model, stream, registered.get((model, stream)), args.epochs, args.train_limit, loaded)
        if args.note:
            row["note"] = args.note
        rows.setdefault(model, {})[stream] = row
        print(f"{model}/{stream} seconds_per_sample={row['seconds_per_sample']:.3g} "
              f"epoch_cpu={row['epoch_cpu_seconds']:.3f}s epoch_wall={row['epoch_wall_seconds']:.3f}s "
              f"samples={row['train_samples']}", flush=True)
    table = {"about": "CPU seconds per training sample per epoch (test pass included), one thread, per model and "
                      "stream at the stream's paper shapes; written by benchmarks/trial_costs.py, read by "
                      "sweeps.base.estimated_cpu_seconds",
             "models": {model: dict(sorted(streams.items())) for model, streams in sorted(rows.items())}}
    args.output.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
