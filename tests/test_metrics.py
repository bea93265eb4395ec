"""Metrics and intervals on hand-written records whose answers are worked out by hand in the comments."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import figures, metrics, stats, tables
from lopmodels.errors import ConfigError

CLASSES = [str(d) for d in range(10)]


def make_records(accuracies: dict[tuple[str, int], list[float]], *, mitigation: dict[str, str] | None = None,
                 model: str = "mlp", tasks: int | None = None, diverged: dict[tuple[str, int], int] | None = None,
                 sweep: str = "s", config: dict[str, dict] | None = None, epochs: int = 2,
                 classes: list[str] = CLASSES) -> pd.DataFrame:
    """Records of trials (arm, seed) -> final-epoch test accuracy per finished task, `epochs` epochs per task
    (rows for the first and the last epoch only); `config[arm]` overrides the arm's config columns.

    Epoch 0 of every task has accuracy 0.0, which no metric may read. A trial listed in `diverged` gets one more
    row: epoch 0 of task `diverged[...]`, with a non-finite loss and `diverged` True.
    """
    rows = []
    for (arm, seed), values in accuracies.items():
        total = tasks or len(values)
        base = {"sweep": sweep, "arm": arm, "trial_id": f"{arm}-{seed}", "seed": seed, "stream_seed": seed,
                "model": model, "stream": "mnist-reshuffle", "mitigation": (mitigation or {}).get(arm, "none"),
                "hidden": 25, "seq_len": 28, "tasks": total, "epochs_per_task": epochs, "task_classes": classes,
                **(config or {}).get(arm, {})}
        for task, value in enumerate(values):
            rows += [{**base, "task": task, "epoch": 0, "test_accuracy": 0.0, "diverged": False},
                     {**base, "task": task, "epoch": epochs - 1, "test_accuracy": value, "diverged": False}]
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
    assert by_seed(result, "first_accuracy") == {0: 0.8, 1: 1.0} and by_seed(result, "last_accuracy") == {0: 0.4, 1: 0.7}
    assert (result["k"] == 1).all() and (result["chance"] == 0.1).all() and not result["chance_corrected"].any()


def test_chance_corrected_degradation_measures_the_accuracy_above_chance():
    # 10 classes, chance 0.1. replicate 0: (0.8 - 0.1) -> (0.4 - 0.1): 100 (1 - 0.3 / 0.7) = 57.142...
    # replicate 1: 0.9 -> 0.6: 100 (1 - 0.6 / 0.9) = 33.333...
    result = metrics.degradation(metrics.final_accuracy(make_records(FALLING)), chance_corrected=True)
    assert by_seed(result, "degradation") == pytest.approx({0: 100 * 4 / 7, 1: 100 / 3})
    assert result["chance_corrected"].all()
    # binary tasks, chance 0.5: 0.9 -> 0.5 is all of the above-chance accuracy lost, 0.9 -> 0.45 too (floor)
    binary = make_records({("b", 0): [0.9, 0.5], ("b", 1): [0.9, 0.45]}, classes=["3", "7"])
    result = metrics.degradation(metrics.final_accuracy(binary), chance_corrected=True)
    assert (result["chance"] == 0.5).all()
    assert by_seed(result, "degradation") == pytest.approx({0: 100 * (1 - 0.001 / 0.4), 1: 100 * (1 - 0.001 / 0.4)})


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


def test_iaa_summary_is_the_ratio_of_the_arms_mean_accuracies():
    # paired means: l2 (0.6 + 0.5) / 2 = 0.55, baseline (0.5 + 0.4) / 2 = 0.45: IAA 100 (0.55 / 0.45 - 1) = 22.222
    # (the mean of the per-pair values 20 and 25 would be 22.5). Interval: z = 0.6/0.55 - 0.5/0.45 = -0.020202
    # and +0.020202, half = t(0.975, 1) * 0.020202 = 0.256691 on the log scale (tests/test_stats.py)
    table = tables.iaa_table(make_records(PAIRED, mitigation={"l2-1e-3": "l2"}))
    row = table.iloc[0]
    half = math.tan(0.95 * math.pi / 2) * abs(0.6 / 0.55 - 0.5 / 0.45)
    assert (row["arm"], row["baseline"], row["n"], row["ci_method"]) == ("l2-1e-3", "baseline", 2, stats.RATIO_METHOD)
    assert (row["average_accuracy"], row["baseline_accuracy"]) == pytest.approx((0.55, 0.45))
    assert (row["iaa"], row["iaa_ci_low"], row["iaa_ci_high"]) == pytest.approx(
        (100 / 0.45 * 0.55 - 100, 100 * (11 / 9 * math.exp(-half) - 1), 100 * (11 / 9 * math.exp(half) - 1)))
    assert "22.2 [-5.4, 58.0]" in tables.iaa_display(table).iloc[0].tolist()


def test_the_paper_s_iaa_stands_only_beside_an_arm_of_its_configuration():
    # Table 1's MLP L2 is weight decay 1e-3 after 50 tasks x 30 epochs at hidden 25: 36.69 % beside that arm only
    def records(tasks: int) -> pd.DataFrame:
        values = {("baseline", 0): [0.5] * tasks, ("l2-1e-3", 0): [0.6] * tasks, ("l2-1e-4", 0): [0.55] * tasks}
        return make_records(values, mitigation={"l2-1e-3": "l2", "l2-1e-4": "l2"}, epochs=30,
                            config={"l2-1e-3": {"mitigation.weight_decay": 1e-3},
                                    "l2-1e-4": {"mitigation.weight_decay": 1e-4}})
    table = tables.iaa_table(records(50)).set_index("arm")
    assert table.loc["l2-1e-3", "paper"] == 36.69 and "1e-3" in table.loc["l2-1e-3", "paper_note"]
    assert math.isnan(table.loc["l2-1e-4", "paper"]) and "weight decay 0.001" in table.loc["l2-1e-4", "paper_note"]
    short = tables.iaa_table(records(20)).set_index("arm")
    assert math.isnan(short.loc["l2-1e-3", "paper"])
    assert "paper: after 50 tasks × 30 epochs; this run: 20 × 30" in short.loc["l2-1e-3", "paper_note"]


def arms_frame(rows: list[dict]) -> pd.DataFrame:
    """Arms of sweep s: label, mitigation and config columns (mlp, mnist-reshuffle, hidden 25 unless given)."""
    base = {"sweep": "s", "model": "mlp", "stream": "mnist-reshuffle", "hidden": 25, "seq_len": 28, "tasks": 4,
            "epochs_per_task": 2, "mitigation": "none"}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_the_default_baseline_is_the_unmitigated_arm_of_the_same_config():
    arms = arms_frame([{"arm": "mlp"}, {"arm": "lstm", "model": "lstm"}, {"arm": "wide", "hidden": 100},
                       {"arm": "mlp-reset", "mitigation": "reset"}, {"arm": "lstm-reset", "model": "lstm",
                                                                      "mitigation": "reset"},
                       {"arm": "wide-cbp", "hidden": 100, "mitigation": "cbp", "mitigation.decay_rate": 0.9}])
    rows = arms.set_index("arm", drop=False).to_dict("index")
    # model, stream, hidden, ... equal but the mitigation and its fields: fig1's `mlp-reset` -> `mlp`
    assert metrics.default_baseline(rows["mlp-reset"], arms) == "mlp"
    assert metrics.default_baseline(rows["lstm-reset"], arms) == "lstm"
    assert metrics.default_baseline(rows["wide-cbp"], arms) == "wide"


def test_a_missing_baseline_gets_the_label_the_sweeps_give_it():
    def arm(label: str, mitigation: str, model: str = "mlp", stream: str = "mnist-reshuffle") -> dict:
        return {"sweep": "s", "arm": label, "model": model, "stream": stream, "mitigation": mitigation}
    nothing = arms_frame([{"arm": "lstm", "model": "lstm"}])  # no unmitigated MLP arm
    assert metrics.default_baseline(arm("mlp-l2-1e-4", "l2"), nothing) == "mlp-baseline"  # table1
    assert metrics.default_baseline(arm("gru-cbp", "cbp", "gru", "lang-reshuffle"), nothing) == "gru-baseline"
    assert metrics.default_baseline(arm("l2-1e-4", "l2"), nothing) == "baseline"  # fig4
    assert metrics.default_baseline(arm("mlp-reset", "reset"), nothing) == "mlp"  # fig1
    assert metrics.default_baseline(arm("lstm-mnist-binary-cbp", "cbp", "lstm", "mnist-binary"), nothing) == \
        "lstm-mnist-binary-baseline"  # the mitigations sweep


def test_a_namesake_of_another_config_is_no_baseline():
    # fig4's `cbp` on an LSTM beside an MLP `baseline`: the label matches, the model does not
    arms = arms_frame([{"arm": "baseline"}, {"arm": "cbp", "model": "lstm", "mitigation": "cbp"}])
    with pytest.raises(ConfigError, match="arm 'baseline' differs in model lstm vs mlp"):
        metrics.default_baseline(arms.iloc[1].to_dict(), arms)


def test_two_unmitigated_arms_of_the_same_config_are_ambiguous():
    arms = arms_frame([{"arm": "a"}, {"arm": "b"}, {"arm": "cbp", "mitigation": "cbp"}])
    with pytest.raises(ConfigError, match="arm cbp has 2 unmitigated arms of its config \\(a, b\\); pass `baseline=`"):
        metrics.default_baseline(arms.iloc[2].to_dict(), arms)
    final = metrics.final_accuracy(make_records({("a", 0): [0.5, 0.5], ("b", 0): [0.5, 0.5],
                                                 ("cbp", 0): [0.6, 0.6]}, mitigation={"cbp": "cbp"}))
    assert "2 unmitigated arms" in metrics.missing_baselines(final)[0]


def test_iaa_uses_each_model_s_own_baseline_in_table1_arms():
    # mlp-cbp: (0.6 - 0.5) / 0.5 = 20 %; gru-cbp: (0.45 - 0.5) / 0.5 = -10 %
    mlp = make_records({("mlp-baseline", 0): [0.5, 0.5], ("mlp-cbp", 0): [0.6, 0.6]}, mitigation={"mlp-cbp": "cbp"})
    gru = make_records({("gru-baseline", 0): [0.5, 0.5], ("gru-cbp", 0): [0.4, 0.5]}, mitigation={"gru-cbp": "cbp"},
                       model="gru", config={a: {"stream": "lang-reshuffle", "hidden": 64, "seq_len": 25}
                                            for a in ("gru-baseline", "gru-cbp")})
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
    result = metrics.iaa(final, baseline=lambda arm, arms: "control")
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
    summary = metrics.arm_summary(metrics.degradation_summary(final), metrics.trial_status(records))
    row = summary.iloc[0]
    assert (row["n"], row["diverged"], row["complete"], row["incomplete"]) == (2, 1, 1, 0)
    # the arm's degradation, of the mean accuracies: Acc(0) (0.8 + 0.8) / 2, Acc(T) (0.4 + 0.1) / 2: 68.75 %
    assert row["mean"] == pytest.approx(100 * (1 - 0.25 / 0.8))


def test_an_unfinished_trial_is_counted_incomplete_and_left_out_of_per_trial_metrics():
    # replicate 2 finished 2 of 4 tasks: in the curves at tasks 0 and 1 only; not in degradation
    records = make_records({**FALLING, ("a", 2): [0.9, 0.9]}, tasks=4)
    final = metrics.final_accuracy(records)
    assert metrics.degradation(final)["seed"].tolist() == [0, 1]
    status = metrics.trial_status(records)
    assert dict(zip(status["seed"], status["status"])) == {0: "complete", 1: "complete", 2: "incomplete"}
    row = metrics.arm_summary(metrics.degradation_summary(final), status).iloc[0]
    assert (row["n"], row["incomplete"], row["trials"]) == (2, 1, 3)
    curves = metrics.task_curves(final)
    assert curves["n"].tolist() == [3, 3, 2, 2]
    # task 0: mean of 0.8, 1.0, 0.9 = 0.9, its band on the logit scale inside [0, 1] (plain Student-t: to 1.148)
    assert curves["mean"].iloc[0] == pytest.approx(0.9)
    assert (curves["ci_low"] >= 0).all() and (curves["ci_high"] <= 1).all()
    assert set(curves["ci_method"]) == {stats.SCALE_METHODS["fraction"]}


def test_an_arm_with_no_finished_trial_has_n_zero():
    records = make_records({**FALLING, ("b", 0): [0.5]}, tasks=4)
    summary = metrics.arm_summary(metrics.degradation_summary(metrics.final_accuracy(records)),
                                  metrics.trial_status(records))
    row = summary[summary["arm"] == "b"].iloc[0]
    assert row["n"] == 0 and math.isnan(row["mean"]) and row["incomplete"] == 1


def test_student_t_quantiles_match_the_closed_forms():
    # df = 2: P(|T_2| <= t) = t / sqrt(2 + t^2) = 0.95  =>  t = sqrt(2) * 0.95 / sqrt(1 - 0.95^2) = 4.30265272975
    # df = 1: t = tan(0.95 pi / 2); df = 4: the 0.975 quantile 2.7764451051977987 (tables)
    assert stats.t_quantile(0.95, 2) == pytest.approx(math.sqrt(2) * 0.95 / math.sqrt(1 - 0.95 ** 2), rel=1e-12)
    assert stats.t_quantile(0.95, 1) == pytest.approx(math.tan(0.95 * math.pi / 2), rel=1e-12)
    assert stats.t_quantile(0.95, 4) == pytest.approx(2.7764451051977987, rel=1e-9)
    assert stats.t_quantile(0.99, 8) == pytest.approx(3.3553873313333957, rel=1e-9)


def test_summarize_gives_one_row_per_group_on_its_scale_and_names_the_method():
    frame = pd.DataFrame({"arm": ["x", "x", "x", "y"], "v": [0.8, 1.0, 0.9, 0.4]})
    result = stats.summarize(frame, ["arm"], "v", "fraction")
    assert result["arm"].tolist() == ["x", "y"] and result["n"].tolist() == [3, 1]
    assert result["ci_method"].tolist() == ["logit Student-t (delta method)", "none (n < 2)"]
    assert result["ci_low"].iloc[0] == pytest.approx(stats.mean_interval([0.8, 1.0, 0.9], "fraction")["ci_low"])
    assert stats.summarize(frame, ["arm"], "v")["ci_method"].iloc[0] == "Student-t"


def test_degradation_table_gives_each_degradation_of_the_mean_accuracies():
    table = tables.degradation_table(make_records(FALLING))
    row = table.iloc[0]
    # Acc(0) (0.8 + 1.0) / 2 = 0.9, Acc(T) (0.4 + 0.7) / 2 = 0.55: 100 (1 - 0.55 / 0.9) = 38.889 %
    # (the mean of the per-replicate 50 and 30 % would be 40); k = default_k(4) = 1, so robust = paper's formula
    assert row["robust_k"] == 1 and row["degradation"] == pytest.approx(100 * (1 - 0.55 / 0.9))
    assert row["robust_degradation"] == pytest.approx(row["degradation"]) and row["ci_method"] == stats.RATIO_METHOD
    # above chance 0.1: 100 (1 - 0.45 / 0.8) = 43.75 %
    assert row["corrected_degradation"] == pytest.approx(100 * (1 - 0.45 / 0.8))
    assert row["degradation_ci_high"] < 100 and row["corrected_ci_high"] < 100
    # average accuracy: replicates 0.575 and 0.85, mean 0.7125, its interval on the logit scale
    assert row["average_accuracy"] == pytest.approx(0.7125) and 0 < row["average_ci_low"] < row["average_ci_high"] < 1
    assert row["average_ci_method"] == stats.SCALE_METHODS["fraction"]
    # an MLP at the paper's size but after 4 tasks x 2 epochs: no paper value, the note says why
    assert math.isnan(row["paper"]) and "paper: after 50 tasks × 30 epochs; this run: 4 × 2" in row["paper_note"]
    assert pd.isna(row["baseline"]) and math.isnan(row["difference"])  # unmitigated: no baseline difference
    display = tables.degradation_display(table)
    assert "38.9 [" in display.iloc[0, 4]
    assert tables.markdown(display).count("\n") == 3  # header, rule, one row


def test_the_paper_s_degradation_stands_beside_an_arm_of_its_configuration():
    # the MLP's 60.83 % after 50 tasks x 30 epochs at hidden 25
    records = make_records({("mlp", 0): [0.9] + [0.4] * 49, ("mlp", 1): [0.8] + [0.5] * 49}, epochs=30)
    row = tables.degradation_table(records).iloc[0]
    assert row["paper"] == 60.83 and row["robust_k"] == 5


# replicates 0, 1 of an MLP and an LSTM in one sweep: the MLP falls 0.8 -> 0.4 and 1.0 -> 0.7 (38.889 %), the
# LSTM 0.8 -> 0.6 and 0.9 -> 0.9 (100 (1 - 0.75 / 0.85) = 11.765 %)
TWO_MODELS = {("mlp", 0): [0.8, 0.6, 0.5, 0.4], ("mlp", 1): [1.0, 0.9, 0.8, 0.7],
              ("lstm", 0): [0.8, 0.7, 0.6, 0.6], ("lstm", 1): [0.9, 0.9, 0.9, 0.9]}


def test_arm_difference_pairs_the_replicates_of_two_arms():
    records = make_records(TWO_MODELS, config={"lstm": {"model": "lstm"}})
    degradations = metrics.degradation(metrics.final_accuracy(records))
    result = metrics.arm_difference(degradations, "s", "lstm", "mlp")
    by_hand = stats.degradation_difference_interval([0.8, 0.9], [0.6, 0.9], [0.8, 1.0], [0.4, 0.7])
    assert result == by_hand and result["n"] == 2
    assert result["mean"] == pytest.approx(100 * (1 - 0.75 / 0.85) - 100 * (1 - 0.55 / 0.9))
    # replicate 1 of the MLP unfinished: one pair left, no interval
    partial = records[~((records["arm"] == "mlp") & (records["seed"] == 1) & (records["task"] == 3))]
    alone = metrics.arm_difference(metrics.degradation(metrics.final_accuracy(partial)), "s", "lstm", "mlp")
    assert alone["n"] == 1 and alone["ci_method"] == "none (n < 2)"


def test_the_degradation_table_gives_each_mitigation_minus_its_baseline():
    # cbp keeps more: 0.8 -> 0.7 and 1.0 -> 0.9 against the baseline's FALLING; above chance (k = 1):
    # baseline 100 (1 - 0.45 / 0.8) = 43.75 %, cbp 100 (1 - 0.7 / 0.8) = 12.5 %: difference -31.25 points
    records = make_records({**{("baseline", s): v for (_, s), v in FALLING.items()},
                            ("cbp", 0): [0.8, 0.8, 0.8, 0.7], ("cbp", 1): [1.0, 1.0, 0.9, 0.9]},
                           mitigation={"cbp": "cbp"})
    table = tables.degradation_table(records).set_index("arm")
    assert table.loc["cbp", "baseline"] == "baseline"
    assert table.loc["cbp", "difference"] == pytest.approx(12.5 - 43.75)
    assert table.loc["cbp", "difference_ci_method"] == stats.PSEUDO_DIFFERENCE_METHOD
    assert table.loc["cbp", "difference_ci_low"] < table.loc["cbp", "difference"] < table.loc["cbp", "difference_ci_high"]
    display = tables.degradation_display(table.reset_index()).set_index("arm")
    assert display.loc["cbp", "minus baseline (above chance), points (95 % CI)"].endswith(" vs baseline")
    assert display.loc["baseline", "minus baseline (above chance), points (95 % CI)"] == ""


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
    # a fraction: logit scale, inside [0, 1] (plain Student-t at n = 2: 0.3 -+ 1.27, from -0.97 to 1.57)
    assert curves["ci_method"].iloc[0] == stats.SCALE_METHODS["fraction"]
    assert 0 < curves["ci_low"].iloc[0] < 0.3 < curves["ci_high"].iloc[0] < 1
    assert metrics.diagnostic_columns(records.drop(columns=["dead_fraction"])) == []


def test_an_arm_of_few_replicates_shows_each_replicate_beside_its_band():
    # 2 replicates of arm a (fewer than 5): its mean line, its band, and a thin line per replicate;
    # 5 replicates of arm b: the mean line and band only
    values = {**FALLING, **{("b", seed): [0.9, 0.8, 0.7, 0.6] for seed in range(5)}}
    (ax,) = figures.accuracy_figure(make_records(values), "few").axes
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["a", "_replicate", "_replicate", "b"] and len(ax.collections) == 2
    thin = [line for line in ax.lines if line.get_label() == "_replicate"]
    assert sorted(line.get_ydata().tolist() for line in thin) == [[0.8, 0.6, 0.5, 0.4], [1.0, 0.9, 0.8, 0.7]]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() >= 0 and band.max() <= 1  # the logit band, inside the accuracy's range


def test_each_arm_has_its_own_colour_and_line_style():
    # five arms: the colorblind palette's orange and vermillion are neighbours, so the line style tells them apart
    values = {(arm, seed): [0.9, 0.8, 0.7, 0.6] for arm in "abcde" for seed in range(5)}
    (ax,) = figures.accuracy_figure(make_records(values), "styles").axes
    means = {line.get_label(): (line.get_color(), line.get_linestyle()) for line in ax.lines}
    assert sorted(means) == list("abcde")
    assert [means[arm][1] for arm in "abcde"] == ["-", "--", "-.", ":", "-"]
    assert len({colour for colour, _ in means.values()}) == 5


def test_markdown_leaves_a_missing_cell_blank_and_escapes_pipes():
    frame = pd.DataFrame({"a": ["x|y", None], "b": [1.5, float("nan")]})
    assert tables.markdown(frame) == "| a | b |\n|---|---|\n| x\\|y | 1.5 |\n|  |  |\n"


def test_a_figure_saved_twice_gives_the_same_files(tmp_path):
    """Reports rebuilt from the same results change no file: no timestamp, and SVG ids not drawn at random."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        figures.save_figure(figures.accuracy_figure(make_records(FALLING), "same"), folder / "fig")
    for name in ("fig.png", "fig.svg"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


# raw pixels (a fault) learn less: 0.6 -> 0.4 and 0.9 -> 0.6 against the correct arm's FALLING
SWITCHED = {**FALLING, ("raw", 0): [0.6, 0.5, 0.5, 0.4], ("raw", 1): [0.9, 0.8, 0.7, 0.6]}


def test_each_switched_arm_is_compared_with_its_correct_arm_paired_by_replicate():
    records = make_records({**SWITCHED, ("raw-cbp", 0): [0.6, 0.6, 0.6, 0.6]}, mitigation={"raw-cbp": "cbp"},
                           config={"a": {"pixels": "normalized"}, "raw": {"pixels": "raw"},
                                   "raw-cbp": {"pixels": "raw"}})
    table, problems = tables.switch_table(records)
    assert problems == [] and list(table["arm"]) == ["raw"]  # raw-cbp has no correct arm with cbp: left out
    row = table.iloc[0]
    assert (row["switched"], row["correct"], row["n"]) == ("pixels=raw", "a", 2)
    average = {"a": (0.575 + 0.85) / 2, "raw": (0.5 + 0.75) / 2}
    assert row["change"] == pytest.approx(100 * (average["raw"] / average["a"] - 1))
    assert row["change_ci_low"] < row["change"] < row["change_ci_high"]
    final = metrics.final_accuracy(records)
    corrected = metrics.degradation(final, metrics.default_k(4), chance_corrected=True)
    by_hand = metrics.arm_difference(corrected, "s", "raw", "a")
    assert (row["difference"], row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(
        (by_hand["mean"], by_hand["ci_low"], by_hand["ci_high"]))
    assert (row["average_accuracy"], row["correct_accuracy"]) == pytest.approx((average["raw"], average["a"]))
    assert tables.switch_display(table).iloc[0]["mean accuracy, arm / correct"] == "0.625 / 0.713"


def test_a_step_matched_arm_is_compared_with_the_correct_arm_of_fewer_epochs():
    correct = make_records(FALLING, epochs=2)
    matched = make_records({("matched", 0): [0.8, 0.7, 0.6, 0.5], ("matched", 1): [1.0, 0.8, 0.8, 0.7]},
                           epochs=3, config={"matched": {"match_steps": True}})
    table, _ = tables.switch_table(pd.concat([correct, matched], ignore_index=True))
    assert list(zip(table["arm"], table["correct"], table["switched"])) == [("matched", "a", "match_steps=True")]
    # an arm of other epochs without step matching is no correct arm of it
    other = make_records({("b", 0): [0.9, 0.9, 0.9, 0.9]}, epochs=3)
    table, _ = tables.switch_table(pd.concat([make_records(SWITCHED, config={"raw": {"pixels": "raw"}}), other],
                                             ignore_index=True))
    assert list(table["correct"]) == ["a"]


def test_a_switched_arm_with_two_correct_arms_is_named_and_left_out():
    records = make_records({**SWITCHED, ("a2", 0): [0.8, 0.8, 0.8, 0.8]}, config={"raw": {"pixels": "raw"}})
    table, problems = tables.switch_table(records)
    assert table.empty
    assert problems == ["sweep s: arm raw has 2 correct-protocol arms of its configuration (a, a2), so its "
                        "switches are compared with none"]


def test_switched_arms_of_one_task_trials_are_left_out():
    records = make_records({("a", 0): [0.8], ("raw", 0): [0.6]}, config={"raw": {"pixels": "raw"}})
    table, problems = tables.switch_table(records)
    assert table.empty and problems == []
