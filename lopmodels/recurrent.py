"""Bidirectional one-layer recurrent classifiers (LSTM, GRU) over image rows or embedded tokens.

The readout is the forward state at each sequence's true last token and the backward state at its
first (`h_n` of a packed sequence), never `out[:, -1]`, which for a padded batch is a padding position
and for the backward direction has read a single token.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lopmodels.base import Forward, LopModel, ModelSpec, linear_bound
from lopmodels.units import Slice, UnitLayer

IMAGE_ROW = 28  # an image is a sequence of 28 rows of 28 pixels
DIRECTIONS = ("forward", "reverse")


class BidirectionalClassifier(LopModel):
    """Embedding (tokens only) -> bidirectional `cell` -> linear head on [h_forward, h_backward]."""

    cell: type[nn.RNNBase]
    gates: int  # gate blocks per unit in the weight matrices: 4 for an LSTM (i, f, g, o), 3 for a GRU (r, z, n)

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.hidden_size = spec.hidden
        if spec.input_kind == "tokens":
            self.embedding: nn.Embedding | None = nn.Embedding(spec.vocab_size, spec.embed)
            input_size = spec.embed
        else:
            self.embedding = None
            input_size = IMAGE_ROW
        self.rnn = self.cell(input_size, spec.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * spec.hidden, spec.num_classes)

    def _run(self, inputs: torch.Tensor, lengths: torch.Tensor | None):
        """The recurrent layer's output (a tensor, or a PackedSequence when lengths vary) and h_n [2, B, H]."""
        x = self.embedding(inputs) if self.embedding is not None else inputs
        if lengths is not None:
            # lengths stay on the CPU (the loop indexes a CPU copy), so packing costs no host sync
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state
        return out, h_n

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _, h_n = self._run(inputs, lengths)
        return self.head(torch.cat((h_n[0], h_n[1]), dim=1))

    def forward_units(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> Forward:
        out, h_n = self._run(inputs, lengths)
        features = torch.cat((h_n[0], h_n[1]), dim=1)
        if lengths is None:
            mean_state = out.mean(dim=1)
        else:
            padded, _ = pad_packed_sequence(out, batch_first=True)  # zeros at padding positions
            mean_state = padded.sum(dim=1) / lengths.to(padded.device, padded.dtype)[:, None]
        H = self.hidden_size
        activations = {"rnn.forward": mean_state[:, :H], "rnn.reverse": mean_state[:, H:]}
        return Forward(self.head(features), activations, features)

    def unit_layers(self) -> tuple[UnitLayer, ...]:
        H = self.hidden_size
        gate_rows = tuple(g * H for g in range(self.gates))
        layers = []
        for d, direction in enumerate(DIRECTIONS):
            suffix = "_reverse" if direction == "reverse" else ""
            layers.append(UnitLayer(
                name=f"rnn.{direction}",
                size=H,
                activation="tanh",
                weights_in=(Slice(f"rnn.weight_ih_l0{suffix}", 0, gate_rows),
                            Slice(f"rnn.weight_hh_l0{suffix}", 0, gate_rows)),
                biases_in=(Slice(f"rnn.bias_ih_l0{suffix}", 0, gate_rows),
                           Slice(f"rnn.bias_hh_l0{suffix}", 0, gate_rows)),
                weights_out=(Slice(f"rnn.weight_hh_l0{suffix}", 1),
                             Slice("head.weight", 1, (d * H,))),
            ))
        return tuple(layers)

    def init_distribution(self, name: str) -> tuple[str, float]:
        if name.startswith("embedding."):
            return "normal", 1.0  # nn.Embedding's default
        if name.startswith("head."):
            return "uniform", linear_bound(self.head.in_features)
        return "uniform", 1.0 / math.sqrt(self.hidden_size)  # nn.LSTM / nn.GRU default
