"""Figure 1: MNIST label reshuffle, MLP vs LSTM."""
from sweeps.base import Sweep, register_sweep
from sweeps.scales import MNIST_NOTES, MNIST_RESHUFFLE_SMALL, MNIST_SMOKE

FIG1 = register_sweep(Sweep(
    name="fig1", title="MNIST label reshuffle: MLP vs LSTM",
    base={"stream": "mnist-reshuffle"},
    arms={"mlp": {"model": "mlp"}, "lstm": {"model": "lstm"}},
    scales={"small": MNIST_RESHUFFLE_SMALL, "smoke": MNIST_SMOKE},
    notes=MNIST_NOTES,
))
