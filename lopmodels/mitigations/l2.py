"""L2 regularisation through the optimizer: Adam's weight decay, coupled as in the paper or decoupled (AdamW).

    coupled:   g <- g + weight_decay * w           (the paper's runs; torch.optim.Adam(weight_decay=...))
    decoupled: w <- (1 - lr * weight_decay) * w     (Loshchilov & Hutter, 2019)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lopmodels.mitigations.base import MITIGATIONS, Mitigation, require


@MITIGATIONS.register("l2")
@dataclass
class L2(Mitigation):
    """Weight decay in the optimizer: the loss gains weight_decay / 2 * ||w||^2 (coupled form)."""

    sweep_arms = {"l2": {"weight_decay": 1e-4}}

    weight_decay: float = 1e-4  # > 0
    decoupled: bool = False  # True: the AdamW form

    def __post_init__(self) -> None:
        require(self.weight_decay > 0, "l2", "weight_decay", "> 0", self.weight_decay)
        require(isinstance(self.decoupled, bool), "l2", "decoupled", "true or false", self.decoupled)

    def optimizer_options(self) -> dict[str, Any]:
        return {"weight_decay": self.weight_decay, "decoupled": self.decoupled}
