"""A trial's data on its device: the stream's classes, the limits, truncation, and each task's view.

Built once per trial. Labels here are indices into the stream's classes (not the dataset's); each task
relabels them without copying images for reshuffle tasks, and filters once per task for binary ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lopmodels.registry import ConfigError
from trainables.config import TrialConfig
from trainables.data import Dataset, Split

LIMIT_SEED = 20240229  # the --train-limit/--test-limit subset is the same for every trial: a property of the data


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
        """The task whose label i is stream class `classes[i]`; samples of other classes are dropped."""
        mapping = torch.full((num_classes,), -1, dtype=torch.long)
        mapping[list(classes)] = torch.arange(len(classes))
        new_cpu = mapping[self.labels_cpu]
        keep = new_cpu >= 0
        split = self if bool(keep.all()) else self.select(keep.nonzero().squeeze(1))
        new_cpu = new_cpu[keep]
        return DeviceSplit(split.inputs, new_cpu.to(split.inputs.device), new_cpu, split.lengths_cpu)


@dataclass(frozen=True)
class StreamData:
    """The trial's train and test splits over the stream's classes."""

    classes: tuple[str, ...]  # stream class names; task labels index into these
    train: DeviceSplit
    test: DeviceSplit


def balanced_subset(labels: torch.Tensor, num_classes: int, limit: int) -> torch.Tensor:
    """A fixed, class-balanced subset of `limit` samples (limit // classes per class), in dataset order."""
    rng = np.random.default_rng(LIMIT_SEED)
    per_class = limit // num_classes
    labels_np = labels.numpy()
    picks = [rng.permutation(np.flatnonzero(labels_np == c))[:per_class] for c in range(num_classes)]
    return torch.from_numpy(np.sort(np.concatenate(picks)))


def build_stream_data(cfg: TrialConfig, data: Dataset, device: torch.device) -> StreamData:
    """Select the stream's classes, apply the limits and `seq_len`, and move the tensors to `device`."""
    classes = cfg.languages if cfg.languages is not None else cfg.stream_spec.classes
    missing = [c for c in classes if c not in data.classes]
    if missing:
        raise ConfigError(
            f"class(es) {', '.join(missing)} not in the prepared {data.name} data (have: {', '.join(data.classes)}); "
            f"run `lop data prepare {data.name} --languages {','.join(classes)}`"
        )
    dataset_index = {name: i for i, name in enumerate(data.classes)}
    to_stream = torch.full((len(data.classes),), -1, dtype=torch.long)
    to_stream[[dataset_index[c] for c in classes]] = torch.arange(len(classes))

    def prepare(split: Split, limit: int | None) -> DeviceSplit:
        labels = to_stream[split.labels]
        keep = (labels >= 0).nonzero().squeeze(1)
        labels = labels[keep]
        if limit is not None and limit < len(keep):
            chosen = balanced_subset(labels, len(classes), limit)
            keep, labels = keep[chosen], labels[chosen]
        inputs = split.inputs[keep]
        lengths = None
        if split.lengths is not None:
            inputs = inputs[:, : cfg.seq_len].contiguous()
            lengths = split.lengths[keep].clamp(max=cfg.seq_len)
        return DeviceSplit(inputs.to(device), labels.to(device), labels, lengths)

    return StreamData(tuple(classes), prepare(data.train, cfg.train_limit), prepare(data.test, cfg.test_limit))
