"""The training loop: a stream of tasks, one model (re-initialised only by `reset`). Pure: no Ray, no files.

`run_stream` yields one `EpochRecord` per epoch together with the trial's `TrialState`; at a task's
last epoch that state is everything that decides the future, so saving it there and resuming with
`TrialState.from_state_dict` gives the same numbers (bit for bit on the CPU) as never stopping.
Data stays on the device, batches index a per-epoch permutation, and the host syncs once per epoch.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import torch

from lopmodels import HookContext, LopModel, Mitigation, ModelSpec, build_mitigation, build_model
from lopmodels.diagnostic_names import DIAGNOSTICS
from lopmodels.diagnostics import probe
from lopmodels.optim import Adam
from lopmodels.step import train_step
from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.memory import check_fits
from trainables.stream_data import DeviceSplit, StreamData, build_stream_data, resolve, task_splits

EVAL_BATCH = 8192  # test samples per forward pass: large, as no gradients are kept
PROBE_SIZE = 512  # training samples in the fixed probe batch of the diagnostics


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one use of a trial's seed (init, batches, mitigation noise)."""
    digest = hashlib.sha256(f"{seed}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when this process sees a GPU (Ray hides GPUs a trial was not given), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but no CUDA device is visible; use --device cpu")
    return torch.device(name)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch produced: the per-epoch columns of a record (docs/records.md)."""

    task: int
    epoch: int
    task_classes: tuple[str, ...]  # element i is the original class labelled i in this task
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float
    diverged: bool
    last_epoch_of_task: bool
    steps_per_task: int  # optimiser steps this task trains for: epochs x batches per epoch
    truncated_fraction: float | None = None  # the trial's (StreamData): language streams only
    tokens_kept_fraction: float | None = None
    diagnostics: dict[str, float] | None = None  # on a task's last epoch (lopmodels.diagnostics)

    def as_dict(self) -> dict[str, Any]:
        diagnostics = self.diagnostics or {}
        return {
            "task": self.task, "epoch": self.epoch, "task_classes": list(self.task_classes),
            "train_loss": self.train_loss, "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy, "seconds": self.seconds, "diverged": self.diverged,
            "steps_per_task": self.steps_per_task, "truncated_fraction": self.truncated_fraction,
            "tokens_kept_fraction": self.tokens_kept_fraction,
            **{name: diagnostics.get(name) for name in DIAGNOSTICS},
        }


@dataclass
class TrialState:
    """Everything that decides a trial's future at a task boundary."""

    config: TrialConfig  # resolved
    net: LopModel
    optimizer: Adam
    mitigation: Mitigation
    batch_generator: torch.Generator  # CPU: batch permutations
    generator: torch.Generator  # on the device: mitigation randomness
    next_task: int = 0
    step: int = 0

    def context(self, task: int) -> HookContext:
        return HookContext(self.net, self.optimizer, self.generator, task=task, step=self.step)

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "mitigation": self.mitigation.state_dict(),
            "batch_generator": self.batch_generator.get_state(),
            "generator": self.generator.get_state(),
            "next_task": self.next_task,
            "step": self.step,
        }

    @classmethod
    def fresh(cls, cfg: TrialConfig, spec: ModelSpec, device: torch.device) -> "TrialState":
        """A new trial, before its first task."""
        state = cls._build(cfg, spec, device)
        state.mitigation.on_train_start(state.context(task=0))
        return state

    @classmethod
    def _build(cls, cfg: TrialConfig, spec: ModelSpec, device: torch.device) -> "TrialState":
        """The model initialised from the trial's seed (on the CPU, so every device starts alike)."""
        init_generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "init"))
        net = build_model(cfg.model, spec, init_generator).to(device)
        mitigation = build_mitigation(cfg.mitigation, cfg.mitigation_args)
        optimizer = Adam(net.parameters(), lr=cfg.lr, **mitigation.optimizer_options())
        return cls(
            cfg, net, optimizer, mitigation,
            torch.Generator().manual_seed(derive_seed(cfg.seed, "batches")),
            torch.Generator(device).manual_seed(derive_seed(cfg.seed, "mitigation")),
        )

    @classmethod
    def from_state_dict(cls, values: dict[str, Any], spec: ModelSpec, device: torch.device) -> "TrialState":
        """The trial as it was when `state_dict()` was taken."""
        cfg = TrialConfig.from_dict(values["config"])
        state = cls._build(cfg, spec, device)
        state.net.load_state_dict(values["net"])
        state.optimizer.load_state_dict(values["optimizer"])
        state.mitigation.load_state_dict(values["mitigation"])
        state.batch_generator.set_state(values["batch_generator"])
        state.generator.set_state(values["generator"])
        state.next_task, state.step = values["next_task"], values["step"]
        return state


def model_spec(cfg: TrialConfig, data: Dataset, num_classes: int) -> ModelSpec:
    return ModelSpec(
        input_kind=data.kind, num_classes=num_classes, hidden=cfg.hidden, embed=cfg.embed,
        vocab_size=data.vocab_size, hidden_layers=cfg.hidden_layers, readout=cfg.readout,
    )


def largest_batch(cfg: TrialConfig) -> int:
    """Samples in the largest forward pass a trial makes: a training or evaluation batch, or the probe."""
    return max(cfg.batch_size, EVAL_BATCH, PROBE_SIZE)


def head_size(cfg: TrialConfig, data: StreamData) -> int:
    """Outputs of the head: every class for reshuffle streams, two for binary ones (all: `head="all-classes"`)."""
    if cfg.head == "all-classes":
        return len(data.classes)
    return len(draw_task(cfg, data, 0))


def draw_task(cfg: TrialConfig, data: StreamData, task: int) -> tuple[int, ...]:
    return cfg.stream_spec.draw_task(len(data.classes), cfg.stream_seed, task, cfg.pair_sampling)


def run_stream(cfg: TrialConfig, data: Dataset, saved: dict[str, Any] | None = None,
               device: torch.device | None = None) -> Iterator[tuple[EpochRecord, TrialState]]:
    """Train on the stream's tasks: from the first, or from where `saved` (a `TrialState.state_dict()`) stopped."""
    cfg = resolve(cfg, data)
    device = device or resolve_device(cfg.device)
    stream = build_stream_data(cfg, data, device)
    spec = model_spec(cfg, data, head_size(cfg, stream))
    check_fits(cfg.model, spec, largest_batch(cfg), stream.train.inputs.shape[1], device)
    state = TrialState.fresh(cfg, spec, device) if saved is None else TrialState.from_state_dict(saved, spec, device)
    probe_batch = stream.train.select(probe_index(cfg, len(stream.train)))
    for task in range(state.next_task, cfg.tasks):
        classes = draw_task(cfg, stream, task)
        train, test = task_splits(cfg, stream, classes, task)
        steps_per_task = cfg.epochs_per_task * math.ceil(len(train) / cfg.batch_size)
        names = tuple(stream.classes[c] for c in classes)
        state.mitigation.on_task_start(state.context(task))
        for epoch in range(cfg.epochs_per_task):
            started = time.perf_counter()
            sums = train_epoch(state, train, task)
            if epoch == 0:
                first_grad_norm = sums.first_grad_norm
            last = epoch == cfg.epochs_per_task - 1
            metrics = {"loss": sums.loss, "correct": sums.correct, "test_hits": evaluate(state.net, test)}
            if last:
                metrics |= probe(state.net, probe_batch.inputs, probe_batch.lengths_cpu)
                metrics["grad_norm"] = first_grad_norm
            read = read_once(metrics)
            loss_total, train_correct, test_hits = read["loss"], read["correct"], read["test_hits"]
            diverged = not math.isfinite(loss_total)
            if last and not diverged:
                state.mitigation.on_task_end(state.context(task))
                state.next_task = task + 1
            record = EpochRecord(
                task=task, epoch=epoch, task_classes=names,
                train_loss=loss_total / len(train), train_accuracy=train_correct / len(train),
                test_accuracy=test_hits / len(test), seconds=time.perf_counter() - started,
                diverged=diverged, last_epoch_of_task=last or diverged, steps_per_task=steps_per_task,
                truncated_fraction=stream.truncated_fraction, tokens_kept_fraction=stream.tokens_kept_fraction,
                # nan marks a diagnostic that does not apply (no ReLU units in an LSTM): stored as null
                diagnostics={k: read[k] if math.isfinite(read[k]) else None for k in DIAGNOSTICS} if last else None,
            )
            yield record, state
            if diverged:
                return


def read_once(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """0-d device tensors by name, read with the epoch's one host sync."""
    dtype = torch.promote_types(torch.float32, values["loss"].dtype)
    numbers = torch.stack([v.to(dtype) for v in values.values()]).tolist()
    return dict(zip(values, numbers))


def probe_index(cfg: TrialConfig, size: int) -> torch.Tensor:
    """The diagnostics' probe batch: fixed per stream seed, drawn once, so every arm of a replicate shares it."""
    generator = torch.Generator().manual_seed(derive_seed(cfg.stream_seed, "probe"))
    return torch.randperm(size, generator=generator)[:PROBE_SIZE].sort().values


class EpochSums(NamedTuple):
    """An epoch's totals, still on the device."""

    loss: torch.Tensor  # summed per-sample loss
    correct: torch.Tensor  # correct training predictions
    first_grad_norm: torch.Tensor  # gradient norm at the epoch's first step


def train_epoch(state: TrialState, train: DeviceSplit, task: int) -> EpochSums:
    """One pass over `train` in a fresh random order."""
    cfg, mitigation = state.config, state.mitigation
    state.net.train()
    order = torch.randperm(len(train), generator=state.batch_generator)
    device = train.inputs.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, len(train), cfg.batch_size):
        index_cpu = order[start : start + cfg.batch_size]
        index = index_cpu.to(device, non_blocking=True)
        inputs, labels = train.inputs[index], train.labels[index]
        lengths = None if train.lengths_cpu is None else train.lengths_cpu[index_cpu]
        ctx = state.context(task)
        out = train_step(ctx, mitigation, inputs, lengths, labels, measure_grad_norm=start == 0)
        if start == 0:
            first_grad_norm = out.grad_norm
        state.step = ctx.step
        loss_sum += out.loss * len(index_cpu)
        correct += (out.logits.argmax(dim=1) == labels).sum()
    return EpochSums(loss_sum, correct, first_grad_norm)


@torch.no_grad()
def evaluate(net: LopModel, split: DeviceSplit) -> torch.Tensor:
    """Correct predictions on `split`, as a device tensor."""
    net.eval()
    correct = torch.zeros((), device=split.inputs.device, dtype=torch.long)
    for start in range(0, len(split), EVAL_BATCH):
        stop = start + EVAL_BATCH
        lengths = None if split.lengths_cpu is None else split.lengths_cpu[start:stop]
        logits = net(split.inputs[start:stop], lengths)
        correct += (logits.argmax(dim=1) == split.labels[start:stop]).sum()
    return correct
