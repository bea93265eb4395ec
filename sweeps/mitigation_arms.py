"""The mitigation settings the sweeps compare, as arms: label -> TrialConfig fields (docs/paper.md, "Models and training")."""

from typing import Any, Mapping

BASELINE = {"mitigation": "none"}
# The paper runs no GRU on MNIST; beside the LSTM (hidden 25) on the same 28 rows of pixels, a GRU of the same width.
GRU_ON_IMAGES_HIDDEN = 25
RESET = {"mitigation": "reset"}  # the control: a fresh network and optimizer at every task, the plasticity ceiling


def l2(weight_decay: float) -> dict:
    return {"mitigation": "l2", "mitigation_args": {"weight_decay": weight_decay}}


# Shrink and perturb, w <- shrink * w + sigma * w_fresh (Ash & Adams, 2020): at each new task, and the same formula
# after every step. Dohare et al.'s (2024) per-step "shrink and perturb" (weight decay plus N(0, sigma^2) noise at
# every step) is the `noise` mitigation, which is also the paper's "S&P".
SHRINK_PERTURB_TASK = {"mitigation": "shrink-perturb", "mitigation_args": {"every": "task", "shrink": 0.8, "sigma": 0.01}}
SHRINK_PERTURB_STEP = {"mitigation": "shrink-perturb", "mitigation_args": {"every": "step", "shrink": 0.9999, "sigma": 1e-5}}
CBP = {"mitigation": "cbp"}  # replacement rate 1e-3, decay 0.9, maturity 100: the paper's settings
REDO = {"mitigation": "redo"}
L2_INIT = {"mitigation": "l2-init"}

# The paper's MNIST runs: L2 at three strengths; its "shrink-and-perturb" is noise 1e-5 with weight decay 1e-5.
MNIST_ARMS = {
    "baseline": BASELINE,
    "l2-1e-4": l2(1e-4), "l2-1e-3": l2(1e-3), "l2-5e-3": l2(5e-3),
    "noise": {"mitigation": "noise", "mitigation_args": {"sigma": 1e-5, "weight_decay": 1e-5}},
    "shrink-perturb-task": SHRINK_PERTURB_TASK,
    "shrink-perturb-step": SHRINK_PERTURB_STEP,
    "cbp": CBP,
    "reset": RESET,
}

# The paper's GRU runs: L2 1e-4; its "shrink-and-perturb" is noise 1e-3 with no shrink.
GRU_ARMS = {
    "baseline": BASELINE,
    "l2-1e-4": l2(1e-4),
    "noise": {"mitigation": "noise", "mitigation_args": {"sigma": 1e-3}},
    "shrink-perturb": SHRINK_PERTURB_TASK,
    "cbp": CBP,
    "reset": RESET,
}

def with_reset(arms: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each unmitigated arm beside its `reset` control, `<arm>-reset`."""
    out: dict[str, dict[str, Any]] = {}
    for label, fields in arms.items():
        out[label] = dict(fields)
        out[f"{label}-reset"] = {**fields, **RESET}
    return out
