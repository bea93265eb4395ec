"""The training loop on CUDA: a trial learns, the same seed gives the same numbers, a resumed trial equals an
uninterrupted one, and every mitigation runs and resumes (the CPU versions: tests/test_loop.py, test_mitigations.py).

Skipped without CUDA. On a GPU machine: `python -m pytest -q -m gpu tests/test_gpu.py`, or the whole device check
(`PYTHONPATH=. python benchmarks/device_check.py --out DIR`). Synthetic data built here, so no data cache is needed.

Reproducibility on CUDA needs PyTorch's deterministic algorithms (the `deterministic` fixture, for the tests that
compare runs) and cuBLAS's fixed workspace (CUBLAS_WORKSPACE_CONFIG, set below, before this process starts cuBLAS).
The MLP, whose work is cuBLAS's and PyTorch's own kernels, must then agree bit for bit. A recurrent layer may run on
cuDNN, whose RNN kernels PyTorch does not promise to be deterministic: its runs must agree to RELATIVE_TOLERANCE in
losses, ranks and norms and to FRACTION_TOLERANCE in accuracies and unit fractions (a couple of the small test
sets' samples), and a warning says so when they agree only within them.
"""
from __future__ import annotations

import math
import os
import warnings

import pytest
import torch

from tests.test_loop import resumed_after, run, without_seconds
from tests.test_mitigations import ARM_IDS, ARMS
from trainables.config import TrialConfig
from trainables.data import Dataset, Split
from trainables.loop import run_stream
from trainables.streams import BINARY_LANGUAGES, MNIST_CLASSES, RESHUFFLE_LANGUAGES

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: before any test runs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEVICE = "cuda"
RELATIVE_TOLERANCE = 1e-4
FRACTION_TOLERANCE = 0.02
FRACTIONS = ("train_accuracy", "test_accuracy", "dead_fraction", "saturated_fraction")
LANGUAGES = tuple(dict.fromkeys(BINARY_LANGUAGES + RESHUFFLE_LANGUAGES))
VOCAB, BAND, MAX_LEN = 512, 16, 30  # each language draws half its tokens from its own BAND ids
TRAIN, TEST = 100, 30  # samples per class
# one case per model, on streams of both kinds; the GRU's shrink-perturb draws from the trial's CUDA generator
CASES = [("mlp", "mnist-reshuffle", "none", {}), ("lstm", "mnist-binary", "none", {}),
         ("gru", "lang-reshuffle", "shrink-perturb", {"every": "step", "shrink": 0.999, "sigma": 1e-3})]
CASE_IDS = [f"{model}-{stream}-{mitigation}" for model, stream, mitigation, _ in CASES]


def easy_images(generator: torch.Generator) -> Dataset:
    """MNIST's shapes, learnable: each class a fixed random pattern, plus as much noise."""
    patterns = torch.randn(len(MNIST_CLASSES), 28, 28, generator=generator)

    def split(per_class: int) -> Split:
        labels = torch.arange(len(MNIST_CLASSES)).repeat(per_class)
        return Split(patterns[labels] + torch.randn(len(labels), 28, 28, generator=generator), labels)

    return Dataset("mnist", "image", MNIST_CLASSES, split(TRAIN), split(TEST), "synthetic", "gpu-test")


def easy_sentences(generator: torch.Generator) -> Dataset:
    """Token sentences of every stream language, learnable: half of each sentence's tokens from its language's band."""
    def split(per_class: int) -> Split:
        labels = torch.arange(len(LANGUAGES)).repeat(per_class)
        lengths = torch.randint(5, MAX_LEN + 1, (len(labels),), generator=generator)
        own = 2 + labels[:, None] * BAND + torch.randint(0, BAND, (len(labels), MAX_LEN), generator=generator)
        noise = torch.randint(2, VOCAB, (len(labels), MAX_LEN), generator=generator)
        tokens = torch.where(torch.rand(len(labels), MAX_LEN, generator=generator) < 0.5, own, noise)
        tokens[torch.arange(MAX_LEN) >= lengths[:, None]] = 0
        return Split(tokens, labels, lengths)

    return Dataset("languages", "tokens", LANGUAGES, split(TRAIN), split(TEST), "synthetic", "gpu-test",
                   tokenizer="char", vocab_size=VOCAB, pad_id=0)


@pytest.fixture(scope="module")
def easy() -> dict[str, Dataset]:
    generator = torch.Generator().manual_seed(0)
    return {"mnist": easy_images(generator), "languages": easy_sentences(generator)}


@pytest.fixture
def deterministic():
    """PyTorch's deterministic algorithms (cuDNN's too) for one test, the previous settings after it."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1:]


def tiny(**fields) -> TrialConfig:
    return TrialConfig(**{"tasks": 2, "epochs_per_task": 1, "batch_size": 50, "device": DEVICE, **fields})


def data_for(cfg: TrialConfig, easy: dict[str, Dataset]) -> Dataset:
    return easy[cfg.stream_spec.dataset]


def assert_same(first: list[dict], second: list[dict], model: str) -> None:
    """Bit for bit for the MLP; a recurrent model's within the module's tolerances, with a warning unless exact."""
    first, second = without_seconds(first), without_seconds(second)
    if model == "mlp" or first == second:
        assert first == second
        return
    warnings.warn(f"{model} on CUDA: runs agree within the tolerances, not bit for bit")
    assert [(r["task"], r["epoch"]) for r in first] == [(r["task"], r["epoch"]) for r in second]
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, float) and isinstance(b[key], float):
                tolerance = FRACTION_TOLERANCE if key in FRACTIONS else 0.0
                assert math.isclose(value, b[key], rel_tol=RELATIVE_TOLERANCE, abs_tol=tolerance), (key, value, b[key])
            else:
                assert value == b[key], key


@pytest.mark.parametrize("model,stream", [("mlp", "mnist-reshuffle"), ("lstm", "mnist-reshuffle"),
                                          ("gru", "lang-reshuffle")])
def test_a_trial_on_cuda_learns(model, stream, easy):
    """Five epochs of 100 steps in all on an easy task: far above the chance of one in ten, on the GPU."""
    cfg = tiny(model=model, stream=stream, tasks=1, epochs_per_task=5)
    records = []
    for record, state in run_stream(cfg, data_for(cfg, easy)):
        records.append(record)
    assert next(state.net.parameters()).device.type == DEVICE
    assert all(math.isfinite(r.train_loss) and not r.diverged for r in records)
    assert records[-1].test_accuracy > 0.5


@pytest.mark.parametrize("model,stream,mitigation,args", CASES, ids=CASE_IDS)
def test_same_seed_same_numbers_on_cuda(model, stream, mitigation, args, easy, deterministic):
    cfg = tiny(model=model, stream=stream, tasks=3, mitigation=mitigation, mitigation_args=args)
    data = data_for(cfg, easy)
    assert_same(run(cfg, data), run(cfg, data), model)


@pytest.mark.parametrize("model,stream,mitigation,args", CASES, ids=CASE_IDS)
def test_resume_on_cuda_equals_an_uninterrupted_trial(model, stream, mitigation, args, easy, deterministic):
    """Four tasks straight == two tasks, state saved and loaded through bytes (CUDA tensors), two more."""
    cfg = tiny(model=model, stream=stream, tasks=4, mitigation=mitigation, mitigation_args=args).resolved()
    data = data_for(cfg, easy)
    assert_same(resumed_after(cfg, data, task=1), run(cfg, data), model)


@pytest.mark.parametrize("model,stream", [("mlp", "mnist-reshuffle"), ("lstm", "mnist-binary"),
                                          ("gru", "lang-binary")])
@pytest.mark.parametrize("name,args", ARMS, ids=ARM_IDS)
def test_every_mitigation_runs_and_resumes_on_cuda(name, args, model, stream, easy, deterministic):
    """Two tiny tasks under settings that make each mitigation act (tests/test_mitigations.py), resumed after one."""
    cfg = tiny(model=model, stream=stream, mitigation=name, mitigation_args=args, batch_size=10, hidden=8,
               train_limit=200, test_limit=100).resolved()
    data = data_for(cfg, easy)
    straight = run(cfg, data)
    assert all(math.isfinite(r["train_loss"]) and not r["diverged"] for r in straight)
    assert_same(resumed_after(cfg, data, task=0), straight, model)
