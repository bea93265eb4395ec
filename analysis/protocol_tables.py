"""The tables of how the runs were made, beside the paper's: what they cost, optimiser steps per task, and
truncation by sequence length."""
from __future__ import annotations

import pandas as pd

from sweeps.results import last_epoch
from trainables.streams import STREAMS

def percent_range(values: pd.Series) -> str:
    """`86.1 %`, or `85.0 to 87.2 %` where the trials differ."""
    low, high = 100 * values.min(), 100 * values.max()
    return f"{low:.1f} %" if round(low, 1) == round(high, 1) else f"{low:.1f} to {high:.1f} %"


def truncation_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, sequence length) of the language trials: the share of training sentences longer than the
    sequence length and the share of their tokens kept (`truncated_fraction`, `tokens_kept_fraction`)."""
    columns = ["truncated_fraction", "tokens_kept_fraction"]
    if not set(columns) <= set(records.columns):
        return pd.DataFrame()
    trials = records.dropna(subset=columns).drop_duplicates("trial_id")
    rows = [{"sweep": sweep, "sequence length": seq_len, "tokenizer": part["tokenizer"].fillna("-").iloc[0],
             "sentences truncated": percent_range(part["truncated_fraction"]),
             "tokens kept": percent_range(part["tokens_kept_fraction"]), "trials": len(part)}
            for (sweep, seq_len), part in trials.groupby(["sweep", "seq_len"])]
    return pd.DataFrame(rows)


def steps_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm): optimiser steps per task (`steps_per_task`, fewest and most over tasks and trials) and
    epochs per task, beside the paper's steps per task (NaN where they vary by task, as ours: MNIST pairs)."""
    if "steps_per_task" not in records.columns:
        return pd.DataFrame()
    recorded = records.dropna(subset=["steps_per_task"])
    table = recorded.groupby(["sweep", "arm"], as_index=False).agg(
        stream=("stream", "first"), epochs_per_task=("epochs_per_task", "first"),
        steps_min=("steps_per_task", "min"), steps_max=("steps_per_task", "max"))
    return table.assign(paper_steps=table["stream"].map(lambda s: STREAMS[s].paper_steps_per_task).astype(float))


def cost_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm): the trials it ran itself (not those shared from another sweep's arm), the tasks they
    finished, and what those tasks cost: hours of wall time summed over trials, CPU-hours (wall time x the
    trial's threads), minutes per task, and the devices."""
    if "task_seconds" not in records.columns:
        return pd.DataFrame()
    own = records[records["shared_from"].isna()] if "shared_from" in records.columns else records
    tasks = own[last_epoch(own) | own["diverged"].astype(bool)]
    tasks = tasks.assign(cpu_seconds=tasks["task_seconds"] * tasks["threads"].fillna(1))
    table = tasks.groupby(["sweep", "arm"], as_index=False).agg(
        trials=("trial_id", "nunique"), tasks=("task", "size"), wall_seconds=("task_seconds", "sum"),
        cpu_seconds=("cpu_seconds", "sum"), devices=("device", lambda d: ", ".join(sorted(set(d)))))
    return pd.DataFrame({"sweep": table["sweep"], "arm": table["arm"], "trials": table["trials"],
                         "tasks finished": table["tasks"], "wall hours": table["wall_seconds"] / 3600,
                         "CPU-hours": table["cpu_seconds"] / 3600,
                         "minutes per task": table["wall_seconds"] / 60 / table["tasks"], "devices": table["devices"]})


def cost_display(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(**{c: table[c].map(lambda v: f"{v:.2f}") for c in ("wall hours", "CPU-hours",
                                                                          "minutes per task")})


def steps_display(table: pd.DataFrame) -> pd.DataFrame:
    steps = [f"{int(low):,}" if low == high else f"{int(low):,} to {int(high):,}"
             for low, high in zip(table["steps_min"], table["steps_max"])]
    theirs = ["as ours (the same data and batch size)" if pd.isna(p) else f"{int(p):,}" for p in table["paper_steps"]]
    return pd.DataFrame({"sweep": table["sweep"], "arm": table["arm"], "stream": table["stream"],
                         "epochs per task": table["epochs_per_task"], "steps per task": steps,
                         "paper's steps per task": theirs})
