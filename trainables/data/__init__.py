"""The datasets a trial trains on: what they look like in memory, and where they come from.

`load(name)` returns a prepared `Dataset` from the cache (preparing it on first use);
`prepare(...)` is what `lop data prepare` calls. Sources and caching live in the modules
beside this one; everything a trial needs is the `Dataset` (dataset.py).
"""
from __future__ import annotations

from .cache import default_data_dir
from .dataset import Dataset, Split
from lopmodels.errors import DataUnavailable
from .prepare import load, load_tokenizer, prepare

__all__ = ["DataUnavailable", "Dataset", "Split", "default_data_dir", "load", "load_tokenizer", "prepare"]
