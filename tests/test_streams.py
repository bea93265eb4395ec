"""Task streams: pure functions of (stream seed, task); binary pairs distinct and never self-pairs by default."""
from __future__ import annotations

import itertools
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
    assert first != other
    assert len(first[0]) == (2 if "binary" in name else n)


def test_paper_defaults():
    assert (STREAMS["mnist-reshuffle"].tasks, STREAMS["lang-reshuffle"].tasks) == (50, 100)
    assert STREAMS["lang-binary"].lr == 0.1 and STREAMS["lang-binary"].batch_size == 128
    assert len(STREAMS["lang-binary"].classes) == 20 and len(STREAMS["lang-reshuffle"].classes) == 10
    assert set(STREAMS["lang-reshuffle"].classes) < set(STREAMS["lang-binary"].classes)
    assert list(itertools.islice(STREAMS, 4)) == sorted(STREAMS.names())


def test_paper_steps_per_task_follow_from_tatoebas_2600_sentences_a_language():
    # 30 epochs of ceil(sentences of a task / batch) steps: reshuffle 10 languages, binary 2
    for name, languages in (("lang-reshuffle", 10), ("lang-binary", 2)):
        spec = STREAMS[name]
        assert spec.paper_steps_per_task == 30 * math.ceil(2600 * languages / spec.batch_size)
    assert (STREAMS["lang-reshuffle"].paper_steps_per_task, STREAMS["lang-binary"].paper_steps_per_task) == (1530, 1230)
    assert STREAMS["mnist-reshuffle"].paper_steps_per_task == 30 * math.ceil(60_000 / 6000)  # 10 steps an epoch
    assert STREAMS["mnist-binary"].paper_steps_per_task is None  # pairs of digits differ in size
