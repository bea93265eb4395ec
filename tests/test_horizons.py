"""The degradation by horizon (analysis/horizons.py): each horizon is the robust degradation above chance of the
stream cut there, the last one the degradation table's, and a trial counts at the horizons it has reached."""
from __future__ import annotations

import pytest

from analysis import horizons, metrics, tables
from tests.test_metrics import make_records

# 20 tasks (k = 5): replicate 0 falls from 0.9 to 0.6 by task 10 and stays; replicate 1 from 0.8 to 0.5
LEVELLING = {("a", 0): [0.9] * 5 + [0.6] * 15, ("a", 1): [0.8] * 5 + [0.5] * 15}


@pytest.mark.parametrize("tasks, k, expected", [(50, 5, [10, 20, 30, 40, 50]), (25, 5, [10, 20, 25]),
                                                (100, 5, [20, 40, 60, 80, 100]), (8, 2, [4, 8])])
def test_horizons_are_a_fifth_of_the_stream_apart_at_least_2k_and_end_at_its_end(tasks, k, expected):
    assert horizons.horizons(tasks, k) == expected


def test_each_horizon_is_the_degradation_of_the_stream_cut_there_and_the_last_the_tables():
    records = make_records(LEVELLING)
    table = horizons.degradation_by_horizon(records)
    assert table["horizon"].tolist() == [10, 20] and (table["k"] == 5).all() and (table["n"] == 2).all()
    # tasks 5-9 against 0-4, above chance 0.1: the arm's means (0.55 - 0.1) / (0.85 - 0.1) -> 40 % lost
    assert table["mean"].tolist() == pytest.approx([40.0, 40.0])
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    end = tables.degradation_table(records).iloc[0]
    assert table["mean"].iloc[-1] == pytest.approx(end["corrected_degradation"])
    assert table["ci_low"].iloc[-1] == pytest.approx(end["corrected_ci_low"])


def test_a_trial_still_running_counts_at_the_horizons_it_has_reached():
    records = make_records({**LEVELLING, ("a", 2): [0.7] * 5 + [0.4] * 7}, tasks=20)  # 12 of 20 tasks
    table = horizons.degradation_by_horizon(records)
    assert dict(zip(table["horizon"], table["n"])) == {10: 3, 20: 2}
    assert metrics.degradation(metrics.final_accuracy(records), 5, True)["seed"].tolist() == [0, 1]
    display = horizons.horizon_display(table)
    assert display.columns.tolist() == ["sweep", "arm", "after 10 tasks, %", "after 20 tasks, %"]
    assert display.iloc[0, 2].endswith("n = 3") and display.iloc[0, 3].startswith("40.0 [")


def test_a_stream_too_short_for_two_horizons_gives_no_table():
    assert horizons.degradation_by_horizon(make_records({("a", 0): [0.9, 0.8, 0.7], ("a", 1): [0.9, 0.9, 0.8]})).empty
