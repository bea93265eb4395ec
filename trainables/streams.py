"""Task streams: which classes each task uses and how they are relabelled.

Task t is a pure function of (stream seed, t), so every arm of a comparison that shares a stream seed
sees the same tasks, whatever its model seed, and a resumed trial needs no stream state. Binary streams
draw their pairs "distinct" by default; the reference code's two samplers are opt-in (`pair_sampling`,
docs/protocols.md).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lopmodels.catalog import MODEL_INFO
from lopmodels.registry import Registry, check_choice
from trainables.datasets import DATASETS

MNIST_CLASSES = DATASETS["mnist"].classes
RESHUFFLE_LANGUAGES = ("spa", "por", "ita", "fra", "ron", "deu", "cmn", "rus", "hin", "ara")  # 10 of the 20
BINARY_LANGUAGES = DATASETS["languages"].classes  # the paper's 20


def fixed_task(num_classes: int, stream_seed: int, task: int) -> tuple[int, ...]:
    """Every class under its own label, every task: what changes is the task's input transform."""
    return tuple(range(num_classes))


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


def pair_with_replacement(num_classes: int, stream_seed: int, task: int) -> tuple[int, ...]:
    """An ordered pair drawn with replacement from all num_classes^2, a class with itself included.

    The reference's MNIST binary sampler (`random.choice` over `itertools.product(range(10), repeat=2)`
    in `mnist-binary.py`). A self-pair (a, a) is a one-class task: the loop labels all its samples 1.
    """
    a, b = np.random.default_rng([stream_seed, task]).integers(0, num_classes, size=2)
    return int(a), int(b)


def cycle_ordered_pair(num_classes: int, stream_seed: int, task: int) -> tuple[int, ...]:
    """Every ordered pair of distinct classes, each cycle in a fresh random order.

    The reference's language binary sampler (`itertools.permutations(range(20), 2)`, shuffled, repeated,
    in `lang-binary.py`): a pair comes back within a cycle with its labels swapped.
    """
    pairs = list(itertools.permutations(range(num_classes), 2))
    cycle, position = divmod(task, len(pairs))
    order = np.random.default_rng([stream_seed, cycle]).permutation(len(pairs))
    return pairs[order[position]]


PAIR_SAMPLERS: dict[str, Callable[[int, int, int], tuple[int, ...]]] = {
    "distinct": binary_task, "with-replacement": pair_with_replacement, "cycle-ordered": cycle_ordered_pair,
}
PAIR_SAMPLINGS = tuple(PAIR_SAMPLERS)  # "distinct" first: the default
TASK_KINDS = ("reshuffle", "binary", "fixed")
ACCURACIES = ("test_accuracy", "train_accuracy")


@dataclass(frozen=True)
class StreamSpec:
    """A task stream and the paper's training settings for it (docs/paper.md, "Models and training")."""

    name: str
    dataset: str  # a name in trainables.datasets.DATASETS
    classes: tuple[str, ...]  # the classes the stream draws from (languages: the default set)
    # "reshuffle" (every class, labels permuted), "binary" (a pair of classes) or "fixed" (every class, its own
    # label: the task is its input transform)
    task_kind: str
    tasks: int
    epochs_per_task: int
    lr: float
    batch_size: int
    seq_len: int  # tokens per sequence; 28 rows for images
    # optimiser steps per task of the paper's runs, 30 epochs each: MNIST reshuffle ceil(60,000 / 6,000) = 10 an
    # epoch; Tatoeba's 2,600 training sentences a language: reshuffle ceil(26,000 / 512) = 51, binary
    # ceil(5,200 / 128) = 41. None where it varies by task (MNIST pairs differ in size)
    paper_steps_per_task: int | None = None
    # tasks at the sweeps' `small` scale (sweeps/scales.py): enough for the effect the stream shows; None: half
    small_tasks: int | None = None
    # what each task does to its inputs or labels, fixed by (stream seed, task): a name in
    # trainables.transforms.TASK_TRANSFORMS ("permute-pixels", "random-labels"), or None
    transform: str | None = None
    train_limit: int | None = None  # the fixed training subset the stream trains on (None: all the data)
    # what the analysis measures plasticity by: test accuracy, or training accuracy where test accuracy is
    # chance by construction (random labels)
    accuracy: str = "test_accuracy"

    @property
    def tasks_at_small_scale(self) -> int:
        return self.small_tasks or max(1, self.tasks // 2)

    @property
    def input_kind(self) -> str:
        """What its dataset holds: "image" or "tokens" (lopmodels.catalog.INPUT_KINDS)."""
        return DATASETS[self.dataset].kind

    @property
    def is_language(self) -> bool:
        """A stream of token sequences: the language switches (seq_len, embed, languages, test_split) apply."""
        return self.input_kind == "tokens"

    @property
    def is_binary(self) -> bool:
        return self.task_kind == "binary"

    def draw_task(self, num_classes: int, stream_seed: int, task: int,
                  pair_sampling: str = "distinct") -> tuple[int, ...]:
        """Task `task`'s classes: element i is the class labelled i."""
        if self.task_kind == "fixed":
            return fixed_task(num_classes, stream_seed, task)
        if not self.is_binary:
            return reshuffle_task(num_classes, stream_seed, task)
        return PAIR_SAMPLERS[pair_sampling](num_classes, stream_seed, task)


STREAMS: Registry[StreamSpec] = Registry("stream")


def register_stream(spec: StreamSpec) -> StreamSpec:
    check_choice(f"dataset of stream {spec.name!r}", spec.dataset, DATASETS.names())
    check_choice(f"task kind of stream {spec.name!r}", spec.task_kind, TASK_KINDS)
    check_choice(f"accuracy of stream {spec.name!r}", spec.accuracy, ACCURACIES)
    STREAMS.register(spec.name)(spec)
    return spec


def accuracy_measure(stream: str) -> str:
    """The record column a stream measures plasticity by (`StreamSpec.accuracy`): `test_accuracy`, or
    `train_accuracy` where test accuracy is chance by construction (random labels). A stream this process
    does not know (a plugin's, not imported) is taken as `test_accuracy`."""
    return STREAMS[stream].accuracy if stream in STREAMS else "test_accuracy"


def reads(model: str, stream: str) -> bool:
    """Whether `model` can train on `stream` (its dataset's inputs): the one check configs and sweeps share."""
    return STREAMS[stream].input_kind in MODEL_INFO[model].reads


register_stream(StreamSpec("mnist-reshuffle", "mnist", MNIST_CLASSES, "reshuffle",
                           tasks=50, epochs_per_task=30, lr=0.01, batch_size=6000, seq_len=28,
                           paper_steps_per_task=300, small_tasks=25))
register_stream(StreamSpec("mnist-binary", "mnist", MNIST_CLASSES, "binary",
                           tasks=50, epochs_per_task=30, lr=0.01, batch_size=6000, seq_len=28, small_tasks=25))
register_stream(StreamSpec("lang-reshuffle", "languages", RESHUFFLE_LANGUAGES, "reshuffle",
                           tasks=100, epochs_per_task=30, lr=0.01, batch_size=512, seq_len=25,  # gru_medium.yaml
                           paper_steps_per_task=1530, small_tasks=50))
register_stream(StreamSpec("lang-binary", "languages", BINARY_LANGUAGES, "binary",
                           tasks=100, epochs_per_task=30, lr=0.1, batch_size=128, seq_len=50,
                           paper_steps_per_task=1230, small_tasks=50))
# Kumar et al. (2023), section 4.2: 10,000 training images, one epoch a task, 500 tasks, batches of 16. The
# learning rate is ours (theirs was tuned per method): Adam's usual 1e-3.
register_stream(StreamSpec("mnist-permuted", "mnist", MNIST_CLASSES, "fixed", tasks=500, epochs_per_task=1,
                           lr=1e-3, batch_size=16, seq_len=28, small_tasks=100, transform="permute-pixels",
                           train_limit=10_000))
# Kumar et al. (2023), after Lyle et al. (2023): 1,200 training images whose labels are drawn afresh per image
# each task, 400 epochs a task (memorisation), 50 tasks, batches of 16; plasticity is training accuracy.
register_stream(StreamSpec("mnist-random-labels", "mnist", MNIST_CLASSES, "fixed", tasks=50, epochs_per_task=400,
                           lr=1e-3, batch_size=16, seq_len=28, small_tasks=25, transform="random-labels",
                           train_limit=1_200, accuracy="train_accuracy"))
