"""Seconds per epoch (train + test) of our training loop against the reference code's way of training.

Both sides run in this one process with the same `torch.set_num_threads`, their epochs interleaved (ours,
reference, ours, ...) so that a change in the machine's other load hits both alike: a warm-up epoch each,
then `--epochs` timed epochs each, of which the median is printed.

- ours: `trainables.loop.run_stream` with one task of 1 + `--epochs` epochs on the CPU; a record's
  `seconds` is exactly one epoch's `train_epoch` + `evaluate` + the loop's one host sync (data resident
  as tensors, batches by indexing a per-epoch permutation, one forward pass per batch).
- reference: the way the paper's code (mak2508/recurrent-lop, `src/train.py`) trains, with plain torch
  models of the same shapes and Adam lr 0.01: for MNIST, torchvision's `MNIST` dataset with per-sample
  `ToTensor` + `Normalize` through a shuffling `DataLoader`; for the GRU, a shuffling `DataLoader` over a
  `TensorDataset` of the token tensors. Per batch: a step, `loss.item()`, and a second forward pass (with
  autograd on, as there) for the training accuracy; then test accuracy through a `DataLoader`. Its
  recurrent models read `out[:, -1]` over every padded position; ours packs sequences and reads `h_n`.

MNIST is our prepared data (`trainables.data.load("mnist")`); torchvision's raw idx files are written from
it into a temporary folder, since the download does not work offline. The GRU uses synthetic tokens of the
paper's lang-reshuffle shapes on both sides (10 languages x 2600 train / 400 test sentences, lengths
uniform in 5..50, vocabulary 8192), both reading the first 25 tokens (the stream's length): the offline
corpus holds only 800 training sentences a language.

`gru-cbp` is our GRU with continual backprop, which reads every unit's activity at every step
(`forward_units`) and replaces units after each step; its reference side is the reference's plain GRU
epoch (the reference's own CBP is not reproduced here), so its ratio shows what CBP costs on top.

Throughput: the analytic FLOPs of our epoch (2 per multiply-add of the matmuls; a training step counts
3x its forward pass for forward + backward, the test pass 1x; only the real tokens' work, padding not
counted; elementwise work not counted) over its seconds, beside a 2048x2048 `torch.mm` timed just before
the model's epochs. Each model runs in a fresh process, so `peak_rss` is that model's own peak resident
memory (both sides, the data, torch itself).

    python benchmarks/loop_speed.py [--models mlp,lstm,gru,gru-cbp] [--epochs 3] [--threads 2]

Prints, per model, `<model> ours=<s>s reference=<s>s speedup=<x>x` and
`<model> gflops=<ours> mm_gflops=<mm> mm_fraction=<ours/mm> peak_rss=<MiB>MiB`.
The machine (CPU, cores, threads, load average) goes to stderr: other work on the cores slows both sides,
ours the most (its time is in multi-threaded kernels, which stall whenever one of their threads is
descheduled), so compare numbers taken on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import resource
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets, transforms

from arguments import names_among, positive  # benchmarks/arguments.py, beside this script

from trainables import data as lop_data
from trainables.config import TrialConfig
from trainables.data import Dataset, Split
from trainables.data.languages import TATOEBA_SIZES
from trainables.data.mnist_source import MNIST_MEAN, MNIST_STD
from trainables.loop import run_stream
from trainables.streams import RESHUFFLE_LANGUAGES

MODELS = ("mlp", "lstm", "gru", "gru-cbp")
MITIGATIONS = {"gru-cbp": "cbp"}  # benchmark name -> mitigation of our side (the model is the name's first part)
IMAGE_ROWS = 28
LANG_TRAIN, LANG_TEST = TATOEBA_SIZES  # sentences per language in the paper's Tatoeba split
LANG_VOCAB, LANG_SEQ, LANG_MIN_LEN = 8192, 50, 5
PAD_ID, FIRST_TOKEN = 0, 2  # ids 0 and 1 are PAD and UNK
MM_SIZE = 2048


def mm_gflops(repeats: int = 10) -> float:
    """GFLOP/s of a square float32 `torch.mm` (the machine's sgemm ceiling at this thread count)."""
    a, b = torch.randn(MM_SIZE, MM_SIZE), torch.randn(MM_SIZE, MM_SIZE)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * MM_SIZE**3 / statistics.median(times[1:]) / 1e9


# ---- ours -------------------------------------------------------------------------------------------

def config_for(name: str, epochs: int) -> TrialConfig:
    """The paper's settings for benchmark `name` on its reshuffle stream: one task of a warm-up + `epochs` epochs."""
    model = name.split("-")[0]
    stream = "lang-reshuffle" if model == "gru" else "mnist-reshuffle"
    return TrialConfig(model=model, stream=stream, mitigation=MITIGATIONS.get(name, "none"), tasks=1,
                       epochs_per_task=1 + epochs, device="cpu").resolved()


def forward_flops(cfg: TrialConfig, split: Split, num_classes: int) -> float:
    """FLOPs of one forward pass of our model over `split` (matmuls only; packing skips padded steps)."""
    samples = len(split)
    h = cfg.hidden
    if cfg.model == "mlp":
        widths = [IMAGE_ROWS * IMAGE_ROWS] + [h] * cfg.hidden_layers + [num_classes]
        return 2.0 * samples * sum(a * b for a, b in itertools.pairwise(widths))
    gates = {"lstm": 4, "gru": 3}[cfg.model]
    if split.lengths is None:
        steps, width = samples * IMAGE_ROWS, IMAGE_ROWS
    else:
        steps, width = int(split.lengths.clamp(max=cfg.seq_len).sum()), cfg.embed
    recurrent = 2 * gates * h * (width + h)  # both directions, per time step
    return 2.0 * (steps * recurrent + samples * 2 * h * num_classes)


def epoch_flops(cfg: TrialConfig, dataset: Dataset) -> float:
    """Training steps (forward + backward = 3x forward) over the train split plus one test pass."""
    classes = len(dataset.classes)
    return 3 * forward_flops(cfg, dataset.train, classes) + forward_flops(cfg, dataset.test, classes)


# ---- the reference's way ----------------------------------------------------------------------------

class LastStepRNN(nn.Module):
    """The reference's recurrent classifier: (embedding) -> bidirectional RNN -> head on `out[:, -1]`."""

    def __init__(self, rnn: nn.RNNBase, num_classes: int, embedding: nn.Embedding | None = None) -> None:
        super().__init__()
        self.embedding, self.rnn = embedding, rnn
        self.head = nn.Linear(2 * rnn.hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x) if self.embedding is not None else x.view(x.shape[0], IMAGE_ROWS, IMAGE_ROWS)
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def reference_model(cfg: TrialConfig, num_classes: int) -> nn.Module:
    h = cfg.hidden
    if cfg.model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_ROWS * IMAGE_ROWS, h), nn.ReLU(),
                             nn.Linear(h, h), nn.ReLU(), nn.Linear(h, num_classes))
    if cfg.model == "lstm":
        return LastStepRNN(nn.LSTM(IMAGE_ROWS, h, batch_first=True, bidirectional=True), num_classes)
    return LastStepRNN(nn.GRU(cfg.embed, h, batch_first=True, bidirectional=True), num_classes,
                       nn.Embedding(LANG_VOCAB, cfg.embed))


def reference_epoch(net: nn.Module, optimizer: torch.optim.Optimizer,
                    train: DataLoader, test: DataLoader) -> None:
    """One epoch as the reference code runs it: step, `.item()`, a second forward for accuracy; then test."""
    net.train()
    loss_total, correct = 0.0, 0
    for inputs, labels in train:
        optimizer.zero_grad()
        loss = F.cross_entropy(net(inputs), labels)
        loss.backward()
        optimizer.step()
        loss_total += loss.item()
        correct += (net(inputs).argmax(dim=1) == labels).sum().item()
    net.eval()
    hits = 0
    with torch.no_grad():
        for inputs, labels in test:
            hits += (net(inputs).argmax(dim=1) == labels).sum().item()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed idx file of unsigned bytes (magic: type 0x08 and the rank, then big-endian sizes)."""
    path.write_bytes(struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.tobytes())


def mnist_raw(dataset: Dataset, root: Path) -> None:
    """torchvision's `MNIST/raw` idx files, rebuilt from our normalised tensors (which it reads if present)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, split in (("train", dataset.train), ("t10k", dataset.test)):
        pixels = (split.inputs * MNIST_STD + MNIST_MEAN).mul(255).round().clamp(0, 255).to(torch.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels.numpy())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", split.labels.to(torch.uint8).numpy())


def torchvision_mnist(root: Path) -> tuple[datasets.MNIST, datasets.MNIST]:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    return (datasets.MNIST(str(root), train=True, transform=transform),
            datasets.MNIST(str(root), train=False, transform=transform))


# ---- data -------------------------------------------------------------------------------------------

def synthetic_sentences(count: int, generator: torch.Generator) -> Split:
    """`count` sentences per language: random token ids, lengths uniform in 5..50, PAD after the end."""
    labels = torch.arange(count * len(RESHUFFLE_LANGUAGES)) % len(RESHUFFLE_LANGUAGES)
    lengths = torch.randint(LANG_MIN_LEN, LANG_SEQ + 1, (len(labels),), generator=generator)
    tokens = torch.randint(FIRST_TOKEN, LANG_VOCAB, (len(labels), LANG_SEQ), generator=generator)
    tokens[torch.arange(LANG_SEQ) >= lengths[:, None]] = PAD_ID
    return Split(tokens, labels, lengths)


def synthetic_languages() -> Dataset:
    generator = torch.Generator().manual_seed(0)
    return Dataset(
        name="languages", kind="tokens", classes=RESHUFFLE_LANGUAGES,
        train=synthetic_sentences(LANG_TRAIN, generator), test=synthetic_sentences(LANG_TEST, generator),
        source="synthetic tokens (benchmarks/loop_speed.py)", data_hash="synthetic",
        tokenizer=f"bpe-{LANG_VOCAB}", vocab_size=LANG_VOCAB, pad_id=PAD_ID,
    )


# ---- main -------------------------------------------------------------------------------------------

def time_both(cfg: TrialConfig, dataset: Dataset, train_set: torch.utils.data.Dataset,
              test_set: torch.utils.data.Dataset, epochs: int) -> tuple[float, float]:
    """Median seconds per epoch of (ours, reference), epochs interleaved, each side's first one untimed."""
    ours_epochs = run_stream(cfg, dataset)
    net = reference_model(cfg, len(dataset.classes))
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    train = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    test = DataLoader(test_set, batch_size=cfg.batch_size, shuffle=False)
    ours, reference = [], []
    for _ in range(1 + epochs):
        record, _ = next(ours_epochs)
        ours.append(record.seconds)
        start = time.perf_counter()
        reference_epoch(net, optimizer, train, test)
        reference.append(time.perf_counter() - start)
    return statistics.median(ours[1:]), statistics.median(reference[1:])


def benchmark(name: str, epochs: int, threads: int) -> list[str]:
    """The printed lines of one model, measured in this process (a fresh one per model: its peak memory)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # the reference models' default initialisation draws from the global generator
    cfg = config_for(name, epochs)
    mm = mm_gflops()
    if cfg.model == "gru":
        dataset = synthetic_languages()  # both sides read the first seq_len tokens, as our loop truncates
        train_set = TensorDataset(dataset.train.inputs[:, : cfg.seq_len], dataset.train.labels)
        test_set = TensorDataset(dataset.test.inputs[:, : cfg.seq_len], dataset.test.labels)
        ours, reference = time_both(cfg, dataset, train_set, test_set, epochs)
    else:
        dataset = lop_data.load("mnist")
        with tempfile.TemporaryDirectory() as root:
            mnist_raw(dataset, Path(root))
            ours, reference = time_both(cfg, dataset, *torchvision_mnist(Path(root)), epochs)
    gflops = epoch_flops(cfg, dataset) / ours / 1e9
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    return [f"{name} ours={ours:.3f}s reference={reference:.3f}s speedup={reference / ours:.1f}x",
            f"{name} gflops={gflops:.1f} mm_gflops={mm:.1f} mm_fraction={gflops / mm:.2f} peak_rss={peak_mib:.0f}MiB"]


def machine(threads: int) -> str:
    """What the numbers were measured on; the load average says whether other work shared the cores."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads{load}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=names_among(MODELS), default=list(MODELS), help="comma-separated: " + ",".join(MODELS))
    parser.add_argument("--epochs", type=positive, default=3, help="timed epochs per side, after a warm-up (>= 3)")
    parser.add_argument("--threads", type=positive, default=2, help="torch threads, the same for both sides")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error(f"--epochs must be at least 3 (a median of at least three epochs), got {args.epochs}")

    print(machine(args.threads), file=sys.stderr, flush=True)
    spawn = multiprocessing.get_context("spawn")
    for name in args.models:
        with spawn.Pool(1) as pool:
            for line in pool.apply(benchmark, (name, args.epochs, args.threads)):
                print(line, flush=True)

if __name__ == "__main__":
    main()
