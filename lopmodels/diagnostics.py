"""Plasticity diagnostics of a network on a fixed probe batch, through the unit map (every model gets them).

Each function returns a 0-d tensor, so the loop can fold them into its one host sync per epoch.
Definitions and their reasons: docs/diagnostics.md.
"""
from __future__ import annotations

from typing import Callable

import torch

from lopmodels.base import LopModel, UnitSteps
from lopmodels.diagnostic_names import PROBE_DIAGNOSTICS

SATURATION = 0.99
NAN = float("nan")


def _unit_fraction(net: LopModel, kind: str, flags: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """Share of the units of every `kind` layer for which `flags(layer name)` ([units] bool) holds."""
    layers = [layer for layer in net.unit_layers() if layer.activation == kind]
    if not layers:
        return torch.tensor(NAN)
    return torch.cat([flags(layer.name) for layer in layers]).float().mean()


def dead_fraction(net: LopModel, activations: dict[str, torch.Tensor]) -> torch.Tensor:
    """ReLU units never active on the probe batch (nan for a model without ReLU units)."""
    return _unit_fraction(net, "relu", lambda name: (activations[name] <= 0).all(dim=0))


def saturated_fraction(net: LopModel, steps: UnitSteps) -> torch.Tensor:
    """tanh-like units with |h_t| > 0.99 at every valid time step of every probe sample (nan without such units).

    The recurrent form of a dead unit: such a unit passes almost no gradient on any input. Measured per
    step, not on the time-mean, which would miss a unit that alternates between +1 and -1.
    """
    def always_saturated(name: str) -> torch.Tensor:
        saturated = (steps.values[name].abs() > SATURATION) | ~steps.valid[..., None]  # padding: no evidence
        return saturated.flatten(0, 1).all(dim=0)

    return _unit_fraction(net, "tanh", always_saturated)


def _rank(features: torch.Tensor, of_singular_values: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """A rank of `features` from its singular values, with one convention for the degenerate cases.

    Collapsed (every feature zero): 0, the rank of the zero matrix, in every rank. Diverged (a feature not
    finite): nan; an SVD of those would raise, so it is taken of zeros instead (no host sync).
    """
    finite = torch.isfinite(features).all()
    sigma = torch.linalg.svdvals(torch.where(finite, features, 0.0).double())
    collapsed = sigma[0] == 0  # the largest singular value: zero only for the zero matrix
    value = torch.where(collapsed, 0.0, of_singular_values(sigma))
    return torch.where(finite, value, NAN).float()


def effective_rank(features: torch.Tensor) -> torch.Tensor:
    """exp(H(p)), p = sigma / sum(sigma) the normalised singular values (Roy & Vetterli, 2007)."""
    def erank(sigma: torch.Tensor) -> torch.Tensor:
        p = sigma / sigma.sum().clamp_min(1e-300)
        return torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum())

    return _rank(features, erank)


def stable_rank(features: torch.Tensor) -> torch.Tensor:
    """||F||_F^2 / ||F||_2^2: squared Frobenius norm over squared spectral norm."""
    return _rank(features, lambda sigma: (sigma**2).sum() / (sigma[0] ** 2).clamp_min(1e-300))


def weight_magnitude(net: LopModel) -> torch.Tensor:
    """Mean |w| over every parameter entry."""
    params = [p.detach() for p in net.parameters()]
    return torch.stack([p.abs().sum() for p in params]).sum() / sum(p.numel() for p in params)


def gradient_norm(net: LopModel) -> torch.Tensor:
    """L2 norm of the whole gradient (taken at a task's first step)."""
    grads = [p.grad.detach().norm() for p in net.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(grads)) if grads else torch.tensor(NAN)


@torch.no_grad()
def probe(net: LopModel, inputs: torch.Tensor, lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The probe-batch diagnostics by name (`PROBE_DIAGNOSTICS`), as float32 0-d tensors on the net's device."""
    was_training = net.training
    net.eval()
    forward = net.forward_units(inputs, lengths, steps=True)
    net.train(was_training)
    device = forward.features.device
    values = {
        "dead_fraction": dead_fraction(net, forward.activations),
        "saturated_fraction": saturated_fraction(net, forward.steps),
        "effective_rank": effective_rank(forward.features),
        "stable_rank": stable_rank(forward.features),
        "weight_magnitude": weight_magnitude(net),
    }
    assert tuple(values) == PROBE_DIAGNOSTICS, "lopmodels/diagnostic_names.py lists every probe diagnostic"
    return {name: v.to(device=device, dtype=torch.float32) for name, v in values.items()}
