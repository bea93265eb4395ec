"""What the plasticity diagnostics cost, as a fraction of one task's training time (target: at most 5 %).

For each model on its paper stream (MNIST reshuffle for the MLP and LSTM, language reshuffle for the GRU),
one task of `--epochs` epochs runs through `run_stream`, and the diagnostics it records at the task's end
(a probe-batch forward pass with unit activations, two SVDs, the weight magnitude) are then timed on
the trained network. The gradient norm at a task's first step is one more norm over the gradients, also timed.

    python benchmarks/diagnostics_cost.py [--epochs 30] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lopmodels.diagnostics import gradient_norm, probe
from trainables import data as datasets
from trainables.config import TrialConfig
from trainables.loop import probe_index, run_stream
from trainables.stream_data import build_stream_data

CASES = {"mlp": "mnist-reshuffle", "lstm": "mnist-reshuffle", "gru": "lang-reshuffle"}


def median_seconds(action, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per task (the paper: 30)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for model, stream in CASES.items():
        cfg = TrialConfig(model=model, stream=stream, tasks=1, epochs_per_task=args.epochs, device="cpu").resolved()
        data = datasets.load(cfg.stream_spec.dataset)
        task_seconds, state = 0.0, None
        for record, state in run_stream(cfg, data):
            task_seconds += record.seconds
        split = build_stream_data(cfg, data, torch.device("cpu")).train
        batch = split.select(probe_index(cfg, len(split)))
        diagnostics = median_seconds(lambda: probe(state.net, batch.inputs, batch.lengths_cpu))
        grad = median_seconds(lambda: gradient_norm(state.net))
        print(f"{model} task_seconds={task_seconds:.2f} diagnostics_seconds={diagnostics + grad:.4f} "
              f"fraction={(diagnostics + grad) / task_seconds:.4f}")


if __name__ == "__main__":
    main()
