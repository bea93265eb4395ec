"""Task streams: which classes each task uses and how they are relabelled.

Task t is a pure function of (stream seed, t), so every arm of a comparison that shares a stream seed
sees the same tasks, whatever its model seed, and a resumed trial needs no stream state.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lopmodels.registry import Registry

MNIST_CLASSES = tuple(str(d) for d in range(10))
RESHUFFLE_LANGUAGES = ("spa", "por", "ita", "fra", "ron", "deu", "cmn", "rus", "hin", "ara")
BINARY_LANGUAGES = ("spa", "por", "ita", "fra", "ron", "deu", "swe", "rus", "hin", "ara",
                    "jpn", "kor", "tur", "nld", "ell", "pol", "ukr", "ces", "heb", "cmn")


def reshuffle_task(num_classes: int, stream_seed: int, task: int) -> tuple[int, ...]:
    """Every class, in a fresh random order: element i is the class labelled i in this task."""
    rng = np.random.default_rng([stream_seed, task])
    return tuple(int(c) for c in rng.permutation(num_classes))


def binary_task(num_classes: int, stream_seed: int, task: int) -> tuple[int, ...]:
    """Two distinct classes, labelled 0 and 1.

    The distinct unordered pairs are drawn without replacement; once all are used, a fresh random
    order of all of them begins. A class never meets itself (the reference code's 100 % "spikes").
    """
    pairs = list(itertools.combinations(range(num_classes), 2))
    cycle, position = divmod(task, len(pairs))
    rng = np.random.default_rng([stream_seed, cycle])
    order = rng.permutation(len(pairs))
    swap = rng.integers(0, 2, size=len(pairs))  # which class of a pair gets label 0
    a, b = pairs[order[position]]
    return (b, a) if swap[position] else (a, b)


@dataclass(frozen=True)
class StreamSpec:
    """A task stream and the paper's training settings for it (PAPER.md, "Models and training")."""

    name: str
    dataset: str  # "mnist" or "languages"
    classes: tuple[str, ...]  # the classes the stream draws from (languages: the default set)
    draw_task: Callable[[int, int, int], tuple[int, ...]]  # (num_classes, stream_seed, task) -> classes
    tasks: int
    epochs_per_task: int
    lr: float
    batch_size: int
    seq_len: int  # tokens per sequence; 28 rows for images

    @property
    def is_language(self) -> bool:
        return self.dataset == "languages"


STREAMS: Registry[StreamSpec] = Registry("stream")


def register_stream(spec: StreamSpec) -> StreamSpec:
    STREAMS.register(spec.name)(spec)
    return spec


register_stream(StreamSpec("mnist-reshuffle", "mnist", MNIST_CLASSES, reshuffle_task,
                           tasks=50, epochs_per_task=30, lr=0.01, batch_size=6000, seq_len=28))
register_stream(StreamSpec("mnist-binary", "mnist", MNIST_CLASSES, binary_task,
                           tasks=50, epochs_per_task=30, lr=0.01, batch_size=6000, seq_len=28))
register_stream(StreamSpec("lang-reshuffle", "languages", RESHUFFLE_LANGUAGES, reshuffle_task,
                           tasks=100, epochs_per_task=30, lr=0.01, batch_size=512, seq_len=50))
register_stream(StreamSpec("lang-binary", "languages", BINARY_LANGUAGES, binary_task,
                           tasks=100, epochs_per_task=30, lr=0.1, batch_size=128, seq_len=50))
