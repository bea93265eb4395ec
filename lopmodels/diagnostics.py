"""Plasticity diagnostics of a network on a fixed probe batch, through the unit map (every model gets them).

Each function returns a 0-d tensor, so the loop can fold them into its one host sync per epoch.
"""
from __future__ import annotations

import torch

from lopmodels.base import LopModel

DIAGNOSTICS = ("dead_fraction", "saturated_fraction", "effective_rank", "stable_rank", "weight_magnitude",
               "grad_norm")
SATURATION = 0.99
NAN = float("nan")


def _fraction(net: LopModel, activations: dict[str, torch.Tensor], kind: str, test) -> torch.Tensor:
    """Fraction of the units of every `kind` layer for which `test(activation)` holds on every probe sample."""
    layers = [layer for layer in net.unit_layers() if layer.activation == kind]
    if not layers:
        return torch.tensor(NAN)
    flags = torch.cat([test(activations[layer.name]).all(dim=0) for layer in layers])
    return flags.float().mean()


def dead_fraction(net: LopModel, activations: dict[str, torch.Tensor]) -> torch.Tensor:
    """ReLU units never active on the probe batch (nan for a model without ReLU units)."""
    return _fraction(net, activations, "relu", lambda a: a <= 0)


def saturated_fraction(net: LopModel, activations: dict[str, torch.Tensor]) -> torch.Tensor:
    """tanh-like units with |activation| > 0.99 on every probe sample: the recurrent form of a dead unit."""
    return _fraction(net, activations, "tanh", lambda a: a.abs() > SATURATION)


def _singular_values(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values, and whether they mean anything: a diverged network's features are not finite,
    and an SVD of those would raise; it is taken of zeros instead and the result marked nan (no host sync)."""
    finite = torch.isfinite(features).all()
    return torch.linalg.svdvals(torch.where(finite, features, 0.0).double()), finite


def effective_rank(features: torch.Tensor) -> torch.Tensor:
    """exp(H(p)), p = sigma / sum(sigma) the normalised singular values (Roy & Vetterli, 2007)."""
    sigma, finite = _singular_values(features)
    p = sigma / sigma.sum().clamp_min(1e-300)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
    return torch.where(finite, torch.exp(entropy), NAN).float()


def stable_rank(features: torch.Tensor) -> torch.Tensor:
    """||F||_F^2 / ||F||_2^2: squared Frobenius norm over squared spectral norm."""
    sigma, finite = _singular_values(features)
    return torch.where(finite, (sigma**2).sum() / (sigma[0] ** 2).clamp_min(1e-300), NAN).float()


def weight_magnitude(net: LopModel) -> torch.Tensor:
    """Mean |w| over every parameter entry."""
    params = [p.detach() for p in net.parameters()]
    return torch.stack([p.abs().sum() for p in params]).sum() / sum(p.numel() for p in params)


def gradient_norm(net: LopModel) -> torch.Tensor:
    """L2 norm of the whole gradient (taken at a task's first step)."""
    grads = [p.grad.detach().norm() for p in net.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(grads)) if grads else torch.tensor(NAN)


@torch.no_grad()
def probe(net: LopModel, inputs: torch.Tensor, lengths: torch.Tensor | None) -> list[torch.Tensor]:
    """The probe-batch diagnostics, in `DIAGNOSTICS` order without `grad_norm`."""
    was_training = net.training
    net.eval()
    forward = net.forward_units(inputs, lengths)
    net.train(was_training)
    device = forward.features.device
    values = [dead_fraction(net, forward.activations), saturated_fraction(net, forward.activations),
              effective_rank(forward.features), stable_rank(forward.features), weight_magnitude(net)]
    return [v.to(device=device, dtype=torch.float32) for v in values]
