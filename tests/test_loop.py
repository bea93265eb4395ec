"""The training loop on real data with tiny limits: every model x stream, determinism, exact resume."""
from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch

from lopmodels import MODELS
from trainables.config import TrialConfig
from trainables.loop import run_stream
from trainables.stream_data import build_stream_data
from trainables.streams import STREAMS

VALID = [(m, s) for m in MODELS.names() for s in STREAMS.names()
         if not (m == "mlp" and STREAMS[s].is_language)]


def tiny(**fields) -> TrialConfig:
    language = STREAMS[fields.get("stream", "mnist-reshuffle")].is_language
    base = dict(tasks=2, epochs_per_task=1, train_limit=400 if language else 600, test_limit=200,
                batch_size=100, hidden=8, device="cpu")
    if language:
        base["seq_len"] = 12
    return TrialConfig(**{**base, **fields})


def dataset_for(cfg, mnist, languages):
    return languages if cfg.stream_spec.is_language else mnist


def run(cfg, data):
    return [r.as_dict() for r, _ in run_stream(cfg, data)]


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def resumed_after(cfg, data, task: int) -> list[dict]:
    """The records of a run stopped after `task`, its state saved and loaded through bytes, then resumed."""
    first = []
    for record, state in run_stream(cfg, data):
        first.append(record.as_dict())
        if record.task == task and record.last_epoch_of_task:
            buffer = io.BytesIO()
            torch.save(state.state_dict(), buffer)
            break
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    return without_seconds(first + [r.as_dict() for r, _ in run_stream(cfg, data, saved)])


@pytest.mark.parametrize("model,stream", VALID)
def test_every_model_runs_every_stream(model, stream, mnist, languages):
    cfg = tiny(model=model, stream=stream)
    records = run(cfg, dataset_for(cfg, mnist, languages))
    assert [(r["task"], r["epoch"]) for r in records] == [(0, 0), (1, 0)]
    for r in records:
        assert math.isfinite(r["train_loss"]) and not r["diverged"]
        assert 0 <= r["train_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1
        assert len(r["task_classes"]) == (2 if "binary" in stream else len(cfg.resolved().languages or range(10)))


def test_diagnostics_on_each_tasks_last_epoch_only(mnist):
    records = run(tiny(tasks=2, epochs_per_task=2), mnist)
    for r in records:
        last = r["epoch"] == 1
        assert (r["effective_rank"] is not None) == last and (r["grad_norm"] is not None) == last
        assert (r["dead_fraction"] is not None) == last  # an MLP has ReLU units
        assert r["saturated_fraction"] is None  # and no tanh units


def test_training_learns_mnist(mnist):
    """Not a smoke test only: a few epochs on 2,000 digits must beat chance by far."""
    cfg = tiny(tasks=1, epochs_per_task=8, train_limit=2000, test_limit=1000, hidden=32)
    assert run(cfg, mnist)[-1]["test_accuracy"] > 0.7


def test_same_seed_same_numbers(mnist):
    cfg = tiny(model="lstm", stream="mnist-binary")
    first, second = run(cfg, mnist), run(cfg, mnist)
    for a, b in zip(first, second):
        a.pop("seconds"), b.pop("seconds")
    assert first == second


def test_stream_seed_decides_tasks_and_model_seed_does_not(languages):
    classes = lambda cfg: [r["task_classes"] for r in run(cfg, languages)]
    base = tiny(model="gru", stream="lang-binary", tasks=3)
    assert classes(base) == classes(dataclasses.replace(base, seed=5))
    assert classes(base) != classes(dataclasses.replace(base, stream_seed=5))
    losses = lambda cfg: [r["train_loss"] for r in run(cfg, languages)]
    assert losses(base) != losses(dataclasses.replace(base, seed=5))


@pytest.mark.parametrize("model,stream", [("mlp", "mnist-reshuffle"), ("gru", "lang-reshuffle")])
def test_resume_from_a_task_boundary_is_exact(model, stream, mnist, languages):
    """Four tasks straight == two tasks, state saved and loaded through bytes, two more (bit for bit)."""
    cfg = tiny(model=model, stream=stream, tasks=4).resolved()
    data = dataset_for(cfg, mnist, languages)
    assert resumed_after(cfg, data, task=1) == without_seconds(run(cfg, data))


def test_limits_are_class_balanced_and_fixed(mnist):
    cfg = tiny(train_limit=500).resolved()
    a = build_stream_data(cfg, mnist, torch.device("cpu"))
    b = build_stream_data(dataclasses.replace(cfg, seed=9, stream_seed=9), mnist, torch.device("cpu"))
    assert torch.bincount(a.train.labels_cpu).tolist() == [50] * 10
    assert torch.equal(a.train.inputs, b.train.inputs)


def test_divergence_ends_the_trial_normally(mnist):
    records = run(tiny(lr=1e30, tasks=3, epochs_per_task=2), mnist)
    assert records[-1]["diverged"] and not any(r["diverged"] for r in records[:-1])
    assert len(records) < 6
