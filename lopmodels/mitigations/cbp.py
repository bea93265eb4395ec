"""Continual backprop (Dohare et al., 2024, Nature): generate-and-test replacement of low-utility hidden units.

    after every step, per layer of units:
        u_j   <- decay_rate * u_j + (1 - decay_rate) * mean_batch |h_j| * sum_k |w_out_jk|
        age_j <- age_j + 1
        n     <- n + replacement_rate * #{j : age_j > maturity_threshold}
        replace the floor(n) mature units of lowest u_j / (1 - decay_rate^age_j); n <- n - floor(n)

|h_j| is the unit's activity per sample (`Forward.activations`): an MLP unit's ReLU output, a recurrent
unit's mean of |h_t| over the sample's valid time steps (the |h| of Dohare et al.'s utility, taken at each
step; the mean of h_t itself would under-rate a unit whose sign alternates).
A replaced unit gets what the unit map says (`lopmodels.units.replace_units`): fresh incoming weights,
zero biases, zero outgoing weights, its optimizer state reset; its utility and age restart at zero.
Every layer of units of every model (each MLP layer, each direction of a recurrent layer) is one layer.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from lopmodels.lazy import lazy
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, require

torch = lazy("torch")
unit_map = lazy("lopmodels.units")


class _LayerState:
    """Utility and birth step of every unit of one layer, and its fraction of a replacement owed.

    A unit's age is `steps - birth`. The number of mature units depends only on how many units were
    replaced at which step, never on data, so it is counted on the host (`young`, the births of the
    units not yet mature, oldest first) and deciding how many units to replace never waits for the device.
    """

    def __init__(self, utility: torch.Tensor, birth: torch.Tensor, accumulated: float, steps: int, maturity: int):
        self.utility = utility  # [units]
        self.birth = birth  # [units], int64: the step at which each unit was (re)initialised
        self.accumulated = accumulated  # replacements owed, in [0, 1) between steps
        births = collections.Counter(b for b in birth.tolist() if steps - b <= maturity)
        self.young = collections.deque(sorted(births.items()))  # (birth step, number of units born then)
        self.young_count = sum(births.values())

    def mature_count(self, steps: int, maturity: int) -> int:
        while self.young and steps - self.young[0][0] > maturity:
            self.young_count -= self.young.popleft()[1]
        return self.utility.numel() - self.young_count

    def born(self, step: int, count: int) -> None:
        self.young.append((step, count))
        self.young_count += count


@MITIGATIONS.register("cbp")
@dataclass
class CBP(Mitigation):
    """Replace replacement_rate * (mature units) of lowest contribution utility per layer and step, on average."""

    needs_activations: ClassVar[bool] = True

    replacement_rate: float = 1e-3  # in [0, 1): units replaced per mature unit and step
    decay_rate: float = 0.9  # in [0, 1): decay of the running utility
    maturity_threshold: int = 100  # >= 0: steps a unit is protected after (re)initialisation

    def __post_init__(self) -> None:
        require(0 <= self.replacement_rate < 1, "cbp", "replacement_rate", "in [0, 1)", self.replacement_rate)
        require(0 <= self.decay_rate < 1, "cbp", "decay_rate", "in [0, 1)", self.decay_rate)
        require(isinstance(self.maturity_threshold, int) and not isinstance(self.maturity_threshold, bool)
                and self.maturity_threshold >= 0, "cbp", "maturity_threshold", "an integer >= 0", self.maturity_threshold)
        self._steps = 0  # after_step calls so far: the clock of the ages
        self._layers: dict[str, _LayerState] = {}

    def after_step(self, ctx: HookContext) -> None:
        self._steps += 1
        for layer in ctx.net.unit_layers():
            state = self._layer_state(layer, ctx.activations[layer.name])
            self._update_utility(ctx, layer, state)
            state.accumulated += self.replacement_rate * state.mature_count(self._steps, self.maturity_threshold)
            count = math.floor(state.accumulated)
            if count == 0:
                continue
            state.accumulated -= count
            self._replace(ctx, layer, state, count)

    def _layer_state(self, layer: unit_map.UnitLayer, activations: torch.Tensor) -> _LayerState:
        if layer.name not in self._layers:
            device = activations.device
            self._layers[layer.name] = _LayerState(
                utility=torch.zeros(layer.size, device=device),
                birth=torch.zeros(layer.size, dtype=torch.int64, device=device),
                accumulated=0.0, steps=self._steps, maturity=self.maturity_threshold,
            )
        return self._layers[layer.name]

    def _update_utility(self, ctx: HookContext, layer: unit_map.UnitLayer, state: _LayerState) -> None:
        """u <- decay * u + (1 - decay) * mean_batch |h| * sum |w_out| (the contribution utility)."""
        activity = ctx.activations[layer.name].detach().abs().mean(dim=0)
        contribution = activity * unit_map.outgoing_magnitude(ctx.net, layer)
        state.utility.mul_(self.decay_rate).add_(contribution, alpha=1 - self.decay_rate)

    def _replace(self, ctx: HookContext, layer: unit_map.UnitLayer, state: _LayerState, count: int) -> None:
        """Replace the `count` mature units of lowest bias-corrected utility (count <= mature units)."""
        age = self._steps - state.birth
        # Adam-style bias correction, as Dohare et al.: a unit that matured recently has summed fewer terms
        corrected = state.utility / (1 - self.decay_rate ** age.to(state.utility.dtype))
        score = torch.where(age > self.maturity_threshold, corrected, torch.inf)
        units = torch.topk(score, count, largest=False).indices
        unit_map.replace_units(ctx.net, layer, units, ctx.generator, ctx.optimizer)
        state.utility.index_fill_(0, units, 0.0)
        state.birth.index_fill_(0, units, self._steps)
        state.born(self._steps, count)

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self._steps,
            "layers": {
                name: {"utility": s.utility.clone(), "birth": s.birth.clone(), "accumulated": s.accumulated}
                for name, s in self._layers.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._steps = state["steps"]
        self._layers = {
            name: _LayerState(s["utility"].clone(), s["birth"].clone(), s["accumulated"], self._steps, self.maturity_threshold)
            for name, s in state["layers"].items()
        }
