"""Confidence intervals of a mean over replicates: Student-t below 10 replicates, seeded bootstrap from 10 on.

Every interval names its method (`ci_method`), so a table says how its bounds were made.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

LEVEL = 0.95
BOOTSTRAP_FROM = 10  # replicates; below this the Student-t interval, from this on the bootstrap
RESAMPLES = 10_000
SEED = 0
SUMMARY_COLUMNS = ["mean", "ci_low", "ci_high", "ci_method", "n"]


def t_two_sided_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer `df` degrees of freedom, exactly.

    theta = atan(t / sqrt(df));
    odd df:  2/pi (theta + sin cos (1 + 2/3 cos^2 + ... + 2*4..(df-3) / (1*3..(df-2)) cos^(df-3)));
    even df: sin (1 + 1/2 cos^2 + ... + 1*3..(df-3) / (2*4..(df-2)) cos^(df-2)). Abramowitz & Stegun 26.7.3-4.
    """
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    term, total = 1.0, 1.0
    for j in range(2 if df % 2 else 1, df - 1, 2):  # odd df: ratios 2/3, 4/5, ...; even df: 1/2, 3/4, ...
        term *= j / (j + 1) * cos2
        total += term
    if df % 2:
        return 2 / math.pi * (theta + (sin * math.cos(theta) * total if df > 1 else 0.0))
    return sin * total


def t_quantile(level: float, df: int) -> float:
    """The two-sided Student-t critical value t with P(|T_df| <= t) = level (e.g. t(0.975, 2) = 4.3027).

    Bisection on theta in (0, pi/2), where P(|T| <= sqrt(df) tan theta) rises monotonically from 0 to 1.
    """
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = (low + high) / 2
        if t_two_sided_probability(math.sqrt(df) * math.tan(middle), df) < level:
            low = middle
        else:
            high = middle
    return math.sqrt(df) * math.tan((low + high) / 2)


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """mean -+ t((1 + level) / 2, n - 1) * s / sqrt(n), s the sample standard deviation (n - 1)."""
    n = len(values)
    half = t_quantile(level, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return values.mean() - half, values.mean() + half


def bootstrap_interval(values: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES,
                       seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap of the mean: the (1 -+ level) / 2 quantiles of `resamples` means of n draws
    with replacement, from `numpy.random.default_rng(seed)` (Efron & Tibshirani 1993, ch. 13)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def interval(values: Sequence[float] | np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES,
             seed: int = SEED) -> dict[str, float | str | int]:
    """Mean, confidence bounds, the method that made them and n; bounds are NaN for fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n < 2:
        return {"mean": values.mean() if n else math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "ci_method": "none (n < 2)", "n": n}
    if n < BOOTSTRAP_FROM:
        low, high = t_interval(values, level)
        method = "Student-t"
    else:
        low, high = bootstrap_interval(values, level, resamples, seed)
        method = f"bootstrap ({resamples} resamples, seed {seed})"
    return {"mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high), "ci_method": method, "n": n}


def summarize(frame: pd.DataFrame, by: list[str], column: str, level: float = LEVEL) -> pd.DataFrame:
    """One row per group of `by`: mean, 95 % CI, method and n of `column` over the group's rows (NaN left out)."""
    groups = frame.dropna(subset=[column]).groupby(by, sort=True, dropna=False)[column]
    values = groups.agg(lambda s: s.to_numpy())
    rows = pd.DataFrame([interval(v, level) for v in values], index=values.index, columns=SUMMARY_COLUMNS)
    return rows.reset_index().astype({"n": int})
