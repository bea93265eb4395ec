"""Reset: a fresh network and a fresh optimizer at every task's start, the control that every arm is judged against.

    w <- w_fresh (every parameter, from the model's own initialisation distribution),   Adam state <- {}

At each task after the first, every parameter is re-drawn with the trial's generator and the optimizer's
state (step counts, first and second moments) is cleared, so the next step is a fresh Adam's first: nothing
of the previous task survives. Its accuracy on each task is what a network that has lost no plasticity
reaches with the same training: the ceiling for every other arm (issue 10).
"""
from __future__ import annotations

from dataclasses import dataclass

from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation


@MITIGATIONS.register("reset")
@dataclass
class Reset(Mitigation):
    """Re-initialise every parameter and clear the optimizer state at the start of every task after the first."""

    def on_task_start(self, ctx: HookContext) -> None:
        if ctx.task > 0:  # the first task starts from a fresh initialisation already
            ctx.net.reset_parameters(ctx.generator)
            ctx.optimizer.state.clear()
