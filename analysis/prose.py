"""The report's sentences and lists, each computed from the numbers it describes: what a figure shows, what a
sweep lacks, which trials diverged or collapsed."""
from __future__ import annotations

import re

import pandas as pd

from analysis import figures, paper
from analysis.metrics import diagnostic_columns, diagnostic_curves, trial_status
from analysis.sources import SweepRun
from sweeps.results import last_epoch

def figure_title(run: SweepRun) -> str:
    number = re.fullmatch(r"fig(\d+)", run.name)
    return f"Figure {number.group(1)}: {run.manifest.title}" if number else run.manifest.title


def paper_figure(run: SweepRun) -> str:
    """The paper's figure or table that a sweep reproduces, by number and caption, or that there is none."""
    if run.name not in paper.FIGURES:
        return "no figure of the paper"
    number, caption = paper.FIGURES[run.name]
    return f"the paper's {number}, \"{caption}\""


def percent(mean: float, low: float, high: float, method: str, n: int) -> str:
    """`61 % (95 % CI 55 to 67 %, Student-t, n = 3)`."""
    if pd.isna(low):
        return f"{abs(mean):.0f} % (n = {n}, no interval)"
    return f"{abs(mean):.0f} % (95 % CI {low:.0f} to {high:.0f} %, {method}, n = {n})"


def accuracy_sentence(degradation: pd.DataFrame) -> str:
    """What an accuracy figure shows: each arm's degradation from the first to the last task, with its CI."""
    parts = []
    for row in degradation.itertuples():  # one per arm
        label = figures.arm_label(row.arm, row.model)
        if row.n == 0:
            parts.append(f"{label} has no replicate through all {row.tasks} tasks yet")
            continue
        verb = "loses" if row.degradation >= 0 else "gains"
        amount = percent(row.degradation, row.degradation_ci_low, row.degradation_ci_high, row.ci_method, row.n)
        parts.append(f"{label} {verb} {amount} of its first-task accuracy by task {row.tasks}")
    diverged = int(degradation["diverged"].sum())
    tail = {0: "", 1: " 1 diverged trial counts at chance accuracy from the task it diverged in."}.get(
        diverged, f" {diverged} diverged trials count at chance accuracy from the task they diverged in.")
    found = "; ".join(parts)
    return ("Each line is the mean over replicates of the final-epoch test accuracy of every task, the band its "
            f"95 % confidence interval. {found[:1].upper()}{found[1:]}.{tail}")


def diagnostics_sentence(records: pd.DataFrame) -> str:
    """What the diagnostics figure shows: each diagnostic's mean from the first to the last recorded task, per arm."""
    curves = diagnostic_curves(records).sort_values("task")
    ends = curves.groupby(["diagnostic", "arm"]).agg(
        model=("model", "first"), first=("mean", "first"), last=("mean", "last"), first_task=("task", "first"),
        last_task=("task", "last"))
    lines = {name: [] for name in diagnostic_columns(records)}
    ends = ends.reindex(figures.arm_order(curves["arm"]), level="arm")
    for (name, arm), row in ends.iterrows():  # one per diagnostic x arm
        lines[name].append(f"{figures.arm_label(arm, row['model'])} {row['first']:.3g} (task "
                           f"{row['first_task'] + 1}) to {row['last']:.3g} (task {row['last_task'] + 1})")
    return ("Each panel is a diagnostic at each task's last epoch, mean over replicates with its 95 % CI. "
            + " ".join(f"{figures.DIAGNOSTIC_LABELS[name]}: {', '.join(parts)}." for name, parts in lines.items()))


def heatmap_sentence(summary: pd.DataFrame) -> str:
    """What the heat map shows: where degradation is largest and smallest."""
    done = summary.dropna(subset=["degradation"]).sort_values("degradation")
    low, high = done.iloc[0], done.iloc[-1]
    return (f"Mean degradation from the first to the last task ranges from {low['degradation']:.0f} % "
            f"(length {low['seq_len']}, hidden {low['hidden']}) to {high['degradation']:.0f} % "
            f"(length {high['seq_len']}, hidden {high['hidden']}); each cell shows its 95 % CI and n.")


def iaa_sentence(table: pd.DataFrame) -> str:
    """Which mitigation arms' IAA intervals lie above zero, below zero, or include it."""
    label = [f"{figures.arm_label(a, m)} ({s})" for a, m, s in zip(table["arm"], table["model"], table["sweep"])]
    labelled = table.assign(label=label)
    above = labelled[labelled["iaa_ci_low"] > 0]["label"]
    below = labelled[labelled["iaa_ci_high"] < 0]["label"]
    groups = [f"95 % CI above zero: {', '.join(above)}" if len(above) else "no arm's 95 % CI lies above zero",
              f"below zero: {', '.join(below)}" if len(below) else "none lies below zero"]
    return ("IAA of each mitigation arm over its baseline arm of the same replicates, mean over replicate pairs. "
            + "; ".join(groups) + "; the other intervals include zero or have n < 2.")


def missing_items(run: SweepRun) -> list[str]:
    """What the sweep's manifests asked for that its records lack: arms absent, trials not started, unfinished."""
    status, asked = trial_status(run.records), run.asked()
    absent = sorted(set(asked) - set(status["arm"]))
    items = [f"{run.name}: arm {arm} has no finished epoch" for arm in absent]
    expected = pd.MultiIndex.from_tuples([(arm, seed) for arm in sorted(set(asked) - set(absent))
                                          for seed in asked[arm]], names=["arm", "seed"])
    started = pd.MultiIndex.from_frame(status[["arm", "seed"]])
    items += [f"{run.name}: arm {arm} replicate {seed} has no finished epoch"
              for arm, seed in expected.difference(started)]
    unfinished = status[status["status"] == "incomplete"]
    items += [f"{run.name}: arm {arm} replicate {seed} finished {done} of {tasks} tasks (left out of degradation "
              "and IAA, its finished tasks are in the curves)"
              for arm, seed, done, tasks in zip(unfinished["arm"], unfinished["seed"], unfinished["tasks_finished"],
                                                unfinished["tasks"])]
    return items


def diverged_items(run: SweepRun) -> list[str]:
    status = trial_status(run.records)
    broken = status[status["status"] == "diverged"]
    return [f"{run.name}: arm {arm} replicate {seed} diverged after {done} of {tasks} tasks; its later tasks count "
            "at chance accuracy" for arm, seed, done, tasks in zip(broken["arm"], broken["seed"],
                                                                  broken["tasks_finished"], broken["tasks"])]


def replicate_text(run: SweepRun) -> str:
    """`3 replicate(s) per arm`, or the count of each arm where arms differ (10 per MLP arm, 5 per other): the
    replicates asked for, or found (an arm filled by another sweep's trials)."""
    found = run.records.groupby("arm")["seed"].nunique()
    asked = run.asked()
    counts = {arm: max(len(asked.get(arm, [])), int(found.get(arm, 0))) for arm in dict.fromkeys(
        [*asked, *found.index])}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} replicate(s) per arm"
    return "replicates per arm: " + ", ".join(f"{arm} {count}" for arm, count in counts.items())


def sweep_notes(run: SweepRun) -> str:
    """The sweep's note on what its scale can show, as its manifest recorded it at launch; for a manifest written
    before manifests carried notes, the registered sweep's, if the sweep is a registered one."""
    if run.manifest.notes is not None:
        return run.manifest.notes
    from sweeps.registry import SWEEPS
    return SWEEPS[run.name].notes.get(run.manifest.scale, "") if run.name in SWEEPS else ""


def collapsed_replicates(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm): replicates whose classifier input collapsed (all features zero: effective and stable rank
    both 0) at the last epoch of some task, of the arm's replicates, and the first such task (from 1)."""
    if not {"effective_rank", "stable_rank"} <= set(records.columns):
        return pd.DataFrame(columns=["sweep", "arm", "model", "collapsed", "replicates", "first_task"])
    last = records[last_epoch(records)]
    dead = last[(last["effective_rank"] == 0) & (last["stable_rank"] == 0)]
    first = dead.groupby(["sweep", "arm", "trial_id"], as_index=False)["task"].min()
    counts = first.groupby(["sweep", "arm"]).agg(collapsed=("trial_id", "size"), first_task=("task", "min"))
    replicates = records.groupby(["sweep", "arm"]).agg(model=("model", "first"), replicates=("trial_id", "nunique"))
    table = replicates.join(counts, how="inner").reset_index()
    return table.assign(first_task=table["first_task"] + 1)


def collapsed_sentence(collapsed: pd.DataFrame) -> str:
    """The collapsed replicates of each arm, counted rather than averaged in unseen."""
    if collapsed.empty:
        return ""
    parts = [f"{figures.arm_label(row.arm, row.model)} {row.collapsed} of {row.replicates} (first at task "
             f"{row.first_task})" for row in collapsed.itertuples()]
    return (" Collapsed representations (every feature zero at a task's end: effective and stable rank 0), "
            f"replicates per arm: {'; '.join(parts)}; their ranks enter the means above as 0.")
