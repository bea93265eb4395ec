"""What a prepared dataset is in memory: its splits as tensors and the names of its classes."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """One split of a dataset, as tensors ready to move to the trial's device."""

    inputs: torch.Tensor  # images: float32 [N, 28, 28], normalised; tokens: int64 [N, max_len], padded with pad_id
    labels: torch.Tensor  # int64 [N]: index into Dataset.classes
    lengths: torch.Tensor | None = None  # int64 [N]: true token counts (>= 1); None for images

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset: fixed train/test splits and the names of its classes."""

    name: str  # "mnist" or "languages"
    kind: str  # "image" or "tokens"
    classes: tuple[str, ...]  # "0".."9", or ISO 639-3 codes ("spa")
    train: Split
    test: Split
    source: str  # where the data came from, for provenance and `lop data prepare`'s output
    data_hash: str  # short sha256 of the cached arrays: the `data_hash` record column
    tokenizer: str | None = None  # "bpe-8192", "char"; None for images
    vocab_size: int | None = None  # number of token ids, PAD and UNK included
    pad_id: int | None = None

    @property
    def max_len(self) -> int:
        """Longest token sequence stored (images: 28 rows)."""
        return int(self.train.inputs.shape[1])
