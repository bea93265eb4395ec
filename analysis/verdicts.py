"""The verdict rules of the claims table: an interval against a claim's minimum effect, a p-value found by
bisection on the interval's level, and Holm's step-down over every claim that was run (docs/claims.md).

Rules frozen when issue 10 lands; a later change lists both verdicts (the old rules' and the new) and raises
RULES_VERSION.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

RULES_VERSION = 1
RULES_NOTE = "rules frozen when issue 10 lands; a later change lists both verdicts"
LEVEL = 0.95
SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "supported", "contradicted", "inconclusive", "not run"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
SIDES = ("greater", "less")
LOWEST_LEVEL, HIGHEST_LEVEL = 1e-6, 1 - 1e-9  # the bisection's range: p-values from 1e-9 to 1
BISECTION_STEPS = 60

Summary = Mapping[str, float]  # mean, ci_low, ci_high, ci_method, n (analysis.stats.SUMMARY_COLUMNS)
Interval = Callable[[float], Summary]  # level -> the summary at that confidence level


def toward_claim(summary: Summary, side: str, null: float) -> tuple[float, float]:
    """The interval as signed distances from the null, positive toward the claimed side: (near, far)."""
    low, high = summary["ci_low"] - null, summary["ci_high"] - null
    return (low, high) if side == "greater" else (-high, -low)


def has_interval(summary: Summary) -> bool:
    return summary["n"] >= 2 and not (math.isnan(summary["ci_low"]) or math.isnan(summary["ci_high"]))


def verdict(summary: Summary, side: str, null: float, minimum: float) -> str:
    """supported: the interval lies beyond null + minimum on the claimed side (strictly); contradicted: it lies
    wholly on the other side of the null (strictly), or wholly within null -+ minimum (inclusive);
    inconclusive: otherwise, and for n < 2 (no interval)."""
    if not has_interval(summary):
        return INCONCLUSIVE
    near, far = toward_claim(summary, side, null)
    if near > minimum:
        return SUPPORTED
    if far < 0 or (near >= -minimum and far <= minimum):
        return CONTRADICTED
    return INCONCLUSIVE


def beyond_minimum(summary: Summary, side: str, null: float, minimum: float) -> bool:
    return has_interval(summary) and toward_claim(summary, side, null)[0] > minimum


def p_value(interval: Interval, side: str, null: float, minimum: float) -> float:
    """1 - L*, L* the widest level whose interval still lies beyond the minimum effect on the claimed side: the
    p-value of "the quantity is at most null + minimum toward the claim". `interval` must be monotone in its
    level (a wider level never gives a narrower interval), so L* is found by bisection; 1 where even the
    narrowest interval does not lie beyond, 1 - HIGHEST_LEVEL where the widest still does."""
    def beyond(level: float) -> bool:
        return beyond_minimum(interval(level), side, null, minimum)

    low, high = LOWEST_LEVEL, HIGHEST_LEVEL
    if not beyond(low):
        return 1.0
    if beyond(high):
        return 1 - high
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if beyond(middle) else (low, middle)
    return 1 - low


def holm_levels(p_values: Sequence[float], level: float = LEVEL) -> list[float]:
    """Each claim's confidence level under Holm's step-down over all `p_values` (family-wise 1 - level).

    Sorted by p (ties in the given order), rank r of m (from 0) is tested at alpha / (m - r); from the first
    rank whose p exceeds its threshold on, every later rank keeps that rank's threshold (Holm stops
    rejecting there), so no claim after it can be supported. The level is 1 - the threshold (Holm 1979)."""
    alpha, m = 1 - level, len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [math.nan] * m
    stopped: float | None = None
    for rank, i in enumerate(order):
        threshold = alpha / (m - rank)
        if stopped is None and p_values[i] > threshold:
            stopped = threshold
        levels[i] = 1 - (stopped if stopped is not None else threshold)
    return levels


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: max over ranks up to r of min(1, (m - rank) p) (Holm 1979)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def scale_note(scale: str, tasks: int, paper_tasks: int, epochs: int, paper_epochs: int) -> str:
    """`at scale small: 20 of 50 tasks` (and epochs per task where they differ); empty at the paper's counts."""
    parts = [f"{tasks} of {paper_tasks} tasks"] if tasks != paper_tasks else []
    if epochs != paper_epochs:
        parts.append(f"{epochs} of {paper_epochs} epochs per task")
    return f"at scale {scale}: {', '.join(parts)}" if parts else ""
