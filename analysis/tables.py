"""The degradation table and Table 1 (IAA per model x mitigation arm): our mean, 95 % CI, its method, n and
diverged/incomplete trial counts beside the paper's reported figure (analysis/paper.py); CSV and markdown.

The CSV holds the numbers; the markdown the same rows formatted for reading, with notes under the table.
"""
from __future__ import annotations

from pathlib import Path
import pandas as pd

from analysis import paper
from analysis.metrics import (Baseline, arm_summary, average_accuracy, default_baseline, default_k, degradation,
                              final_accuracy, iaa, trial_status, with_baseline)

INTERVAL = ["mean", "ci_low", "ci_high"]
ARM = ["sweep", "arm", "model", "stream", "mitigation", "hidden", "seq_len", "tasks"]
COUNTS = ["ci_method", "n", "trials", "complete", "diverged", "incomplete"]


def degradation_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm): accuracy degradation in % by the paper's formula (first vs last task) and robust
    (mean of the first k vs the last k tasks, k = `default_k(tasks)`), each a mean with its 95 % CI, beside
    the paper's value for the arms it describes, and the average accuracy (mean over tasks, a fraction)."""
    final, status = final_accuracy(records), trial_status(records)
    ks = status.groupby("sweep")["tasks"].min().map(default_k)
    first_last = arm_summary(degradation(final), "degradation", status)
    robust = pd.concat([degradation(part, ks[sweep]) for sweep, part in final.groupby("sweep")])
    robust = arm_summary(robust, "degradation", status)[["sweep", "arm"] + INTERVAL]
    table = first_last.rename(columns={"mean": "degradation", "ci_low": "degradation_ci_low",
                                       "ci_high": "degradation_ci_high"})
    table = table.merge(robust.rename(columns={"mean": "robust_degradation", "ci_low": "robust_ci_low",
                                               "ci_high": "robust_ci_high"}), on=["sweep", "arm"])
    average = arm_summary(average_accuracy(final), "average_accuracy", status)[["sweep", "arm"] + INTERVAL]
    table = table.merge(average.rename(columns={"mean": "average_accuracy", "ci_low": "average_ci_low",
                                                "ci_high": "average_ci_high"}), on=["sweep", "arm"])
    table["robust_k"] = table["sweep"].map(ks)
    table["paper"] = paper.reported_degradation(table)
    return table[ARM + ["degradation", "degradation_ci_low", "degradation_ci_high", "robust_k",
                        "robust_degradation", "robust_ci_low", "robust_ci_high", "average_accuracy",
                        "average_ci_low", "average_ci_high"] + COUNTS + ["paper"]]


def iaa_table(records: pd.DataFrame, baseline: Baseline = default_baseline) -> pd.DataFrame:
    """Table 1: per mitigation arm (every L2 strength its own row), the IAA in % over the baseline arm of the
    same replicates, mean with its 95 % CI over replicate pairs (n = pairs), beside the paper's value.
    A mitigation arm whose baseline arm is missing raises `ConfigError` naming it."""
    summary = arm_summary(iaa(final_accuracy(records), baseline), "iaa", trial_status(records))
    table = with_baseline(summary[summary["mitigation"] != "none"], baseline)
    table = table.rename(columns={"mean": "iaa", "ci_low": "iaa_ci_low", "ci_high": "iaa_ci_high"})
    table = pd.concat([table, paper.reported_iaa(table)], axis=1)
    return table[ARM + ["baseline", "iaa", "iaa_ci_low", "iaa_ci_high"] + COUNTS + ["paper", "paper_note"]]


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
    robust_header = "first k vs last k tasks, % (95 % CI)"
    return pd.DataFrame({
        "sweep": table["sweep"], "arm": table["arm"], "model": table["model"].str.upper(), "stream": table["stream"],
        "first vs last task, % (95 % CI)": interval_text(table["degradation"], table["degradation_ci_low"],
                                                         table["degradation_ci_high"]),
        "k": table["robust_k"],
        robust_header: interval_text(table["robust_degradation"], table["robust_ci_low"], table["robust_ci_high"]),
        "average accuracy (95 % CI)": interval_text(table["average_accuracy"], table["average_ci_low"],
                                                    table["average_ci_high"], digits=3),
        **counts_text(table), "paper, %": paper_text(table["paper"]),
    })


def iaa_display(table: pd.DataFrame) -> pd.DataFrame:
    """Table 1 formatted for reading."""
    return pd.DataFrame({
        "sweep": table["sweep"], "model": table["model"].str.upper(), "arm": table["arm"],
        "mitigation": table["mitigation"], "baseline": table["baseline"],
        "IAA, % (95 % CI)": interval_text(table["iaa"], table["iaa_ci_low"], table["iaa_ci_high"]),
        **counts_text(table), "paper, %": paper_text(table["paper"]), "paper's note": table["paper_note"],
    })


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of `frame`'s cells as text (`|` in a cell escaped)."""
    cells = frame.astype(str).apply(lambda column: column.str.replace("|", "\\|"))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ("| " + cells.agg(" | ".join, axis=1) + " |").tolist()) + "\n"


DEGRADATION_NOTES = (
    "Degradation = (Acc(0) - Acc(T)) / Acc(0) x 100 (paper, section 5.1), Acc the final-epoch test accuracy; "
    "the robust variant averages the first k and the last k tasks.",
    "n: replicates that finished every task or diverged; a diverged trial counts at chance accuracy from "
    "the task it diverged in; incomplete trials are left out of the means and counted.",
    "Paper: section 5.2, one seed, for unmitigated arms at its sizes (hidden 25 for MLP and LSTM; GRU hidden 64 "
    "at sequence length 50).",
)
IAA_NOTES = (
    "IAA = (<Acc_m> - <Acc_base>) / <Acc_base> x 100 (paper, section 5.1), <.> the mean over tasks of the "
    "final-epoch test accuracy, computed per replicate against the baseline arm's trial of the same seed; "
    "n: replicate pairs in which both trials finished (or diverged).",
    "The paper's shrink-and-perturb is our `noise` mitigation; `shrink-perturb` arms (Ash & Adams) have no "
    "paper counterpart.",
    *paper.INCONSISTENCIES,
)


def write_table(table: pd.DataFrame, display: pd.DataFrame, title: str, notes: tuple[str, ...],
                stem: Path) -> list[Path]:
    """STEM.csv (the numbers) and STEM.md (title, the formatted table, notes)."""
    csv, md = stem.parent / f"{stem.name}.csv", stem.parent / f"{stem.name}.md"
    table.to_csv(csv, index=False)
    md.write_text(f"# {title}\n\n{markdown(display)}\n" + "".join(f"- {note}\n" for note in notes))
    return [csv, md]
