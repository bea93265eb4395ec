"""The unit map: which entries of which parameters belong to each hidden unit.

CBP, ReDo and the diagnostics act on hidden units. Each model declares its layers of units once
(`LopModel.unit_layers`); everything that replaces or measures units is written against this map,
so it is right for the MLP, the LSTM and the GRU alike. See docs/design.md, "The unit map".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from lopmodels.base import LopModel


@dataclass(frozen=True)
class Slice:
    """The entries of parameter `param` owned by unit j: index `offset + j` along `dim`, for each offset.

    A recurrent unit owns one row in each gate block, so its slices of `weight_ih` have one offset
    per gate (0, H, 2H for a GRU); an MLP unit owns one row (offset 0).
    """

    param: str
    dim: int
    offsets: tuple[int, ...] = (0,)

    def indices(self, units: torch.Tensor) -> torch.Tensor:
        """Indices along `dim` of every entry the given units own (gate-major)."""
        offsets = torch.tensor(self.offsets, device=units.device, dtype=units.dtype)
        return (offsets[:, None] + units[None, :]).reshape(-1)


@dataclass(frozen=True)
class UnitLayer:
    """One layer of hidden units (an MLP layer, or one direction of a recurrent layer)."""

    name: str  # key of this layer's activations in `Forward.activations`
    size: int
    activation: str  # "relu" (can die) or "tanh" (can saturate): which diagnostic applies
    weights_in: tuple[Slice, ...]  # re-drawn from the initialisation when a unit is replaced
    biases_in: tuple[Slice, ...]  # zeroed when a unit is replaced
    weights_out: tuple[Slice, ...]  # zeroed when a unit is replaced, so the output is unchanged

    @property
    def slices(self) -> tuple[Slice, ...]:
        return self.weights_in + self.biases_in + self.weights_out


class ResettableOptimizer(Protocol):
    def reset_entries(self, param: torch.nn.Parameter, dim: int, index: torch.Tensor) -> None: ...


def replace_units(
    net: "LopModel",
    layer: UnitLayer,
    units: torch.Tensor,
    generator: torch.Generator,
    optimizer: ResettableOptimizer | None = None,
) -> None:
    """Give `units` of `layer` fresh incoming weights, zero biases and zero outgoing weights.

    The order matters for recurrent units: incoming rows of `weight_hh` are re-drawn first, then the
    outgoing columns of the same matrix are zeroed, so the self-recurrent entries end at zero and the
    network's output is unchanged at this moment. The optimizer state of every touched entry is reset.
    """
    if units.numel() == 0:
        return
    params = dict(net.named_parameters())
    with torch.no_grad():
        for piece in layer.weights_in:
            param = params[piece.param]
            index = piece.indices(units)
            shape = list(param.shape)
            shape[piece.dim] = index.numel()
            fresh = net.draw_init(piece.param, tuple(shape), generator).to(param.dtype)
            param.index_copy_(piece.dim, index, fresh)
        for piece in layer.biases_in + layer.weights_out:
            params[piece.param].index_fill_(piece.dim, piece.indices(units), 0.0)
    if optimizer is not None:
        for piece in layer.slices:
            optimizer.reset_entries(params[piece.param], piece.dim, piece.indices(units))


def outgoing_magnitude(net: "LopModel", layer: UnitLayer) -> torch.Tensor:
    """Sum of |outgoing weight| of each unit of `layer`: the weight factor of CBP's contribution utility."""
    params = dict(net.named_parameters())
    total = torch.zeros(layer.size, device=next(net.parameters()).device)
    for piece in layer.weights_out:
        magnitude = params[piece.param].detach().abs()
        other = tuple(d for d in range(magnitude.dim()) if d != piece.dim)
        per_index = magnitude.sum(dim=other) if other else magnitude
        for offset in piece.offsets:
            total += per_index[offset : offset + layer.size]
    return total
