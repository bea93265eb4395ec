"""Figure 6: language label reshuffle at several sequence lengths x hidden sizes (GRU, embedding = hidden)."""
from sweeps.base import Sweep, register_sweep
from sweeps.scales import LANGUAGE_NOTES, LANGUAGE_SMOKE

SEQ_LENS = (15, 25, 50, 75)  # the paper's text (its configs use 10/25/40/55/70)
HIDDEN_SIZES = (32, 64, 128)

FIG6 = register_sweep(Sweep(
    name="fig6", title="Language ID reshuffle: sequence length x hidden size (GRU)",
    base={"model": "gru", "stream": "lang-reshuffle"},
    arms={f"len{length}-h{hidden}": {"seq_len": length, "hidden": hidden, "embed": hidden}
          for length in SEQ_LENS for hidden in HIDDEN_SIZES},
    scales={"small": {"tasks": 10, "epochs_per_task": 5}, "smoke": LANGUAGE_SMOKE},
    notes={**LANGUAGE_NOTES, "small": "10 tasks x 5 epochs per arm: compares early declines across lengths "
                                      "and sizes; too short for the long-run ordering"},
))
