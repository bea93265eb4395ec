"""Every mitigation on every model x stream that model can read: beyond the paper."""
from lopmodels.catalog import MODEL_INFO
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import ALL_ARMS
from sweeps.scales import STANDARD
from trainables.streams import STREAMS, reads

PAIRS = [(m, s) for m in MODEL_INFO.names() for s in STREAMS.names() if reads(m, s)]

MITIGATIONS_SWEEP = register_sweep(Sweep(
    name="mitigations", title="Every mitigation on every model and stream",
    base={},
    arms={f"{model}-{stream}-{label}": {"model": model, "stream": stream, **fields}
          for model, stream in PAIRS for label, fields in ALL_ARMS.items()},
    scales=STANDARD,
    notes={"paper": "the paper's tasks and epochs for every arm: a large grid, GPU work",
           "small": "the paper's per-task training, fewer tasks (25 MNIST, 50 language): which mitigation "
                    "helps which model",
           "smoke": "seconds per trial: checks that every combination runs"},
))
