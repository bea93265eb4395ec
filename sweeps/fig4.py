"""Figure 4: MNIST label reshuffle with mitigations (MLP), beside the `reset` control."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import MNIST_ARMS
from sweeps.scales import MNIST_NOTES, STANDARD

FIG4 = register_sweep(Sweep(
    name="fig4", title="MNIST label reshuffle with mitigations (MLP)",
    base={"model": "mlp", "stream": "mnist-reshuffle"},
    arms=MNIST_ARMS,
    scales=STANDARD,
    notes=MNIST_NOTES,
))
