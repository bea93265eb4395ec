"""Read a sweep's Tune experiment into one tidy DataFrame: one row per trial x task x epoch.

The only module that reads Tune's files. It reads each trial's `result.json` (every epoch, not the
last row that `ResultGrid.get_dataframe()` keeps) with plain json and pandas, never modifies the sweep,
returns the records in the results schema (`trainables.schema`: the columns and types of every export),
and works on finished, running and interrupted sweeps, in a local or network folder or at a `pyarrow.fs`
URI such as s3://bucket/lop-results/fig1 (`sweeps.storage`). A resumed trial re-reports the epochs after its
last checkpoint; the latest attempt of each (trial, task, epoch) is kept. A half-written last line is skipped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping

import pandas as pd

from lopmodels.errors import NoResults
from sweeps.storage import StoragePath, location
from trainables.schema import MITIGATION_PREFIX, records_frame, records_table, results_schema

SCHEMA_COLUMNS = frozenset(results_schema().names)  # every built-in mitigation's fields among them

RESULT_FILE = "result.json"


def last_epoch(records: pd.DataFrame | Mapping) -> pd.Series | bool:
    """Whether each record is the last epoch of its task (a boolean Series for a frame, a bool for one row): the
    epoch whose accuracy and diagnostics the metrics read, and the one after which a task counts as finished."""
    return records["epoch"] == records["epochs_per_task"] - 1


def trial_folders(sweep: StoragePath) -> list[StoragePath]:
    return sorted(p.parent for p in sweep.glob(f"*/{RESULT_FILE}"))


def read_rows(result_file: StoragePath) -> Iterator[dict]:
    """The JSON lines of one trial's results; a line cut short by a crash or a live writer, or with bytes that are
    not UTF-8 (a disk fault), is skipped: the gap it leaves is damage (`sweeps.record_check`)."""
    for line in result_file.read_bytes().split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            continue
        if isinstance(row, dict) and "task" in row and "epoch" in row:
            yield row


def latest_attempts(rows: Iterator[dict]) -> list[dict]:
    """Keep the last reported row of each (task, epoch): a resumed trial's second attempt wins."""
    kept: dict[tuple[int, int], dict] = {}
    for row in rows:
        kept[(row["task"], row["epoch"])] = row
    return [kept[key] for key in sorted(kept)]


def load_results(path: str | Path) -> pd.DataFrame:
    """Every trial's full per-epoch history under sweep folder `path` (a folder or a URI), tidy."""
    sweep = location(path)
    if not sweep.is_dir():
        raise NoResults(f"no sweep at {sweep}: not a folder; give the folder `lop sweep run` printed")
    folders = trial_folders(sweep)
    if not folders and not (sweep / "lop-sweep.json").is_file():
        raise NoResults(f"no sweep at {sweep}: no trial results and no lop-sweep.json")
    rows = [row for folder in folders for row in latest_attempts(read_rows(folder / RESULT_FILE))]
    if not rows:
        raise NoResults(f"sweep {sweep} has no finished epoch yet; try again once trials have reported")
    frame = pd.DataFrame(rows)
    # what Tune adds to every reported row (timestamp, done, config, ...; a newer Ray may add more) is not a
    # record column: only the schema's columns and mitigation fields are kept (node_ip and pid among them)
    frame = frame[[c for c in frame.columns if c in SCHEMA_COLUMNS or c.startswith(MITIGATION_PREFIX)]]
    frame = frame.sort_values(["sweep", "arm", "seed", "trial_id", "task", "epoch"]).reset_index(drop=True)
    return records_frame(records_table(frame))
