"""Table 1: the runs behind the increase in average accuracy (MLP on MNIST reshuffle, GRU on language reshuffle)."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import GRU_ARMS, MNIST_ARMS
from sweeps.scales import MNIST_NOTES, MNIST_RESHUFFLE_SMALL, MNIST_SMOKE

MLP = {"model": "mlp", "stream": "mnist-reshuffle"}
GRU = {"model": "gru", "stream": "lang-reshuffle", "seq_len": 25}

TABLE1 = register_sweep(Sweep(
    name="table1", title="Table 1: increase in average accuracy per mitigation (MLP, GRU)",
    base={},
    arms={**{f"mlp-{label}": {**MLP, **fields} for label, fields in MNIST_ARMS.items()},
          **{f"gru-{label}": {**GRU, **fields} for label, fields in GRU_ARMS.items()}},
    # one scale override must fit both models: MNIST's counts, with the GRU on its own corpus size
    scales={"small": MNIST_RESHUFFLE_SMALL, "smoke": MNIST_SMOKE},
    notes=MNIST_NOTES,
))
