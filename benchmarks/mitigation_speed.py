"""Training-step time of every mitigation against no mitigation, on the CPU, at the paper's sizes.

One step is `lopmodels.step.train_step`, as `trainables/loop.py` takes it per batch: `forward_units`
(when the mitigation asks for activations, else `forward`), cross-entropy plus the mitigation's penalty,
backward, our Adam's step, then `after_step`. After a warm-up, the arms take one step each in turn, so drifts in machine load
hit every arm alike; the ratio is the median step time of an arm over that of `none`. By default the
clock is the CPU time of the (single) torch thread, which other processes on a shared machine barely
disturb; `--clock wall --threads N` measures elapsed time with N threads instead.

    python benchmarks/mitigation_speed.py [--models mlp,gru] [--steps 30] [--clock thread|wall]

prints `<model> <mitigation> step_ratio=<x>` per arm (target: <= 1.10).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from lopmodels import MITIGATIONS, HookContext, ModelSpec, build_mitigation, build_model
from lopmodels.optim import Adam
from lopmodels.step import train_step

# The paper's sizes: MNIST (batch 6000) on the MLP; language ID on the GRU (batch 512, 50 tokens, hidden 64)
MODELS = {
    "mlp": ModelSpec("image", 10, hidden=25),
    "gru": ModelSpec("tokens", 10, hidden=64, embed=64, vocab_size=8192),
}
BATCH = {"mlp": 6000, "gru": 512}
SEQ_LEN = 50
# Settings that make every per-step path run from the first step: CBP with every unit mature (the steady
# state of a long run, utilities, counting and replacements at the paper's rate), ReDo checking every
# 10th step instead of every 1000th (an upper bound on its amortised cost), and the per-step shrink-perturb.
ARMS: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in MITIGATIONS.names()] + [
    ("cbp", {"maturity_threshold": 0}),
    ("redo", {"every_steps": 10}),
    ("shrink-perturb", {"every": "step", "shrink": 0.9999, "sigma": 1e-4}),
]
CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}
CLOCK = CLOCKS["thread"]


def make_batches(model: str, count: int, generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    spec, size = MODELS[model], BATCH[model]
    batches = []
    for _ in range(count):
        labels = torch.randint(0, spec.num_classes, (size,), generator=generator)
        if spec.input_kind == "image":
            batches.append((torch.randn(size, 28, 28, generator=generator), None, labels))
        else:
            tokens = torch.randint(2, spec.vocab_size, (size, SEQ_LEN), generator=generator)
            lengths = torch.randint(1, SEQ_LEN + 1, (size,), generator=generator)
            tokens[torch.arange(SEQ_LEN)[None, :] >= lengths[:, None]] = 0
            batches.append((tokens, lengths, labels))
    return batches


class Arm:
    """One model, optimizer and mitigation, stepped as the training loop steps them."""

    def __init__(self, model: str, name: str, args: dict[str, Any]) -> None:
        self.net = build_model(model, MODELS[model], torch.Generator().manual_seed(0))
        self.mitigation = build_mitigation(name, args)
        self.optimizer = Adam(self.net.parameters(), lr=0.01, **self.mitigation.optimizer_options())
        self.generator = torch.Generator().manual_seed(1)
        self.mitigation.on_train_start(self.context())
        self.mitigation.on_task_start(self.context())
        self.times: list[float] = []

    def context(self) -> HookContext:
        return HookContext(self.net, self.optimizer, self.generator)

    def step(self, inputs: torch.Tensor, lengths: torch.Tensor | None, labels: torch.Tensor) -> float:
        started = CLOCK()
        train_step(self.context(), self.mitigation, inputs, lengths, labels)
        return CLOCK() - started


def label(name: str, args: dict[str, Any]) -> str:
    return name + ("(" + ",".join(f"{k}={v}" for k, v in args.items()) + ")" if args else "")


def benchmark(model: str, steps: int, warmup: int) -> dict[str, float]:
    batches = make_batches(model, 4, torch.Generator().manual_seed(2))
    arms = {label(name, args): Arm(model, name, args) for name, args in ARMS}
    for arm in arms.values():
        for k in range(warmup):
            arm.step(*batches[k % len(batches)])
    order = list(arms.values())
    for k in range(steps):
        order = order[1:] + order[:1]  # step by step, each arm in turn, rotating who goes first
        for arm in order:
            arm.times.append(arm.step(*batches[k % len(batches)]))
    baseline = statistics.median(arms["none"].times)
    return {key: statistics.median(arm.times) / baseline for key, arm in arms.items()} | {"none_ms": baseline * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,gru")
    parser.add_argument("--steps", type=int, default=30, help="measured steps per arm")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                        help="thread: CPU time of this thread (needs --threads 1); wall: elapsed time")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    options = parser.parse_args()
    if options.clock == "thread" and options.threads != 1:
        parser.error("--clock thread counts this thread only; use it with --threads 1")
    global CLOCK
    CLOCK = CLOCKS[options.clock]
    torch.set_num_threads(options.threads)
    print(f"# torch {torch.__version__}, {options.threads} thread(s), CPU, clock={options.clock}")
    for model in options.models.split(","):
        ratios = benchmark(model, options.steps, options.warmup)
        print(f"# {model}: no mitigation {ratios.pop('none_ms'):.1f} ms/step (median)")
        for key, ratio in ratios.items():
            print(f"{model} {key} step_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
