"""Task streams: pure functions of (stream seed, task); binary pairs distinct and never self-pairs by default."""
from __future__ import annotations

import math

import pytest

from trainables.streams import PAIR_SAMPLINGS, STREAMS, binary_task, reshuffle_task


@pytest.mark.parametrize("num_classes", [10, 20])
def test_binary_pairs_are_distinct_unordered_and_never_self(num_classes):
    all_pairs = num_classes * (num_classes - 1) // 2
    tasks = [binary_task(num_classes, 7, t) for t in range(2 * all_pairs)]
    for cycle in (tasks[:all_pairs], tasks[all_pairs:]):
        unordered = [frozenset(pair) for pair in cycle]
        assert all(len(pair) == 2 for pair in unordered), "a class met itself"
        assert len(set(unordered)) == all_pairs, "a pair repeated before all pairs were used"
    assert tasks[:all_pairs] != tasks[all_pairs:], "the second cycle must be a fresh order"


def test_reshuffle_is_a_permutation_and_varies():
    tasks = [reshuffle_task(10, 0, t) for t in range(20)]
    assert all(sorted(t) == list(range(10)) for t in tasks)
    assert len(set(tasks)) == 20


@pytest.mark.parametrize("name,sampling", [(name, sampling) for name in STREAMS.names()
                                           for sampling in (PAIR_SAMPLINGS if STREAMS[name].is_binary else ["distinct"])])
def test_task_is_a_pure_function_of_stream_seed_and_index(name, sampling):
    spec = STREAMS[name]
    n = len(spec.classes)
    first = [spec.draw_task(n, 3, t, sampling) for t in range(30)]
    again = [spec.draw_task(n, 3, t, sampling) for t in reversed(range(30))][::-1]
    other = [spec.draw_task(n, 4, t, sampling) for t in range(30)]
    assert first == again
    if spec.task_kind == "fixed":  # every task is every class under its own label: the transform varies
        assert first == other == [tuple(range(n))] * 30
    else:
        assert first != other
    assert len(first[0]) == (2 if spec.is_binary else n)


def test_paper_defaults():
    assert (STREAMS["mnist-reshuffle"].tasks, STREAMS["lang-reshuffle"].tasks) == (50, 100)
    assert STREAMS["lang-binary"].lr == 0.1 and STREAMS["lang-binary"].batch_size == 128
    assert len(STREAMS["lang-binary"].classes) == 20 and len(STREAMS["lang-reshuffle"].classes) == 10
    assert set(STREAMS["lang-reshuffle"].classes) < set(STREAMS["lang-binary"].classes)
    assert list(STREAMS) == sorted(STREAMS.names())


def test_paper_steps_per_task_follow_from_tatoebas_2600_sentences_a_language():
    # 30 epochs of ceil(sentences of a task / batch) steps: reshuffle 10 languages, binary 2
    for name, languages in (("lang-reshuffle", 10), ("lang-binary", 2)):
        spec = STREAMS[name]
        assert spec.paper_steps_per_task == 30 * math.ceil(2600 * languages / spec.batch_size)
    assert (STREAMS["lang-reshuffle"].paper_steps_per_task, STREAMS["lang-binary"].paper_steps_per_task) == (1530, 1230)
    assert STREAMS["mnist-reshuffle"].paper_steps_per_task == 30 * math.ceil(60_000 / 6000)  # 10 steps an epoch
    assert STREAMS["mnist-binary"].paper_steps_per_task is None  # pairs of digits differ in size


def digits(per_class: int, seed: int):
    """MNIST-shaped synthetic images, `per_class` of each digit."""
    import torch

    from trainables.data import Dataset, Split
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        labels = torch.arange(10).repeat(n)
        return Split(torch.randn(len(labels), 28, 28, generator=g), labels)

    return Dataset("mnist", "image", tuple(str(d) for d in range(10)), split(per_class), split(2), "synthetic", "t")


def task_views(stream: str, stream_seed: int, tasks: range, **fields):
    import torch

    from trainables.config import TrialConfig
    from trainables.loop import draw_task
    from trainables.stream_data import build_stream_data, resolve, task_splits
    data = digits(12, 0)
    cfg = resolve(TrialConfig(model="mlp", stream=stream, stream_seed=stream_seed, **fields), data)
    built = build_stream_data(cfg, data, torch.device("cpu"))
    return cfg, built, [task_splits(cfg, built, draw_task(cfg, built, t), t) for t in tasks]


def test_permuted_mnist_permutes_each_tasks_pixels_alike_in_train_and_test():
    import torch
    cfg, built, views = task_views("mnist-permuted", 3, range(3), train_limit=100)
    assert cfg.train_limit == 100 and cfg.epochs_per_task == 1 and cfg.batch_size == 16
    permutations = []
    for train, test in views:
        assert torch.equal(train.labels_cpu, built.train.labels_cpu)  # labels unchanged
        flat, original = train.inputs.reshape(len(train), -1), built.train.inputs.reshape(len(train), -1)
        # the permutation, recovered from the first image's distinct pixel values, explains every image
        order = torch.argsort(original[0])[torch.argsort(torch.argsort(flat[0]))]
        assert torch.equal(flat, original[:, order])
        assert torch.equal(test.inputs.reshape(len(test), -1), built.test.inputs.reshape(len(test), -1)[:, order])
        permutations.append(order)
    assert not torch.equal(permutations[0], permutations[1]) and not torch.equal(permutations[1], permutations[2])
    _, _, again = task_views("mnist-permuted", 3, range(2, 3), train_limit=100)  # a pure function of (seed, task)
    assert torch.equal(again[0][0].inputs, views[2][0].inputs)
    _, _, other = task_views("mnist-permuted", 4, range(1), train_limit=100)
    assert not torch.equal(other[0][0].inputs, views[0][0].inputs)


def test_random_labels_redraw_every_label_each_task_and_measure_training_accuracy():
    import pandas as pd
    import torch

    from analysis.metrics import final_accuracy
    cfg, built, views = task_views("mnist-random-labels", 0, range(3))
    assert cfg.train_limit == 1200 and cfg.epochs_per_task == 400 and STREAMS[cfg.stream].accuracy == "train_accuracy"
    labels = [train.labels_cpu for train, _ in views]
    for train, test in views:
        assert torch.equal(train.inputs, built.train.inputs)  # the same images, new labels
        assert torch.equal(train.labels, train.labels_cpu) and int(train.labels_cpu.max()) <= 9
        assert set(train.labels_cpu.tolist()) == set(range(10))
    assert not torch.equal(labels[0], labels[1])
    _, _, again = task_views("mnist-random-labels", 0, range(1, 2))
    assert torch.equal(again[0][0].labels_cpu, labels[1])
    base = {"sweep": "s", "arm": "a", "trial_id": "t", "model": "mlp", "mitigation": "none", "seed": 0, "stream_seed": 0,
            "tasks": 1, "epochs_per_task": 1, "hidden": 25, "seq_len": 28, "task": 0, "epoch": 0,
            "task_classes": [tuple("0123456789")], "diverged": False, "train_accuracy": 0.9, "test_accuracy": 0.1}
    final = final_accuracy(pd.DataFrame([{**base, "stream": "mnist-random-labels"},
                                         {**base, "stream": "mnist-reshuffle", "trial_id": "u"}]))
    assert final.set_index("stream")["accuracy"].to_dict() == {"mnist-random-labels": 0.9, "mnist-reshuffle": 0.1}
