"""A trial's data on its device: the stream's classes, the limits, truncation, and each task's view.

Built once per trial. Labels here are indices into the stream's classes (not the dataset's); each task
relabels them without copying images for reshuffle tasks, and filters once per task for binary ones.
The protocol switches that act on data live here: raw pixels, and the per-task re-split of train and
test (docs/protocols.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lopmodels.errors import ConfigError
from trainables.config import TrialConfig
from trainables.data import Dataset, Split
from trainables.data.mnist_source import MNIST_MEAN, MNIST_STD
from trainables.transforms import TASK_TRANSFORMS  # its entries import this module: loaded on first lookup

LIMIT_SEED = 20240229  # the --train-limit/--test-limit subset is the same for every trial: a property of the data
RESPLIT_SEED = 20240611  # with the stream seed and the task: every arm of a replicate gets the same re-split
TRANSFORM_SEED = 20241130  # likewise for a stream's task transform (a permutation, random labels)


@dataclass(frozen=True)
class DeviceSplit:
    """Inputs and labels on the trial's device; token lengths and a label copy on the CPU (no host syncs)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    labels_cpu: torch.Tensor
    lengths_cpu: torch.Tensor | None  # CPU: packing wants CPU lengths, and indexing them needs no sync

    def __len__(self) -> int:
        return int(self.labels_cpu.shape[0])

    def select(self, index_cpu: torch.Tensor) -> "DeviceSplit":
        index = index_cpu.to(self.inputs.device)
        return DeviceSplit(
            self.inputs[index], self.labels[index], self.labels_cpu[index_cpu],
            None if self.lengths_cpu is None else self.lengths_cpu[index_cpu],
        )

    def relabel(self, classes: tuple[int, ...], num_classes: int) -> "DeviceSplit":
        """The task whose label i is stream class `classes[i]`; samples of other classes are dropped.

        A class named twice (a self-pair (a, a) of `pair_sampling="with-replacement"`) gets its last label,
        1, as the reference's `{class_0: 0, class_1: 1}` does: a one-class task that any model solves.
        """
        mapping = torch.full((num_classes,), -1, dtype=torch.long)
        for label, c in enumerate(classes):
            mapping[c] = label
        new_cpu = mapping[self.labels_cpu]
        keep = new_cpu >= 0
        split = self if bool(keep.all()) else self.select(keep.nonzero().squeeze(1))
        new_cpu = new_cpu[keep]
        return DeviceSplit(split.inputs, new_cpu.to(split.inputs.device), new_cpu, split.lengths_cpu)

    def concat(self, other: "DeviceSplit") -> "DeviceSplit":
        lengths = None if self.lengths_cpu is None else torch.cat((self.lengths_cpu, other.lengths_cpu))
        return DeviceSplit(torch.cat((self.inputs, other.inputs)), torch.cat((self.labels, other.labels)),
                           torch.cat((self.labels_cpu, other.labels_cpu)), lengths)


@dataclass(frozen=True)
class StreamData:
    """The trial's train and test splits over the stream's classes."""

    classes: tuple[str, ...]  # stream class names; task labels index into these
    train: DeviceSplit
    test: DeviceSplit
    # language streams, over the training split before truncation to seq_len (None for images):
    truncated_fraction: float | None = None  # share of sentences longer than seq_len
    tokens_kept_fraction: float | None = None  # share of the split's tokens that seq_len keeps


def resplit(train: DeviceSplit, test: DeviceSplit, stream_seed: int, task: int) -> tuple[DeviceSplit, DeviceSplit]:
    """The task's train and test sentences pooled and split again at the same sizes, seeded by (stream seed, task).

    `test_split="resplit"`: the reference's language binary (`random_split` of each task's sentences in
    `lang-binary.py`), so a later task trains on sentences an earlier one tested on. Not class-balanced,
    as there.
    """
    pooled = train.concat(test)
    order = torch.from_numpy(np.random.default_rng([RESPLIT_SEED, stream_seed, task]).permutation(len(pooled)))
    return pooled.select(order[len(test):]), pooled.select(order[: len(test)])


def task_splits(cfg: TrialConfig, stream: StreamData, classes: tuple[int, ...],
                task: int) -> tuple[DeviceSplit, DeviceSplit]:
    """Task `task`'s train and test splits, relabelled to its classes, then re-split if `test_split` says so,
    then through the stream's task transform (permuted pixels, random labels), fixed by (stream seed, task)."""
    train = stream.train.relabel(classes, len(stream.classes))
    test = stream.test.relabel(classes, len(stream.classes))
    if cfg.test_split == "resplit":
        train, test = resplit(train, test, cfg.stream_seed, task)
    transform = cfg.stream_spec.transform
    if transform is not None:
        rng = np.random.default_rng([TRANSFORM_SEED, cfg.stream_seed, task])
        train, test = TASK_TRANSFORMS[transform](train, test, rng, len(classes))
    return train, test


def balanced_subset(labels: torch.Tensor, num_classes: int, limit: int) -> torch.Tensor:
    """A fixed, class-balanced subset of `limit` samples (limit // classes per class), in dataset order."""
    rng = np.random.default_rng(LIMIT_SEED)
    per_class = limit // num_classes
    labels_np = labels.numpy()
    picks = [rng.permutation(np.flatnonzero(labels_np == c))[:per_class] for c in range(num_classes)]
    return torch.from_numpy(np.sort(np.concatenate(picks)))


def stream_classes(cfg: TrialConfig, data: Dataset) -> tuple[str, ...]:
    """The stream's classes, each of which the prepared data must have."""
    classes = tuple(cfg.languages if cfg.languages is not None else cfg.stream_spec.classes)
    missing = [c for c in classes if c not in data.classes]
    if missing:
        raise ConfigError(
            f"class(es) {', '.join(missing)} not in the prepared {data.name} data (have: {', '.join(data.classes)}); "
            f"run `lop data prepare {data.name} --languages {','.join(classes)}`"
        )
    return classes


def select(classes: tuple[str, ...], data: Dataset, split: Split,
           limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices into `split` that a trial keeps (the stream's classes, the limit) and their stream labels."""
    dataset_index = {name: i for i, name in enumerate(data.classes)}
    to_stream = torch.full((len(data.classes),), -1, dtype=torch.long)
    to_stream[[dataset_index[c] for c in classes]] = torch.arange(len(classes))
    labels = to_stream[split.labels]
    keep = (labels >= 0).nonzero().squeeze(1)
    labels = labels[keep]
    if limit is not None and limit < len(keep):
        chosen = balanced_subset(labels, len(classes), limit)
        keep, labels = keep[chosen], labels[chosen]
    return keep, labels


def task_train_size(cfg: TrialConfig, data: Dataset) -> int:
    """Training samples of one task of the balanced data: per class, times the classes a task uses."""
    classes = stream_classes(cfg, data)
    _, labels = select(classes, data, data.train, cfg.train_limit)
    per_task = 2 if cfg.stream_spec.is_binary else len(classes)
    return len(labels) // len(classes) * per_task


def resolve(cfg: TrialConfig, data: Dataset) -> TrialConfig:
    """`cfg.resolved()` with what needs the data: the step-matched epochs per task (`match_steps`).

    The one config a trial runs, records and checkpoints.
    """
    cfg = cfg.resolved()
    if cfg.epochs_per_task is not None:
        return cfg
    return dataclasses.replace(cfg, epochs_per_task=cfg.epochs_for(task_train_size(cfg, data)))


def truncation(lengths: torch.Tensor, seq_len: int) -> tuple[float, float]:
    """(share of sentences longer than seq_len, share of their summed tokens that seq_len keeps)."""
    kept = lengths.clamp(max=seq_len).sum() / lengths.sum()
    return float((lengths > seq_len).double().mean()), float(kept)


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The 0-255 values that normalised MNIST images were made from (`pixels="raw"`, the reference's binary)."""
    return images.mul(MNIST_STD).add_(MNIST_MEAN).mul_(255).round_()


def build_stream_data(cfg: TrialConfig, data: Dataset, device: torch.device) -> StreamData:
    """Select the stream's classes, apply the limits, `seq_len` and `pixels`, and move the tensors to `device`."""
    classes = stream_classes(cfg, data)
    if cfg.stream_spec.transform is not None:
        TASK_TRANSFORMS[cfg.stream_spec.transform]  # an unknown name fails before the first task, listing them

    def prepare(split: Split, keep: torch.Tensor, labels: torch.Tensor) -> DeviceSplit:
        inputs = split.inputs[keep]
        lengths = None
        if split.lengths is not None:
            inputs = inputs[:, : cfg.seq_len].contiguous()
            lengths = split.lengths[keep].clamp(max=cfg.seq_len)
        elif cfg.pixels == "raw":
            inputs = raw_pixels(inputs)
        return DeviceSplit(inputs.to(device), labels.to(device), labels, lengths)

    train_keep, train_labels = select(classes, data, data.train, cfg.train_limit)
    fractions: tuple[float | None, float | None] = (None, None)
    if data.train.lengths is not None:
        fractions = truncation(data.train.lengths[train_keep], cfg.seq_len)
    return StreamData(classes, prepare(data.train, train_keep, train_labels),
                      prepare(data.test, *select(classes, data, data.test, cfg.test_limit)), *fractions)
