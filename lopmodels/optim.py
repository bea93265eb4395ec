"""Adam with a step count per element, so an entry whose moments were reset restarts its bias correction.

    m <- beta1 m + (1 - beta1) g,    v <- beta2 v + (1 - beta2) g^2,    t <- t + 1   (per element)
    w <- w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

Kingma & Ba (2015). torch's Adam keeps one `t` per tensor: after CBP or ReDo zero the moments of a
replaced unit, that unit's entries would divide a fresh first moment by a bias correction near 1 and
take steps of about 3 lr (with the default betas) for a while. Here `reset_entries` zeroes the moments
and the count of exactly those entries, so their next step is a fresh Adam's first step (about lr).

While nothing of a tensor has been reset, it is updated by exactly the arithmetic of torch's
single-tensor Adam (the default on the CPU), so the numbers equal `torch.optim.Adam` to the last bit.
The first reset of a tensor gives it a per-element count ("element_step"); from then on its bias
corrections are per element (computed in float64, then rounded to the parameter's dtype as torch
rounds its Python-float scalars).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch


class Adam(torch.optim.Optimizer):
    """`torch.optim.Adam` (coupled weight decay; `decoupled=True` for AdamW) with `reset_entries`."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid beta parameters: {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "decoupled": decoupled}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("Adam does not support sparse gradients")
                state = self.state[param]
                if not state:
                    # the per-tensor count lives on the CPU as in torch: reading it costs no device sync
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1

                # the same operations, in the same order, as torch's _single_tensor_adam
                grad = param.grad
                if weight_decay != 0:
                    if group["decoupled"]:
                        param.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(param, alpha=weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

                element_step = state.get("element_step")
                if element_step is None:
                    step = state["step"].item()
                    step_size = lr / (1 - beta1**step)
                    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    param.addcdiv_(exp_avg, denom, value=-step_size)
                else:
                    element_step += 1
                    steps = element_step.to(torch.float64)
                    step_size = (lr / (1 - beta1**steps)).to(param.dtype)
                    bias_correction2_sqrt = (1 - beta2**steps).sqrt_().to(param.dtype)
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                    # (step_size * m) / denom: the same rounding as addcdiv's (value * m) / denom above
                    param.addcdiv_(exp_avg * step_size, denom, value=-1)
        return loss

    @torch.no_grad()
    def reset_entries(self, param: torch.Tensor, dim: int, index: torch.Tensor) -> None:
        """Forget the entries `index` along `dim` of `param`: zero their moments and their step count."""
        state = self.state.get(param)
        if not state:
            return  # never stepped: the moments are zero and the count starts at zero anyway
        index = index.to(param.device)
        state["exp_avg"].index_fill_(dim, index, 0.0)
        state["exp_avg_sq"].index_fill_(dim, index, 0.0)
        if "element_step" not in state:
            # stored in the parameter's dtype because load_state_dict casts every non-"step" tensor to it;
            # counts are exact integers there (float32: up to 2^24 steps)
            state["element_step"] = torch.full_like(param, state["step"].item(), memory_format=torch.preserve_format)
        state["element_step"].index_fill_(dim, index, 0.0)
