"""Bidirectional one-layer recurrent classifiers (LSTM, GRU) over image rows or embedded tokens.

Two readouts (`ModelSpec.readout`):
- "state" (ours): the forward state at each sequence's true last token and the backward state at its
  first (`h_n` of a packed sequence), so padding never enters the computation.
- "last-position" (the reference code's, `mak2508/recurrent-lop`): the recurrent layer runs over the
  padded batch without packing and the classifier reads `out[:, -1]`. For a padded sentence that is a
  padding position, whose forward half has read the padding after the sentence and whose backward half
  has read one padding token; for a full-length sequence (every image) the forward half equals "state"'s
  and the backward half has read only the last token.

A unit's activity (`Forward.activations`, for CBP, ReDo and the diagnostics) is the mean of |h_t| over the
sample's valid (non-padding) time steps under either readout (Dohare et al. 2024, Sokar et al. 2023): the
mean of h itself would under-rate a unit whose sign alternates.

The recurrent layer is `nn.GRU` / `nn.LSTM` (its parameters and their names), computed on the CPU by
`lopmodels.bidirectional` (a packed loop with a hand-written backward, several times faster there) and on
GPUs by the module itself (cuDNN): every path, both readouts and the per-step values included.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lopmodels.base import Forward, LopModel, ModelSpec, UnitSteps, linear_bound
from lopmodels.bidirectional import bidirectional
from lopmodels.units import Slice, UnitLayer

IMAGE_ROW = 28  # an image is a sequence of 28 rows of 28 pixels
DIRECTIONS = ("forward", "reverse")


class BidirectionalClassifier(LopModel):
    """Embedding (tokens only) -> bidirectional `cell` -> linear head on the readout of both directions."""

    cell: type[nn.RNNBase]
    cell_name: str  # the cell in lopmodels.bidirectional: "gru" or "lstm"
    gates: int  # gate blocks per unit in the weight matrices: 4 for an LSTM (i, f, g, o), 3 for a GRU (r, z, n)

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.hidden_size = spec.hidden
        self.readout = spec.readout
        if spec.input_kind == "tokens":
            self.embedding: nn.Embedding | None = nn.Embedding(spec.vocab_size, spec.embed)
            input_size = spec.embed
        else:
            self.embedding = None
            input_size = IMAGE_ROW
        self.rnn = self.cell(input_size, spec.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * spec.hidden, spec.num_classes)

    def _run(self, inputs: torch.Tensor, lengths: torch.Tensor | None,
             sequence: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The features, and (with `sequence`) the recurrent layer's outputs [B, T, 2H], zero at padding
        under the "state" readout (the "last-position" run reads the padding as the reference does)."""
        if self.readout == "last-position":
            out = self._layer(inputs, None, sequence=True)[1]  # the padded batch, unpacked, as the reference runs it
            return out[:, -1], out
        h_n, out = self._layer(inputs, lengths, sequence)
        return torch.cat((h_n[0], h_n[1]), dim=1), out

    def _layer(self, inputs: torch.Tensor, lengths: torch.Tensor | None,
               sequence: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(h_n [2, B, H], outputs [B, T, 2H] or None) of the embedding (tokens) and the bidirectional layer."""
        if inputs.device.type == "cpu":  # tokens are packed before the embedding: fewer values to move
            weights = [getattr(self.rnn, f"{name}_l0{suffix}") for suffix in ("", "_reverse")
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            return bidirectional(self.cell_name, inputs, lengths, weights, sequence, self.embedding)
        x = self.embedding(inputs) if self.embedding is not None else inputs
        if lengths is None:
            out, state = self.rnn(x)
        else:  # lengths stay on the CPU (the loop indexes a CPU copy), so packing costs no host sync
            packed, state = self.rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
            out = pad_packed_sequence(packed, batch_first=True, total_length=x.shape[1])[0] if sequence else None
        return (state[0] if isinstance(state, tuple) else state), out

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self._run(inputs, lengths, sequence=False)[0])

    def forward_units(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None,
                      steps: bool = False) -> Forward:
        features, padded = self._run(inputs, lengths, sequence=True)
        H = self.hidden_size
        if lengths is None:  # every step is valid
            activity = padded.abs().mean(dim=1)
            valid = torch.ones(padded.shape[:2], dtype=torch.bool, device=padded.device) if steps else None
        else:
            lengths = lengths.to(padded.device, non_blocking=True)
            valid = torch.arange(padded.shape[1], device=padded.device)[None] < lengths[:, None]
            # padding steps count zero (the unpacked "last-position" run has real values there)
            activity = torch.where(valid[..., None], padded.abs(), 0.0).sum(dim=1) / lengths[:, None]
        activations = {"rnn.forward": activity[:, :H], "rnn.reverse": activity[:, H:]}
        unit_steps = None
        if steps:
            unit_steps = UnitSteps({"rnn.forward": padded[..., :H], "rnn.reverse": padded[..., H:]}, valid)
        return Forward(self.head(features), activations, features, unit_steps)

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
