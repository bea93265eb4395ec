"""`lop report`: one or several sweeps -> every figure and table their runs support, report.md and report.html.

Both pages render the same blocks in the same order: what was read and what is missing, then per sweep its
figures, each with a sentence computed from its numbers, then the tables beside the paper's numbers. Under
OUT: figures/*.png|svg, tables/*.csv|md, report.md, report.html. Bad input (no sweep at a path, a sweep with
no finished task, a mitigation arm whose baseline arm is missing) is a problem: named, left out, the rest
still written; `write_report` returns the problems and the command exits 2 when there is any.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from analysis import figures, paper, tables
from analysis.load import load_results
from analysis.metrics import (diagnostic_columns, diagnostic_curves, final_accuracy, missing_baselines,
                              trial_status)
from lopmodels.registry import ConfigError
from sweeps.manifest import Manifest

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


@dataclass(frozen=True)
class SweepRun:
    """One sweep folder as read: its manifest and its records."""

    path: Path
    manifest: Manifest
    records: pd.DataFrame

    @property
    def name(self) -> str:
        return self.manifest.sweep


def read_sweep(path: Path) -> SweepRun:
    """The manifest and records of the sweep at `path`; `ConfigError` naming what is missing."""
    if not path.is_dir():
        raise ConfigError(f"no sweep at {path}: not a folder; give the folder that `lop sweep run` printed")
    manifest = Manifest.read(path)
    records = load_results(path)
    if set(records["sweep"]) != {manifest.sweep}:
        raise ConfigError(f"the records at {path} belong to sweep(s) {', '.join(sorted(set(records['sweep'])))}, "
                          f"its lop-sweep.json to {manifest.sweep}; give an unedited sweep folder")
    if final_accuracy(records).empty:
        raise ConfigError(f"sweep {manifest.sweep} at {path} has no finished task yet; report it once a trial "
                          "has finished its first task (see `lop sweep status`)")
    return SweepRun(path, manifest, records)


def read_sweeps(paths: list[Path], echo: Echo) -> tuple[list[SweepRun], list[str]]:
    """Every readable sweep of `paths` (sorted by name: fig1 ... fig6, table1) and one problem per unreadable."""
    runs: dict[str, SweepRun] = {}
    problems = []
    for path in paths:
        echo(f"report: reading {path}")
        try:
            run = read_sweep(path)
            if run.name in runs:
                raise ConfigError(f"sweep {run.name} given twice ({runs[run.name].path} and {path}); "
                                  "report them separately")
            runs[run.name] = run
        except ConfigError as error:
            problems.append(str(error))
    return [runs[name] for name in sorted(runs)], problems


def figure_title(run: SweepRun) -> str:
    number = re.fullmatch(r"fig(\d+)", run.name)
    return f"Figure {number.group(1)}: {run.manifest.title}" if number else run.manifest.title


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
    """What a sweep's manifest asked for that its records lack: arms absent, trials not started, trials unfinished."""
    manifest, status = run.manifest, trial_status(run.records)
    absent = sorted(set(manifest.arms) - set(status["arm"]))
    items = [f"{run.name}: arm {arm} has no finished epoch" for arm in absent]
    seeds = range(manifest.seed_start, manifest.seed_start + manifest.seeds)
    expected = pd.MultiIndex.from_product([sorted(set(manifest.arms) - set(absent)), seeds], names=["arm", "seed"])
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
    blocks: list[Block] = [Heading(title)]
    caption = paper.FIGURE_CAPTIONS.get(run.name)
    notes = sweep_notes(run)
    blocks.append(Text(f"Sweep `{run.name}` at {run.path}: scale {manifest.scale}, {manifest.seeds} replicate(s) "
                       f"per arm, arms {', '.join(manifest.arms)}, code {manifest.code_version}."
                       + (f" Scale note: {notes}." if notes else "")
                       + (f" Reproduces the paper's \"{caption}\"" if caption else "")))
    echo(f"report: {run.name}: accuracy per task")
    blocks += [Picture(save(figures.accuracy_figure(run.records, title), out, f"{run.name}-accuracy", echo),
                       f"{title}: test accuracy per task"),
               Text(accuracy_sentence(degradation))]
    if diagnostic_columns(run.records):
        echo(f"report: {run.name}: diagnostics per task")
        path = save(figures.diagnostics_figure(run.records, f"{title}: plasticity diagnostics"), out,
                    f"{run.name}-diagnostics", echo)
        blocks += [Heading(f"{title}: plasticity diagnostics", 3), Picture(path, f"{title}: diagnostics per task"),
                   Text(diagnostics_sentence(run.records))]
    grid = degradation.rename(columns={"degradation": "mean", "degradation_ci_low": "ci_low",
                                       "degradation_ci_high": "ci_high"})
    if figures.is_grid(grid) and grid["mean"].notna().any():
        echo(f"report: {run.name}: degradation heat map")
        heading = f"{title}: degradation by sequence length and hidden size"
        path = save(figures.heatmap_figure(grid, heading), out, f"{run.name}-degradation-heatmap", echo)
        blocks += [Heading(heading, 3), Picture(path, heading), Text(heatmap_sentence(degradation))]
    return blocks


def sweep_notes(run: SweepRun) -> str:
    """The registered sweep's note on what its scale can show, if the sweep is a registered one."""
    from sweeps.registry import SWEEPS
    return SWEEPS[run.name].notes.get(run.manifest.scale, "") if run.name in SWEEPS else ""


def table_blocks(records: pd.DataFrame, degradation: pd.DataFrame, out: Path,
                 echo: Echo) -> tuple[list[Block], list[str]]:
    """The degradation table and, for sweeps with mitigation arms, Table 1; problems for missing baselines."""
    stem = out / "tables"
    files = tables.write_table(degradation, tables.degradation_display(degradation), "Accuracy degradation",
                               tables.DEGRADATION_NOTES, stem / "degradation")
    echo("report: wrote tables/degradation.csv, tables/degradation.md")
    blocks: list[Block] = [
        Heading("Tables"), Heading("Accuracy degradation", 3),
        Text("Degradation per arm from the first to the last task (the paper's formula) and between the means of "
             "the first k and the last k tasks (robust to one noisy task), beside the paper's value where it "
             "describes the same configuration."),
        Table(tables.degradation_display(degradation), tuple(str(f.relative_to(out)) for f in files)),
        Bullets(tables.DEGRADATION_NOTES)]
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


INTRO = ("Every number is a mean over replicates (replicate k runs seed = stream seed = k in every arm, so arms "
         "are paired) with a 95 % confidence interval: Student-t below 10 replicates, a percentile bootstrap "
         "(10,000 resamples, seed 0) from 10 on; the method is named in every table. A task counts once its last "
         "epoch is recorded. A diverged trial counts at chance accuracy from the task it diverged in. Unfinished "
         "trials add their finished tasks to the curves and are left out of degradation and IAA.")


def build(runs: list[SweepRun], problems: list[str], out: Path, echo: Echo) -> tuple[list[Block], list[str]]:
    """Write every figure and table under `out`; the report's blocks and any new problems."""
    records = pd.concat([run.records for run in runs], ignore_index=True)
    degradation = tables.degradation_table(records)
    blocks: list[Block] = [
        Heading("Loss of plasticity in recurrent models: report", 1), Text(INTRO),
        Bullets(tuple(f"{run.name}: {run.manifest.title} ({run.path})" for run in runs))]
    sections = [block for run in runs
                for block in sweep_section(run, degradation[degradation["sweep"] == run.name], out, echo)]
    table_section, table_problems = table_blocks(records, degradation, out, echo)
    missing = [item for run in runs for item in missing_items(run)] + problems + table_problems
    diverged = [item for run in runs for item in diverged_items(run)]
    if missing:
        blocks += [Heading("What is missing"), Bullets(tuple(missing))]
    if diverged:
        blocks += [Heading("Diverged trials"), Bullets(tuple(diverged))]
    return blocks + sections + table_section, table_problems


def write_report(paths: list[Path], out: Path, echo: Echo = lambda line: None) -> list[str]:
    """Read the sweeps at `paths`, write everything they support under `out`; the problems met (empty: none).

    Nothing is written when no sweep could be read.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the report")
    runs, problems = read_sweeps(paths, echo)
    if not runs:
        return problems
    for folder in (out / "figures", out / "tables"):
        folder.mkdir(parents=True, exist_ok=True)
    blocks, more = build(runs, problems, out, echo)
    (out / "report.md").write_text(render_markdown(blocks))
    (out / "report.html").write_text(render_html(blocks))
    echo(f"report: wrote {out / 'report.md'} and {out / 'report.html'}")
    return problems + more


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


CSS = ("body{font-family:system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;line-height:1.45}"
       "img{max-width:100%}table{border-collapse:collapse;font-size:90%;margin:1em 0}"
       "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}th{background:#f3f3f3}")


def render_html(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
            case Text(text):
                parts.append(f"<p>{html.escape(text)}</p>")
            case Bullets(items):
                parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>")
            case Picture(path, alt):
                parts.append(f'<p><img src="{html.escape(path)}" alt="{html.escape(alt)}"></p>')
            case Table(frame, files):
                links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
                parts.append(frame.to_html(index=False, border=0) + f"<p>As files: {links}</p>")
    title = next(block.text for block in blocks if isinstance(block, Heading))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
