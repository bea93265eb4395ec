"""Recycling dormant neurons, ReDo (Sokar et al., 2023): re-initialise the units whose activity has faded.

    s_j = mean_batch |h_j| / mean_k mean_batch |h_k|   (per layer of units)
    unit j is dormant when s_j <= tau; dormant units are replaced as in CBP (`lopmodels.units.replace_units`)

|h_j| is the unit's activity per sample (`Forward.activations`): an MLP unit's ReLU output, a recurrent
unit's mean of |h_t| over the sample's valid time steps (Sokar et al.'s expectation of |h| over inputs,
taken at each step; the mean of h_t itself would under-rate a unit whose sign alternates).
Checked on every `every_steps`-th optimizer step with that step's activations and, if `at_task_end`,
at the end of every task with the activations of the task's last step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from lopmodels.lazy import lazy
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, require

torch = lazy("torch")
unit_map = lazy("lopmodels.units")


@MITIGATIONS.register("redo")
@dataclass
class ReDo(Mitigation):
    """Re-initialise every unit whose mean |activation| is at most tau times its layer's average."""

    needs_activations: ClassVar[bool] = True

    tau: float = 0.025  # >= 0: dormancy threshold on the normalised activity
    every_steps: int = 1000  # > 0: check on every every_steps-th optimizer step
    at_task_end: bool = False  # also check at the end of every task

    def __post_init__(self) -> None:
        require(self.tau >= 0, "redo", "tau", ">= 0", self.tau)
        require(isinstance(self.every_steps, int) and not isinstance(self.every_steps, bool) and self.every_steps > 0,
                "redo", "every_steps", "an integer > 0", self.every_steps)
        require(isinstance(self.at_task_end, bool), "redo", "at_task_end", "true or false", self.at_task_end)
        self._steps = 0  # after_step calls so far
        # mean |h| per unit at the last step, kept for the task-end check (empty when none is pending)
        self._activity: dict[str, torch.Tensor] = {}

    def after_step(self, ctx: HookContext) -> None:
        self._steps += 1
        if self._steps % self.every_steps == 0:
            self._activity = {}  # a task end right after this check would test units just re-initialised
            self._recycle(ctx, self._measure(ctx))
        elif self.at_task_end:
            self._activity = self._measure(ctx)

    def on_task_end(self, ctx: HookContext) -> None:
        if self._activity:
            self._recycle(ctx, self._activity)
            self._activity = {}

    @staticmethod
    def _measure(ctx: HookContext) -> dict[str, torch.Tensor]:
        return {name: h.detach().abs().mean(dim=0) for name, h in ctx.activations.items()}

    def _recycle(self, ctx: HookContext, activity: Mapping[str, torch.Tensor]) -> None:
        for layer in ctx.net.unit_layers():
            score = activity[layer.name]
            # s_j <= tau without dividing, so a layer that is entirely silent (mean 0) counts as dormant too
            dormant = torch.nonzero(score <= self.tau * score.mean()).flatten()
            unit_map.replace_units(ctx.net, layer, dormant, ctx.generator, ctx.optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self._steps, "activity": {name: a.clone() for name, a in self._activity.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._steps = state["steps"]
        self._activity = {name: a.clone() for name, a in state["activity"].items()}
