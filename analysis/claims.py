"""The paper's claims (sections 4 to 6) as a frozen registry, and their evaluation on records.

Each claim names the paper's statement and number, the sweeps and arms that test it, its statistic, the side
it claims, the null and the minimum effect worth reporting: all written down before any run (docs/claims.md).
`evaluate` computes each statistic with its 95 % interval, the verdict (analysis/verdicts.py) and the verdict
after Holm's adjustment over every claim that was run. Rules frozen when issue 10 lands; a later change
lists both verdicts (`verdicts.RULES_VERSION`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import stats, verdicts
from analysis.metrics import (arm_difference, average_accuracy, chance_of, default_k, degradation,
                              final_accuracy)
from lopmodels.errors import ConfigError
from sweeps.results import last_epoch
from trainables.streams import STREAMS


@dataclass(frozen=True)
class Arm:
    """One arm of one sweep."""

    sweep: str
    arm: str

    def __str__(self) -> str:
        return f"{self.sweep}/{self.arm}"


@dataclass(frozen=True)
class Statistic:
    """How a claim's quantity is computed from its arms, in what unit, and its default minimum effect."""

    name: str
    description: str
    arms: int  # how many arms it reads, in order
    unit: str
    minimum: float


STATISTICS = MappingProxyType({s.name: s for s in (
    Statistic("degradation", "robust chance-corrected degradation: the share of the above-chance accuracy of the "
              "first k tasks lost by the last k, ratio of means over replicates", 1, "%", 10.0),
    Statistic("degradation-difference", "paired difference of the robust chance-corrected degradations "
              "(first arm minus second), by replicate", 2, "pp", 5.0),
    Statistic("iaa", "IAA, the ratio of the mitigated and the baseline arm's mean accuracy over tasks, paired "
              "by replicate", 2, "%", 5.0),
    Statistic("repetition-spike", "accuracy of repeated distinct-pair tasks minus that of their nearest "
              "first-occurrence tasks (one before, one after), mean per replicate, paired", 1, "pp", 10.0),
    Statistic("degradation-contrast", "difference of two arms' robust chance-corrected degradations across "
              "datasets, unpaired, shown without an interval or a verdict", 2, "pp", 0.0),
)})


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how it is tested. `tests` are alternative arm sets, in the statistic's order;
    the first whose arms all have records decides, the others say where else it can be run."""

    id: str
    section: str
    statement: str
    statistic: str
    tests: tuple[tuple[Arm, ...], ...]
    side: str = "greater"  # the claimed side of the quantity relative to the null
    null: float = 0.0
    minimum: float | None = None  # None: the statistic's
    paper: float | None = None  # the paper's number for the quantity, where it gives one
    paper_note: str = ""
    decided: bool = True  # False: shown without a verdict

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ConfigError(f"claim {self.id}: unknown statistic {self.statistic!r}; "
                              f"choose one of: {', '.join(STATISTICS)}")
        if self.side not in verdicts.SIDES:
            raise ConfigError(f"claim {self.id}: side must be one of {', '.join(verdicts.SIDES)}")
        wanted = STATISTICS[self.statistic].arms
        if not self.tests or any(len(test) != wanted for test in self.tests):
            raise ConfigError(f"claim {self.id}: statistic {self.statistic} reads {wanted} arm(s) per test")
        if self.minimum is None:
            object.__setattr__(self, "minimum", STATISTICS[self.statistic].minimum)

    @property
    def unit(self) -> str:
        return STATISTICS[self.statistic].unit


def _arms(sweep: str, *arms: str) -> tuple[Arm, ...]:
    return tuple(Arm(sweep, arm) for arm in arms)


def _mitigation(model: str, label: str, arm: str, section: str, paper: float, note: str = "",
                side: str = "greater") -> Claim:
    """A Table 1 claim: tested in table1 (`<model>-<arm>` against `<model>-baseline`), or in fig4/fig5."""
    figure = {"mlp": "fig4", "gru": "fig5"}[model]
    verb = "improves" if side == "greater" else "hurts"
    stream = {"mlp": "MNIST", "gru": "language"}[model]
    return Claim(f"{model}-{label}-{verb}", section,
                 f"{label.upper().replace('SP', 'S&P')} {verb} the {model.upper()}'s average accuracy on {stream} "
                 f"reshuffle (Table 1)", "iaa",
                 (_arms("table1", f"{model}-{arm}", f"{model}-baseline"), _arms(figure, arm, "baseline")),
                 side=side, paper=paper, paper_note=note)


def _longer(length: int) -> Claim:
    return Claim(f"longer-sequences-degrade-more/len{length}", "5.3",
                 f"The GRU degrades more at sequence length {length} than at 15 (Figure 6, hidden 64)",
                 "degradation-difference", (_arms("fig6", f"len{length}-h64", "len15-h64"),))


CLAIMS: tuple[Claim, ...] = (
    Claim("mlp-loses-plasticity-mnist-reshuffle", "4, 5.2", "The MLP loses plasticity on MNIST label reshuffle "
          "(Figure 1)", "degradation", (_arms("fig1", "mlp"),), paper=60.83),
    Claim("lstm-loses-plasticity-mnist-reshuffle", "4, 5.2", "The LSTM loses plasticity on MNIST label "
          "reshuffle, less than the MLP (Figure 1)", "degradation", (_arms("fig1", "lstm"),), paper=27.47),
    Claim("mlp-loses-plasticity-mnist-binary", "4", "The MLP loses plasticity on MNIST binary tasks (Figure 2)",
          "degradation", (_arms("fig2", "mlp"),)),
    Claim("lstm-loses-plasticity-mnist-binary", "4", "The LSTM loses plasticity on MNIST binary tasks "
          "(Figure 2)", "degradation", (_arms("fig2", "lstm"),)),
    Claim("lstm-degrades-less-than-mlp", "5.2", "The LSTM degrades less than the MLP on MNIST reshuffle "
          "(27.47 % against 60.83 %)", "degradation-difference", (_arms("fig1", "lstm", "mlp"),), side="less",
          paper=27.47 - 60.83),
    Claim("lstm-degrades-less-than-mlp-mnist-binary", "4", "Loss of plasticity is less noticeable for the LSTM "
          "than the MLP on MNIST binary tasks (Figure 2)", "degradation-difference",
          (_arms("fig2", "lstm", "mlp"),), side="less"),
    Claim("gru-loses-plasticity-lang-reshuffle", "4, 5.2", "The GRU loses plasticity on language reshuffle "
          "(Figure 3)", "degradation", (_arms("fig3", "reshuffle"),), paper=50.62),
    Claim("gru-loses-plasticity-lang-binary", "4", "The GRU loses plasticity on language binary tasks "
          "(Figure 3)", "degradation", (_arms("fig3", "binary"),)),
    Claim("recurrent-degrade-less-than-mlp/lstm", "5.2, 6", "Recurrent models degrade less than the MLP: the "
          "LSTM, on the MLP's MNIST reshuffle tasks", "degradation-difference", (_arms("fig1", "lstm", "mlp"),),
          side="less", paper=27.47 - 60.83),
    Claim("recurrent-degrade-less-than-mlp/gru", "5.2, 6", "Recurrent models degrade less than the MLP: the "
          "GRU, on the MLP's MNIST reshuffle tasks", "degradation-difference", (_arms("fig1", "gru", "mlp"),),
          side="less"),
    Claim("recurrent-degrade-less-than-mlp/gru-language-vs-mlp-mnist", "5.2", "The paper's comparison: the GRU "
          "on language reshuffle degrades less than the MLP on MNIST reshuffle (50.62 % against 60.83 %)",
          "degradation-contrast", ((Arm("fig3", "reshuffle"), Arm("fig1", "mlp")),), side="less",
          paper=50.62 - 60.83, paper_note="different datasets and tasks: shown without a verdict", decided=False),
    *(_longer(length) for length in (25, 50, 75)),
    _mitigation("mlp", "l2", "l2-1e-3", "4, 5.4", 36.69, "weight decay 1e-3"),
    _mitigation("mlp", "sp", "noise", "4, 5.4", 49.45, "the paper's S&P is our `noise`; the text says 36.69 %"),
    _mitigation("mlp", "cbp", "cbp", "4, 5.4", 28.01),
    _mitigation("gru", "l2", "l2-1e-4", "4, 5.4, 6", 15.56, "weight decay 1e-4; the text says 13.14 %"),
    _mitigation("gru", "sp", "noise", "4, 5.4, 6", -10.08,
                "the paper's S&P is our `noise`; the text says -10.73 %; its S&P run read 50 tokens, its "
                "baseline 25, ours both 25", side="less"),
    _mitigation("gru", "cbp", "cbp", "4, 5.4, 6", 13.14, "the text says 15.56 %"),
    Claim("binary-spikes-are-task-repetition", "4", "The accuracy spikes on binary tasks are due to task "
          "repetition: a repeated pair of classes scores above the tasks around it (Figure 2)",
          "repetition-spike", (_arms("artefacts", "mnist-binary-mlp-with-replacement"),),
          paper_note="tested with the reference's sampler (ordered pairs with replacement, a class may meet "
                     "itself); self-pair tasks shown beside"),
)
BY_ID: Mapping[str, Claim] = MappingProxyType({claim.id: claim for claim in CLAIMS})
if len(BY_ID) != len(CLAIMS):
    raise ConfigError("claim ids must be unique")


# --- evaluation -------------------------------------------------------------------------------------------

Interval = Callable[[float], Mapping[str, float]]
EMPTY = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "ci_method": stats.NO_INTERVAL, "n": 0}
PAIR = ["seed", "stream_seed"]


@dataclass(frozen=True)
class Estimate:
    """A claim's statistic on its arms: the interval at any level, and what stands beside it."""

    interval: Interval
    beside: str  # the paper's formula, or the parts of the statistic


def finished(final: pd.DataFrame, arm: Arm) -> pd.DataFrame:
    """The final-epoch accuracies of an arm's trials that finished or diverged (incomplete ones left out)."""
    part = final[(final["sweep"] == arm.sweep) & (final["arm"] == arm.arm)]
    return part[part["status"] != "incomplete"]


def too_short(part: pd.DataFrame) -> bool:
    """No trials, or trials of one task: a degradation compares a stream's first tasks with its last."""
    return part.empty or int(part["tasks"].min()) < 2


def robust(part: pd.DataFrame) -> pd.DataFrame:
    """Per trial: the robust chance-corrected degradation (k = default_k(tasks)), first/last accuracies, chance."""
    return degradation(part, default_k(int(part["tasks"].min())), chance_corrected=True)


def interval_text(summary: Mapping[str, float], unit: str) -> str:
    """`58.1 [40.2, 70.3] %` (the mean alone without an interval)."""
    if math.isnan(summary["mean"]):
        return "-"
    if math.isnan(summary["ci_low"]):
        return f"{summary['mean']:.1f} {unit}"
    return f"{summary['mean']:.1f} [{summary['ci_low']:.1f}, {summary['ci_high']:.1f}] {unit}"


def degradation_estimate(final: pd.DataFrame, records: pd.DataFrame, arms: Sequence[Arm]) -> Estimate:
    part = finished(final, arms[0])
    if too_short(part):
        return Estimate(lambda level: EMPTY, "")
    ours, formula = robust(part), degradation(part, 1)
    paper = stats.degradation_interval(formula["first_accuracy"], formula["last_accuracy"])
    return Estimate(lambda level: stats.degradation_interval(ours["first_accuracy"], ours["last_accuracy"],
                                                             chance_of(ours), level),
                    f"paper's formula (first vs last task): {interval_text(paper, '%')}")


def paired_trials(final: pd.DataFrame, a: Arm, b: Arm, per_trial: Callable[[pd.DataFrame], pd.DataFrame]
                  ) -> pd.DataFrame:
    """`per_trial` of each arm's finished trials, merged by replicate (columns suffixed _a and _b)."""
    left, right = finished(final, a), finished(final, b)
    if left.empty or right.empty:
        return pd.DataFrame()
    return per_trial(left).merge(per_trial(right), on=PAIR, suffixes=("_a", "_b"))


def difference_estimate(final: pd.DataFrame, records: pd.DataFrame, arms: Sequence[Arm]) -> Estimate:
    a, b = arms
    parts = [finished(final, a), finished(final, b)]
    if any(too_short(part) for part in parts):
        return Estimate(lambda level: EMPTY, "")
    both = pd.concat(parts)
    ours = robust(both)
    paper = arm_difference(degradation(both, 1), a.sweep, a.arm, b.arm, b.sweep)
    return Estimate(lambda level: arm_difference(ours, a.sweep, a.arm, b.arm, b.sweep, level),
                    f"paper's formula (first vs last task): {interval_text(paper, 'pp')}")


def iaa_estimate(final: pd.DataFrame, records: pd.DataFrame, arms: Sequence[Arm]) -> Estimate:
    pairs = paired_trials(final, *arms, average_accuracy)
    if pairs.empty:
        return Estimate(lambda level: EMPTY, "")
    means = (f"mean accuracy over tasks {pairs['average_accuracy_a'].mean():.3f} ({arms[0].arm}) against "
             f"{pairs['average_accuracy_b'].mean():.3f} ({arms[1].arm})")
    return Estimate(lambda level: stats.paired_ratio_interval(pairs["average_accuracy_a"],
                                                              pairs["average_accuracy_b"], level), means)


def contrast_estimate(final: pd.DataFrame, records: pd.DataFrame, arms: Sequence[Arm]) -> Estimate:
    parts = [finished(final, arm) for arm in arms]
    if any(part.empty for part in parts):
        return Estimate(lambda level: EMPTY, "")
    each = [stats.degradation_interval(d["first_accuracy"], d["last_accuracy"], chance_of(d))
            for d in map(robust, parts)]
    result = {"mean": each[0]["mean"] - each[1]["mean"], "ci_low": math.nan, "ci_high": math.nan,
              "ci_method": "none: unpaired, across datasets", "n": min(e["n"] for e in each)}
    return Estimate(lambda level: result, "; ".join(f"{arm}: {interval_text(e, '%')}" for arm, e in zip(arms, each)))


SELF_PAIR, REPEAT, FIRST = "self-pair", "repeat", "first"


def task_kinds(classes: Sequence[Sequence[str]]) -> list[str]:
    """Each task of one stream, in order: `self-pair` (a class with itself), `repeat` (an unordered pair of two
    classes met earlier in the stream, in either order) or `first` (its first occurrence)."""
    seen: set[frozenset[str]] = set()
    kinds = []
    for pair in classes:
        key = frozenset(pair)
        kinds.append(SELF_PAIR if len(key) == 1 else REPEAT if key in seen else FIRST)
        seen.add(key)
    return kinds


def neighbours(kinds: Sequence[str], accuracy: Sequence[float]) -> list[float]:
    """Per task, the mean accuracy of the nearest `first` task before it and the nearest after it (one of them
    at the stream's ends; NaN where there is none): the level a spike stands above."""
    firsts = [i for i, kind in enumerate(kinds) if kind == FIRST]
    result = []
    for t in range(len(kinds)):
        around = [max((i for i in firsts if i < t), default=None), min((i for i in firsts if i > t), default=None)]
        values = [accuracy[i] for i in around if i is not None]
        result.append(float(np.mean(values)) if values else math.nan)
    return result


def spikes(final: pd.DataFrame, records: pd.DataFrame, arm: Arm) -> pd.DataFrame:
    """Per replicate of `arm`: the mean accuracy (in %) of its repeated-pair and self-pair tasks, of their
    neighbouring first occurrences, and of all first occurrences."""
    part = finished(final, arm)
    last = records[(records["sweep"] == arm.sweep) & (records["arm"] == arm.arm) & last_epoch(records)]
    classes = last.drop_duplicates(["trial_id", "task"]).set_index(["trial_id", "task"])["task_classes"]
    rows = []
    for (seed, stream_seed, trial), trial_part in part.sort_values("task").groupby(PAIR + ["trial_id"]):
        pairs = [classes.get((trial, task), ()) for task in trial_part["task"]]
        kinds, accuracy = task_kinds(pairs), (100 * trial_part["accuracy"]).tolist()
        around = neighbours(kinds, accuracy)
        row = {"seed": seed, "stream_seed": stream_seed,
               "first": float(np.mean([a for a, k in zip(accuracy, kinds) if k == FIRST] or [math.nan]))}
        for kind in (REPEAT, SELF_PAIR):
            chosen = [i for i, k in enumerate(kinds) if k == kind and not math.isnan(around[i])]
            row[kind] = float(np.mean([accuracy[i] for i in chosen])) if chosen else math.nan
            row[f"{kind}_around"] = float(np.mean([around[i] for i in chosen])) if chosen else math.nan
            row[f"{kind}_tasks"] = len(chosen)
        rows.append(row)
    return pd.DataFrame(rows)


def spike_estimate(final: pd.DataFrame, records: pd.DataFrame, arms: Sequence[Arm]) -> Estimate:
    frame = spikes(final, records, arms[0])
    if frame.empty:
        return Estimate(lambda level: EMPTY, "")
    self_pair = stats.paired_difference_interval(frame[SELF_PAIR], frame[f"{SELF_PAIR}_around"])
    beside = (f"mean accuracy: self-pair tasks {np.nanmean(frame[SELF_PAIR]):.1f} % "
              f"({int(frame[f'{SELF_PAIR}_tasks'].sum())} tasks; {interval_text(self_pair, 'pp')} above their "
              f"neighbours), repeated distinct pairs {np.nanmean(frame[REPEAT]):.1f} % "
              f"({int(frame[f'{REPEAT}_tasks'].sum())} tasks), first occurrences {np.nanmean(frame[FIRST]):.1f} %")
    return Estimate(lambda level: stats.paired_difference_interval(frame[REPEAT], frame[f"{REPEAT}_around"], level),
                    beside)


ESTIMATORS = {"degradation": degradation_estimate, "degradation-difference": difference_estimate,
              "iaa": iaa_estimate, "repetition-spike": spike_estimate, "degradation-contrast": contrast_estimate}


def chosen_test(claim: Claim, final: pd.DataFrame) -> tuple[Arm, ...] | None:
    """The first of the claim's tests whose arms all have a finished task in `final`; None: not run."""
    present = set(zip(final["sweep"], final["arm"]))
    return next((test for test in claim.tests if all((a.sweep, a.arm) in present for a in test)), None)


def run_scale(claim: Claim, test: Sequence[Arm], final: pd.DataFrame, scales: Mapping[str, str]) -> dict:
    """The scale, tasks and epochs per task the test ran at, beside the paper's (the stream's defaults)."""
    part = final[pd.Series(list(zip(final["sweep"], final["arm"])), index=final.index).isin(
        [(a.sweep, a.arm) for a in test])]
    stream = STREAMS[part["stream"].iloc[0]]
    tasks, epochs = int(part["tasks"].min()), int(part["epochs_per_task"].min())
    scale = "/".join(sorted({scales.get(a.sweep, "unknown") for a in test}))
    return {"scale": scale, "tasks": tasks, "paper_tasks": stream.tasks,
            "scale_note": verdicts.scale_note(scale, tasks, stream.tasks, epochs, stream.epochs_per_task)}


def evaluate(records: pd.DataFrame, scales: Mapping[str, str], claims: Sequence[Claim] = CLAIMS,
             level: float = verdicts.LEVEL) -> pd.DataFrame:
    """One row per claim: its test, our estimate with its interval and n, the scale it ran at, the verdict at
    `level`, its p-value, and the verdict after Holm's step-down over every decided claim that was run.
    `scales` maps a sweep's name to the scale it ran at (its manifest's)."""
    final = final_accuracy(records)
    rows, intervals = [], {}
    for claim in claims:
        row = {"id": claim.id, "section": claim.section, "statement": claim.statement,
               "statistic": claim.statistic, "unit": claim.unit, "side": claim.side, "null": claim.null,
               "minimum": claim.minimum, "paper": claim.paper, "paper_note": claim.paper_note,
               "rules_version": verdicts.RULES_VERSION}
        test = chosen_test(claim, final)
        if test is None:
            rows.append({**row, "test": " | ".join(" vs ".join(map(str, t)) for t in claim.tests), **EMPTY,
                         "verdict": verdicts.NOT_RUN if claim.decided else "not run (no verdict)"})
            continue
        estimate = ESTIMATORS[claim.statistic](final, records, test)
        summary = estimate.interval(level)
        row.update(test=" vs ".join(map(str, test)), beside=estimate.beside, **summary,
                   **run_scale(claim, test, final, scales))
        if claim.decided:
            row["verdict"] = verdicts.verdict(summary, claim.side, claim.null, claim.minimum)
            intervals[claim.id] = estimate.interval
            row["p_value"] = verdicts.p_value(estimate.interval, claim.side, claim.null, claim.minimum)
        else:
            row["verdict"] = "no verdict"
        rows.append(row)
    table = pd.DataFrame(rows)
    return with_holm(table, intervals, {c.id: c for c in claims}, level)


def with_holm(table: pd.DataFrame, intervals: Mapping[str, Interval], claims: Mapping[str, Claim],
              level: float) -> pd.DataFrame:
    """Holm's step-down over the claims with a p-value: each one's adjusted level and p, and its verdict
    recomputed at that level (`verdict_holm`); claims not run or without a verdict keep theirs."""
    table = table.reindex(columns=[*table.columns, *(c for c in ("p_value", "beside", "scale", "tasks",
                                                                 "paper_tasks", "scale_note") if c not in table)])
    tested = table["id"].isin(list(intervals))
    p_values = table.loc[tested, "p_value"].tolist()
    table.loc[tested, "holm_level"] = verdicts.holm_levels(p_values, level)
    table.loc[tested, "holm_p"] = verdicts.holm_adjusted(p_values)
    table["verdict_holm"] = table["verdict"]
    for index in table.index[tested]:
        claim = claims[table.at[index, "id"]]
        adjusted = intervals[claim.id](table.at[index, "holm_level"])
        table.at[index, "verdict_holm"] = verdicts.verdict(adjusted, claim.side, claim.null, claim.minimum)
    return table
