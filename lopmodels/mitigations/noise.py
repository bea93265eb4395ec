"""The paper's "shrink-and-perturb": Gaussian noise after every step, coupled weight decay as the only shrink.

    after every step:  w <- w + sigma * n,  n ~ N(0, 1)      (with Adam's g <- g + weight_decay * w)

What the reference code of Khan et al., "Loss of Plasticity in Recurrent Models", runs under that name
(noise std 1e-5 with weight decay 1e-5 for MNIST, noise 1e-3 without decay for the GRU); kept so its
runs can be set beside the real method, `shrink-perturb`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lopmodels.lazy import lazy
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, require

torch = lazy("torch")


@MITIGATIONS.register("noise")
@dataclass
class Noise(Mitigation):
    """Add N(0, sigma^2) to every parameter after every optimizer step."""

    sigma: float = 1e-5  # >= 0
    weight_decay: float = 0.0  # >= 0, Adam's coupled weight decay

    def __post_init__(self) -> None:
        require(self.sigma >= 0, "noise", "sigma", ">= 0", self.sigma)
        require(self.weight_decay >= 0, "noise", "weight_decay", ">= 0", self.weight_decay)

    def optimizer_options(self) -> dict[str, Any]:
        return {"weight_decay": self.weight_decay}

    def after_step(self, ctx: HookContext) -> None:
        with torch.no_grad():
            for param in ctx.net.parameters():
                noise = torch.randn(param.shape, generator=ctx.generator, device=param.device, dtype=param.dtype)
                param.add_(noise, alpha=self.sigma)
