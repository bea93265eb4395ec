"""The paper's metrics from records (one row per trial x task x epoch): DataFrame in, DataFrame out.

Which tasks count:
- a task counts once its last epoch is recorded (its final-epoch test accuracy); a running or interrupted
  trial contributes its finished tasks to the per-task curves and is `incomplete` until its last task;
- a diverged trial stopped at a non-finite loss: the task it diverged in and every later task count at
  chance accuracy, 1 / (classes per task), marked `imputed`. The trial is `diverged` and enters every mean
  (dropping it would flatter the arm that broke); each summary counts diverged trials in a column;
- degradation, average accuracy and IAA are per-trial numbers over all tasks: incomplete trials are left
  out of them and counted (`incomplete`).
Replicate k of every arm has seed = stream_seed = k, so arms compare paired by (seed, stream_seed).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from analysis.stats import summarize
from lopmodels.registry import ConfigError

TRIAL = ["sweep", "arm", "trial_id", "seed", "stream_seed"]
CONFIG = ["model", "stream", "mitigation", "hidden", "seq_len", "tasks", "epochs_per_task"]
DIAGNOSTICS = ("dead_fraction", "saturated_fraction", "effective_rank", "stable_rank", "weight_magnitude",
               "grad_norm")  # record columns on a task's last epoch (ARCHITECTURE.md, "Records")
ROBUST_K = 5  # tasks per end in the robust degradation, at most a quarter of the stream
STATUSES = ("complete", "diverged", "incomplete")


def trial_status(records: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its config, tasks finished, and status `complete`, `diverged` or `incomplete`."""
    finished = records[(records["epoch"] == records["epochs_per_task"] - 1) & ~records["diverged"]]
    trials = records.groupby(TRIAL + CONFIG, sort=True, dropna=False, as_index=False).agg(
        diverged=("diverged", "any"))
    done = finished.groupby(TRIAL, dropna=False).size().rename("tasks_finished").reset_index()
    trials = trials.merge(done, on=TRIAL, how="left").fillna({"tasks_finished": 0})
    trials["tasks_finished"] = trials["tasks_finished"].astype(int)
    trials["status"] = np.select([trials["diverged"], trials["tasks_finished"] >= trials["tasks"]],
                                 ["diverged", "complete"], "incomplete")
    return trials


def final_accuracy(records: pd.DataFrame) -> pd.DataFrame:
    """The final-epoch test accuracy of every finished task, one row per trial x task.

    A diverged trial's tasks from the one it diverged in to the stream's last are at chance, 1 / len(task_classes),
    with `imputed` True. Trial columns: TRIAL, CONFIG, `diverged`, `tasks_finished`, `status`.
    """
    last_epoch = (records["epoch"] == records["epochs_per_task"] - 1) & ~records["diverged"]
    finished = records.loc[last_epoch, TRIAL + ["task", "test_accuracy"]].assign(imputed=False)
    broken = records[records["diverged"]].reset_index(drop=True)
    chance = 1.0 / broken["task_classes"].map(len)
    lost = broken.loc[broken.index.repeat(broken["tasks"] - broken["task"])]
    lost = lost.assign(task=lost["task"] + lost.groupby(level=0).cumcount(), test_accuracy=chance, imputed=True)
    final = pd.concat([finished, lost[finished.columns]], ignore_index=True)
    final = final.merge(trial_status(records), on=TRIAL)
    return final.sort_values(TRIAL + ["task"]).reset_index(drop=True)


def trials(final: pd.DataFrame) -> pd.DataFrame:
    """One row per trial of `final_accuracy`: its ids, config and status."""
    return final.drop_duplicates(TRIAL)[TRIAL + CONFIG + ["diverged", "tasks_finished", "status"]]


def per_trial(final: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    """A per-trial number (a Series indexed by TRIAL) beside the trial's config and status."""
    return trials(final).merge(values.reset_index(), on=TRIAL)


def default_k(tasks: int) -> int:
    """Tasks per end of the robust degradation: ROBUST_K, at most a quarter of the stream, at least 1."""
    return max(1, min(ROBUST_K, tasks // 4))


def degradation(final: pd.DataFrame, k: int = 1) -> pd.DataFrame:
    """Relative accuracy drop per finished trial, in %: (Acc(0) - Acc(T)) / Acc(0) * 100 (paper, section 5.1).

    Acc(0) is the mean final-epoch test accuracy of the first k tasks and Acc(T) that of the last k;
    k = 1 is the paper's formula (first against last task), a larger k the robust variant.
    """
    done = final[final["status"] != "incomplete"]
    short = done[done["tasks"] < 2 * k]
    if not short.empty:
        raise ConfigError(f"degradation over the first and last k={k} tasks needs at least {2 * k} tasks; "
                          f"sweep {short['sweep'].iloc[0]} has {short['tasks'].min()}")
    first = done[done["task"] < k].groupby(TRIAL)["test_accuracy"].mean()
    last = done[done["task"] >= done["tasks"] - k].groupby(TRIAL)["test_accuracy"].mean()
    return per_trial(final, ((first - last) / first * 100).rename("degradation")).assign(k=k)


def average_accuracy(final: pd.DataFrame) -> pd.DataFrame:
    """<Acc>: the mean over tasks of the final-epoch test accuracy, per finished trial (paper, section 5.1)."""
    done = final[final["status"] != "incomplete"]
    return per_trial(final, done.groupby(TRIAL)["test_accuracy"].mean().rename("average_accuracy"))


Baseline = Callable[[Mapping[str, Any]], str]  # an arm's row (arm, model, stream, ...) -> its baseline arm's label


def default_baseline(arm: Mapping[str, Any]) -> str:
    """The label of a mitigation arm's baseline: the arm's `<model>-<stream>-` or `<model>-` prefix (mitigations,
    table1: `mlp-cbp` -> `mlp-baseline`) followed by `baseline`; without such a prefix `baseline` (fig4, fig5)."""
    for prefix in (f"{arm['model']}-{arm['stream']}-", f"{arm['model']}-"):
        if arm["arm"].startswith(prefix):
            return f"{prefix}baseline"
    return "baseline"


def with_baseline(arms: pd.DataFrame, baseline: Baseline) -> pd.DataFrame:
    """`arms` with a `baseline` column: `baseline(row)`, the label of each row's baseline arm."""
    labels = [baseline(row) for row in arms.to_dict("records")]
    return arms.assign(baseline=pd.Series(labels, index=arms.index, dtype=object))


def missing_baselines(final: pd.DataFrame, baseline: Baseline = default_baseline) -> list[str]:
    """One message per sweep whose mitigation arms name a baseline arm that the sweep lacks."""
    arms = final.drop_duplicates(["sweep", "arm"])
    wanted = with_baseline(arms[arms["mitigation"] != "none"], baseline)
    present = arms[["sweep", "arm"]].rename(columns={"arm": "baseline"})
    matched = wanted.merge(present, on=["sweep", "baseline"], how="left", indicator=True)
    lacking = matched[matched["_merge"] == "left_only"]
    return [f"sweep {sweep}: baseline arm {name!r} is missing, so the IAA of {', '.join(sorted(part['arm']))} "
            f"cannot be computed; run it with `lop sweep run {sweep} --arms {name}`"
            for (sweep, name), part in lacking.groupby(["sweep", "baseline"])]


def iaa(final: pd.DataFrame, baseline: Baseline = default_baseline) -> pd.DataFrame:
    """Increase in average accuracy of each mitigation arm over its baseline, in %, per replicate pair.

    IAA = (<Acc_m> - <Acc_base>) / <Acc_base> * 100 (paper, section 5.1), with <Acc_base> the baseline arm's
    trial of the same replicate (seed, stream_seed), so the two saw the same tasks in the same order.
    `baseline(row)` names the baseline arm of an arm's row (arm, model, stream, mitigation, hidden, seq_len, ...);
    a missing one raises `ConfigError`.
    """
    problems = missing_baselines(final, baseline)
    if problems:
        raise ConfigError("; ".join(problems))
    average = average_accuracy(final)
    treated = with_baseline(average[average["mitigation"] != "none"], baseline)
    base = average[["sweep", "arm", "seed", "stream_seed", "average_accuracy"]].rename(
        columns={"arm": "baseline", "average_accuracy": "baseline_accuracy"})
    pairs = treated.merge(base, on=["sweep", "baseline", "seed", "stream_seed"])
    pairs["iaa"] = (pairs["average_accuracy"] - pairs["baseline_accuracy"]) / pairs["baseline_accuracy"] * 100
    return pairs


def arm_summary(values: pd.DataFrame, column: str, status: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm) of `status` (from `trial_status`): mean, 95 % CI, method and n of a per-trial `column`
    of `values`, beside the arm's trial counts (`trials`, `complete`, `diverged`, `incomplete`); an arm with
    no finished trial has n = 0 and no mean."""
    counts = pd.crosstab([status["sweep"], status["arm"]], status["status"]).reindex(columns=list(STATUSES),
                                                                                 fill_value=0)
    counts = counts.assign(trials=counts.sum(axis=1)).reset_index()
    counts.columns.name = None
    arms = status.drop_duplicates(["sweep", "arm"])[["sweep", "arm"] + CONFIG]
    summary = arms.merge(counts, on=["sweep", "arm"]).merge(summarize(values, ["sweep", "arm"], column),
                                                            on=["sweep", "arm"], how="left")
    return summary.fillna({"n": 0}).astype({"n": int})


def task_curves(final: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm, task): mean, 95 % CI and n over replicates of the final-epoch test accuracy."""
    curves = summarize(final, ["sweep", "arm", "task"], "test_accuracy")
    return curves.merge(final.drop_duplicates(["sweep", "arm"])[["sweep", "arm", "model", "stream"]],
                        on=["sweep", "arm"])


def diagnostic_columns(records: pd.DataFrame) -> list[str]:
    """The diagnostics columns present in `records` with at least one value."""
    return [c for c in DIAGNOSTICS if c in records.columns and records[c].notna().any()]


def diagnostic_curves(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm, diagnostic, task): mean, 95 % CI and n over replicates of each diagnostic's value
    at the task's last epoch (`diagnostic` names the column)."""
    columns = diagnostic_columns(records)
    last = records[(records["epoch"] == records["epochs_per_task"] - 1) & ~records["diverged"]]
    long = last.melt(id_vars=["sweep", "arm", "model", "task"], value_vars=columns, var_name="diagnostic")
    curves = summarize(long, ["sweep", "arm", "diagnostic", "task"], "value")
    return curves.merge(long.drop_duplicates(["sweep", "arm"])[["sweep", "arm", "model"]], on=["sweep", "arm"])
