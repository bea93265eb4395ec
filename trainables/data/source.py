"""How one dataset is fetched, cached and read: a `DataSource` per dataset, found by name in `SOURCES`.

A dataset is one module that registers its source here plus its line in `trainables/datasets.py` (the
torch-free facts, which name the module). `prepare.py` only dispatches, reports and keeps loaded datasets.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from lopmodels.registry import Registry
from trainables.datasets import DATASETS

from .cache import Stamp
from .dataset import Dataset

Echo = Callable[[str], None]


class DataSource:
    """One dataset's cache: its bundles under the data directory, how to build them and how to read them.

    `load` passes every source the token options (`tokenizer`, `vocab_size`); an image source ignores them."""

    prepare_options: ClassVar[tuple[str, ...]] = ()  # options `prepare` takes beyond data_dir and the token ones

    def prepare(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int,
                **options: Any) -> tuple[Dataset, list[Path]]:
        """Fetch or locate the data, cache it (rebuilding what differs from `options`): the dataset and its
        cache folders."""
        raise NotImplementedError

    def folder(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Path:
        """The bundle that `read` returns the data of (the key of `load`'s in-process memo)."""
        raise NotImplementedError

    def stamp(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Stamp | None:
        """What `read` would read, from manifests and `stat` alone; None where it would (re)build something.

        Raises `CacheInvalid` for a missing or damaged bundle (also meaning: `read` rebuilds)."""
        raise NotImplementedError

    def read(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int) -> Dataset:
        """The dataset from its bundles, (re)building any that is missing, damaged or made from other data."""
        raise NotImplementedError


SOURCES: Registry[DataSource] = Registry("dataset", modules=lambda: [info.module for _, info in DATASETS.items()])
