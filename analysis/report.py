"""`lop report`: one or several sweeps (folders or compact exports, `analysis.sources`) -> every figure and table
their runs support, report.md and report.html.

Both pages render the same blocks in the same order: what was read and what is missing, the claims of the
paper with a verdict each (analysis/claims.py), then per sweep its figures, each with a sentence computed from
its numbers, then the tables beside the paper's numbers. Under OUT: figures/*.png|svg, tables/*.csv|md,
report.md and report.html (`analysis.render`). Bad input (no sweep at a path, a sweep with no finished task,
a mitigation arm whose baseline arm is missing) is a problem: named, left out, the rest still written;
`write_report` returns the problems and the command exits 2 when there is any. The sentences come from
`analysis.prose`, the tables of how the runs were made from `analysis.protocol_tables`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import claims, figures, tables, verdicts
from analysis.horizons import degradation_by_horizon, horizon_display, horizon_notes
from analysis.blocks import Block, Bullets, Echo, Heading, Picture, Table, Text
from analysis.metrics import diagnostic_columns, final_accuracy, missing_baselines
from analysis.prose import (accuracy_sentence, collapsed_replicates, collapsed_sentence, diagnostics_sentence,
                            diverged_items, figure_title, heatmap_sentence, iaa_sentence, missing_items,
                            paper_figure, replicate_text, sweep_notes)
from analysis.protocol_tables import cost_display, cost_table, steps_display, steps_table, truncation_table
from analysis.render import render_html, render_markdown
from analysis.sources import SweepRun, read_sweeps, shared_notes, shared_trials
from lopmodels.errors import ConfigError


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


def horizon_blocks(records: pd.DataFrame, out: Path, echo: Echo) -> list[Block]:
    """The degradation after every few tasks (`analysis.horizons`) as files and report blocks."""
    table = degradation_by_horizon(records)
    if table.empty:
        return []
    title, display, notes = "Degradation by horizon", horizon_display(table), horizon_notes(table)
    files = tables.write_table(table, display, title, notes, out / "tables" / "horizons")
    echo("report: wrote tables/horizons.csv, tables/horizons.md")
    return [Heading(title, 3),
            Text("Whether the loss keeps growing or levels off: the robust degradation above chance after every "
                 "few tasks of the stream, where the degradation table reads it at the end only."),
            Table(display, tuple(str(f.relative_to(out)) for f in files)), Bullets(notes)]


def table_blocks(records: pd.DataFrame, degradation: pd.DataFrame, out: Path,
                 echo: Echo) -> tuple[list[Block], list[str]]:
    """The degradation table, Table 1 for sweeps with mitigation arms, and the protocol switches against the
    correct protocol for sweeps with both; problems for missing baselines and ambiguous correct arms."""
    stem = out / "tables"
    blocks: list[Block] = [Heading("Tables")]
    if degradation.empty:
        blocks += [Heading("Accuracy degradation", 3),
                   Text("No degradation table: no sweep read here has trials of two tasks or more.")]
    else:
        blocks += degradation_blocks(degradation, out, echo) + horizon_blocks(records, out, echo)
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
    switches, switch_problems = tables.switch_table(records)
    if not switches.empty:
        title = "Protocol switches against the correct protocol"
        display = tables.switch_display(switches)
        files = tables.write_table(switches, display, title, tables.SWITCH_NOTES, stem / "switches")
        echo("report: wrote tables/switches.csv, tables/switches.md")
        blocks += [Heading(title, 3),
                   Text("What each protocol switch changes, against the same configuration on the correct "
                        "protocol, paired by replicate."),
                   Table(display, tuple(str(f.relative_to(out)) for f in files)), Bullets(tables.SWITCH_NOTES)]
    return blocks, problems + switch_problems


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
