"""Task streams: pure functions of (stream seed, task); binary pairs distinct and never self-pairs."""
from __future__ import annotations

import itertools

import pytest

from trainables.streams import STREAMS, binary_task, reshuffle_task


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


@pytest.mark.parametrize("name", STREAMS.names())
def test_task_is_a_pure_function_of_stream_seed_and_index(name):
    spec = STREAMS[name]
    n = len(spec.classes)
    first = [spec.draw_task(n, 3, t) for t in range(30)]
    again = [spec.draw_task(n, 3, t) for t in reversed(range(30))][::-1]
    other = [spec.draw_task(n, 4, t) for t in range(30)]
    assert first == again
    assert first != other
    assert len(first[0]) == (2 if "binary" in name else n)


def test_paper_defaults():
    assert (STREAMS["mnist-reshuffle"].tasks, STREAMS["lang-reshuffle"].tasks) == (50, 100)
    assert STREAMS["lang-binary"].lr == 0.1 and STREAMS["lang-binary"].batch_size == 128
    assert len(STREAMS["lang-binary"].classes) == 20 and len(STREAMS["lang-reshuffle"].classes) == 10
    assert set(STREAMS["lang-reshuffle"].classes) < set(STREAMS["lang-binary"].classes)
    assert list(itertools.islice(STREAMS, 4)) == sorted(STREAMS.names())
