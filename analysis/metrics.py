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
Intervals over replicates come from analysis.stats (docs/analysis.md, "Confidence intervals").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from analysis import stats
from analysis.stats import LEVEL, SUMMARY_COLUMNS, summarize
from lopmodels.diagnostic_names import DIAGNOSTICS  # record columns on a task's last epoch (docs/records.md)
from lopmodels.errors import ConfigError
from sweeps.results import last_epoch
from trainables.config import SWITCHES, TrialConfig
from trainables.streams import accuracy_measure

TRIAL = ["sweep", "arm", "trial_id", "seed", "stream_seed"]
REPLICATE = ["seed", "stream_seed"]
CONFIG = ["model", "stream", "mitigation", "hidden", "seq_len", "tasks", "epochs_per_task"]
# TrialConfig fields that are not an arm's configuration: the replicate, where it ran, and the mitigation's
# fields (recorded as `mitigation.<field>` columns)
NOT_CONFIG = {"seed", "stream_seed", "device", "mitigation_args"}
DIAGNOSTIC_SCALES = {"dead_fraction": "fraction", "saturated_fraction": "fraction", "effective_rank": "nonnegative",
                     "stable_rank": "nonnegative", "weight_magnitude": "nonnegative", "grad_norm": "nonnegative"}
assert set(DIAGNOSTIC_SCALES) == set(DIAGNOSTICS), "every diagnostic needs the scale of its interval"
ROBUST_K = 5  # tasks per end in the robust degradation, at most a quarter of the stream
STATUSES = ("complete", "diverged", "incomplete")


def config_columns(frame: pd.DataFrame) -> list[str]:
    """The configuration columns `frame` holds: CONFIG, the other TrialConfig fields, then `mitigation.<field>`."""
    fields = [f.name for f in dataclasses.fields(TrialConfig) if f.name not in NOT_CONFIG and f.name not in CONFIG]
    mitigation = sorted(c for c in frame.columns if c.startswith("mitigation."))
    return [c for c in CONFIG + fields if c in frame.columns] + mitigation


def trial_status(records: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its config (`config_columns`), tasks finished, status `complete`, `diverged` or
    `incomplete`, and `steps_per_task` (the most of any task) where recorded."""
    finished = records[last_epoch(records) & ~records["diverged"]]
    aggregates = {"diverged": ("diverged", "any")}
    if "steps_per_task" in records.columns:
        aggregates["steps_per_task"] = ("steps_per_task", "max")
    trials = records.groupby(TRIAL + config_columns(records), sort=True, dropna=False, as_index=False).agg(
        **aggregates)
    done = finished.groupby(TRIAL, dropna=False).size().rename("tasks_finished").reset_index()
    trials = trials.merge(done, on=TRIAL, how="left").fillna({"tasks_finished": 0})
    trials["tasks_finished"] = trials["tasks_finished"].astype(int)
    trials["status"] = np.select([trials["diverged"], trials["tasks_finished"] >= trials["tasks"]],
                                 ["diverged", "complete"], "incomplete")
    return trials


def final_accuracy(records: pd.DataFrame) -> pd.DataFrame:
    """The final-epoch accuracy of every finished task, one row per trial x task, with its `chance`,
    1 / len(task_classes).

    `accuracy` is the stream's measure (`accuracy_measure`, named in `accuracy_of`): test accuracy on every
    stream of the paper; `test_accuracy` is kept beside it. A diverged trial's tasks from the one it diverged in
    to the stream's last are at chance, with `imputed` True. Trial columns: TRIAL, `config_columns`, `diverged`,
    `tasks_finished`, `status`.
    """
    measure = records["stream"].map(accuracy_measure) if "stream" in records.columns else "test_accuracy"
    on_train = measure == "train_accuracy"
    accuracy = records["test_accuracy"].where(~on_train, records.get("train_accuracy"))
    records = records.assign(chance=1.0 / records["task_classes"].map(len), accuracy=accuracy, accuracy_of=measure)
    kept = TRIAL + ["task", "accuracy", "accuracy_of", "test_accuracy", "chance"]
    finished = records.loc[last_epoch(records) & ~records["diverged"], kept].assign(imputed=False)
    broken = records[records["diverged"]].reset_index(drop=True)
    lost = broken.loc[broken.index.repeat(broken["tasks"] - broken["task"])]
    lost = lost.assign(task=lost["task"] + lost.groupby(level=0).cumcount(), test_accuracy=lost["chance"],
                       accuracy=lost["chance"], imputed=True)
    final = pd.concat([finished, lost[finished.columns]], ignore_index=True)
    final = final.merge(trial_status(records), on=TRIAL)
    return final.sort_values(TRIAL + ["task"]).reset_index(drop=True)


def trials(final: pd.DataFrame) -> pd.DataFrame:
    """One row per trial of `final_accuracy`: its ids, config and status."""
    extra = [c for c in ("steps_per_task",) if c in final.columns]
    return final.drop_duplicates(TRIAL)[TRIAL + config_columns(final) + extra + ["diverged", "tasks_finished",
                                                                                   "status"]]


def per_trial(final: pd.DataFrame, values: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Per-trial numbers (indexed by TRIAL) beside the trial's config and status."""
    return trials(final).merge(values.reset_index(), on=TRIAL)


def default_k(tasks: int) -> int:
    """Tasks per end of the robust degradation: ROBUST_K, at most a quarter of the stream, at least 1."""
    return max(1, min(ROBUST_K, tasks // 4))


def degradation(final: pd.DataFrame, k: int = 1, chance_corrected: bool = False) -> pd.DataFrame:
    """Relative accuracy drop per finished trial, in %: (Acc(0) - Acc(T)) / Acc(0) * 100 (paper, section 5.1).

    Acc(0) is the mean final-epoch test accuracy of the first k tasks (`first_accuracy`) and Acc(T) that of the
    last k (`last_accuracy`); k = 1 is the paper's formula (first against last task), a larger k the robust
    variant. `chance_corrected`: both accuracies above `chance` (1 / classes per task), as `stats.above_chance`
    clips them, so a collapse to chance is 100 % on every stream. Columns `k`, `chance_corrected` say which.
    """
    done = final[final["status"] != "incomplete"]
    short = done[done["tasks"] < 2 * k]
    if not short.empty:
        raise ConfigError(f"degradation over the first and last k={k} tasks needs at least {2 * k} tasks; "
                          f"sweep {short['sweep'].iloc[0]} has {short['tasks'].min()}")
    first = done[done["task"] < k].groupby(TRIAL)["accuracy"].mean()
    last = done[done["task"] >= done["tasks"] - k].groupby(TRIAL)["accuracy"].mean()
    chance = done.groupby(TRIAL)["chance"].first()
    shift = chance if chance_corrected else 0.0
    value = 100 * (1 - stats.above_chance(last, shift) / stats.above_chance(first, shift))
    parts = pd.DataFrame({"degradation": value, "first_accuracy": first, "last_accuracy": last, "chance": chance})
    return per_trial(final, parts).assign(k=k, chance_corrected=chance_corrected)


def average_accuracy(final: pd.DataFrame) -> pd.DataFrame:
    """<Acc>: the mean over tasks of the final-epoch test accuracy, per finished trial (paper, section 5.1)."""
    done = final[final["status"] != "incomplete"]
    return per_trial(final, done.groupby(TRIAL)["accuracy"].mean().rename("average_accuracy"))


def arms_of(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep, arm) of a per-trial or per-task frame: its label and configuration."""
    return frame.drop_duplicates(["sweep", "arm"])[["sweep", "arm"] + config_columns(frame)]


Summary = dict[str, float | str | int]
# (an arm's row: sweep, arm and its configuration; the arms of its sweep) -> the label of its baseline arm
Baseline = Callable[[Mapping[str, Any], pd.DataFrame], str]


def conventional_baseline(arm: Mapping[str, Any]) -> str:
    """The label the registered sweeps give an arm's baseline, for naming one that is missing: `<label>-reset`
    -> `<label>` (fig1-fig3), a `<model>-<stream>-` or `<model>-` prefix + `baseline` (mitigations, table1),
    else `baseline` (fig4, fig5)."""
    label = arm["arm"]
    if arm["mitigation"] == "reset" and label.endswith("-reset"):
        return label[: -len("-reset")]
    for prefix in (f"{arm['model']}-{arm['stream']}-", f"{arm['model']}-"):
        if label.startswith(prefix):
            return f"{prefix}baseline"
    return "baseline"


def same_value(column: pd.Series, value: Any) -> pd.Series:
    """column == value, with a missing value equal to a missing value."""
    return (column == value) | (column.isna() & pd.isna(value))


def default_baseline(arm: Mapping[str, Any], arms: pd.DataFrame) -> str:
    """The baseline of a mitigation arm: the unmitigated arm (mitigation `none`) of the same sweep whose config
    equals the arm's in every field but the mitigation and its `mitigation.<field>`s. None: the conventional
    label (`conventional_baseline`) to name as missing; `ConfigError` where that label is an arm of another
    config, or where several arms match."""
    shared = [c for c in config_columns(arms) if c != "mitigation" and not c.startswith("mitigation.")]
    match = (arms["sweep"] == arm["sweep"]) & (arms["mitigation"] == "none") & (arms["arm"] != arm["arm"])
    for column in shared:
        match &= same_value(arms[column], arm.get(column))
    found = sorted(arms.loc[match, "arm"])
    if len(found) > 1:
        raise ConfigError(f"sweep {arm['sweep']}: arm {arm['arm']} has {len(found)} unmitigated arms of its config "
                          f"({', '.join(found)}); pass `baseline=` to name the one to compare with")
    if found:
        return found[0]
    label = conventional_baseline(arm)
    namesake = arms[(arms["sweep"] == arm["sweep"]) & (arms["arm"] == label)]
    if not namesake.empty:
        other = namesake.iloc[0]
        differ = [f"{c} {arm.get(c)} vs {other[c]}" for c in shared if not same_value(namesake[c], arm.get(c)).all()]
        raise ConfigError(f"sweep {arm['sweep']}: arm {arm['arm']} has no unmitigated arm of its config; arm "
                          f"{label!r} differs in {', '.join(differ) or 'its mitigation'}; run an unmitigated arm "
                          "of the same config or pass `baseline=`")
    return label


def switched_on(arm: Mapping[str, Any]) -> dict[str, Any]:
    """The protocol switches (`SWITCHES`: the reference code's faults, step matching) that an arm's row sets away
    from their correct defaults, {field: value}; a switch missing from older records counts as its default."""
    return {name: arm[name] for name, switch in SWITCHES.items()
            if name in arm and not pd.isna(arm[name]) and arm[name] != switch.values[0]}


def correct_arms(arm: Mapping[str, Any], arms: pd.DataFrame) -> list[str]:
    """The arms of `arm`'s sweep that run the correct protocol (every switch at its default) in a configuration
    otherwise equal to `arm`'s, mitigation included; epochs per task may differ where `arm` matches steps,
    since that is what step matching changes."""
    ignored = set(SWITCHES) | ({"epochs_per_task"} if "match_steps" in switched_on(arm) else set())
    match = (arms["sweep"] == arm["sweep"]) & (arms["arm"] != arm["arm"])
    for column in config_columns(arms):
        if column not in ignored:
            match &= same_value(arms[column], arm.get(column))
    for name, switch in SWITCHES.items():
        if name in arms.columns:
            match &= arms[name].isna() | (arms[name] == switch.values[0])
    return sorted(arms.loc[match, "arm"])


def with_baseline(arms: pd.DataFrame, baseline: Baseline, among: pd.DataFrame | None = None) -> pd.DataFrame:
    """`arms` with a `baseline` column: `baseline(row, arms of its sweep)`, the label of each row's baseline
    arm, looked up among `among` (default: `arms`)."""
    among = arms if among is None else among
    labels = [baseline(row, among[among["sweep"] == row["sweep"]]) for row in arms.to_dict("records")]
    return arms.assign(baseline=pd.Series(labels, index=arms.index, dtype=object))


def baseline_problems(final: pd.DataFrame, baseline: Baseline) -> tuple[pd.DataFrame, list[str]]:
    """The mitigation arms with a `baseline` column (`present`: the sweep has that arm), and one message per
    sweep whose mitigation arms name a baseline arm that the sweep lacks or more than one."""
    arms = arms_of(final)
    treated, problems = arms[arms["mitigation"] != "none"], []
    labels = []
    for row in treated.to_dict("records"):
        try:
            labels.append(baseline(row, arms[arms["sweep"] == row["sweep"]]))
        except ConfigError as error:
            problems.append(str(error))
            labels.append(None)
    wanted = treated.assign(baseline=pd.Series(labels, index=treated.index, dtype=object))
    present = arms[["sweep", "arm"]].rename(columns={"arm": "baseline"})
    matched = wanted.merge(present, on=["sweep", "baseline"], how="left", indicator=True)
    matched["present"] = matched["_merge"] == "both"
    lacking = matched[~matched["present"] & matched["baseline"].notna()]
    problems += [f"sweep {sweep}: baseline arm {name!r} is missing, so the IAA of {', '.join(sorted(part['arm']))} "
                 f"cannot be computed; run it with `lop sweep run {sweep} --arms {name}`"
                 for (sweep, name), part in lacking.groupby(["sweep", "baseline"])]
    return matched.drop(columns="_merge"), problems


def missing_baselines(final: pd.DataFrame, baseline: Baseline = default_baseline) -> list[str]:
    """One message per sweep whose mitigation arms name a baseline arm that the sweep lacks (or several)."""
    return baseline_problems(final, baseline)[1]


def iaa(final: pd.DataFrame, baseline: Baseline = default_baseline) -> pd.DataFrame:
    """Each mitigation arm's average accuracy beside its baseline arm's, per replicate pair, and the pair's IAA.

    IAA = (<Acc_m> - <Acc_base>) / <Acc_base> * 100 (paper, section 5.1), with <Acc_base> the baseline arm's
    trial of the same replicate (seed, stream_seed), so the two saw the same tasks in the same order. The per-pair
    `iaa` is for display; an arm's IAA is the ratio of the means (`iaa_summary`). `baseline(row, arms)` names the
    baseline arm of an arm's row; a missing one raises `ConfigError`.
    """
    problems = missing_baselines(final, baseline)
    if problems:
        raise ConfigError("; ".join(problems))
    average = average_accuracy(final)
    treated = with_baseline(average[average["mitigation"] != "none"], baseline, arms_of(final))
    base = average[["sweep", "arm"] + REPLICATE + ["average_accuracy"]].rename(
        columns={"arm": "baseline", "average_accuracy": "baseline_accuracy"})
    pairs = treated.merge(base, on=["sweep", "baseline"] + REPLICATE)
    pairs["iaa"] = (pairs["average_accuracy"] - pairs["baseline_accuracy"]) / pairs["baseline_accuracy"] * 100
    return pairs


def by_arm(values: pd.DataFrame, interval: Callable[[pd.DataFrame], Summary],
           keys: tuple[str, ...] = ("sweep", "arm")) -> pd.DataFrame:
    """One row per group of `keys` in `values`: `interval(the group's rows)`, a summary dict."""
    rows = [{**dict(zip(keys, key)), **interval(part)}
            for key, part in values.groupby(list(keys), sort=True, dropna=False)]
    return pd.DataFrame(rows, columns=list(keys) + SUMMARY_COLUMNS).astype({"n": int})


def chance_of(rows: pd.DataFrame, column: str = "chance") -> np.ndarray | float:
    """The chance the rows of a `degradation` frame are corrected for: their `column`, or 0 uncorrected."""
    return rows[column].to_numpy() if rows["chance_corrected"].any() else 0.0


def degradation_summary(final: pd.DataFrame, k: int = 1, chance_corrected: bool = False,
                        level: float = LEVEL) -> pd.DataFrame:
    """Per (sweep, arm): `stats.degradation_interval` over the arm's finished replicates."""
    values = degradation(final, k, chance_corrected)
    return by_arm(values, lambda rows: stats.degradation_interval(rows["first_accuracy"], rows["last_accuracy"],
                                                                  chance_of(rows), level))


def average_summary(final: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per (sweep, arm): the mean over replicates of the average accuracy, logit interval."""
    return by_arm(average_accuracy(final),
                  lambda rows: stats.mean_interval(rows["average_accuracy"], "fraction", level))


def iaa_summary(final: pd.DataFrame, baseline: Baseline = default_baseline, level: float = LEVEL) -> pd.DataFrame:
    """Per mitigation arm: the IAA of the paper's formula, 100 (mean <Acc_m> / mean <Acc_base> - 1) over the
    replicate pairs, with the paired log-ratio interval; `average_accuracy`, `baseline_accuracy`: the two means."""
    pairs = iaa(final, baseline)
    summary = by_arm(pairs, lambda rows: stats.paired_ratio_interval(rows["average_accuracy"],
                                                                     rows["baseline_accuracy"], level),
                     ("sweep", "arm", "baseline"))
    means = pairs.groupby(["sweep", "arm"], as_index=False)[["average_accuracy", "baseline_accuracy"]].mean()
    return summary.merge(means, on=["sweep", "arm"], how="left")


def arm_difference(degradations: pd.DataFrame, sweep: str, arm: str, other: str, other_sweep: str | None = None,
                   level: float = LEVEL) -> Summary:
    """Degradation of `arm` minus that of `other` (of `other_sweep`, default the same sweep), in percentage
    points, over the replicates both finished, paired by (seed, stream_seed): `stats.degradation_difference_interval`
    on rows of a `degradation` frame (its k and chance correction)."""
    a = degradations[(degradations["sweep"] == sweep) & (degradations["arm"] == arm)]
    b = degradations[(degradations["sweep"] == (other_sweep or sweep)) & (degradations["arm"] == other)]
    pairs = a.merge(b, on=REPLICATE, suffixes=("", "_other"))
    return stats.degradation_difference_interval(
        pairs["first_accuracy"], pairs["last_accuracy"], pairs["first_accuracy_other"], pairs["last_accuracy_other"],
        chance_of(pairs), chance_of(pairs, "chance_other"), level)


def baseline_differences(final: pd.DataFrame, degradations: pd.DataFrame,
                         baseline: Baseline = default_baseline, level: float = LEVEL) -> pd.DataFrame:
    """Per mitigation arm whose baseline arm is present: its degradation minus its baseline's (`arm_difference`
    on `degradations`), with `baseline`; arms without a present baseline are left out."""
    wanted, _ = baseline_problems(final, baseline)
    rows = [{"sweep": row["sweep"], "arm": row["arm"], "baseline": row["baseline"],
             **arm_difference(degradations, row["sweep"], row["arm"], row["baseline"], level=level)}
            for row in wanted[wanted["present"]].to_dict("records")]
    return pd.DataFrame(rows, columns=["sweep", "arm", "baseline"] + SUMMARY_COLUMNS).astype({"n": int})


def arm_counts(status: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm) of `status` (from `trial_status`): its configuration (and `steps_per_task` where
    recorded) and trial counts `trials`, `complete`, `diverged`, `incomplete`."""
    counts = pd.crosstab([status["sweep"], status["arm"]], status["status"]).reindex(columns=list(STATUSES),
                                                                                 fill_value=0)
    counts = counts.assign(trials=counts.sum(axis=1)).reset_index()
    counts.columns.name = None
    extra = [c for c in ("steps_per_task",) if c in status.columns]
    arms = status.drop_duplicates(["sweep", "arm"])[["sweep", "arm"] + config_columns(status) + extra]
    return arms.merge(counts, on=["sweep", "arm"])


def arm_summary(summary: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """A per-(sweep, arm) `summary` (from `by_arm` and the `*_summary` functions) beside the arm's configuration
    and trial counts (`arm_counts`); an arm with no finished trial has n = 0 and no mean."""
    merged = arm_counts(status).merge(summary, on=["sweep", "arm"], how="left")
    return merged.fillna({"n": 0}).astype({"n": int})


def task_curves(final: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per (sweep, arm, task): mean, CI (logit scale, inside [0, 1]) and n over replicates of the final-epoch
    accuracy (the stream's measure: test accuracy but on random labels)."""
    curves = summarize(final, ["sweep", "arm", "task"], "accuracy", "fraction", level)
    return curves.merge(final.drop_duplicates(["sweep", "arm"])[["sweep", "arm", "model", "stream"]],
                        on=["sweep", "arm"])


def diagnostic_columns(records: pd.DataFrame) -> list[str]:
    """The diagnostics columns present in `records` with at least one value."""
    return [c for c in DIAGNOSTICS if c in records.columns and records[c].notna().any()]


def diagnostic_values(records: pd.DataFrame) -> pd.DataFrame:
    """Each diagnostic's value at every task's last epoch, one row per trial x diagnostic x task (`diagnostic`
    names the column, `value` holds it)."""
    columns = diagnostic_columns(records)
    last = records[last_epoch(records) & ~records["diverged"]]
    long = last.melt(id_vars=["sweep", "arm", "model", "trial_id", "seed", "task"], value_vars=columns,
                     var_name="diagnostic")
    return long.dropna(subset=["value"])


def diagnostic_curves(records: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per (sweep, arm, diagnostic, task): mean, CI and n over replicates of each diagnostic at the task's last
    epoch; fractions on the logit scale, ranks and norms on the log scale (DIAGNOSTIC_SCALES)."""
    long = diagnostic_values(records)
    if long.empty:
        return pd.DataFrame(columns=["sweep", "arm", "diagnostic", "task"] + SUMMARY_COLUMNS + ["model"])
    curves = pd.concat([summarize(part, ["sweep", "arm", "diagnostic", "task"], "value", DIAGNOSTIC_SCALES[name],
                                  level) for name, part in long.groupby("diagnostic", sort=False)],
                       ignore_index=True)
    return curves.merge(long.drop_duplicates(["sweep", "arm"])[["sweep", "arm", "model"]], on=["sweep", "arm"])
