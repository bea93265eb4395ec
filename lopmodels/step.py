"""One optimizer step with a mitigation's hooks: the sequence every caller shares (the loop, tests, benchmarks).

forward (with unit activations when the mitigation asks for them), loss plus the mitigation's penalty,
backward, optimizer step, then `after_step`. Nothing here reads a value on the host.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from lopmodels.diagnostics import gradient_norm
from lopmodels.mitigations.base import HookContext, Mitigation


class StepOutput(NamedTuple):
    """What a step leaves on the device."""

    loss: torch.Tensor  # the mean cross-entropy of the batch, without the penalty, detached
    logits: torch.Tensor  # detached
    grad_norm: torch.Tensor | None  # the whole gradient's L2 norm before the step, when asked for


def train_step(ctx: HookContext, mitigation: Mitigation, inputs: torch.Tensor, lengths: torch.Tensor | None,
               labels: torch.Tensor, *, measure_grad_norm: bool = False) -> StepOutput:
    """One step of `ctx.net` by `ctx.optimizer`; `ctx.step` counts it before `after_step` runs."""
    net = ctx.net
    if mitigation.needs_activations:
        forward = net.forward_units(inputs, lengths)
        logits, ctx.activations, ctx.features = forward.logits, forward.activations, forward.features
    else:
        logits = net(inputs, lengths)
    loss = F.cross_entropy(logits, labels)
    penalty = mitigation.penalty(ctx)
    ctx.optimizer.zero_grad(set_to_none=True)
    (loss if penalty is None else loss + penalty).backward()
    grad_norm = gradient_norm(net) if measure_grad_norm else None
    ctx.optimizer.step()
    ctx.step += 1
    mitigation.after_step(ctx)
    return StepOutput(loss.detach(), logits.detach(), grad_norm)
