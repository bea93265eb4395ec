"""Figure 3: language identification, label reshuffle and language pairs (GRU, sequence length 50)."""
from sweeps.base import Sweep, register_sweep
from sweeps.scales import LANGUAGE_NOTES, LANGUAGE_SMALL, LANGUAGE_SMOKE

FIG3 = register_sweep(Sweep(
    name="fig3", title="Language ID, reshuffle and pairs (GRU)",
    base={"model": "gru", "seq_len": 50},
    arms={"reshuffle": {"stream": "lang-reshuffle"}, "binary": {"stream": "lang-binary"}},
    scales={"small": LANGUAGE_SMALL, "smoke": LANGUAGE_SMOKE},
    notes=LANGUAGE_NOTES,
))
