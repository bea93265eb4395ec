"""The interval methods of analysis/stats.py: hand-worked answers, their ranges on extreme data, monotonicity in
the level, and a seeded simulation of their coverage at n = 3, 5 and 10 on distributions like ours.

`python -m tests.test_stats` prints the coverage of every simulated case (quoted in docs/analysis.md).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Iterator

import numpy as np
import pytest

from analysis import stats
from lopmodels.errors import ConfigError

T2 = 4.302652729911275  # t(0.975, 2), the two-sided 95 % quantile at n = 3 (tables: 4.302652729911)
T1 = math.tan(0.95 * math.pi / 2)  # t(0.975, 1) = 12.7062047...


def expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def bounds(result: dict) -> tuple[float, float]:
    return result["ci_low"], result["ci_high"]


def test_the_t_quantile_is_the_tables_value():
    assert stats.t_quantile(0.95, 2) == pytest.approx(T2, abs=1e-9)
    assert stats.t_quantile(0.95, 1) == pytest.approx(T1, rel=1e-12)


def test_fraction_scale_is_student_t_on_the_logit_of_the_mean():
    # 0.8, 1.0, 0.9: m = 0.9, s = 0.1; SE = 0.1 / sqrt(3); on the logit scale SE / (m (1 - m)) = SE / 0.09
    # logit(0.9) = ln 9 = 2.1972; w = 4.3027 * 0.057735 / 0.09 = 2.76015: bounds expit(2.1972 -+ 2.7602)
    # = 0.36287 and 0.99302 (plain Student-t: 0.9 -+ 0.2484 = 0.652 to 1.148, outside [0, 1])
    result = stats.mean_interval([0.8, 1.0, 0.9], "fraction")
    w = T2 * 0.1 / math.sqrt(3) / 0.09
    assert result["mean"] == pytest.approx(0.9) and result["n"] == 3
    assert bounds(result) == pytest.approx((expit(math.log(9) - w), expit(math.log(9) + w)))
    assert bounds(result) == pytest.approx((0.36287, 0.99302), abs=1e-5)
    assert result["ci_method"] == "logit Student-t (delta method)"


def test_nonnegative_scale_is_student_t_on_the_log_of_the_mean():
    # 3, 4, 5: m = 4, s = 1; SE(log m) = SE / m = 1 / (4 sqrt(3)); w = 4.3027 / (4 sqrt 3) = 0.62103
    # bounds 4 e^-0.62103 = 2.14955 and 4 e^0.62103 = 7.44341
    result = stats.mean_interval([3.0, 4.0, 5.0], "nonnegative")
    w = T2 / (4 * math.sqrt(3))
    assert bounds(result) == pytest.approx((4 * math.exp(-w), 4 * math.exp(w)))
    assert bounds(result) == pytest.approx((2.14955, 7.44341), abs=1e-5)
    assert result["ci_method"] == "log Student-t (delta method)"


def test_real_scale_is_plain_student_t():
    # 1, 2, 3: 2 -+ 4.3027 / sqrt(3) = 2 -+ 2.48413771
    result = stats.mean_interval([1.0, 2.0, 3.0], "real")
    assert bounds(result) == pytest.approx((2 - 2.48413771, 2 + 2.48413771), abs=1e-8)
    assert result["ci_method"] == "Student-t"


def test_degradation_is_the_ratio_of_mean_accuracies_on_the_log_scale():
    # Acc(0) 0.8, 0.9, 1.0 (mean 0.9); Acc(T) 0.4, 0.6, 0.5 (mean 0.5): ratio 5/9, degradation 44.444 %
    # z_i = Acc(T)_i / 0.5 - Acc(0)_i / 0.9 = 0.8 - 8/9, 1.2 - 1, 1 - 10/9 = -0.08889, 0.2, -0.11111
    # half-width on log(ratio): 4.3027 * s_z / sqrt(3); bounds 100 (1 - (5/9) e^(+-half))
    result = stats.degradation_interval([0.8, 0.9, 1.0], [0.4, 0.6, 0.5])
    z = np.array([0.8 - 8 / 9, 0.2, 1 - 10 / 9])
    half = T2 * z.std(ddof=1) / math.sqrt(3)
    assert result["mean"] == pytest.approx(100 * 4 / 9)
    assert bounds(result) == pytest.approx((100 * (1 - 5 / 9 * math.exp(half)), 100 * (1 - 5 / 9 * math.exp(-half))))
    assert result["ci_high"] < 100 and result["ci_method"] == stats.RATIO_METHOD


def test_chance_corrected_degradation_uses_accuracy_above_chance_clipped_at_the_floor():
    # binary tasks, chance 0.5. Acc(0) 0.9, 0.8, 1.0 -> above chance 0.4, 0.3, 0.5 (mean 0.4)
    # Acc(T) 0.6, 0.5, 0.45 -> 0.1, 0 and -0.05 clipped to 0.001 each (mean 0.034): 100 (1 - 0.034 / 0.4) = 91.5 %
    first, last = [0.9, 0.8, 1.0], [0.6, 0.5, 0.45]
    result = stats.degradation_interval(first, last, chance=0.5)
    assert stats.FLOOR == 1e-3 and result["mean"] == pytest.approx(91.5)
    above_first, above_last = np.array([0.4, 0.3, 0.5]), np.array([0.1, 0.001, 0.001])
    z = above_last / 0.034 - above_first / 0.4
    half = T2 * z.std(ddof=1) / math.sqrt(3)
    assert bounds(result) == pytest.approx((100 * (1 - 0.085 * math.exp(half)), 100 * (1 - 0.085 * math.exp(-half))))
    # uncorrected, the same runs lose 1 - 0.5167 / 0.9 = 42.6 % of their accuracy
    assert stats.degradation_interval(first, last)["mean"] == pytest.approx(100 * (1 - (1.55 / 3) / 0.9))
    # a chance per replicate gives the same as one number
    assert stats.degradation_interval(first, last, chance=[0.5] * 3) == result


def test_iaa_is_the_ratio_of_the_arms_mean_accuracies_with_a_paired_interval():
    # treated 0.6, 0.5 (mean 0.55); baseline 0.5, 0.4 (mean 0.45): 100 (0.55 / 0.45 - 1) = 22.222 %
    # (the mean of per-pair ratios would be 22.5 %: 20 and 25). z = 0.6/0.55 - 0.5/0.45 = -0.020202, +0.020202,
    # s_z = 0.020202 sqrt 2; half = 12.7062 * s_z / sqrt 2 = 0.256691; bounds 100 (11/9 e^-+0.256691 - 1)
    result = stats.paired_ratio_interval([0.6, 0.5], [0.5, 0.4])
    half = T1 * abs(0.6 / 0.55 - 0.5 / 0.45)
    assert result["mean"] == pytest.approx(100 * (0.55 / 0.45 - 1))
    assert bounds(result) == pytest.approx((100 * (11 / 9 * math.exp(-half) - 1), 100 * (11 / 9 * math.exp(half) - 1)))
    assert bounds(result) == pytest.approx((-5.4480, 57.9900), abs=1e-4)
    assert result["ci_low"] > -100 and result["n"] == 2


def test_a_paired_difference_is_student_t_on_the_differences():
    # a - b = 2, 3, 1: mean 2, s = 1: 2 -+ 2.48413771; a NaN on either side drops the pair
    result = stats.paired_difference_interval([3.0, 5.0, 4.0, math.nan], [1.0, 2.0, 3.0, 0.0])
    assert result["mean"] == 2.0 and result["n"] == 3 and result["ci_method"] == "paired Student-t"
    assert bounds(result) == pytest.approx((2 - 2.48413771, 2 + 2.48413771), abs=1e-8)


def test_a_difference_of_degradations_uses_paired_pseudo_values():
    # arm a: Acc(0) 0.8, 1.0, Acc(T) 0.4, 0.7: R = 0.55 / 0.9 = 0.61111, degradation 38.889 %
    # z = 0.4/0.55 - 0.8/0.9 = -0.161616 and +0.161616; pseudo-values 100 (1 - R (1 + z)) = 48.765, 29.012
    # arm b: 0.9 -> 0.9 twice: pseudo-values 0. Difference 38.889, half = 12.7062 * |48.765 - 29.012| / 2
    result = stats.degradation_difference_interval([0.8, 1.0], [0.4, 0.7], [0.9, 0.9], [0.9, 0.9])
    r = 0.55 / 0.9
    pseudo = [100 * (1 - r * (1 + z)) for z in (0.4 / 0.55 - 0.8 / 0.9, 0.7 / 0.55 - 1.0 / 0.9)]
    assert pseudo == pytest.approx([48.765, 29.012], abs=1e-3)
    half = T1 * abs(pseudo[0] - pseudo[1]) / 2
    assert result["mean"] == pytest.approx(100 * (1 - r))
    assert bounds(result) == pytest.approx((100 * (1 - r) - half, 100 * (1 - r) + half))
    assert result["ci_method"] == stats.PSEUDO_DIFFERENCE_METHOD
    assert stats.degradation_pseudo_values([0.8, 1.0], [0.4, 0.7]).mean() == pytest.approx(100 * (1 - r))


def every_interval(level: float) -> Iterator[dict]:
    """One result of every method on the same small data, at `level`."""
    first, last = [0.8, 0.9, 1.0, 0.85], [0.4, 0.6, 0.5, 0.3]
    yield stats.mean_interval(first, "fraction", level)
    yield stats.mean_interval([3.0, 4.0, 5.0, 9.0], "nonnegative", level)
    yield stats.mean_interval(last, "real", level)
    yield stats.degradation_interval(first, last, 0.1, level)
    yield stats.paired_ratio_interval(first, last, level)
    yield stats.paired_difference_interval(first, last, level)
    yield stats.degradation_difference_interval(first, last, last, [0.2, 0.3, 0.1, 0.25], level=level)


def test_every_interval_widens_with_the_level_around_the_estimate():
    levels = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
    results = [list(every_interval(level)) for level in levels]
    for narrow, wide in zip(results, results[1:]):
        for a, b in zip(narrow, wide):
            assert a["mean"] == b["mean"]
            assert b["ci_low"] < a["ci_low"] <= a["mean"] <= a["ci_high"] < b["ci_high"], a["ci_method"]


def test_fewer_than_two_replicates_give_no_interval():
    cases = [stats.mean_interval([0.7, math.nan], "fraction"), stats.degradation_interval([0.8], [0.4]),
             stats.paired_ratio_interval([0.6], [0.5]), stats.paired_difference_interval([1.0], [0.5]),
             stats.degradation_difference_interval([0.8], [0.4], [0.8], [0.6])]
    assert [c["ci_method"] for c in cases] == ["none (n < 2)"] * 5 and all(c["n"] == 1 for c in cases)
    assert all(math.isnan(c["ci_low"]) and math.isnan(c["ci_high"]) for c in cases)
    assert [c["mean"] for c in cases] == pytest.approx([0.7, 50.0, 20.0, 0.5, 25.0])
    empty = stats.mean_interval([], "real")
    assert empty["n"] == 0 and math.isnan(empty["mean"])


def test_zero_spread_gives_a_point_interval_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cases = [(stats.mean_interval([1.0] * 3, "fraction"), 1.0), (stats.mean_interval([0.0] * 3, "fraction"), 0.0),
                 (stats.mean_interval([0.0] * 4, "nonnegative"), 0.0), (stats.mean_interval([2.0] * 2, "real"), 2.0),
                 (stats.degradation_interval([1.0] * 3, [1.0] * 3), 0.0),
                 (stats.degradation_interval([0.5] * 3, [0.5] * 3, chance=0.5), 0.0),
                 (stats.paired_ratio_interval([0.6] * 3, [0.6] * 3), 0.0),
                 (stats.paired_difference_interval([0.6] * 3, [0.6] * 3), 0.0)]
    for result, value in cases:
        assert (result["mean"], result["ci_low"], result["ci_high"]) == (value, value, value), result


@pytest.mark.parametrize("first, last, chance", [
    ([1.0, 1.0, 1.0], [1.0, 0.999, 1.0], 0.1),  # perfect accuracy throughout
    ([0.02, 0.001, 0.0], [0.0, 0.0, 0.03], 0.0),  # near 0 throughout
    ([0.9, 0.95, 1.0], [0.1, 0.1, 0.1], 0.1),  # a collapse to chance, 10-class tasks
    ([0.99, 0.98, 0.97], [0.5, 0.51, 0.3], 0.5),  # a collapse to (and below) chance, binary tasks
    ([0.9, 0.95, 1.0, 0.92], [0.1, 0.9, 0.1, 0.95], 0.1),  # two of four replicates collapse
])
def test_bounds_stay_in_range_on_extreme_data(first, last, chance):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = {
            "fraction": (stats.mean_interval(first + last, "fraction"), 0.0, 1.0),
            "nonnegative": (stats.mean_interval(first + last, "nonnegative"), 0.0, math.inf),
            "degradation": (stats.degradation_interval(first, last, chance), -math.inf, 100.0),
            "iaa": (stats.paired_ratio_interval(last, first), -100.0, math.inf),
        }
    for name, (result, low, high) in results.items():
        assert low <= result["ci_low"] <= result["mean"] <= result["ci_high"] <= high, (name, result)
        assert all(math.isfinite(result[k]) for k in ("mean", "ci_low", "ci_high")), (name, result)


def test_bad_input_is_refused_naming_the_fix():
    with pytest.raises(ConfigError, match="unknown scale 'logit'; choose one of: fraction, nonnegative, real"):
        stats.mean_interval([0.5, 0.6], "logit")
    with pytest.raises(ConfigError, match="values in \\[0, 1\\]"):
        stats.mean_interval([0.5, 1.2], "fraction")
    with pytest.raises(ConfigError, match="need the same length"):
        stats.paired_ratio_interval([0.5, 0.6], [0.5])
    with pytest.raises(ConfigError, match="accuracies in \\[0, 1\\]"):
        stats.degradation_interval([80.0, 90.0], [40.0, 50.0])
    with pytest.raises(ConfigError, match="level must lie strictly between 0 and 1"):
        stats.mean_interval([0.5, 0.6], "fraction", level=95)


# The coverage simulation. Each case draws REPLICATES-sized datasets from a distribution like ours and counts how
# often the nominal 95 % interval holds the population quantity its method targets:
# - fraction, nonnegative: the population mean E[X];
# - degradation: 100 (1 - E[Acc(T) - c] / E[Acc(0) - c]), the degradation of the population's mean accuracies;
# - IAA: 100 (E[treated] / E[baseline] - 1), the paper's ratio of the arms' mean accuracies;
# - difference of degradations: the difference of the two arms' population degradations.
DATASETS = 1500  # per case and n: with four cases a method is judged on 6,000 datasets per n
REPLICATES = (3, 5, 10)
COVERAGE_FLOOR = 0.93


def beta(rng: np.random.Generator, mean: float, sd: float, size) -> np.ndarray:
    """Beta draws with the given mean and standard deviation."""
    k = mean * (1 - mean) / sd ** 2 - 1
    return rng.beta(mean * k, (1 - mean) * k, size)


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


Case = Callable[[np.random.Generator, int, int], tuple[Callable[[np.ndarray], dict], np.ndarray, float]]


def accuracy_case(mean: float, sd: float) -> Case:
    """Per-replicate accuracies (a task's, or an arm's average) from a Beta: the fraction scale."""
    def draw(rng, datasets, n):
        return (lambda x: stats.mean_interval(x, "fraction")), beta(rng, mean, sd, (datasets, n)), mean
    return draw


def gamma_case(mean: float, sd: float) -> Case:
    """Ranks and norms from a Gamma: the nonnegative scale."""
    def draw(rng, datasets, n):
        shape = (mean / sd) ** 2
        return (lambda x: stats.mean_interval(x, "nonnegative")), rng.gamma(shape, mean / shape, (datasets, n)), mean
    return draw


def degradation_case(first: tuple[float, float], kept: tuple[float, float], chance: float) -> Case:
    """Acc(0) from a Beta; Acc(T) = c + (Acc(0) - c) q with q, the share of the above-chance accuracy kept, an
    independent Beta: the target is 100 (1 - E[q])."""
    def draw(rng, datasets, n):
        a0 = beta(rng, *first, (datasets, n))
        at = chance + (a0 - chance) * beta(rng, *kept, (datasets, n))
        data = np.stack([a0, at], axis=-1)
        return (lambda x: stats.degradation_interval(x[:, 0], x[:, 1], chance)), data, 100 * (1 - kept[0])
    return draw


def iaa_case(baseline: tuple[float, float], shift: float, noise: float) -> Case:
    """A baseline arm's mean accuracies from a Beta; the treated arm's of the same replicate shifted on the
    logit scale with noise (so the two are correlated); the target from 400,000 draws of the same law."""
    def pair(rng, size):
        b = beta(rng, *baseline, size)
        return 1 / (1 + np.exp(-(logit(b) + shift + rng.normal(0, noise, size)))), b

    def draw(rng, datasets, n):
        treated, base = pair(rng, (datasets, n))
        big_t, big_b = pair(rng, 400_000)
        data = np.stack([treated, base], axis=-1)
        return (lambda x: stats.paired_ratio_interval(x[:, 0], x[:, 1])), data, 100 * (big_t.mean() / big_b.mean() - 1)
    return draw


def difference_case(first: tuple[float, float], kept_a: tuple[float, float], kept_b: tuple[float, float]) -> Case:
    """Two arms of the same replicates (a shared Acc(0)), each keeping a Beta share of it: the target is
    100 (E[q_b] - E[q_a])."""
    def draw(rng, datasets, n):
        a0 = beta(rng, *first, (datasets, n))
        data = np.stack([a0, a0 * beta(rng, *kept_a, (datasets, n)), a0, a0 * beta(rng, *kept_b, (datasets, n))],
                        axis=-1)
        return ((lambda x: stats.degradation_difference_interval(x[:, 0], x[:, 1], x[:, 2], x[:, 3])), data,
                100 * (kept_b[0] - kept_a[0]))
    return draw


CASES: dict[str, dict[str, Case]] = {
    "accuracy (fraction)": {"Beta mean 0.6 sd 0.15": accuracy_case(0.6, 0.15),
                            "Beta mean 0.75 sd 0.1": accuracy_case(0.75, 0.1),
                            "Beta mean 0.9 sd 0.05": accuracy_case(0.9, 0.05),
                            "Beta mean 0.9 sd 0.1": accuracy_case(0.9, 0.1)},
    "rank or norm (nonnegative)": {"Gamma mean 12 sd 3": gamma_case(12, 3), "Gamma mean 0.5 sd 0.25": gamma_case(0.5, 0.25)},
    "degradation": {"Acc(0) 0.85 sd 0.05, keeps 0.6 sd 0.1": degradation_case((0.85, 0.05), (0.6, 0.1), 0.0),
                    "Acc(0) 0.7 sd 0.1, keeps 0.5 sd 0.15": degradation_case((0.7, 0.1), (0.5, 0.15), 0.0),
                    "above chance 0.1: Acc(0) 0.9 sd 0.05, keeps 0.3 sd 0.1":
                        degradation_case((0.9, 0.05), (0.3, 0.1), 0.1),
                    "above chance 0.5: Acc(0) 0.95 sd 0.03, keeps 0.9 sd 0.05":
                        degradation_case((0.95, 0.03), (0.9, 0.05), 0.5)},
    "IAA": {"baseline 0.6 sd 0.1, +0.5 logit": iaa_case((0.6, 0.1), 0.5, 0.2),
            "baseline 0.8 sd 0.05, +0.3 logit": iaa_case((0.8, 0.05), 0.3, 0.3),
            "baseline 0.5 sd 0.15, -0.3 logit": iaa_case((0.5, 0.15), -0.3, 0.2),
            "baseline 0.7 sd 0.1, no effect": iaa_case((0.7, 0.1), 0.0, 0.5)},
    "difference of degradations": {
        "Acc(0) 0.85 sd 0.05, keeps 0.6 vs 0.8 sd 0.1": difference_case((0.85, 0.05), (0.6, 0.1), (0.8, 0.1)),
        "Acc(0) 0.9 sd 0.05, keeps 0.5 sd 0.15 vs 0.5 sd 0.05": difference_case((0.9, 0.05), (0.5, 0.15), (0.5, 0.05))},
}


def coverage(case: Case, n: int, datasets: int, seed: int) -> float:
    """The share of `datasets` simulated datasets of n replicates whose 95 % interval holds the target."""
    interval, data, target = case(np.random.default_rng(seed), datasets, n)
    results = [interval(x) for x in data]
    return float(np.mean([r["ci_low"] <= target <= r["ci_high"] for r in results]))


@pytest.mark.parametrize("n", REPLICATES)
@pytest.mark.parametrize("method", sorted(CASES))
def test_nominal_95_percent_intervals_cover_at_least_93_percent(method, n):
    rates = [coverage(case, n, DATASETS, seed) for seed, case in enumerate(CASES[method].values())]
    assert np.mean(rates) >= COVERAGE_FLOOR, dict(zip(CASES[method], rates))
    assert min(rates) >= COVERAGE_FLOOR - 0.02, dict(zip(CASES[method], rates))  # no case far below


if __name__ == "__main__":  # the coverage table of docs/analysis.md, 10,000 datasets per cell
    print("| quantity | distribution | n = 3 | n = 5 | n = 10 |\n|---|---|---|---|---|")
    for method, cases in CASES.items():
        for seed, (name, case) in enumerate(cases.items()):
            print(f"| {method} | {name} | "
                  + " | ".join(f"{coverage(case, n, 10_000, 100 + seed):.3f}" for n in REPLICATES) + " |")
