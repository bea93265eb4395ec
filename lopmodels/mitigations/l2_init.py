"""L2 towards the initial parameters (Kumar et al., 2024, "Maintaining plasticity ... regenerative regularization").

    loss <- loss + strength * sum_i ||w_i - w_i(0)||^2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from lopmodels.lazy import lazy
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, require

torch = lazy("torch")


@MITIGATIONS.register("l2-init")
@dataclass
class L2Init(Mitigation):
    """Penalise the squared distance of every parameter from its value at the start of training."""

    strength: float = 1e-2  # > 0

    def __post_init__(self) -> None:
        require(self.strength > 0, "l2-init", "strength", "> 0", self.strength)
        self._initial: dict[str, torch.Tensor] = {}  # w(0), by parameter name

    def on_train_start(self, ctx: HookContext) -> None:
        self._initial = {name: p.detach().clone() for name, p in ctx.net.named_parameters()}

    def penalty(self, ctx: HookContext) -> torch.Tensor:
        distance = sum((p - self._initial[name]).square().sum() for name, p in ctx.net.named_parameters())
        return self.strength * distance

    def state_dict(self) -> dict[str, Any]:
        return {"initial": {name: w.clone() for name, w in self._initial.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._initial = {name: w.clone() for name, w in state["initial"].items()}
