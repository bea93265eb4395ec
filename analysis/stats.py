"""Confidence intervals over replicates that stay inside their quantity's range and keep their coverage at n = 3.

Every interval is Student-t with n - 1 degrees of freedom on a scale where the quantity is unbounded (the logit
of a mean fraction, the log of a mean or of a ratio of means), by the delta method, transformed back. A plain
percentile bootstrap is no option at these n: a nominal 95 % bootstrap of a mean covers about 76 % at n = 3.
Every summary is a dict with the keys SUMMARY_COLUMNS and names its method (`ci_method`); each function is
monotone in `level`, so a p-value can be found by bisection on it. docs/analysis.md lists what each targets
and the coverage measured in simulation (tests/test_stats.py).
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import pandas as pd

from lopmodels.errors import ConfigError

LEVEL = 0.95
SUMMARY_COLUMNS = ["mean", "ci_low", "ci_high", "ci_method", "n"]
SCALE_METHODS = {"fraction": "logit Student-t (delta method)", "nonnegative": "log Student-t (delta method)",
                 "real": "Student-t"}
RATIO_METHOD = "paired log ratio of means, Student-t (delta method)"
DIFFERENCE_METHOD = "paired Student-t"
PSEUDO_DIFFERENCE_METHOD = "paired Student-t on delta-method pseudo-values"
NO_INTERVAL = "none (n < 2)"
# Accuracy above chance is clipped here (0.1 percentage point, about one test example in a thousand): a
# collapse to or below chance is a ratio near 0, never 0 or negative, and the log ratio stays finite.
FLOOR = 1e-3
MAX_EXPONENT = 700.0  # math.exp overflows just past 709

Values = Sequence[float] | np.ndarray | pd.Series


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


@functools.lru_cache(maxsize=256)  # every interval asks for a handful of (level, df): bisect each once
def t_quantile(level: float, df: int) -> float:
    """The two-sided Student-t critical value t with P(|T_df| <= t) = level (e.g. t(0.975, 2) = 4.3027).

    Bisection on theta in (0, pi/2), where P(|T| <= sqrt(df) tan theta) rises monotonically from 0 to 1.
    """
    if not 0 < level < 1:
        raise ConfigError(f"level must lie strictly between 0 and 1, got {level!r}")
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = (low + high) / 2
        if t_two_sided_probability(math.sqrt(df) * math.tan(middle), df) < level:
            low = middle
        else:
            high = middle
    return math.sqrt(df) * math.tan((low + high) / 2)


def summary(mean: float, low: float, high: float, method: str, n: int) -> dict[str, float | str | int]:
    """The summary dict; bounds widened to the estimate where rounding in a transform put them a hair inside."""
    if not math.isnan(low):
        low, high = min(low, mean), max(high, mean)
    return {"mean": float(mean), "ci_low": float(low), "ci_high": float(high), "ci_method": method, "n": int(n)}


def no_interval(mean: float, n: int) -> dict[str, float | str | int]:
    """Fewer than two replicates: the estimate alone (NaN with none)."""
    return summary(mean, math.nan, math.nan, NO_INTERVAL, n)


def finite(values: Values, name: str = "values") -> np.ndarray:
    """`values` as floats with NaN (a replicate without a value) left out; infinities are refused."""
    array = np.asarray(values, dtype=float).ravel()
    array = array[~np.isnan(array)]
    if np.isinf(array).any():
        raise ConfigError(f"{name} hold an infinite value; give finite numbers (NaN for a missing replicate)")
    return array


def paired(a: Values, b: Values, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two per-replicate arrays paired by position, pairs with a NaN on either side left out."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"{names[0]} and {names[1]} are paired by position and need the same length, "
                          f"got {len(a)} and {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return finite(a[keep], names[0]), finite(b[keep], names[1])


def half_width(values: np.ndarray, level: float) -> float:
    """t((1 + level) / 2, n - 1) * s / sqrt(n), s the sample standard deviation (n - 1)."""
    return t_quantile(level, len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def expit(x: float) -> float:
    """1 / (1 + e^-x), without overflow for large |x|."""
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def mean_interval(values: Values, scale: str, level: float = LEVEL) -> dict[str, float | str | int]:
    """Mean of per-replicate values with a Student-t interval on `scale`, transformed back.

    The target is the population mean m. "real": m -+ t s / sqrt(n). "nonnegative" (values >= 0): log m -+ w,
    w = t s / (sqrt(n) m) (the delta method: SE(log mean) = SE(mean) / mean). "fraction" (values in [0, 1]):
    logit m -+ t s / (sqrt(n) m (1 - m)). Zero spread (or a mean on the range's edge) gives a point interval.
    """
    if scale not in SCALE_METHODS:
        raise ConfigError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALE_METHODS)}")
    x = finite(values)
    if scale == "fraction" and ((x < 0) | (x > 1)).any():
        raise ConfigError("scale 'fraction' needs values in [0, 1]; use scale 'real' for other values")
    if scale == "nonnegative" and (x < 0).any():
        raise ConfigError("scale 'nonnegative' needs values >= 0; use scale 'real' for signed values")
    n = len(x)
    if n < 2:
        return no_interval(x.mean() if n else math.nan, n)
    m, half = float(x.mean()), half_width(x, level)
    method = SCALE_METHODS[scale]
    edge = {"fraction": m <= 0 or m >= 1, "nonnegative": m <= 0, "real": False}[scale]
    if half == 0 or edge:
        return summary(m, m, m, method, n)
    if scale == "real":
        return summary(m, m - half, m + half, method, n)
    if scale == "nonnegative":
        return summary(m, m * math.exp(-half / m), m * math.exp(half / m), method, n)
    width = half / (m * (1 - m))
    return summary(m, expit(logit(m) - width), expit(logit(m) + width), method, n)


def log_ratio(numerator: np.ndarray, denominator: np.ndarray, level: float) -> tuple[float, float]:
    """log(mean(numerator) / mean(denominator)) and its half-width by the delta method for paired replicates:
    Var(log ratio) ~ Var(mean(z)), z_i = num_i / mean(num) - den_i / mean(den), with t on n - 1 df."""
    z = numerator / numerator.mean() - denominator / denominator.mean()
    return math.log(numerator.mean() / denominator.mean()), half_width(z, level)


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray, level: float, scale: float,
                   shift: float) -> dict[str, float | str | int]:
    """shift + scale * mean(num) / mean(den) with the paired log-ratio interval, both transformed alike."""
    n = len(numerator)
    if n and (numerator.mean() <= 0 or denominator.mean() <= 0):
        return summary(math.nan, math.nan, math.nan, "none (a mean is 0)", n)
    estimate = shift + scale * numerator.mean() / denominator.mean() if n else math.nan
    if n < 2:
        return no_interval(estimate, n)
    center, half = log_ratio(numerator, denominator, level)
    if half == 0:
        return summary(estimate, estimate, estimate, RATIO_METHOD, n)
    # an exponent past float range (a huge half-width at a level near 1) is an unbounded ratio, not an error
    ends = sorted(shift + scale * math.exp(min(center + sign * half, MAX_EXPONENT)) for sign in (-1, 1))
    return summary(estimate, ends[0], ends[1], RATIO_METHOD, n)


def check_accuracies(values: np.ndarray, name: str) -> np.ndarray:
    if ((values < 0) | (values > 1)).any():
        raise ConfigError(f"{name} must be accuracies in [0, 1]; got values from {values.min()} to {values.max()}")
    return values


def above_chance(accuracy: np.ndarray, chance: float | np.ndarray) -> np.ndarray:
    """Accuracy above chance, A - c, clipped at FLOOR (chance 0: the accuracy itself, clipped alike)."""
    return np.maximum(accuracy - chance, FLOOR)


def degradation_parts(first: Values, last: Values, chance: float | Values) -> tuple[np.ndarray, np.ndarray]:
    """Acc(0) and Acc(T) above chance (`chance` one number or one per replicate), paired, NaN pairs left out."""
    f, l = (np.asarray(v, dtype=float).ravel() for v in (first, last))
    c = np.asarray(chance, dtype=float)
    if f.shape != l.shape or (c.ndim and c.shape != f.shape):
        raise ConfigError(f"first, last (and chance, unless one number) are paired by position and need the same "
                          f"length, got {len(f)}, {len(l)} (and {c.size})")
    c = np.broadcast_to(c, f.shape)
    if ((c < 0) | (c >= 1)).any():
        raise ConfigError(f"chance accuracy must lie in [0, 1), got {np.unique(c).tolist()}")
    keep = ~(np.isnan(f) | np.isnan(l))
    f, l, c = check_accuracies(f[keep], "first"), check_accuracies(l[keep], "last"), c[keep]
    return above_chance(f, c), above_chance(l, c)


def degradation_interval(first: Values, last: Values, chance: float | Values = 0.0,
                         level: float = LEVEL) -> dict[str, float | str | int]:
    """Degradation in %, 100 * (1 - mean(Acc(T)) / mean(Acc(0))), per-replicate Acc(0) and Acc(T) paired by
    position, with the paired log-ratio interval transformed back (so the upper bound is below 100 %).

    With `chance` c (one number or one per replicate), accuracies above chance, max(A - c, FLOOR), take their
    place: the share of the above-chance accuracy lost. The target is 100 (1 - E[Acc(T) - c] / E[Acc(0) - c]).
    """
    f, l = degradation_parts(first, last, chance)
    return ratio_of_means(l, f, level, scale=-100.0, shift=100.0)


def paired_ratio_interval(treated: Values, baseline: Values, level: float = LEVEL) -> dict[str, float | str | int]:
    """IAA in %, 100 * (mean(treated) / mean(baseline) - 1), the paper's ratio of the arms' mean accuracies, with
    the paired log-ratio interval over replicates (paired by position) transformed back; bounds above -100 %."""
    t, b = paired(treated, baseline, ("treated", "baseline"))
    return ratio_of_means(check_accuracies(t, "treated"), check_accuracies(b, "baseline"), level, scale=100.0,
                          shift=-100.0)


def paired_difference_interval(a: Values, b: Values, level: float = LEVEL) -> dict[str, float | str | int]:
    """Mean of a - b over replicates paired by position, Student-t on the differences (n - 1 df)."""
    x, y = paired(a, b, ("a", "b"))
    result = mean_interval(x - y, "real", level)
    return {**result, "ci_method": DIFFERENCE_METHOD} if result["n"] >= 2 else result


def ratio_pseudo_values(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Per-replicate linearisations of R = mean(num) / mean(den): R (1 + num_i / mean(num) - den_i / mean(den)).
    Their mean is R and their variance / n the delta method's Var(R), so a paired difference of two ratios is a
    Student-t interval on the differences of their pseudo-values."""
    ratio = numerator.mean() / denominator.mean()
    return ratio * (1 + numerator / numerator.mean() - denominator / denominator.mean())


def degradation_pseudo_values(first: Values, last: Values, chance: float | Values = 0.0) -> np.ndarray:
    """Pseudo-values of the degradation in % (their mean is `degradation_interval`'s estimate), for differences."""
    f, l = degradation_parts(first, last, chance)
    return 100 * (1 - ratio_pseudo_values(l, f))


def degradation_difference_interval(first_a: Values, last_a: Values, first_b: Values, last_b: Values,
                                    chance_a: float | Values = 0.0, chance_b: float | Values = 0.0,
                                    level: float = LEVEL) -> dict[str, float | str | int]:
    """Degradation of arm a minus that of arm b, in percentage points, replicates paired by position: the
    difference of the two `degradation_interval` estimates, with a Student-t interval (n - 1 df) on the paired
    differences of their pseudo-values (the delta method for a difference of two ratios of means)."""
    columns = [np.asarray(v, dtype=float).ravel() for v in (first_a, last_a, first_b, last_b)]
    if len({len(c) for c in columns}) > 1:
        raise ConfigError("first and last accuracies of both arms are paired by position and need the same length, "
                          f"got {', '.join(str(len(c)) for c in columns)}")
    keep = ~np.any([np.isnan(c) for c in columns], axis=0)
    chances = [c if np.ndim(c) == 0 else np.asarray(c, dtype=float)[keep] for c in (chance_a, chance_b)]
    a = degradation_pseudo_values(columns[0][keep], columns[1][keep], chances[0]) if keep.any() else np.array([])
    b = degradation_pseudo_values(columns[2][keep], columns[3][keep], chances[1]) if keep.any() else np.array([])
    result = paired_difference_interval(a, b, level)
    return {**result, "ci_method": PSEUDO_DIFFERENCE_METHOD} if result["n"] >= 2 else result


def summarize(frame: pd.DataFrame, by: list[str], column: str, scale: str = "real",
              level: float = LEVEL) -> pd.DataFrame:
    """One row per group of `by`: `mean_interval` of `column` over the group's rows on `scale` (NaN left out)."""
    groups = frame.dropna(subset=[column]).groupby(by, sort=True, dropna=False)[column]
    values = groups.agg(lambda s: s.to_numpy())
    rows = pd.DataFrame([mean_interval(v, scale, level) for v in values], index=values.index,
                        columns=SUMMARY_COLUMNS)
    return rows.reset_index().astype({"n": int})
