"""Table 1: the runs behind the increase in average accuracy (MLP on MNIST reshuffle, GRU on language reshuffle
at length 25), with the `reset` control of each. The same configs and seeds as fig4 and fig5."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import GRU_ARMS, MNIST_ARMS
from sweeps.scales import MNIST_NOTES, STANDARD

MLP = {"model": "mlp", "stream": "mnist-reshuffle"}
GRU = {"model": "gru", "stream": "lang-reshuffle", "seq_len": 25}

TABLE1 = register_sweep(Sweep(
    name="table1", title="Table 1: increase in average accuracy per mitigation (MLP, GRU)",
    base={},
    arms={**{f"mlp-{label}": {**MLP, **fields} for label, fields in MNIST_ARMS.items()},
          **{f"gru-{label}": {**GRU, **fields} for label, fields in GRU_ARMS.items()}},
    scales=STANDARD,  # each arm's stream keeps its own task count at `small`
    notes={"paper": "the paper's 50 MNIST / 100 language tasks x 30 epochs",
           "small": "the paper's per-task training; 25 MNIST tasks for the MLP, 50 language tasks for the GRU",
           "smoke": MNIST_NOTES["smoke"]},
))
