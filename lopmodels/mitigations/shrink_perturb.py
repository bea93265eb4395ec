"""Shrink and perturb (Ash & Adams, 2020): shrink every weight towards zero and add a fresh initialisation.

    w <- shrink * w + sigma * w_fresh,   w_fresh drawn from the model's own initialisation distribution

`every="task"`: Ash & Adams's method, at the start of every task after the first (they warm-start each
new task; the first task starts from a fresh initialisation already, so it is left alone).
`every="step"`: the same formula after every optimizer step, a per-step variant of our own. It is NOT the
per-step shrink-and-perturb of Dohare et al. (2024), which is weight decay inside the optimizer plus
N(0, sigma^2) noise each step: that is the `noise` mitigation. Ours shrinks outside the optimizer (like a
decoupled decay of 1 - shrink per step) and perturbs with sigma times a draw from the initialisation
distribution (uniform for most parameters), not Gaussian noise. There `shrink` belongs close to 1
(e.g. 1 - 1e-4) and `sigma` small, or the network is wiped out within a few steps. The optimizer state
is left as it is under both schedules.
"""
from __future__ import annotations

from dataclasses import dataclass

from lopmodels.lazy import lazy
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, require

torch = lazy("torch")

SCHEDULES = ("task", "step")


@MITIGATIONS.register("shrink-perturb")
@dataclass
class ShrinkPerturb(Mitigation):
    """w <- shrink * w + sigma * w_fresh at each new task (`every="task"`) or after every step (`"step"`, ours)."""

    # Ash & Adams's per-task form at its defaults, and the per-step form with a shrink close to 1
    sweep_arms = {"shrink-perturb-task": {"every": "task", "shrink": 0.8, "sigma": 0.01},
                  "shrink-perturb-step": {"every": "step", "shrink": 0.9999, "sigma": 1e-5}}

    shrink: float = 0.8  # in (0, 1]
    sigma: float = 0.01  # >= 0
    every: str = "task"  # "task" or "step"

    def __post_init__(self) -> None:
        require(0 < self.shrink <= 1, "shrink-perturb", "shrink", "in (0, 1]", self.shrink)
        require(self.sigma >= 0, "shrink-perturb", "sigma", ">= 0", self.sigma)
        require(self.every in SCHEDULES, "shrink-perturb", "every", "one of: task, step", self.every)

    def on_task_start(self, ctx: HookContext) -> None:
        if self.every == "task" and ctx.task > 0:
            self._shrink_perturb(ctx)

    def after_step(self, ctx: HookContext) -> None:
        if self.every == "step":
            self._shrink_perturb(ctx)

    def _shrink_perturb(self, ctx: HookContext) -> None:
        fresh = ctx.net.fresh_parameters(ctx.generator)
        with torch.no_grad():
            for name, param in ctx.net.named_parameters():
                param.mul_(self.shrink).add_(fresh[name], alpha=self.sigma)
