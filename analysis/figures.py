"""The paper's figures from records: DataFrame in, Figure out (matplotlib `Figure` objects, no pyplot state).

Accuracy per task (Figures 1-6: the final-epoch test accuracy of every task against the task index, one line
per arm with its 95 % CI band over replicates, inside the quantity's range: analysis/stats.py), the plasticity
diagnostics per task, and a sequence length x hidden size heat map of degradation (Figure 6's sweep). Every line
with a band is drawn by `band`; an arm with fewer than FEW replicates also shows each replicate as a thin line.
"""
from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Mapping

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.metrics import (diagnostic_columns, diagnostic_curves, diagnostic_values, final_accuracy,
                              task_curves)
from trainables.streams import accuracy_measure

ACCURACY_LABEL = "Test accuracy (final epoch of each task)"
TRAIN_ACCURACY_LABEL = "Training accuracy (final epoch of each task; test labels are random)"
DIAGNOSTIC_LABELS = {
    "dead_fraction": "Dead ReLU units (fraction)",
    "saturated_fraction": "Saturated tanh/sigmoid units (fraction)",
    "effective_rank": "Effective rank of the last hidden layer",
    "stable_rank": "Stable rank of the last hidden layer",
    "weight_magnitude": "Mean |weight|",
    "grad_norm": "Gradient norm at the task's first step",
}
STYLE = "whitegrid"
CROWDED = 6  # arms in a panel beyond which the legend moves outside and the bands fade
TITLE_WIDTH = 70  # characters per line of a figure title
LINESTYLES = ("-", "--", "-.", ":")  # cycled over arms: neighbouring colorblind colours (orange, vermillion) differ
FEW = 5  # replicates below which an arm's replicates are drawn, each a thin line: a band of 3 says little alone


def arm_label(arm: str, model: str) -> str:
    """An arm's legend label: its model in capitals (`mlp` -> MLP, `gru-l2-1e-4` -> GRU l2-1e-4), else the arm."""
    if arm == model:
        return model.upper()
    if arm.startswith(f"{model}-"):
        return f"{model.upper()} {arm[len(model) + 1:]}"
    return arm


def arm_order(arms: pd.Series) -> list[str]:
    """Distinct arm labels, baselines first, then in natural order (len15-h32 before len15-h128)."""
    def key(arm: str) -> tuple[bool, list[int | str]]:
        numbers = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", arm)]
        return not (arm == "baseline" or arm.endswith("-baseline")), numbers
    return sorted(set(arms), key=key)


def arm_styles(arms: pd.Series) -> dict[str, dict[str, object]]:
    """One colour and line style per arm (matplotlib keyword arguments), the same in every panel of a figure:
    the style tells apart arms whose colours are close."""
    order = arm_order(arms)
    palette = sns.color_palette("colorblind" if len(order) <= 10 else "husl", len(order))
    return {arm: {"color": color, "linestyle": LINESTYLES[i % len(LINESTYLES)]}
            for i, (arm, color) in enumerate(zip(order, palette))}


def band(ax: Axes, x: pd.Series, mean: pd.Series, low: pd.Series, high: pd.Series, label: str,
         style: Mapping[str, object], alpha: float = 0.2) -> None:
    """The one confidence-band helper: the mean as a line in the arm's style, its 95 % CI as a band of the same
    colour."""
    ax.plot(x, mean, label=label, marker="o" if len(x) <= 20 else None, markersize=3, linewidth=1.5, **style)
    ax.fill_between(x, low, high, color=style["color"], alpha=alpha, linewidth=0)


def plot_replicates(ax: Axes, replicates: pd.DataFrame, color: tuple[float, float, float]) -> None:
    """Each replicate (trial_id) of one arm as a thin line of `value` against task 1..T, out of the legend."""
    for _, trial in replicates.groupby("trial_id", sort=True):
        trial = trial.sort_values("task")
        ax.plot(trial["task"] + 1, trial["value"], color=color, linewidth=0.6, alpha=0.5, label="_replicate")


def plot_curves(curves: pd.DataFrame, ax: Axes, ylabel: str, styles: Mapping[str, Mapping[str, object]],
                replicates: pd.DataFrame | None = None) -> Figure:
    """One line with its CI band per arm of `curves` (arm, model, task, mean, ci_low, ci_high), against task 1..T;
    with `replicates` (arm, trial_id, task, value), an arm of fewer than FEW replicates also shows each one."""
    arms = arm_order(curves["arm"])
    crowded = len(arms) > CROWDED
    for arm in arms:
        part = curves[curves["arm"] == arm].sort_values("task")
        band(ax, part["task"] + 1, part["mean"], part["ci_low"], part["ci_high"],
             arm_label(arm, part["model"].iloc[0]), styles[arm], alpha=0.08 if crowded else 0.2)
        if replicates is not None:
            own = replicates[replicates["arm"] == arm]
            if 0 < own["trial_id"].nunique() < FEW:
                plot_replicates(ax, own, styles[arm]["color"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Task")
    ax.set_ylabel(ylabel)
    if crowded:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.legend(fontsize="small", loc="best")
    return ax.figure


def accuracy_figure(records: pd.DataFrame, title: str) -> Figure:
    """Final-epoch test accuracy per task, one line and 95 % CI band per arm (and its replicates where fewer than
    FEW); one panel per task stream."""
    final = final_accuracy(records)
    curves = task_curves(final)
    replicates = final.rename(columns={"accuracy": "value"})
    streams = sorted(curves["stream"].unique())
    styles = arm_styles(curves["arm"])
    with sns.axes_style(STYLE):
        fig = Figure(figsize=(6.4 * len(streams), 4.4), layout="constrained")
        axes = fig.subplots(1, len(streams), squeeze=False)[0]
    for ax, stream in zip(axes, streams):
        label = ACCURACY_LABEL if accuracy_measure(stream) == "test_accuracy" else TRAIN_ACCURACY_LABEL
        plot_curves(curves[curves["stream"] == stream], ax, label, styles,
                    replicates[replicates["stream"] == stream])
        ax.set_ylim(0, 1)
        ax.set_title(stream, fontsize="medium")
    fig.suptitle(textwrap.fill(title, TITLE_WIDTH))
    return fig


def diagnostics_figure(records: pd.DataFrame, title: str) -> Figure:
    """One small panel per diagnostic with values: its value at each task's last epoch, a line and band per arm."""
    names = diagnostic_columns(records)
    if not names:
        raise ValueError("the records hold no diagnostics column with a value")
    curves, values = diagnostic_curves(records), diagnostic_values(records)
    styles = arm_styles(curves["arm"])
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    with sns.axes_style(STYLE):
        fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
        axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax, name in zip(axes, names):
        plot_curves(curves[curves["diagnostic"] == name], ax, DIAGNOSTIC_LABELS[name], styles,
                    values[values["diagnostic"] == name])
        ax.set_title(DIAGNOSTIC_LABELS[name], fontsize="small")
        ax.yaxis.label.set_visible(False)
    for ax in axes[len(names):]:  # the grid's unused cells
        ax.set_visible(False)
    fig.suptitle(textwrap.fill(title, TITLE_WIDTH))
    return fig


def is_grid(summary: pd.DataFrame) -> bool:
    """Whether a sweep's arms (rows of an arm summary) are cells of a sequence length x hidden size grid:
    one model and stream, each arm its own (seq_len, hidden), and more than one length or size."""
    cells = summary[["seq_len", "hidden"]].drop_duplicates()
    return (summary["model"].nunique() == 1 and summary["stream"].nunique() == 1 and len(cells) == len(summary)
            and len(cells) > 1)


def plot_degradation_heatmap(summary: pd.DataFrame, ax: Axes) -> Figure:
    """Mean degradation (%) per sequence length (rows) x hidden size (columns), each cell with its 95 % CI and n."""
    text = [f"{m:.0f} %\n[{lo:.0f}, {hi:.0f}]\nn={n}" if n > 1 else (f"{m:.0f} %\nn={n}" if n else "no data")
            for m, lo, hi, n in zip(summary["mean"], summary["ci_low"], summary["ci_high"], summary["n"])]
    cells = summary.assign(text=text)
    means = cells.pivot(index="seq_len", columns="hidden", values="mean").astype(float)
    notes = cells.pivot(index="seq_len", columns="hidden", values="text").reindex_like(means).fillna("not run")
    sns.heatmap(means, annot=notes, fmt="", cmap="rocket_r", ax=ax, annot_kws={"fontsize": "small"},
                cbar_kws={"label": "Accuracy degradation, first to last task (%)"})
    ax.set_xlabel("Hidden size (= embedding size)")
    ax.set_ylabel("Sequence length (tokens)")
    return ax.figure


def heatmap_figure(summary: pd.DataFrame, title: str) -> Figure:
    """The degradation heat map of a sequence length x hidden size sweep, on a figure of its own."""
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    plot_degradation_heatmap(summary, fig.subplots())
    fig.suptitle(textwrap.fill(title, TITLE_WIDTH))
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write `fig` as STEM.png (150 dpi) and STEM.svg, with no timestamp and ids salted by the stem (matplotlib
    draws the SVG's clip-path ids at random otherwise), so a re-run on the same results gives the same files."""
    png, svg = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    fig.savefig(png, dpi=150)
    with matplotlib.rc_context({"svg.hashsalt": stem.name}):
        fig.savefig(svg, metadata={"Date": None})
    return [png, svg]
