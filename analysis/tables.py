"""The degradation table and Table 1 (IAA per model x mitigation arm): our estimate, its interval, the interval's
method, n and diverged/incomplete trial counts beside the paper's reported figure where the configuration is the
paper's (analysis/paper.py; else what differs); CSV and markdown.

The CSV holds the numbers; the markdown the same rows formatted for reading, with notes under the table.
"""
from __future__ import annotations

from pathlib import Path
import pandas as pd

from analysis import paper, stats
from analysis.metrics import (REPLICATE, Baseline, Summary, arm_difference, arm_summary, arms_of, average_accuracy,
                              average_summary, baseline_differences, correct_arms, default_baseline, default_k,
                              degradation, degradation_summary, final_accuracy, iaa_summary, switched_on,
                              trial_status)

INTERVAL = ["mean", "ci_low", "ci_high"]
ARM = ["sweep", "arm", "model", "stream", "mitigation", "hidden", "seq_len", "tasks", "epochs_per_task"]
COUNTS = ["ci_method", "n", "trials", "complete", "diverged", "incomplete"]
DEGRADATION_COLUMNS = [
    "degradation", "degradation_ci_low", "degradation_ci_high", "robust_k",
    "robust_degradation", "robust_ci_low", "robust_ci_high",
    "corrected_degradation", "corrected_ci_low", "corrected_ci_high",
    "baseline", "difference", "difference_ci_low", "difference_ci_high", "difference_ci_method",
    "average_accuracy", "average_ci_low", "average_ci_high", "average_ci_method"]


def renamed(summary: pd.DataFrame, name: str, prefix: str, method: bool = False) -> pd.DataFrame:
    """sweep, arm and a summary's interval as `<name>`, `<prefix>_ci_low`, `<prefix>_ci_high` (and its method)."""
    columns = {"mean": name, "ci_low": f"{prefix}_ci_low", "ci_high": f"{prefix}_ci_high",
               "ci_method": f"{prefix}_ci_method"}
    kept = ["sweep", "arm"] + INTERVAL + (["ci_method"] if method else [])
    return summary[kept].rename(columns=columns)


def per_sweep(final: pd.DataFrame, ks: pd.Series, chance_corrected: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The robust degradation at each sweep's k: per-trial rows and per-arm summaries."""
    parts = [(degradation(part, ks[sweep], chance_corrected), degradation_summary(part, ks[sweep], chance_corrected))
             for sweep, part in final.groupby("sweep")]
    return pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True)


def paper_columns(reported: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """`paper` and `paper_note` from `paper.reported_*`: a DataFrame of both, or (older) a Series of values."""
    if isinstance(reported, pd.Series):
        return pd.DataFrame({"paper": reported, "paper_note": ""}, index=reported.index)
    return reported[["paper", "paper_note"]]


def degradation_table(records: pd.DataFrame, baseline: Baseline = default_baseline) -> pd.DataFrame:
    """Per (sweep, arm): accuracy degradation in % by the paper's formula (first vs last task), robust (mean of the
    first k vs the last k tasks, k = `default_k(tasks)`), and robust above chance (which decides degradation
    claims), each the ratio of the replicates' mean accuracies with its paired log-ratio interval; for mitigation
    arms, the robust above-chance degradation minus the baseline arm's (percentage points, paired by replicate);
    the average accuracy (mean over tasks, a fraction); the paper's value where the configuration is its own."""
    final, status = final_accuracy(records), trial_status(records)
    ks = status.groupby("sweep")["tasks"].min().map(default_k)
    table = arm_summary(degradation_summary(final), status).rename(
        columns={"mean": "degradation", "ci_low": "degradation_ci_low", "ci_high": "degradation_ci_high"})
    robust = per_sweep(final, ks, chance_corrected=False)[1]
    corrected_trials, corrected = per_sweep(final, ks, chance_corrected=True)
    difference = baseline_differences(final, corrected_trials, baseline)
    difference = renamed(difference, "difference", "difference", method=True).merge(
        difference[["sweep", "arm", "baseline"]], on=["sweep", "arm"])
    table = (table.merge(renamed(robust, "robust_degradation", "robust"), on=["sweep", "arm"], how="left")
             .merge(renamed(corrected, "corrected_degradation", "corrected"), on=["sweep", "arm"], how="left")
             .merge(difference, on=["sweep", "arm"], how="left")
             .merge(renamed(average_summary(final), "average_accuracy", "average", method=True),
                    on=["sweep", "arm"], how="left"))
    table["robust_k"] = table["sweep"].map(ks)
    table = pd.concat([table, paper_columns(paper.reported_degradation(table))], axis=1)
    return table[ARM + DEGRADATION_COLUMNS + COUNTS + ["paper", "paper_note"]]


def iaa_table(records: pd.DataFrame, baseline: Baseline = default_baseline) -> pd.DataFrame:
    """Table 1: per mitigation arm (every L2 strength its own row), the IAA in % over the baseline arm of the
    same replicates by the paper's formula, the ratio of the two arms' mean accuracies over replicate pairs, with
    its paired log-ratio interval (n = pairs), beside the paper's value. A mitigation arm whose baseline arm is
    missing raises `ConfigError` naming it."""
    summary = arm_summary(iaa_summary(final_accuracy(records), baseline), trial_status(records))
    table = summary[summary["mitigation"] != "none"].rename(
        columns={"mean": "iaa", "ci_low": "iaa_ci_low", "ci_high": "iaa_ci_high"})
    table = pd.concat([table, paper_columns(paper.reported_iaa(table))], axis=1)
    return table[ARM + ["baseline", "average_accuracy", "baseline_accuracy", "iaa", "iaa_ci_low", "iaa_ci_high"]
                 + COUNTS + ["paper", "paper_note"]]


SWITCH_COLUMNS = ["sweep", "arm", "model", "stream", "switched", "correct", "average_accuracy",
                  "correct_accuracy", "change", "change_ci_low", "change_ci_high", "change_ci_method",
                  "difference", "difference_ci_low", "difference_ci_high", "difference_ci_method", "n"]


def switch_table(records: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per arm that switches on a protocol switch (one of the reference code's faults, or step matching), its
    effect against the arm of the same sweep and configuration on the correct protocol, paired by replicate:
    the change in average accuracy in % (the IAA's ratio of mean accuracies, the correct arm as baseline) and
    the robust above-chance degradation minus the correct arm's, in points; and one line per switched arm with
    several correct arms to compare with (left out). An arm with none is left out silently: the sweep has no
    correct-protocol arm of its configuration, or its trials have one task (no degradation)."""
    final, status = final_accuracy(records), trial_status(records)
    tasks = status.groupby("sweep")["tasks"].min()
    final = final[final["sweep"].map(tasks) >= 2]
    arms = arms_of(final)
    switched = [(arm, switches) for arm in arms.to_dict("records") if (switches := switched_on(arm))]
    if not switched:
        return pd.DataFrame(columns=SWITCH_COLUMNS), []
    average = average_accuracy(final)
    corrected = per_sweep(final, tasks.map(default_k), chance_corrected=True)[0]
    rows, problems = [], []
    for arm, switches in switched:
        found = correct_arms(arm, arms[arms["sweep"] == arm["sweep"]])
        if len(found) > 1:
            problems.append(f"sweep {arm['sweep']}: arm {arm['arm']} has {len(found)} correct-protocol arms of its "
                            f"configuration ({', '.join(found)}), so its switches are compared with none")
        if len(found) != 1:
            continue
        pairs = arm_average(average, arm["sweep"], arm["arm"]).merge(
            arm_average(average, arm["sweep"], found[0]), on=REPLICATE, suffixes=("", "_correct"))
        change = stats.paired_ratio_interval(pairs["average_accuracy"], pairs["average_accuracy_correct"])
        difference = arm_difference(corrected, arm["sweep"], arm["arm"], found[0])
        rows.append({"sweep": arm["sweep"], "arm": arm["arm"], "model": arm["model"], "stream": arm["stream"],
                     "switched": ", ".join(f"{name}={value}" for name, value in switches.items()),
                     "correct": found[0], "average_accuracy": pairs["average_accuracy"].mean(),
                     "correct_accuracy": pairs["average_accuracy_correct"].mean(),
                     **interval_columns(change, "change"), **interval_columns(difference, "difference"),
                     "n": change["n"]})
    return pd.DataFrame(rows, columns=SWITCH_COLUMNS), problems


def arm_average(average: pd.DataFrame, sweep: str, arm: str) -> pd.DataFrame:
    """The rows of one arm of an `average_accuracy` frame."""
    return average[(average["sweep"] == sweep) & (average["arm"] == arm)]


def interval_columns(summary: Summary, prefix: str) -> Summary:
    """A summary's interval and method as `<prefix>`, `<prefix>_ci_low`, `<prefix>_ci_high`, `<prefix>_ci_method`."""
    return {prefix: summary["mean"], f"{prefix}_ci_low": summary["ci_low"], f"{prefix}_ci_high": summary["ci_high"],
            f"{prefix}_ci_method": summary["ci_method"]}


def interval_text(mean: pd.Series, low: pd.Series, high: pd.Series, digits: int = 1) -> list[str]:
    """`61.2 [55.0, 67.4]`; the mean alone where there is no interval (n < 2), `-` where there is no mean."""
    return ["-" if pd.isna(m) else f"{m:.{digits}f}" if pd.isna(lo)
            else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" for m, lo, hi in zip(mean, low, high)]


def counts_text(table: pd.DataFrame) -> dict[str, pd.Series]:
    """The replicate columns every table shows: CI method, n, diverged and incomplete trials."""
    return {"CI method": table["ci_method"].fillna("-"), "n": table["n"], "diverged": table["diverged"],
            "incomplete": table["incomplete"]}


def paper_text(values: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else f"{v:.2f}" for v in values]


def degradation_display(table: pd.DataFrame) -> pd.DataFrame:
    """The degradation table formatted for reading."""
    return pd.DataFrame({
        "sweep": table["sweep"], "arm": table["arm"], "model": table["model"].str.upper(), "stream": table["stream"],
        "first vs last task, % (95 % CI)": interval_text(table["degradation"], table["degradation_ci_low"],
                                                         table["degradation_ci_high"]),
        "k": table["robust_k"],
        "first k vs last k tasks, % (95 % CI)": interval_text(table["robust_degradation"], table["robust_ci_low"],
                                                              table["robust_ci_high"]),
        "above chance, first k vs last k, % (95 % CI)": interval_text(
            table["corrected_degradation"], table["corrected_ci_low"], table["corrected_ci_high"]),
        "minus baseline (above chance), points (95 % CI)": [
            "" if pd.isna(b) else f"{text} vs {b}" for text, b in zip(
                interval_text(table["difference"], table["difference_ci_low"], table["difference_ci_high"]),
                table["baseline"])],
        "average accuracy (95 % CI)": interval_text(table["average_accuracy"], table["average_ci_low"],
                                                    table["average_ci_high"], digits=3),
        **counts_text(table), "paper, %": paper_text(table["paper"]), "paper's note": table["paper_note"],
    })


def iaa_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 formatted for reading."""
    return pd.DataFrame({
        "sweep": table["sweep"], "model": table["model"].str.upper(), "arm": table["arm"],
        "mitigation": table["mitigation"], "baseline": table["baseline"],
        "mean accuracy, arm / baseline": [f"{a:.3f} / {b:.3f}" for a, b in zip(table["average_accuracy"],
                                                                              table["baseline_accuracy"])],
        "IAA, % (95 % CI)": interval_text(table["iaa"], table["iaa_ci_low"], table["iaa_ci_high"]),
        **counts_text(table), "paper, %": paper_text(table["paper"]), "paper's note": table["paper_note"],
    })


def switch_display(table: pd.DataFrame) -> pd.DataFrame:
    """The protocol switches' table formatted for reading."""
    return pd.DataFrame({
        "sweep": table["sweep"], "arm": table["arm"], "model": table["model"].str.upper(), "stream": table["stream"],
        "switched on": table["switched"], "correct arm": table["correct"],
        "mean accuracy, arm / correct": ["-" if pd.isna(a) or pd.isna(b) else f"{a:.3f} / {b:.3f}"
                                         for a, b in zip(table["average_accuracy"], table["correct_accuracy"])],
        "change in average accuracy, % (95 % CI)": interval_text(table["change"], table["change_ci_low"],
                                                                 table["change_ci_high"]),
        "degradation above chance minus the correct arm's, points (95 % CI)": interval_text(
            table["difference"], table["difference_ci_low"], table["difference_ci_high"]),
        "n": table["n"],
    })


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of `frame`'s cells as text (`|` in a cell escaped, a missing value blank)."""
    cells = frame.astype(str).fillna("").apply(lambda column: column.str.replace("|", "\\|"))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ("| " + cells.agg(" | ".join, axis=1) + " |").tolist()) + "\n"


DEGRADATION_NOTES = (
    "Degradation = (Acc(0) - Acc(T)) / Acc(0) x 100 (paper, section 5.1), Acc the final-epoch test accuracy, "
    "of the arm's mean accuracies: 100 x (1 - mean Acc(T) / mean Acc(0)) over replicates; the robust variant "
    "averages the first k and the last k tasks; above chance, both accuracies less chance (10 % on 10-class "
    f"tasks, 50 % on binary ones), clipped at {stats.FLOOR:g}, so a collapse to chance is close to 100 % on "
    "every stream: the robust above-chance degradation decides the degradation claims.",
    f"95 % CI: {stats.RATIO_METHOD} (upper bound below 100 %); average accuracy: "
    f"{stats.SCALE_METHODS['fraction']} (inside [0, 1]).",
    "Minus baseline: the arm's robust above-chance degradation minus its baseline arm's (unmitigated, same "
    "config), in percentage points over the replicates both finished, paired by seed: "
    f"{stats.PSEUDO_DIFFERENCE_METHOD}; below 0: the mitigation degrades less.",
    "n: replicates that finished every task or diverged; a diverged trial counts at chance accuracy from "
    "the task it diverged in; incomplete trials are left out of the means and counted.",
    "Paper: section 5.2, one seed, beside unmitigated arms with the paper's configuration (model, stream, hidden "
    "size, sequence length, tasks and epochs per task); elsewhere the note says what differs.",
)
IAA_NOTES = (
    "IAA = (<Acc_m> - <Acc_base>) / <Acc_base> x 100 (paper, section 5.1), <.> the mean over tasks of the "
    "final-epoch test accuracy, here the ratio of the two arms' means over the replicate pairs (the baseline "
    "arm's trial of the same seed): 100 x (mean <Acc_m> / mean <Acc_base> - 1).",
    f"95 % CI: {stats.RATIO_METHOD} (lower bound above -100 %); n: replicate pairs in which both trials "
    "finished (or diverged).",
    "The paper's shrink-and-perturb is our `noise` mitigation; `shrink-perturb` arms (Ash & Adams) have no "
    "paper counterpart.",
    *paper.INCONSISTENCIES,
)


SWITCH_NOTES = (
    "Each arm that switches on one of the reference code's faults (or step matching, docs/protocols.md) beside "
    "the arm of the same sweep and configuration that runs the correct protocol, paired by replicate (the same "
    "seeds: the same tasks in the same order, unless the switch changes how tasks are drawn); n: replicate "
    "pairs in which both trials finished.",
    "Change in average accuracy = 100 x (mean <Acc_arm> / mean <Acc_correct> - 1), the IAA's formula with the "
    f"correct arm as baseline; 95 % CI: {stats.RATIO_METHOD} (lower bound above -100 %).",
    "Degradation minus the correct arm's: the robust degradation above chance (first k vs last k tasks, as in "
    f"the degradation table), in percentage points; 95 % CI: {stats.PSEUDO_DIFFERENCE_METHOD}; above 0: the "
    "switch makes the arm degrade more.",
)


def write_table(table: pd.DataFrame, display: pd.DataFrame, title: str, notes: tuple[str, ...],
                stem: Path) -> list[Path]:
    """STEM.csv (the numbers) and STEM.md (title, the formatted table, notes)."""
    csv, md = stem.parent / f"{stem.name}.csv", stem.parent / f"{stem.name}.md"
    table.to_csv(csv, index=False)
    md.write_text(f"# {title}\n\n{markdown(display)}\n" + "".join(f"- {note}\n" for note in notes))
    return [csv, md]
