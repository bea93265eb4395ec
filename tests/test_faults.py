"""The reference code's faults as opt-in switches, the `reset` control and step matching, each on a tiny case:
every switch reproduces the reference's behaviour, validates, and resumes exactly (docs/protocols.md)."""
from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest
import torch
from click.testing import CliRunner

from lopmodels import ConfigError, HookContext, ModelSpec, build_mitigation, build_model
from lopmodels.optim import Adam
from trainables.config import SWITCHES, TrialConfig
from trainables.data.mnist_source import MNIST_MEAN, MNIST_STD
from trainables.loop import head_size, run_stream
from trainables.records import record_row
from trainables.stream_data import build_stream_data, resolve, task_splits, truncation
from trainables.streams import STREAMS, cycle_ordered_pair, pair_with_replacement
from tests.test_loop import resumed_after, without_seconds

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def tiny(**fields) -> TrialConfig:
    language = STREAMS[fields.get("stream", "mnist-binary")].is_language
    base = dict(stream="mnist-binary", tasks=2, epochs_per_task=1, train_limit=400 if language else 600,
                test_limit=200, batch_size=100, hidden=8, device="cpu")
    if language:
        base.update(model="gru", seq_len=12)
    return TrialConfig(**{**base, **fields})


def rows(split) -> set[tuple[int, ...]]:
    """Each sample's token row with its length: a sentence's identity within the tiny splits."""
    return {tuple(r) + (int(n),) for r, n in zip(split.inputs.tolist(), split.lengths_cpu)}


# --- readout: the reference's out[:, -1] ---------------------------------------------------------------------

def gru_pair() -> tuple:
    """The same GRU (same initial weights) with our readout and with the reference's."""
    spec = ModelSpec("tokens", 3, hidden=4, embed=5, vocab_size=20)
    ours = build_model("gru", spec, torch.Generator().manual_seed(0))
    reference = build_model("gru", dataclasses.replace(spec, readout="last-position"), torch.Generator().manual_seed(0))
    return ours, reference


def test_last_position_readout_is_the_references_out_at_minus_one():
    ours, reference = gru_pair()
    tokens = torch.randint(1, 20, (3, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6, 3, 1])
    tokens[torch.arange(6)[None] >= lengths[:, None]] = 0  # padding after each sentence, as the data has
    with torch.no_grad():
        by_hand = reference.head(reference.rnn(reference.embedding(tokens))[0][:, -1])  # nets/gru.py's forward
        # the model computes its GRU with lopmodels.bidirectional on the CPU: nn.GRU's values up to rounding
        torch.testing.assert_close(reference(tokens, lengths), by_hand, rtol=1e-5, atol=1e-6)
        theirs = reference.forward_units(tokens, lengths).features
        state = ours.forward_units(tokens, lengths).features
        full = ours.forward_units(tokens, torch.full((3,), 6)).features  # our readout, padding read as tokens
    H = 4
    # the forward half at the last position is our forward state after reading the padding too
    torch.testing.assert_close(theirs[:, :H], full[:, :H])
    # so it equals ours exactly where there is no padding, and differs where there is
    torch.testing.assert_close(theirs[0, :H], state[0, :H])
    assert not torch.allclose(theirs[1:, :H], state[1:, :H])
    # the backward half has read one position only: the last (padding, or the full sentence's last token)
    assert not torch.allclose(theirs[:, H:], state[:, H:])


def test_last_position_on_images_keeps_the_forward_state_and_cuts_the_backward_one():
    spec = ModelSpec("image", 10, hidden=4)
    ours = build_model("lstm", spec, torch.Generator().manual_seed(0))
    reference = build_model("lstm", dataclasses.replace(spec, readout="last-position"), torch.Generator().manual_seed(0))
    images = torch.randn(2, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ours.forward_units(images).features, reference.forward_units(images).features
        last_row_only = reference.rnn(images[:, -1:])[0][:, 0, 4:]  # the backward direction reading one row
    torch.testing.assert_close(a[:, :4], b[:, :4])
    torch.testing.assert_close(b[:, 4:], last_row_only)


def test_readout_reaches_the_model_through_the_config(languages):
    _, state = next(iter(run_stream(tiny(stream="lang-reshuffle", readout="last-position", tasks=1), languages)))
    assert state.net.readout == "last-position"


# --- pair sampling -----------------------------------------------------------------------------------------

def test_with_replacement_draws_every_ordered_pair_self_pairs_included_and_distinct_never_does():
    drawn = [pair_with_replacement(10, 0, t) for t in range(2000)]
    assert set(drawn) == set(itertools.product(range(10), repeat=2))  # all 100, (a, a) among them
    assert sum(a == b for a, b in drawn) > 0
    distinct = STREAMS["mnist-binary"]
    assert not any(a == b for a, b in (distinct.draw_task(10, s, t) for s in range(3) for t in range(200)))
    assert [distinct.draw_task(10, 0, t, "with-replacement") for t in range(50)] == drawn[:50]


def test_cycle_ordered_visits_each_ordered_pair_once_a_cycle():
    pairs = [cycle_ordered_pair(4, 3, t) for t in range(24)]
    assert sorted(pairs[:12]) == sorted(itertools.permutations(range(4), 2))  # (a, b) and (b, a), never (a, a)
    assert sorted(pairs[12:]) == sorted(pairs[:12]) and pairs[12:] != pairs[:12]  # a fresh order


def test_a_self_pair_is_one_class_labelled_1_and_scores_100_percent(mnist):
    """The reference's `{class_0: 0, class_1: 1}` with class_0 == class_1: every sample labelled 1 (the spikes)."""
    task = next(t for t in range(100) if len(set(pair_with_replacement(10, 0, t))) == 1)
    cfg = tiny(pair_sampling="with-replacement", tasks=task + 1, epochs_per_task=3, batch_size=20)
    stream = build_stream_data(cfg.resolved(), mnist, CPU)
    a, _ = pair_with_replacement(10, 0, task)
    train, test = task_splits(cfg, stream, (a, a), task)
    assert train.labels_cpu.tolist() == [1] * 60 and len(test) == 20  # the 60 and 20 samples of class a
    final = [r for r, _ in run_stream(cfg, mnist) if r.last_epoch_of_task][task]
    assert final.task_classes == (str(a), str(a)) and final.test_accuracy == 1.0


# --- raw pixels and the all-classes head -------------------------------------------------------------------

def test_raw_pixels_are_the_0_to_255_bytes(mnist):
    raw = build_stream_data(tiny(pixels="raw").resolved(), mnist, CPU).train.inputs
    normalized = build_stream_data(tiny().resolved(), mnist, CPU).train.inputs
    assert raw.min() == 0 and raw.max() == 255 and torch.equal(raw, raw.round())
    torch.testing.assert_close((raw / 255 - MNIST_MEAN) / MNIST_STD, normalized)


@pytest.mark.parametrize("stream,outputs", [("mnist-binary", 10), ("lang-binary", 20)])
def test_all_classes_head_has_one_output_per_stream_class(stream, outputs, mnist, languages):
    data = languages if STREAMS[stream].is_language else mnist
    cfg = tiny(stream=stream, head="all-classes", tasks=1)
    record, state = next(iter(run_stream(cfg, data)))
    assert state.net.head.out_features == outputs and len(record.task_classes) == 2
    stream = build_stream_data(cfg.resolved(), data, CPU)
    assert head_size(dataclasses.replace(cfg, head="task"), stream) == 2
    train, _ = task_splits(cfg, stream, cfg.stream_spec.draw_task(len(stream.classes), 0, 0), 0)
    assert set(train.labels_cpu.tolist()) == {0, 1}  # the labels stay 0 and 1, as the reference's


# --- test split --------------------------------------------------------------------------------------------

def test_resplit_leaks_test_sentences_into_a_later_tasks_training_set_and_fixed_never_does(languages):
    cfg = tiny(stream="lang-binary", pair_sampling="cycle-ordered", seq_len=128).resolved()
    stream = build_stream_data(cfg, languages, CPU)
    tasks = [cfg.stream_spec.draw_task(20, 0, t, "cycle-ordered") for t in range(40)]
    first, later = next((i, j) for i, j in itertools.combinations(range(40), 2) if set(tasks[i]) & set(tasks[j]))
    for split, leaks in (("fixed", False), ("resplit", True)):
        c = dataclasses.replace(cfg, test_split=split)
        train_1, test_1 = task_splits(c, stream, tasks[first], first)
        train_2, test_2 = task_splits(c, stream, tasks[later], later)
        assert (len(train_1), len(test_1)) == (40, 20)  # the fixed split's sizes: 20 and 10 a language
        assert not rows(train_1) & rows(test_1)  # never within one task
        assert bool(rows(test_1) & rows(train_2)) == leaks, split


# --- reset -------------------------------------------------------------------------------------------------

def test_reset_leaves_no_trace_of_the_previous_task():
    spec = ModelSpec("tokens", 3, hidden=4, embed=5, vocab_size=20)
    net = build_model("gru", spec, torch.Generator().manual_seed(0))
    optimizer = Adam(net.parameters(), lr=0.01)
    tokens, labels = torch.randint(1, 20, (6, 5)), torch.tensor([0, 1, 2, 0, 1, 2])
    for _ in range(3):  # a previous task: weights moved, Adam's moments and counts filled
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(tokens), labels).backward()
        optimizer.step()
    generator = torch.Generator().manual_seed(5)
    twin = torch.Generator().manual_seed(5)
    reset = build_mitigation("reset")
    reset.on_task_start(HookContext(net, optimizer, generator, task=0))  # the first task: nothing happens
    assert optimizer.state
    reset.on_task_start(HookContext(net, optimizer, generator, task=1))
    fresh = net.fresh_parameters(twin)  # what the generator's state draws
    assert all(torch.equal(p, fresh[name]) for name, p in net.named_parameters())
    assert optimizer.state_dict()["state"] == {}
    # the next step is a fresh Adam's first step on the fresh weights
    twin_net = copy.deepcopy(net)
    fresh_optimizer = Adam(twin_net.parameters(), lr=0.01)
    for model, opt in ((net, optimizer), (twin_net, fresh_optimizer)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tokens), labels).backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), twin_net.parameters()))


# --- step matching and the records -------------------------------------------------------------------------

@pytest.mark.parametrize("stream,train_limit,epochs,steps", [
    # 800 sentences a language: reshuffle 8,000 a task, ceil(8000 / 512) = 16 steps an epoch, ceil(1530 / 16) = 96
    ("lang-reshuffle", 8000, 96, 96 * 16),
    # pairs: 1,600 a task, ceil(1600 / 128) = 13 steps an epoch, ceil(1230 / 13) = 95
    ("lang-binary", 16000, 95, 95 * 13),
])
def test_match_steps_gives_the_papers_steps_per_task(stream, train_limit, epochs, steps, languages):
    cfg = TrialConfig(model="gru", stream=stream, match_steps=True, train_limit=train_limit, test_limit=100,
                      hidden=8, seq_len=12, tasks=1, device="cpu")
    assert cfg.resolved().epochs_per_task is None  # unknown until the data's size is
    assert resolve(cfg, languages).epochs_per_task == epochs
    record, state = next(iter(run_stream(cfg, languages)))  # the first epoch is enough
    assert state.config.epochs_per_task == epochs and record.steps_per_task == steps
    assert steps >= STREAMS[stream].paper_steps_per_task > steps - steps // epochs  # within one epoch above
    row = record_row(state.config, record, sweep="s", arm="a", trial_id="t", data=languages, extra={})
    assert row["epochs_per_task"] == epochs and row["match_steps"] is True and row["steps_per_task"] == steps
    assert state.state_dict()["config"]["epochs_per_task"] == epochs  # checkpoints carry the same config


def test_default_stays_30_epochs_and_records_steps_per_task(mnist):
    assert TrialConfig(model="gru", stream="lang-binary").resolved().epochs_per_task == 30
    cfg = tiny(epochs_per_task=2)  # 600 digits, 120 in a pair's task, batch 100: 2 steps an epoch
    records = [r.as_dict() for r, _ in run_stream(cfg, mnist)]
    assert [r["steps_per_task"] for r in records] == [4, 4, 4, 4]
    assert records[0]["truncated_fraction"] is None and records[0]["tokens_kept_fraction"] is None


def test_truncation_fractions_by_hand_and_in_the_records(languages):
    # lengths 3, 10, 20 at seq_len 10: one sentence of three is cut; 3 + 10 + 10 of 33 tokens are kept
    assert truncation(torch.tensor([3, 10, 20]), 10) == pytest.approx((1 / 3, 23 / 33))
    full = dataclasses.replace(tiny(stream="lang-reshuffle"), train_limit=None).resolved()
    codes = [languages.classes.index(c) for c in full.languages]
    lengths = languages.train.lengths[torch.isin(languages.train.labels, torch.tensor(codes))]
    stream = build_stream_data(full, languages, CPU)
    expected = truncation(lengths, 12)
    assert (stream.truncated_fraction, stream.tokens_kept_fraction) == expected and 0 < expected[1] < 1
    cfg = tiny(stream="lang-reshuffle", tasks=1)
    record = next(iter(run_stream(cfg, languages)))[0].as_dict()
    limited = build_stream_data(cfg.resolved(), languages, CPU)
    assert (record["truncated_fraction"], record["tokens_kept_fraction"]) == (
        limited.truncated_fraction, limited.tokens_kept_fraction)


# --- validation --------------------------------------------------------------------------------------------

WRONG_PLACE = [  # (field, value, model, stream) where the switch does not apply
    ("readout", "last-position", "mlp", "mnist-reshuffle"),
    ("pair_sampling", "with-replacement", "mlp", "mnist-reshuffle"),
    ("pair_sampling", "cycle-ordered", "gru", "lang-reshuffle"),
    ("pixels", "raw", "gru", "lang-binary"),
    ("head", "all-classes", "lstm", "mnist-reshuffle"),
    ("test_split", "resplit", "mlp", "mnist-binary"),
    ("match_steps", True, "lstm", "mnist-reshuffle"),
]


@pytest.mark.parametrize("field,value,model,stream", WRONG_PLACE)
def test_a_switch_on_the_wrong_stream_or_model_fails_with_one_line(field, value, model, stream):
    with pytest.raises(ConfigError) as error:
        TrialConfig(model=model, stream=stream, **{field: value})
    message = str(error.value)
    assert field in message and "only" in message and "\n" not in message


@pytest.mark.parametrize("field", SWITCHES)
def test_a_bad_switch_value_names_the_valid_ones(field):
    with pytest.raises(ConfigError) as error:
        TrialConfig(model="gru", stream="lang-binary", **{field: "sideways"})
    message = str(error.value)
    assert field in message and repr(SWITCHES[field].values[1]) in message and "\n" not in message


def test_every_switch_is_a_config_column():
    columns = TrialConfig().columns()
    assert {name: columns[name] for name in SWITCHES} == {name: s.values[0] for name, s in SWITCHES.items()}


@pytest.mark.parametrize("args,message", [
    (["--match-steps", "--epochs", "2", "--model", "gru", "--stream", "lang-binary"], "drop --epochs"),
    (["--pixels", "raw", "--model", "gru", "--stream", "lang-binary"], "pixels='raw' applies to MNIST streams only"),
])
def test_cli_switch_errors_are_one_line(args, message, tmp_path):
    result = CliRunner().invoke(_main(), ["trial", *args, "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and message in result.output


def _main():
    from sweeps.cli import main
    return main


# --- resume with the switches on ---------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    dict(stream="mnist-binary", model="mlp", pair_sampling="with-replacement", pixels="raw", head="all-classes"),
    dict(stream="lang-binary", pair_sampling="cycle-ordered", test_split="resplit", readout="last-position",
         head="all-classes", mitigation="reset"),
], ids=["mnist-reference", "lang-reference-reset"])
def test_resume_with_switches_on_equals_an_uninterrupted_run(fields, mnist, languages):
    cfg = tiny(tasks=3, **fields)
    data = languages if cfg.stream_spec.is_language else mnist
    assert resumed_after(cfg, data, task=0) == without_seconds([r.as_dict() for r, _ in run_stream(cfg, data)])
