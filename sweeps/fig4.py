"""Figure 4: MNIST label reshuffle with mitigations (MLP)."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import MNIST_ARMS
from sweeps.scales import MNIST_NOTES, MNIST_RESHUFFLE_SMALL, MNIST_SMOKE

FIG4 = register_sweep(Sweep(
    name="fig4", title="MNIST label reshuffle with mitigations (MLP)",
    base={"model": "mlp", "stream": "mnist-reshuffle"},
    arms=MNIST_ARMS,
    scales={"small": MNIST_RESHUFFLE_SMALL, "smoke": MNIST_SMOKE},
    notes=MNIST_NOTES,
))
