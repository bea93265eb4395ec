"""Compact exports: a sweep's results small enough to keep in a repository, and read back by `lop report`.

A compact export is one parquet file per sweep: the records (docs/records.md) of each task's last epoch, where
the diagnostics are, plus the epoch a diverged trial stopped at, which is every row the report reads
(`analysis.metrics`): kilobytes per trial instead of the sweep folder's checkpoints and per-epoch history. Its
columns are the results schema's (`trainables.schema`) with `task_seconds`; the file's parquet metadata holds the
sweep's manifest and the schema's version, so a fresh clone can rebuild the report without the sweep folder.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lopmodels.errors import ConfigError
from sweeps.manifest import Manifest
from sweeps.results import last_epoch
from trainables.files import replacing
from trainables.schema import SCHEMA_VERSION, records_frame, records_table

METADATA_KEY = b"lop.compact"
# The older schema versions `read_compact` upgrades to this one (`records_table`: version 1 had the same columns
# but no `replicate`, only the mitigation fields its sweep used, in no fixed order, and untyped all-null columns);
# it refuses the others with the way to re-export.
UPGRADABLE = (1,)
# The columns the report cannot do without.
REQUIRED = ("sweep", "arm", "trial_id", "model", "stream", "mitigation", "seed", "stream_seed", "tasks",
            "epochs_per_task", "hidden", "seq_len", "task", "epoch", "task_classes", "test_accuracy", "diverged",
            "task_seconds", "threads")


def with_task_seconds(records: pd.DataFrame) -> pd.DataFrame:
    """`records` with `task_seconds`, the wall time of each task's epochs so far (what a trial cost, kept when
    the other epochs are dropped)."""
    if "task_seconds" in records.columns:
        return records
    seconds = records.groupby(["sweep", "arm", "trial_id", "task"])["seconds"].transform("sum")
    return records.assign(task_seconds=seconds)


def compact(records: pd.DataFrame) -> pd.DataFrame:
    """The rows of `records` the report reads: each task's last epoch, and every diverged epoch, with
    `task_seconds`."""
    records = with_task_seconds(records)
    kept = last_epoch(records) | records["diverged"].astype(bool)
    return records[kept].reset_index(drop=True)


def write_compact(records: pd.DataFrame, manifest: Manifest, out: Path) -> pd.DataFrame:
    """Write the compact export of one sweep's `records` to `out` (atomically); the rows written."""
    rows = compact(records)
    table = records_table(rows, compact=True)
    meta = {"schema_version": SCHEMA_VERSION, "manifest": asdict(manifest)}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    with replacing(out) as tmp:
        pq.write_table(table, tmp)
    return rows


def is_compact(path: Path) -> bool:
    return path.suffix == ".parquet"


def read_compact(path: Path) -> tuple[Manifest, pd.DataFrame]:
    """The manifest and records of a compact export; `ConfigError` naming the problem and the fix."""
    if not path.is_file():
        raise ConfigError(f"no compact export at {path}; give a file written by `lop results export --compact`")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ConfigError(f"{path} is not a readable parquet file ({error}); re-export it with "
                          "`lop results export SWEEP --compact --out FILE`") from None
    raw = (parquet.schema_arrow.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ConfigError(f"{path} is not a compact export (no lop metadata: a full `lop results export` or "
                          "another file); export it with `lop results export SWEEP --compact --out FILE`")
    meta = json.loads(raw)
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION and version not in UPGRADABLE:
        readable = ", ".join(str(v) for v in (*UPGRADABLE, SCHEMA_VERSION))
        raise ConfigError(f"{path} holds records of schema version {version}, this lop reads version(s) "
                          f"{readable}; re-export it from its sweep folder with this lop "
                          "(`lop results export SWEEP --compact --out FILE`)")
    records = parquet.read().to_pandas()
    missing = [c for c in REQUIRED if c not in records.columns]
    if missing:
        raise ConfigError(f"{path} lacks the record column(s) {', '.join(missing)}; re-export it from its sweep "
                          "folder with this lop (`lop results export SWEEP --compact --out FILE`)")
    try:
        manifest = Manifest(**meta["manifest"])
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{path} has a damaged manifest in its metadata ({error}); re-export it") from None
    records = records_frame(records_table(records, compact=True))  # an older version upgraded
    records["task_classes"] = records["task_classes"].map(tuple)
    return manifest, records
