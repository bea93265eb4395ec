"""Figure 1: MNIST label reshuffle, MLP vs LSTM (and the GRU, which reads the same 28 rows of 28 pixels), each
beside its `reset` control (a fresh network at every task: the plasticity ceiling)."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import GRU_ON_IMAGES_HIDDEN, with_reset
from sweeps.scales import MNIST_NOTES, STANDARD

FIG1 = register_sweep(Sweep(
    name="fig1", title="MNIST label reshuffle: MLP vs LSTM (and GRU)",
    base={"stream": "mnist-reshuffle"},
    arms=with_reset({"mlp": {"model": "mlp"}, "lstm": {"model": "lstm"}, "gru": {"model": "gru", "hidden": GRU_ON_IMAGES_HIDDEN}}),
    scales=STANDARD,
    notes=MNIST_NOTES,
))
