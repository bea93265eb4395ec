"""One bidirectional GRU batch, forward and backward: packed sequences against two unpacked one-direction runs.

The unpacked form runs the forward direction on the padded batch and the reverse direction on each sentence
reversed within its length (padding stays at the end), then reads both at position length - 1: the same
`h_n` as packing, with the same parameters (the `_reverse` tensors for the second run). It computes the
padding positions that packing skips, but its backward has no per-step zero gradient of the input
projection. Both forms run in this process, interleaved, on the same batch; the script prints the largest
differences of the features and of every gradient, and the median time of each with their ratio.

    python benchmarks/gru_packing.py [--batch 512] [--length 50] [--threads 1] [--repeats 9]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
SIZE = 64  # the paper's GRU: embedding = hidden = 64


def packed_features(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    _, h_n = gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    return torch.cat((h_n[0], h_n[1]), dim=1)


def unpacked_features(gru: nn.GRU, one_way: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    params = dict(gru.named_parameters())
    steps = torch.arange(x.shape[1])[None]
    reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    last = (lengths - 1)[:, None, None].expand(-1, 1, gru.hidden_size)
    outputs = []
    for suffix, inputs in (("", x), ("_reverse", x.gather(1, reverse[..., None].expand(-1, -1, x.shape[2])))):
        weights = {name: params[name + suffix] for name in WEIGHTS}
        out, _ = torch.func.functional_call(one_way, weights, (inputs,))
        outputs.append(out.gather(1, last)[:, 0])
    return torch.cat(outputs, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="a sweep gives each trial one thread")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    gru = nn.GRU(SIZE, SIZE, batch_first=True, bidirectional=True)
    one_way = nn.GRU(SIZE, SIZE, batch_first=True)
    x = torch.randn(args.batch, args.length, SIZE, generator=generator, requires_grad=True)
    lengths = torch.randint(1, args.length + 1, (args.batch,), generator=generator)
    lengths[0] = args.length
    forms = {"packed": lambda: packed_features(gru, x, lengths),
             "unpacked": lambda: unpacked_features(gru, one_way, x, lengths)}

    wrt = [x, *gru.parameters()]
    results = {name: form() for name, form in forms.items()}
    grads = {name: torch.autograd.grad(out.sum(), wrt) for name, out in results.items()}
    feature_diff = (results["packed"] - results["unpacked"]).abs().max().item()
    grad_diff = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
                    for a, b in zip(grads["packed"], grads["unpacked"]))
    print(f"features max |diff|={feature_diff:.3g} gradients max relative |diff|={grad_diff:.3g}")

    times: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(args.repeats + 1):  # the first round warms up
        for name, form in forms.items():
            started = time.perf_counter()
            form().sum().backward()
            times[name].append(time.perf_counter() - started)
    packed, unpacked = (statistics.median(times[name][1:]) for name in forms)
    print(f"batch={args.batch} length={args.length} threads={args.threads} packed={packed * 1000:.1f}ms "
          f"unpacked={unpacked * 1000:.1f}ms speedup={packed / unpacked:.2f}x")


if __name__ == "__main__":
    main()
