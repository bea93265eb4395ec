"""The sweeps run the paper's own protocols: per-task training kept at every scale but smoke, the paper's
sequence lengths, the controls, and replicate counts by cost. Pure: no Ray, no data."""
from __future__ import annotations

import pytest

from lopmodels.errors import ConfigError
from sweeps.manifest import Manifest
from sweeps.registry import SWEEPS
from trainables.streams import STREAMS


def resolved(sweep: str, arm: str, scale: str = "paper"):
    return SWEEPS[sweep].config(arm, scale, 0).resolved()


@pytest.mark.parametrize("name", SWEEPS.names())
def test_small_keeps_the_per_task_training_and_cuts_only_tasks(name):
    sweep = SWEEPS[name]
    for arm in sweep.arms_at("small"):
        paper, small = resolved(name, arm, "paper"), resolved(name, arm, "small")
        spec = STREAMS[small.stream]
        assert small.tasks == spec.small_tasks < paper.tasks == spec.tasks
        assert small.epochs_per_task == paper.epochs_per_task  # step-matched arms resolve theirs from the data
        if not small.match_steps:
            assert small.epochs_per_task == spec.epochs_per_task
            assert spec.transform is not None or spec.epochs_per_task == 30  # the paper's streams: 30 a task
        for field in ("batch_size", "lr", "train_limit", "test_limit", "seq_len", "hidden", "match_steps"):
            assert getattr(small, field) == getattr(paper, field), (arm, field)
        if spec.is_language:
            assert small.tasks >= 50


def test_language_protocols_are_the_reference_runs():
    reshuffle, binary = resolved("fig3", "reshuffle"), resolved("fig3", "binary")
    assert (reshuffle.seq_len, reshuffle.batch_size, reshuffle.lr) == (25, 512, 0.01)  # gru_medium.yaml
    assert (binary.seq_len, binary.batch_size, binary.lr) == (50, 128, 0.1)  # lang-binary/configs/gru.yaml
    assert resolved("fig3", "reshuffle-matched").match_steps and not reshuffle.match_steps
    assert resolved("fig5", "baseline").seq_len == 25 and resolved("table1", "gru-baseline").seq_len == 25


def test_fig6_small_is_the_hidden_64_row():
    assert SWEEPS["fig6"].arms_at("small") == ["len15-h64", "len25-h64", "len50-h64", "len75-h64"]
    assert len(SWEEPS["fig6"].arms_at("paper")) == 12
    with pytest.raises(ConfigError, match="not run at scale 'small'"):
        SWEEPS["fig6"].trials("small", arms=["len15-h32"])


@pytest.mark.parametrize("name,arms", [
    ("fig1", ["mlp-reset", "lstm-reset", "gru-reset"]), ("fig2", ["mlp-reset", "lstm-reset", "gru-reset"]),
    ("fig3", ["reshuffle-reset", "binary-reset"]), ("fig4", ["reset"]), ("fig5", ["reset"]),
    ("table1", ["mlp-reset", "gru-reset"]),
])
def test_every_figure_has_its_reset_control(name, arms):
    for arm in arms:
        cfg = SWEEPS[name].config(arm, "paper", 0)
        assert cfg.mitigation == "reset"
        plain = {f: v for f, v in cfg.to_dict().items() if f not in ("mitigation", "mitigation_args")}
        twins = [a for a in SWEEPS[name].arms if SWEEPS[name].config(a, "paper", 0).mitigation == "none"
                 and {f: v for f, v in SWEEPS[name].config(a, "paper", 0).to_dict().items()
                      if f not in ("mitigation", "mitigation_args")} == plain]
        assert len(twins) == 1, (arm, twins)  # exactly one unmitigated arm to compare it with


def test_recurrent_models_read_the_mlps_tasks_in_fig1():
    mlp, lstm, gru = (SWEEPS["fig1"].config(a, "paper", 3) for a in ("mlp", "lstm", "gru"))
    assert mlp.stream == lstm.stream == gru.stream == "mnist-reshuffle"
    assert mlp.stream_seed == lstm.stream_seed == gru.stream_seed == 3


def test_replicates_default_to_ten_for_the_mlp_and_five_elsewhere():
    trials = SWEEPS["fig1"].trials("smoke")
    counts = {arm: sum(t.arm == arm for t in trials) for arm in SWEEPS["fig1"].arms}
    assert counts == {"mlp": 10, "mlp-reset": 10, "lstm": 5, "lstm-reset": 5, "gru": 5, "gru-reset": 5}
    assert len(SWEEPS["fig1"].trials("smoke", seeds=2)) == 12
    assert [t.replicate for t in SWEEPS["fig4"].trials("smoke", seed_start=4, arms=["cbp"])] == list(range(4, 14))


def test_manifest_replicates_per_arm_and_for_older_manifests():
    common = dict(sweep="fig1", title="t", scale="smoke", arms=["mlp", "lstm"], seed_start=2, trials=15, tasks=30,
                  cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=None, max_failures=2, code_version="x",
                  data_hash={})
    assert Manifest(seeds=None, arm_seeds={"mlp": 10, "lstm": 5}, **common).replicates("lstm") == range(2, 7)
    assert Manifest(seeds=3, **common).replicates("mlp") == range(2, 5)  # written before per-arm counts


def test_arms_that_repeat_another_sweeps_configuration_are_named_so_they_run_once():
    from sweeps.base import shared_arms
    shared = shared_arms(SWEEPS["fig5"], "small", ["baseline", "reset", "cbp"])
    assert "fig3/reshuffle" in shared["baseline"] and "fig3/reshuffle-reset" in shared["reset"]
    assert "table1/gru-cbp" in shared["cbp"] and "fig3/reshuffle" not in shared["cbp"]
    assert "fig4/baseline" in shared_arms(SWEEPS["fig1"], "paper", ["mlp"])["mlp"]
    assert shared_arms(SWEEPS["fig3"], "small", ["reshuffle-matched"]) == {}  # step-matched: its own config


def test_a_typo_in_a_sweeps_fields_is_a_one_line_config_error():
    from sweeps.base import Sweep, register_sweep
    with pytest.raises(ConfigError, match=r"sweep 'typo', arm 'a': unknown config field\(s\) hiden; "):
        register_sweep(Sweep(name="typo", title="t", base={"hiden": 3}, arms={"a": {}}))
    assert "typo" not in SWEEPS


def test_set_overrides_every_arm_and_a_mitigation_field_only_where_it_exists():
    from trainables.overrides import apply_overrides
    trials = SWEEPS["fig4"].trials("smoke", seeds=1)
    configs = apply_overrides([t.config for t in trials], ("hidden=40", "mitigation.weight_decay=1e-3"), "fig4")
    assert {cfg.hidden for cfg in configs} == {40}
    for trial, cfg in zip(trials, configs):
        expected = "1e-3" if trial.config.mitigation in ("l2", "noise") else trial.config.mitigation_args.get(
            "weight_decay")
        assert cfg.mitigation_args.get("weight_decay") == expected, trial.arm
        assert cfg.seed == trial.config.seed and cfg.stream == trial.config.stream
    with pytest.raises(ConfigError, match="no arm of fig1 has a mitigation with field 'weight_decay'"):
        apply_overrides([t.config for t in SWEEPS["fig1"].trials("smoke", seeds=1)], ("mitigation.weight_decay=1",),
                        "fig1")
