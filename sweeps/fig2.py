"""Figure 2: MNIST class pairs, MLP vs LSTM (and the GRU on the same pixels), each beside its `reset` control."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import GRU_ON_IMAGES_HIDDEN, with_reset
from sweeps.scales import MNIST_NOTES, STANDARD

FIG2 = register_sweep(Sweep(
    name="fig2", title="MNIST class pairs: MLP vs LSTM (and GRU)",
    base={"stream": "mnist-binary"},
    arms=with_reset({"mlp": {"model": "mlp"}, "lstm": {"model": "lstm"}, "gru": {"model": "gru", "hidden": GRU_ON_IMAGES_HIDDEN}}),
    scales=STANDARD,
    notes=MNIST_NOTES,
))
