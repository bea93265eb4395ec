"""Degradation by horizon: the robust degradation above chance after T tasks, for T along the stream.

Does a loss of plasticity keep growing, or level off? The claims read the degradation at the stream's end;
this table reads it every few tasks (the mean of the k tasks before T against the first k, k as in the
degradation table), so a run of half the paper's tasks shows where its curve is heading, and a sweep that
has not finished counts at the horizons its trials have reached.
"""
from __future__ import annotations

import math

import pandas as pd

from analysis.metrics import default_k, degradation_summary, final_accuracy
from analysis.tables import interval_text

COLUMNS = ["sweep", "arm", "horizon", "k", "mean", "ci_low", "ci_high", "ci_method", "n"]


def horizons(tasks: int, k: int) -> list[int]:
    """Every `step` tasks (a fifth of the stream, at least 2k: k tasks at each end) and the stream's end."""
    step = max(2 * k, math.ceil(tasks / 5))
    return sorted({*range(step, tasks + 1, step), tasks})


def truncated(final: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """`final` as if every stream ended after `horizon` tasks: a trial that has finished them counts as complete
    (a diverged trial's tasks after its divergence are at chance in `final` already)."""
    part = final[final["task"] < horizon].assign(tasks=horizon)
    reached = (part["status"] == "incomplete") & (part["tasks_finished"] >= horizon)
    return part.assign(status=part["status"].mask(reached, "complete"))


def degradation_by_horizon(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm, horizon): the robust degradation above chance of the trials that reached the horizon,
    with the degradation table's interval. Empty when no sweep's stream has two horizons (4k tasks or more)."""
    final = final_accuracy(records)
    rows = []
    for sweep, part in final.groupby("sweep"):
        tasks = int(part["tasks"].min())
        k = default_k(tasks)
        if tasks < 4 * k:
            continue  # one horizon at most: the degradation table's
        for horizon in horizons(tasks, k):
            reached = truncated(part, horizon)
            if (reached["status"] != "incomplete").any():
                rows.append(degradation_summary(reached, k, chance_corrected=True).assign(horizon=horizon, k=k))
    return pd.concat(rows, ignore_index=True)[COLUMNS] if rows else pd.DataFrame(columns=COLUMNS)


def horizon_display(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep, arm), one column per horizon: `15.2 [12.8, 17.6], n = 5`."""
    cells = table.assign(cell=[f"{text}, n = {n}" for text, n in
                               zip(interval_text(table["mean"], table["ci_low"], table["ci_high"]), table["n"])])
    wide = cells.pivot(index=["sweep", "arm"], columns="horizon", values="cell").fillna("")
    wide.columns = [f"after {horizon} tasks, %" for horizon in wide.columns]
    return wide.reset_index()


def horizon_notes(table: pd.DataFrame) -> tuple[str, ...]:
    methods = ", ".join(sorted(table["ci_method"].dropna().unique()))
    return ("After T tasks: 100 (1 - (mean accuracy of tasks T-k+1 to T - chance) / (mean accuracy of the first k "
            "tasks - chance)), k as in the degradation table (the last column is its robust degradation above "
            "chance).",
            f"95 % CI: {methods}; n: the replicates that finished T tasks (a trial still running counts at the "
            "horizons it has reached, so n can fall along a row).")
