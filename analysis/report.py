"""`lop report`: one or several sweeps (folders or compact exports, `analysis.sources`) -> every figure and table
their runs support, report.md and report.html.

Both pages render the same blocks in the same order: what was read and what is missing, the claims of the
paper with a verdict each (analysis/claims.py), then per sweep its figures, each with a sentence computed from
its numbers, then the tables beside the paper's numbers. Under OUT: figures/*.png|svg, tables/*.csv|md,
report.md (figures by relative path) and report.html (one self-contained file: figures embedded). Bad input (no sweep at a path, a sweep with
no finished task, a mitigation arm whose baseline arm is missing) is a problem: named, left out, the rest
still written; `write_report` returns the problems and the command exits 2 when there is any.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from analysis import claims, figures, paper, tables, verdicts
from analysis.metrics import (diagnostic_columns, diagnostic_curves, final_accuracy, missing_baselines,
                              trial_status)
from analysis.sources import SweepRun, read_sweeps, shared_notes, shared_trials
from lopmodels.errors import ConfigError
from trainables.streams import STREAMS

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Picture:
    path: str  # relative to the report
    alt: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame  # cells formatted for reading
    files: tuple[str, ...]  # the CSV and markdown, relative to the report


Block = Heading | Text | Bullets | Picture | Table


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


def save(fig, out: Path, name: str, echo: Echo) -> str:
    paths = figures.save_figure(fig, out / "figures" / name)
    echo(f"report: wrote {', '.join(str(p.relative_to(out)) for p in paths)}")
    return str(paths[0].relative_to(out))


def sweep_section(run: SweepRun, degradation: pd.DataFrame, out: Path, echo: Echo) -> list[Block]:
    """A sweep's figures: accuracy per task, diagnostics per task (when recorded), the degradation heat map
    (when the arms form a sequence length x hidden size grid), each with its sentence."""
    title = figure_title(run)
    manifest = run.manifest
    blocks: list[Block] = [Heading(f"{title} ({paper_figure(run)})")]
    notes = sweep_notes(run)
    arms = list(dict.fromkeys([*run.arms, *run.records["arm"]]))
    blocks.append(Text(f"Sweep `{run.name}` at {run.where}: scale {manifest.scale}, {replicate_text(run)}, "
                       f"arms {', '.join(arms)}, code {', '.join(run.code_versions)}."
                       + (f" Scale note: {notes}." if notes else "")))
    echo(f"report: {run.name}: accuracy per task")
    blocks += [Picture(save(figures.accuracy_figure(run.records, title), out, f"{run.name}-accuracy", echo),
                       f"{title}: test accuracy per task"),
               Text(accuracy_sentence(degradation))]
    if diagnostic_columns(run.records):
        echo(f"report: {run.name}: diagnostics per task")
        path = save(figures.diagnostics_figure(run.records, f"{title}: plasticity diagnostics"), out,
                    f"{run.name}-diagnostics", echo)
        blocks += [Heading(f"{title}: plasticity diagnostics", 3), Picture(path, f"{title}: diagnostics per task"),
                   Text(diagnostics_sentence(run.records) + collapsed_sentence(collapsed_replicates(run.records)))]
    grid = degradation.rename(columns={"degradation": "mean", "degradation_ci_low": "ci_low",
                                       "degradation_ci_high": "ci_high"})
    if figures.is_grid(grid) and grid["mean"].notna().any():
        echo(f"report: {run.name}: degradation heat map")
        heading = f"{title}: degradation by sequence length and hidden size"
        path = save(figures.heatmap_figure(grid, heading), out, f"{run.name}-degradation-heatmap", echo)
        blocks += [Heading(heading, 3), Picture(path, heading), Text(heatmap_sentence(degradation))]
    return blocks


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
    """The registered sweep's note on what its scale can show, if the sweep is a registered one."""
    from sweeps.registry import SWEEPS
    return SWEEPS[run.name].notes.get(run.manifest.scale, "") if run.name in SWEEPS else ""


def degradation_blocks(degradation: pd.DataFrame, out: Path, echo: Echo) -> list[Block]:
    """The degradation table as files and as report blocks."""
    files = tables.write_table(degradation, tables.degradation_display(degradation), "Accuracy degradation",
                               tables.DEGRADATION_NOTES, out / "tables" / "degradation")
    echo("report: wrote tables/degradation.csv, tables/degradation.md")
    return [
        Heading("Accuracy degradation", 3),
        Text("Degradation per arm from the first to the last task (the paper's formula), between the means of "
             "the first k and the last k tasks (robust to one noisy task), and the same above chance (which "
             "decides the degradation claims), beside the paper's value where the configuration is its run's "
             "(else the note says what differs)."),
        Table(tables.degradation_display(degradation), tuple(str(f.relative_to(out)) for f in files)),
        Bullets(tables.DEGRADATION_NOTES)]


def table_blocks(records: pd.DataFrame, degradation: pd.DataFrame, out: Path,
                 echo: Echo) -> tuple[list[Block], list[str]]:
    """The degradation table and, for sweeps with mitigation arms, Table 1; problems for missing baselines."""
    stem = out / "tables"
    blocks: list[Block] = [Heading("Tables")]
    if degradation.empty:
        blocks += [Heading("Accuracy degradation", 3),
                   Text("No degradation table: no sweep read here has trials of two tasks or more.")]
    else:
        blocks += degradation_blocks(degradation, out, echo)
    final = final_accuracy(records)
    treated = set(final.loc[final["mitigation"] != "none", "sweep"])
    problems = [p for sweep in sorted(treated) for p in missing_baselines(final[final["sweep"] == sweep])]
    complete = sorted(s for s in treated if not missing_baselines(final[final["sweep"] == s]))
    if complete:
        table = tables.iaa_table(records[records["sweep"].isin(complete)])
        files = tables.write_table(table, tables.iaa_display(table), "Table 1: increase in average accuracy (IAA)",
                                   tables.IAA_NOTES, stem / "table1-iaa")
        echo("report: wrote tables/table1-iaa.csv, tables/table1-iaa.md")
        blocks += [Heading("Table 1: increase in average accuracy (IAA)", 3), Text(iaa_sentence(table)),
                   Table(tables.iaa_display(table), tuple(str(f.relative_to(out)) for f in files)),
                   Bullets(tables.IAA_NOTES)]
    return blocks, problems


def collapsed_replicates(records: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, arm): replicates whose classifier input collapsed (all features zero: effective and stable rank
    both 0) at the last epoch of some task, of the arm's replicates, and the first such task (from 1)."""
    if not {"effective_rank", "stable_rank"} <= set(records.columns):
        return pd.DataFrame(columns=["sweep", "arm", "model", "collapsed", "replicates", "first_task"])
    last = records[records["epoch"] == records["epochs_per_task"] - 1]
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
    tasks = own[(own["epoch"] == own["epochs_per_task"] - 1) | own["diverged"].astype(bool)]
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


def claim_cells(row: pd.Series) -> dict[str, str]:
    """One row of the Claims table formatted for reading."""
    side = ">" if row["side"] == "greater" else "<"
    bound = row["null"] + (row["minimum"] if row["side"] == "greater" else -row["minimum"])
    paper_value = "" if pd.isna(row["paper"]) else f"{row['paper']:.2f} {row['unit']}"
    note = f" ({row['paper_note']})" if row["paper_note"] and paper_value else row["paper_note"]
    ran = not pd.isna(row["mean"])
    ours = (f"{claims.interval_text(row, row['unit'])}, n = {int(row['n'])}" if ran else "-")
    holm = row["verdict_holm"] + (f" (level {row['holm_level']:.4f})" if not pd.isna(row.get("holm_level")) else "")
    scale = row.get("scale_note") if isinstance(row.get("scale_note"), str) and row.get("scale_note") else ""
    return {"claim": f"`{row['id']}` ({row['section']}): {row['statement']}", "paper": paper_value + note,
            "claimed": f"{side} {bound:g} {row['unit']}" if row["verdict"] not in ("no verdict",
                                                                                "not run (no verdict)") else "-",
            "ours (95 % CI)": ours + (f"; {row['beside']}" if ran and row["beside"] else ""),
            "test": row["test"], "scale, tasks": (f"{row['scale']}, {int(row['tasks'])} of "
                                                  f"{int(row['paper_tasks'])} tasks" if ran else "-"),
            "verdict": row["verdict"] + (f" ({scale})" if scale else ""), "after Holm": holm}


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([claim_cells(row) for _, row in table.iterrows()])


CLAIM_NOTES = (
    "Verdict at 95 %: supported, the interval lies beyond the minimum effect on the claimed side (column "
    "`claimed`); contradicted, it lies wholly on the other side of the null or wholly within the minimum effect; "
    "inconclusive otherwise or with n < 2; not run, the sweep or arms are absent.",
    "After Holm: p-values from each interval by bisection on its level, Holm's step-down over every claim that "
    "was run (family-wise 95 %), and the verdict recomputed at the claim's adjusted level (shown).",
    "Degradation claims are decided by the robust degradation above chance (first k vs last k tasks); the "
    "paper's formula (first vs last task) stands beside it. IAA: the ratio of the arms' mean accuracies, paired "
    "by replicate. Differences: paired by replicate. docs/claims.md gives each claim's null and minimum effect.",
    f"Verdict rules, version {verdicts.RULES_VERSION}: {verdicts.RULES_NOTE}.",
)


def claims_blocks(reading: Reading, out: Path, echo: Echo) -> tuple[list[Block], list[str]]:
    """The Claims table (tables/claims.csv, .md): every claim of the registry, with a verdict where run."""
    try:
        table = claims.evaluate(reading.claim_records, reading.scales)
    except ConfigError as error:
        return [], [f"claims: {error}"]
    display = claims_display(table)
    files = tables.write_table(table, display, "Claims of the paper", CLAIM_NOTES, out / "tables" / "claims")
    echo("report: wrote tables/claims.csv, tables/claims.md")
    counts = table["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in (*verdicts.VERDICTS, "no verdict") if v in counts)
    return [Heading("Claims"),
            Text(f"Each claim of the paper's sections 4 to 6 against the runs read here ({summary}). A verdict "
                 "at a reduced scale says so."),
            Table(display, tuple(str(f.relative_to(out)) for f in files)), Bullets(CLAIM_NOTES)], []


def protocol_blocks(records: pd.DataFrame, out: Path, echo: Echo) -> list[Block]:
    """Steps per task beside the paper's, and truncation per sequence length (language sweeps), when recorded."""
    blocks: list[Block] = []
    steps, truncation, cost = steps_table(records), truncation_table(records), cost_table(records)
    for name, title, text, table, display in (
            ("cost", "What the runs cost",
             "Per arm, the trials it ran itself (an arm filled by another sweep's trials cost nothing more) and "
             "the wall time of their finished tasks, summed over trials; CPU-hours count each trial's threads.",
             cost, cost_display(cost) if not cost.empty else cost),
            ("steps", "Optimiser steps per task",
             "Steps per task of each arm beside the paper's (Tatoeba's 2,600 sentences a language for language "
             "streams; the offline corpus has 800, so fewer steps at the paper's 30 epochs unless step-matched).",
             steps, steps_display(steps) if not steps.empty else steps),
            ("truncation", "Truncation by sequence length",
             "Language trials: the share of training sentences longer than the sequence length, and the share of "
             "their tokens the model reads.", truncation, truncation)):
        if table.empty:
            continue
        files = tables.write_table(table, display, title, (), out / "tables" / name)
        echo(f"report: wrote tables/{name}.csv, tables/{name}.md")
        blocks += [Heading(title, 3), Text(text), Table(display, tuple(str(f.relative_to(out)) for f in files))]
    return blocks


INTRO = ("Every number is an estimate over replicates (replicate k runs seed = stream seed = k in every arm, so "
         "arms are paired) with a 95 % confidence interval that stays inside its quantity's range: Student-t "
         "with n - 1 degrees of freedom on a transformed scale, transformed back (the logit of a mean accuracy "
         "or fraction, the log of a mean rank or norm, the paired log ratio of mean accuracies for degradation "
         "and IAA, by the delta method; paired Student-t for differences between arms); the method is named in "
         "every table. Degradation and IAA are ratios of the replicates' mean accuracies, as the paper's formulas. "
         "A task counts once its last epoch is recorded. A diverged trial counts at chance accuracy from the task "
         "it diverged in. Unfinished trials add their finished tasks to the curves and are left out of "
         "degradation and IAA.")


@dataclass(frozen=True)
class Reading:
    """Everything read: the sweeps (their arms filled by other sweeps' trials of the same configurations), the
    records the claims read (also the arms of sweeps not given that such trials fill), each sweep's scale,
    the problems met and the notes on trials counted once."""

    runs: list[SweepRun]
    claim_records: pd.DataFrame
    scales: dict[str, str]
    problems: list[str]
    notes: list[str]


def read(paths: list[Path], echo: Echo) -> Reading:
    runs, problems, notes = read_sweeps(paths, echo)
    if not runs:
        return Reading([], pd.DataFrame(), {}, problems, notes)
    records = pd.concat([run.records for run in runs], ignore_index=True)
    scales = {run.name: run.manifest.scale for run in runs}
    shared, found = shared_trials(records, scales)
    runs = [dataclasses.replace(run, records=pd.concat([run.records, shared[shared["sweep"] == run.name]],
                                                       ignore_index=True)) for run in runs]
    sharing = shared_notes(shared)
    for note in sharing:
        echo(f"report: {note}")
    return Reading(runs, pd.concat([records, shared], ignore_index=True), {**scales, **found}, problems,
                   notes + sharing)


def degradation_of_long_sweeps(records: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The degradation table of the sweeps whose trials have two tasks or more, and a line for each other sweep:
    degradation compares a stream's first tasks with its last, which one task cannot."""
    tasks = records.groupby("sweep")["tasks"].min()
    short = sorted(tasks[tasks < 2].index)
    lines = [f"{sweep}: no degradation (it needs at least 2 tasks; these trials have {int(tasks[sweep])})"
             for sweep in short]
    long = records[~records["sweep"].isin(short)]
    if long.empty:
        return pd.DataFrame(columns=tables.ARM + tables.DEGRADATION_COLUMNS + tables.COUNTS + ["paper", "paper_note"]), lines
    return tables.degradation_table(long), lines


def build(reading: Reading, out: Path, echo: Echo) -> tuple[list[Block], list[str]]:
    """Write every figure and table under `out`; the report's blocks and any new problems."""
    runs = reading.runs
    records = pd.concat([run.records for run in runs], ignore_index=True)
    degradation, short = degradation_of_long_sweeps(records)
    blocks: list[Block] = [
        Heading("Loss of plasticity in recurrent models: report", 1), Text(INTRO),
        Bullets(tuple(f"{run.name}: {run.manifest.title} ({run.where})" for run in runs))]
    claim_section, claim_problems = claims_blocks(reading, out, echo)
    sections = [block for run in runs
                for block in sweep_section(run, degradation[degradation["sweep"] == run.name], out, echo)]
    table_section, table_problems = table_blocks(records, degradation, out, echo)
    missing = ([item for run in runs for item in missing_items(run)] + short + reading.problems + table_problems
               + claim_problems)
    diverged = [item for run in runs for item in diverged_items(run)]
    if missing:
        blocks += [Heading("What is missing"), Bullets(tuple(missing))]
    if diverged:
        blocks += [Heading("Diverged trials"), Bullets(tuple(diverged))]
    if reading.notes:
        blocks += [Heading("Trials counted once"),
                   Text("A trial given twice, or run under another sweep's arm of the same configuration and "
                        "seeds, is one trial: it enters every mean once per arm it stands for."),
                   Bullets(tuple(reading.notes))]
    more = protocol_blocks(records, out, echo)
    return blocks + claim_section + sections + table_section + more, table_problems + claim_problems


def write_report(paths: list[Path], out: Path, echo: Echo = lambda line: None) -> list[str]:
    """Read the sweeps at `paths` (folders or compact exports), write everything they support under `out`; the
    problems met (empty: none).

    Nothing is written when no sweep could be read.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the report")
    reading = read(paths, echo)
    if not reading.runs:
        return reading.problems
    for folder in (out / "figures", out / "tables"):
        folder.mkdir(parents=True, exist_ok=True)
    blocks, more = build(reading, out, echo)
    (out / "report.md").write_text(render_markdown(blocks))
    (out / "report.html").write_text(render_html(blocks, out))
    echo(f"report: wrote {out / 'report.md'} and {out / 'report.html'}")
    return reading.problems + more


def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"{'#' * level} {text}")
            case Text(text):
                parts.append(text)
            case Bullets(items):
                parts.append("\n".join(f"- {item}" for item in items))
            case Picture(path, alt):
                parts.append(f"![{alt}]({path})")
            case Table(frame, files):
                parts.append(tables.markdown(frame) + "\nAs files: " + ", ".join(f"[{f}]({f})" for f in files))
    return "\n\n".join(parts) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.45}"
       "img{max-width:100%}table{border-collapse:collapse;font-size:90%;margin:1em 0}"
       "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
       "code{background:#f3f3f3;padding:0 .2em;border-radius:3px}")
CODE_SPAN = re.compile(r"`([^`]+)`")


def inline(text: object) -> str:
    """Text as HTML: escaped, with `code spans` as <code>."""
    return CODE_SPAN.sub(r"<code>\1</code>", html.escape(str(text)))


def data_uri(path: Path) -> str:
    """A PNG file as a data: URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{inline(column)}</th>" for column in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(blocks: list[Block], root: Path) -> str:
    """One self-contained page: pictures (relative to `root`) embedded as data: URIs, code spans as <code>."""
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"<h{level}>{inline(text)}</h{level}>")
            case Text(text):
                parts.append(f"<p>{inline(text)}</p>")
            case Bullets(items):
                parts.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            case Picture(path, alt):
                parts.append(f'<p><img src="{data_uri(root / path)}" alt="{html.escape(alt)}"></p>')
            case Table(frame, files):
                links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
                parts.append(html_table(frame) + f"<p>As files beside this page: {links}</p>")
    title = next(block.text for block in blocks if isinstance(block, Heading))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
