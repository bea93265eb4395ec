"""Figure 5: language label reshuffle with mitigations (GRU, sequence length 25), beside the `reset` control."""
from sweeps.base import Sweep, register_sweep
from sweeps.mitigation_arms import GRU_ARMS
from sweeps.scales import LANGUAGE_NOTES, STANDARD

FIG5 = register_sweep(Sweep(
    name="fig5", title="Language ID reshuffle with mitigations (GRU, length 25)",
    base={"model": "gru", "stream": "lang-reshuffle", "seq_len": 25},
    arms=GRU_ARMS,
    scales=STANDARD,
    notes=LANGUAGE_NOTES,
))
