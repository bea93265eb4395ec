"""One bidirectional GRU or LSTM batch, forward and backward: our CPU layer against PyTorch's modules.

Three ways, with the same parameters, interleaved in this process on the same batch (`ours` and `packed`
give the same final states: their largest difference is printed):
- `ours`: `lopmodels.bidirectional` (packed steps of both directions in one loop, hand-written backward);
- `packed`: `nn.GRU` / `nn.LSTM` over a `PackedSequence` (what the models ran before; skips padding);
- `padded`: the module over the padded batch (the reference's way; for the LSTM on the CPU this is oneDNN's
  fused kernel), which also computes the padding positions.
Lengths: `full` (every sequence fills the batch: images), `uniform` (1 to the maximum), or `corpus` (86 % of
sentences fill 25 tokens, as the offline corpus at the paper's length; the rest uniform below).

    python benchmarks/recurrent_layer.py [--cell gru] [--batch 512] [--length 25] [--lengths corpus]
        [--hidden 64] [--features 64] [--threads 1] [--repeats 9]

Prints the median milliseconds of each way and each one's ratio to `ours`.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lopmodels.bidirectional import bidirectional

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
CORPUS_FULL = 0.86  # share of sentences at least 25 tokens long in the offline corpus (docs/data.md)


def draw_lengths(kind: str, batch: int, length: int, generator: torch.Generator) -> torch.Tensor | None:
    if kind == "full":
        return None
    if kind == "uniform":
        return torch.randint(1, length + 1, (batch,), generator=generator)
    short = torch.randint(1, length, (batch,), generator=generator)
    return torch.where(torch.rand(batch, generator=generator) < CORPUS_FULL, length, short)


def final_states(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None, way: str) -> torch.Tensor:
    if way == "ours":
        weights = [getattr(rnn, f"{n}_l0{s}") for s in ("", "_reverse") for n in NAMES]
        return bidirectional(type(rnn).__name__.lower(), x, lengths, weights)[0]
    if way == "packed" and lengths is not None:
        _, state = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    else:
        _, state = rnn(x)
    return state[0] if isinstance(state, tuple) else state


def timed(step: Callable[[], None], times: list[float]) -> None:
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", choices=tuple(CELLS), default="gru")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--lengths", choices=("full", "uniform", "corpus"), default="corpus")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    rnn = CELLS[args.cell](args.features, args.hidden, batch_first=True, bidirectional=True)
    x = torch.randn(args.batch, args.length, args.features, generator=generator, requires_grad=True)
    lengths = draw_lengths(args.lengths, args.batch, args.length, generator)
    ways = ("ours", "packed", "padded") if lengths is not None else ("ours", "padded")
    reference = final_states(rnn, x, lengths, "packed")
    if lengths is None:
        print(f"ours vs the module: largest difference {float((final_states(rnn, x, None, 'ours') - reference).detach().abs().max()):.1e}")
    else:
        print(f"ours vs packed: largest difference {float((final_states(rnn, x, lengths, 'ours') - reference).detach().abs().max()):.1e}")
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.repeats + 1):
        for way in ways:
            timed(lambda: final_states(rnn, x, lengths, way).sum().backward(), times[way])
    medians = {way: statistics.median(t[1:]) for way, t in times.items()}
    print(f"{args.cell} batch {args.batch} length {args.length} ({args.lengths}) hidden {args.hidden} "
          f"features {args.features}, {args.threads} thread(s), median of {args.repeats}:")
    for way in ways:
        print(f"  {way:7s} {medians[way] * 1e3:8.1f} ms  {medians[way] / medians['ours']:.2f}x ours")


if __name__ == "__main__":
    main()
