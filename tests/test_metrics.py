"""Metrics and intervals on hand-written records whose answers are worked out by hand in the comments."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import metrics, paper, stats, tables
from lopmodels.registry import ConfigError

CLASSES = [str(d) for d in range(10)]


def make_records(accuracies: dict[tuple[str, int], list[float]], *, mitigation: dict[str, str] | None = None,
                 model: str = "mlp", tasks: int | None = None, diverged: dict[tuple[str, int], int] | None = None,
                 sweep: str = "s") -> pd.DataFrame:
    """Records of trials (arm, seed) -> final-epoch test accuracy per finished task, two epochs per task.

    Epoch 0 of every task has accuracy 0.0, which no metric may read. A trial listed in `diverged` gets one more
    row: epoch 0 of task `diverged[...]`, with a non-finite loss and `diverged` True.
    """
    rows = []
    for (arm, seed), values in accuracies.items():
        total = tasks or len(values)
        base = {"sweep": sweep, "arm": arm, "trial_id": f"{arm}-{seed}", "seed": seed, "stream_seed": seed,
                "model": model, "stream": "mnist-reshuffle", "mitigation": (mitigation or {}).get(arm, "none"),
                "hidden": 25, "seq_len": 28, "tasks": total, "epochs_per_task": 2, "task_classes": CLASSES}
        for task, value in enumerate(values):
            rows += [{**base, "task": task, "epoch": 0, "test_accuracy": 0.0, "diverged": False},
                     {**base, "task": task, "epoch": 1, "test_accuracy": value, "diverged": False}]
        if diverged and (arm, seed) in diverged:
            rows.append({**base, "task": diverged[(arm, seed)], "epoch": 0, "test_accuracy": 0.3, "diverged": True})
    return pd.DataFrame(rows)


def by_seed(frame: pd.DataFrame, column: str) -> dict[int, float]:
    return dict(zip(frame["seed"], frame[column]))


# arm "a": replicate 0 falls 0.8 -> 0.4, replicate 1 falls 1.0 -> 0.7
FALLING = {("a", 0): [0.8, 0.6, 0.5, 0.4], ("a", 1): [1.0, 0.9, 0.8, 0.7]}


def test_final_accuracy_reads_only_each_task_s_last_epoch():
    final = metrics.final_accuracy(make_records(FALLING))
    assert len(final) == 8 and not final["imputed"].any()
    assert final[final["seed"] == 0]["test_accuracy"].tolist() == [0.8, 0.6, 0.5, 0.4]
    assert set(final["status"]) == {"complete"}


def test_degradation_is_the_paper_formula_first_against_last_task():
    # replicate 0: (0.8 - 0.4) / 0.8 * 100 = 50; replicate 1: (1.0 - 0.7) / 1.0 * 100 = 30
    result = metrics.degradation(metrics.final_accuracy(make_records(FALLING)))
    assert by_seed(result, "degradation") == pytest.approx({0: 50.0, 1: 30.0})
    assert (result["k"] == 1).all()


def test_robust_degradation_compares_the_means_of_the_first_and_last_k_tasks():
    # k = 2. replicate 0: first (0.8 + 0.6) / 2 = 0.7, last (0.5 + 0.4) / 2 = 0.45, (0.7 - 0.45) / 0.7 * 100 = 35.714...
    #        replicate 1: first 0.95, last 0.75, 0.2 / 0.95 * 100 = 21.052...
    result = metrics.degradation(metrics.final_accuracy(make_records(FALLING)), k=2)
    assert by_seed(result, "degradation") == pytest.approx({0: 25 / 0.7, 1: 20 / 0.95})


def test_robust_degradation_refuses_overlapping_ends():
    with pytest.raises(ConfigError, match="at least 6 tasks"):
        metrics.degradation(metrics.final_accuracy(make_records(FALLING)), k=3)


def test_default_k_is_at_most_a_quarter_of_the_stream():
    assert [metrics.default_k(t) for t in (1, 2, 8, 20, 50, 100)] == [1, 1, 2, 5, 5, 5]


def test_average_accuracy_is_the_mean_over_tasks():
    # replicate 0: (0.8 + 0.6 + 0.5 + 0.4) / 4 = 0.575; replicate 1: (1.0 + 0.9 + 0.8 + 0.7) / 4 = 0.85
    result = metrics.average_accuracy(metrics.final_accuracy(make_records(FALLING)))
    assert by_seed(result, "average_accuracy") == pytest.approx({0: 0.575, 1: 0.85})


# baseline averages: replicate 0 (0.6 + 0.4) / 2 = 0.5, replicate 1 (0.5 + 0.3) / 2 = 0.4
# l2 averages:       replicate 0 0.6, replicate 1 0.5, replicate 2 0.9 (no baseline replicate 2: unpaired)
PAIRED = {("baseline", 0): [0.6, 0.4], ("baseline", 1): [0.5, 0.3],
          ("l2-1e-3", 0): [0.7, 0.5], ("l2-1e-3", 1): [0.6, 0.4], ("l2-1e-3", 2): [0.9, 0.9]}


def test_iaa_pairs_each_replicate_with_the_baseline_of_the_same_seed():
    # paired: (0.6 - 0.5) / 0.5 * 100 = 20 and (0.5 - 0.4) / 0.4 * 100 = 25
    # (crossed pairs would give 50 and 0; the unpaired replicate 2 is left out)
    final = metrics.final_accuracy(make_records(PAIRED, mitigation={"l2-1e-3": "l2"}))
    result = metrics.iaa(final)
    assert by_seed(result, "iaa") == pytest.approx({0: 20.0, 1: 25.0})
    assert set(result["baseline"]) == {"baseline"}


def test_iaa_summary_is_a_student_t_interval_over_pairs():
    # values 20, 25: mean 22.5, s = 5 / sqrt(2), t(0.975, 1) = tan(0.95 pi / 2) = 12.7062047...
    # half-width = 12.7062047 * (5 / sqrt(2)) / sqrt(2) = 12.7062047 * 2.5 = 31.7655118
    table = tables.iaa_table(make_records(PAIRED, mitigation={"l2-1e-3": "l2"}))
    row = table.iloc[0]
    half = math.tan(0.95 * math.pi / 2) * 2.5
    assert (row["arm"], row["n"], row["ci_method"]) == ("l2-1e-3", 2, "Student-t")
    assert (row["iaa"], row["iaa_ci_low"], row["iaa_ci_high"]) == pytest.approx((22.5, 22.5 - half, 22.5 + half))
    assert row["paper"] == paper.IAA[("mlp", "mnist-reshuffle", "l2")] and "1e-4, 1e-3 and 5e-3" in row["paper_note"]


def test_the_paper_s_iaa_stands_only_beside_arms_of_its_configuration():
    arms = pd.DataFrame({"model": ["gru", "gru", "mlp", "mlp"], "stream": ["lang-reshuffle"] * 2 + ["mnist-binary",
                         "mnist-reshuffle"], "mitigation": ["cbp", "cbp", "cbp", "shrink-perturb"],
                         "hidden": [64, 64, 25, 25], "seq_len": [25, 50, 28, 28]})
    reported = paper.reported_iaa(arms)
    # GRU CBP at length 25: Table 1's 13.14; at length 50, on MNIST pairs, or a mitigation the paper lacks: none
    assert reported["paper"].iloc[0] == 13.14 and reported["paper"].iloc[1:].isna().all()
    assert "swaps" in reported["paper_note"].iloc[0] and reported["paper_note"].iloc[1] == ""


def test_default_baseline_keeps_the_arm_s_model_and_stream_prefix():
    def arm(label: str, model: str = "mlp", stream: str = "mnist-reshuffle") -> dict:
        return {"arm": label, "model": model, "stream": stream}
    assert metrics.default_baseline(arm("mlp-l2-1e-4")) == "mlp-baseline"  # table1
    assert metrics.default_baseline(arm("gru-cbp", "gru", "lang-reshuffle")) == "gru-baseline"
    assert metrics.default_baseline(arm("l2-1e-4")) == "baseline"  # fig4
    assert metrics.default_baseline(arm("cbp", "gru", "lang-reshuffle")) == "baseline"  # fig5
    assert metrics.default_baseline(arm("lstm-mnist-binary-cbp", "lstm", "mnist-binary")) == \
        "lstm-mnist-binary-baseline"  # the mitigations sweep


def test_iaa_uses_each_model_s_own_baseline_in_table1_arms():
    # mlp-cbp: (0.6 - 0.5) / 0.5 = 20 %; gru-cbp: (0.45 - 0.5) / 0.5 = -10 %
    mlp = make_records({("mlp-baseline", 0): [0.5, 0.5], ("mlp-cbp", 0): [0.6, 0.6]}, mitigation={"mlp-cbp": "cbp"})
    gru = make_records({("gru-baseline", 0): [0.5, 0.5], ("gru-cbp", 0): [0.4, 0.5]}, mitigation={"gru-cbp": "cbp"},
                       model="gru")
    result = metrics.iaa(metrics.final_accuracy(pd.concat([mlp, gru], ignore_index=True)))
    assert dict(zip(result["arm"], result["iaa"])) == pytest.approx({"mlp-cbp": 20.0, "gru-cbp": -10.0})


def test_a_missing_baseline_arm_is_named():
    final = metrics.final_accuracy(make_records({("cbp", 0): [0.5, 0.4]}, mitigation={"cbp": "cbp"}))
    with pytest.raises(ConfigError, match="baseline arm 'baseline' is missing.*cbp"):
        metrics.iaa(final)


def test_the_baseline_resolver_is_a_parameter():
    # control 0.5, treated 0.4: (0.4 - 0.5) / 0.5 * 100 = -20
    final = metrics.final_accuracy(make_records({("control", 0): [0.5, 0.5], ("noise", 0): [0.4, 0.4]},
                                                mitigation={"noise": "noise"}))
    result = metrics.iaa(final, baseline=lambda arm: "control")
    assert result["iaa"].tolist() == pytest.approx([-20.0])


def test_a_diverged_trial_counts_at_chance_from_the_task_it_diverged_in():
    # replicate 1 finished task 0 at 0.8, diverged in task 1 of 4: tasks 1, 2, 3 at chance 1/10
    # degradation (0.8 - 0.1) / 0.8 * 100 = 87.5; replicate 0 as before 50; arm mean 68.75 over n = 2
    records = make_records({("a", 0): FALLING[("a", 0)], ("a", 1): [0.8]}, tasks=4, diverged={("a", 1): 1})
    final = metrics.final_accuracy(records)
    broken = final[final["seed"] == 1]
    assert broken["task"].tolist() == [0, 1, 2, 3]
    assert broken["test_accuracy"].tolist() == pytest.approx([0.8, 0.1, 0.1, 0.1])
    assert broken["imputed"].tolist() == [False, True, True, True] and set(broken["status"]) == {"diverged"}
    summary = metrics.arm_summary(metrics.degradation(final), "degradation", metrics.trial_status(records))
    row = summary.iloc[0]
    assert (row["n"], row["diverged"], row["complete"], row["incomplete"]) == (2, 1, 1, 0)
    assert row["mean"] == pytest.approx((50 + 87.5) / 2)


def test_an_unfinished_trial_is_counted_incomplete_and_left_out_of_per_trial_metrics():
    # replicate 2 finished 2 of 4 tasks: in the curves at tasks 0 and 1 only; not in degradation
    records = make_records({**FALLING, ("a", 2): [0.9, 0.9]}, tasks=4)
    final = metrics.final_accuracy(records)
    assert metrics.degradation(final)["seed"].tolist() == [0, 1]
    status = metrics.trial_status(records)
    assert dict(zip(status["seed"], status["status"])) == {0: "complete", 1: "complete", 2: "incomplete"}
    row = metrics.arm_summary(metrics.degradation(final), "degradation", status).iloc[0]
    assert (row["n"], row["incomplete"], row["trials"]) == (2, 1, 3)
    curves = metrics.task_curves(final)
    assert curves["n"].tolist() == [3, 3, 2, 2]
    # task 0: mean of 0.8, 1.0, 0.9 = 0.9
    assert curves["mean"].iloc[0] == pytest.approx(0.9)


def test_an_arm_with_no_finished_trial_has_n_zero():
    records = make_records({**FALLING, ("b", 0): [0.5]}, tasks=4)
    summary = metrics.arm_summary(metrics.degradation(metrics.final_accuracy(records)), "degradation",
                                  metrics.trial_status(records))
    row = summary[summary["arm"] == "b"].iloc[0]
    assert row["n"] == 0 and math.isnan(row["mean"]) and row["incomplete"] == 1


def test_student_t_interval_of_one_two_three():
    # mean 2, s = 1, t(0.975, 2): P(|T_2| <= t) = t / sqrt(2 + t^2) = 0.95  =>  t = sqrt(2) * 0.95 / sqrt(1 - 0.95^2)
    # = 4.30265272975 (tables: 4.302652729911); half-width t / sqrt(3) = 2.48413771
    t = math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2)
    assert stats.t_quantile(0.95, 2) == pytest.approx(t, rel=1e-12)
    assert stats.t_quantile(0.95, 2) == pytest.approx(4.302652729911275, abs=1e-9)
    result = stats.interval([1.0, 2.0, 3.0])
    assert result["mean"] == 2.0 and result["n"] == 3 and result["ci_method"] == "Student-t"
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((2 - t / math.sqrt(3), 2 + t / math.sqrt(3)))
    assert result["ci_high"] - 2 == pytest.approx(2.48413771, abs=1e-8)


def test_student_t_quantiles_match_the_closed_forms():
    # df = 1: t = tan(0.95 pi / 2); df = 4: the 0.975 quantile 2.7764451051977987 (tables)
    assert stats.t_quantile(0.95, 1) == pytest.approx(math.tan(0.95 * math.pi / 2), rel=1e-12)
    assert stats.t_quantile(0.95, 4) == pytest.approx(2.7764451051977987, rel=1e-9)
    assert stats.t_quantile(0.99, 8) == pytest.approx(3.3553873313333957, rel=1e-9)


def test_bootstrap_from_ten_replicates_is_seeded_and_reproducible():
    values = np.arange(12, dtype=float)  # mean 5.5
    first, again = stats.interval(values), stats.interval(values)
    assert first == again and first["ci_method"].startswith("bootstrap") and first["n"] == 12
    assert first["ci_low"] < 5.5 < first["ci_high"] and 0 <= first["ci_low"] and first["ci_high"] <= 11
    other = stats.interval(values, seed=1)
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])
    # every resample of ten equal values has the same mean: the interval is that value
    flat = stats.interval([0.25] * 10)
    assert (flat["ci_low"], flat["ci_high"]) == pytest.approx((0.25, 0.25))


def test_one_replicate_has_no_interval():
    result = stats.interval([0.7, float("nan")])
    assert result["mean"] == 0.7 and result["n"] == 1 and math.isnan(result["ci_low"])


def test_summarize_gives_one_row_per_group_and_names_the_method():
    frame = pd.DataFrame({"arm": ["x", "x", "x", "y"], "v": [1.0, 2.0, 3.0, 4.0]})
    result = stats.summarize(frame, ["arm"], "v")
    assert result["arm"].tolist() == ["x", "y"] and result["n"].tolist() == [3, 1]
    assert result["ci_method"].tolist() == ["Student-t", "none (n < 2)"]


def test_degradation_table_sets_the_paper_s_value_beside_the_arm_it_describes():
    table = tables.degradation_table(make_records(FALLING))
    row = table.iloc[0]
    # MLP at hidden 25, unmitigated, MNIST reshuffle: the paper's 60.83 %; k = default_k(4) = 1
    assert row["paper"] == 60.83 and row["robust_k"] == 1 and row["degradation"] == pytest.approx(40.0)
    # average accuracy: replicates 0.575 and 0.85, mean 0.7125
    assert row["average_accuracy"] == pytest.approx(0.7125)
    display = tables.degradation_display(table)
    assert "40.0 [" in display.iloc[0, 4]
    assert tables.markdown(display).count("\n") == 3  # header, rule, one row


def test_diagnostic_curves_use_each_task_s_last_epoch_and_only_columns_with_values():
    # dead_fraction on the last epoch: mlp replicates 0.2 and 0.4 (mean 0.3) at task 0; the lstm has none
    records = make_records({("mlp", 0): [0.5], ("mlp", 1): [0.5], ("lstm", 0): [0.5]})
    last = records["epoch"] == 1
    records["dead_fraction"] = None
    records.loc[last & (records["arm"] == "mlp"), "dead_fraction"] = [0.2, 0.4]
    records.loc[~last, "dead_fraction"] = 0.9  # not a task's last epoch: never read
    records["effective_rank"] = float("nan")
    assert metrics.diagnostic_columns(records) == ["dead_fraction"]
    curves = metrics.diagnostic_curves(records)
    assert curves[["arm", "diagnostic", "task", "n"]].values.tolist() == [["mlp", "dead_fraction", 0, 2]]
    assert curves["mean"].iloc[0] == pytest.approx(0.3)
    assert metrics.diagnostic_columns(records.drop(columns=["dead_fraction"])) == []
