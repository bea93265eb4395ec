"""Figure 6: language label reshuffle at several sequence lengths x hidden sizes (GRU, embedding = hidden).

The `small` scale is the hidden-64 row (the paper's GRU width) at the paper's per-task training and 50 tasks.
"""
from sweeps.base import Sweep, register_sweep
from sweeps.scales import LANGUAGE_NOTES, STANDARD

SEQ_LENS = (15, 25, 50, 75)  # the paper's text (its configs use 10/25/40/55/70)
HIDDEN_SIZES = (32, 64, 128)
SMALL_HIDDEN = 64


def arm(length: int, hidden: int) -> str:
    return f"len{length}-h{hidden}"


FIG6 = register_sweep(Sweep(
    name="fig6", title="Language ID reshuffle: sequence length x hidden size (GRU)",
    base={"model": "gru", "stream": "lang-reshuffle"},
    arms={arm(length, hidden): {"seq_len": length, "hidden": hidden, "embed": hidden}
          for length in SEQ_LENS for hidden in HIDDEN_SIZES},
    scales=STANDARD,
    scale_arms={"small": tuple(arm(length, SMALL_HIDDEN) for length in SEQ_LENS)},
    notes={**LANGUAGE_NOTES, "small": f"the hidden-{SMALL_HIDDEN} row only; " + LANGUAGE_NOTES["small"]},
))
