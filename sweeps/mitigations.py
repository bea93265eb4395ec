"""Every mitigation on every model x stream that model can read: beyond the paper.

The arms come from the mitigations themselves (`Mitigation.sweep_arms`), so a new mitigation joins this
sweep by being registered.
"""
from typing import Any

from lopmodels import MITIGATIONS
from lopmodels.catalog import MODEL_INFO
from sweeps.base import Sweep, register_sweep
from sweeps.scales import STANDARD
from trainables.streams import STREAMS, reads

PAIRS = [(m, s) for m in MODEL_INFO.names() for s in STREAMS.names() if reads(m, s)]


def mitigation_arms() -> dict[str, dict[str, Any]]:
    """Label -> TrialConfig fields of every registered mitigation's arms; `baseline` (none) first."""
    arms: dict[str, dict[str, Any]] = {}
    for name, cls in sorted(MITIGATIONS.items(), key=lambda item: item[0] != "none"):
        declared = cls.sweep_arms if cls.sweep_arms is not None else {"baseline" if name == "none" else name: {}}
        for label, args in declared.items():
            arms[label] = {"mitigation": name, **({"mitigation_args": dict(args)} if args else {})}
    return arms


MITIGATIONS_SWEEP = register_sweep(Sweep(
    name="mitigations", title="Every mitigation on every model and stream",
    base={},
    arms={f"{model}-{stream}-{label}": {"model": model, "stream": stream, **fields}
          for model, stream in PAIRS for label, fields in mitigation_arms().items()},
    scales=STANDARD,
    notes={"paper": "the paper's tasks and epochs for every arm: a large grid, GPU work",
           "small": "the paper's per-task training, fewer tasks (25 MNIST, 50 language): which mitigation "
                    "helps which model",
           "smoke": "seconds per trial: checks that every combination runs"},
))
