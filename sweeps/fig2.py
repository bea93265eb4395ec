"""Figure 2: MNIST class pairs, MLP vs LSTM."""
from sweeps.base import Sweep, register_sweep
from sweeps.scales import MNIST_BINARY_SMALL, MNIST_NOTES, MNIST_SMOKE

FIG2 = register_sweep(Sweep(
    name="fig2", title="MNIST class pairs: MLP vs LSTM",
    base={"stream": "mnist-binary"},
    arms={"mlp": {"model": "mlp"}, "lstm": {"model": "lstm"}},
    scales={"small": MNIST_BINARY_SMALL, "smoke": MNIST_SMOKE},
    notes=MNIST_NOTES,
))
