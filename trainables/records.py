"""Rows of the results table: one per trial x task x epoch (docs/records.md)."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import torch

from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.loop import EpochRecord

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> str:
    """The git commit of this checkout (with `-dirty` for uncommitted changes), else the package version."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version
        try:
            return "recurrent-lop " + version("recurrent-lop")
        except PackageNotFoundError:
            return "unknown"


def provenance(data: Dataset, device: torch.device) -> dict[str, Any]:
    """Where a record came from: code, data, device and thread count."""
    return {"code_version": code_version(), "data_hash": data.data_hash, "device": str(device),
            "threads": torch.get_num_threads()}


def record_row(cfg: TrialConfig, record: EpochRecord, *, sweep: str, arm: str, trial_id: str,
               data: Dataset, extra: dict[str, Any], replicate: int | None = None) -> dict[str, Any]:
    """One row: ids, the resolved config's columns, the epoch's metrics, then provenance (`extra`); the columns
    and their order are `trainables.schema`'s. `replicate`: the sweep's replicate (default: the seed)."""
    columns = cfg.resolved().columns()
    columns["tokenizer"] = data.tokenizer  # e.g. "bpe-8192"; None for images
    if data.kind == "image":
        columns["vocab_size"] = None
    return {"sweep": sweep, "arm": arm, "replicate": cfg.seed if replicate is None else replicate,
            "trial_id": trial_id, **columns, **record.as_dict(), **extra}
