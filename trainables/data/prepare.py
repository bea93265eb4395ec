"""`prepare` and `load`: prepared datasets in the cache, built on first use and rebuilt when damaged.

Each dataset's bundles are its `DataSource`'s (source.py; mnist_source.py, languages_source.py); this module
finds the source by name, reports what was prepared, and keeps loaded datasets.

Layout under the data directory (docs/data.md says more):
    mnist/raw/            the four IDX files, when a user placed them there or a mirror served them
    mnist/arrays/         {train,test}_{images,labels}.npy (uint8), manifest.json
    languages/tatoeba/    CODE.parquet: Tatoeba's exports as downloaded
    languages/text/       train.parquet, test.parquet (language, text), manifest.json
    languages/TOKENIZER/  tokenizer.json, {train,test}_{tokens,lengths,labels}.npy, manifest.json
Each folder with a manifest is a bundle (see cache.py); BUNDLE.lock beside it serialises rebuilds.

`load` keeps what it read for the rest of the process: Ray Tune runs trial after trial in one reused
process, and reading the MNIST arrays again took 0.24 s a trial (docs/performance.md).
"""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from lopmodels.errors import ConfigError
from trainables.datasets import DATASETS

from . import tokenizer as tok
from .cache import CacheInvalid, Stamp, default_data_dir
from .dataset import Dataset
from .languages_source import load_tokenizer as _load_tokenizer
from .source import SOURCES, DataSource

Echo = Callable[[str], None]
LOADED_MAX = 4  # datasets a process keeps (MNIST is 0.2 GB in memory); a trial's process uses one or two


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _resolve(name: str, data_dir: Path | str | None) -> tuple[DataSource, Path]:
    DATASETS[name]  # an unknown name fails here, listing the datasets
    return SOURCES[name], default_data_dir() if data_dir is None else Path(data_dir).expanduser().absolute()


def _report(dataset: Dataset, folders: Sequence[Path], echo: Echo) -> None:
    """Source, per-class counts (and the test split's UNK rate for tokens), cache folders."""
    echo(f"{dataset.name}: {dataset.source}")
    n = len(dataset.classes)
    train = torch.bincount(dataset.train.labels, minlength=n).tolist()
    test = torch.bincount(dataset.test.labels, minlength=n).tolist()
    if dataset.kind == "tokens":
        echo(f"  tokenizer {dataset.tokenizer}: {dataset.vocab_size} ids (PAD {dataset.pad_id}, UNK {tok.UNK_ID}), "
             f"up to {dataset.max_len} tokens per sentence")
        split = dataset.test
        unk = tok.unk_rates(split.inputs, split.lengths, split.labels, dataset.classes)
        echo(f"  {'class':<6}{'train':>7}{'test':>7}{'test UNK %':>12}")
        for i, name in enumerate(dataset.classes):
            echo(f"  {name:<6}{train[i]:>7}{test[i]:>7}{100 * unk[name]:>12.2f}")
    else:
        echo(f"  {'class':<6}{'train':>7}{'test':>7}")
        for i, name in enumerate(dataset.classes):
            echo(f"  {name:<6}{train[i]:>7}{test[i]:>7}")
    echo(f"  {'total':<6}{sum(train):>7}{sum(test):>7}")
    echo(f"  cache {', '.join(map(str, folders))} (data_hash {dataset.data_hash})")


def prepare(name: str, *, data_dir: Path | None = None, tokenizer: str = "bpe", vocab_size: int = 8192,
            echo: Echo = print, **options: Any) -> Dataset:
    """Fetch or locate a dataset, cache it, and echo its source, per-class counts and cache folders.

    A valid cache made the same way is reused. `options` are the dataset's own (its source's
    `prepare_options`: for "languages", `languages` and `corpus`); one given to a dataset that does not take
    it is an error.
    """
    source, data_dir = _resolve(name, data_dir)
    given = {key: value for key, value in options.items() if value is not None}
    foreign = sorted(set(given) - set(source.prepare_options))
    if foreign:
        takers = [other for other, s in SOURCES.items() if set(foreign) <= set(s.prepare_options)]
        raise ConfigError(f"{' and '.join(foreign)} apply to the {' or '.join(map(repr, takers)) or 'no'} "
                          f"dataset only, not {name!r}")
    dataset, folders = source.prepare(data_dir, echo, tokenizer=tokenizer, vocab_size=vocab_size, **given)
    _report(dataset, folders, echo)
    return dataset


# bundle folder of the loaded dataset -> (what was on disk then, the dataset); least recently used first
_loaded: OrderedDict[Path, tuple[Stamp, Dataset]] = OrderedDict()
_loaded_lock = threading.Lock()


def _stamp(source: DataSource, data_dir: Path, tokenizer: str, vocab_size: int) -> Stamp | None:
    try:
        return source.stamp(data_dir, tokenizer=tokenizer, vocab_size=vocab_size)
    except CacheInvalid:
        return None


def load(name: str, *, data_dir: Path | None = None, tokenizer: str = "bpe", vocab_size: int = 8192) -> Dataset:
    """The prepared dataset from the cache, preparing it first (progress on stderr) if missing or damaged.

    For "languages", the sentences are whatever `prepare` cached last (default: the paper's 20 languages).
    A second call in the process returns the same `Dataset` (its tensors shared: treat them as read-only)
    while the manifests and file stats on disk are unchanged; after a rebuild it reads the new data.
    """
    source, data_dir = _resolve(name, data_dir)
    path = source.folder(data_dir, tokenizer=tokenizer, vocab_size=vocab_size)
    found = _stamp(source, data_dir, tokenizer, vocab_size)
    with _loaded_lock:
        if found is not None and path in _loaded and _loaded[path][0] == found:
            _loaded.move_to_end(path)
            return _loaded[path][1]
    dataset = source.read(data_dir, _stderr, tokenizer=tokenizer, vocab_size=vocab_size)
    found = _stamp(source, data_dir, tokenizer, vocab_size)  # after any rebuild: kept if it is the data just read
    if found is not None and found[0] == dataset.data_hash:
        with _loaded_lock:
            _loaded[path] = (found, dataset)
            _loaded.move_to_end(path)
            while len(_loaded) > LOADED_MAX:
                _loaded.popitem(last=False)
    return dataset


def load_tokenizer(*, data_dir: Path | None = None, tokenizer: str = "bpe", vocab_size: int = 8192) -> Tokenizer:
    """The tokenizer that made `load("languages", ...)`'s token ids, to encode or decode more text."""
    _, data_dir = _resolve("languages", data_dir)
    return _load_tokenizer(data_dir, _stderr, tokenizer=tokenizer, vocab_size=vocab_size)
