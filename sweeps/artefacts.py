"""The reference code's faults as arms: each opt-in switch beside the correct protocol, on the experiment it
came from, so that an effect of the paper can be tested as an artefact of them (docs/protocols.md).

Arms are `<experiment>-<switch>` beside `<experiment>-correct`; `<experiment>-reference` turns on every fault
of that experiment's reference script at once. `small` keeps the paper's per-task training and cuts only the
number of tasks (each stream's `small_tasks`, trainables/streams.py); `smoke` is seconds.
"""
from typing import Any, Mapping

from sweeps.base import Sweep, register_sweep
from sweeps.scales import SMOKE_NOTE, STANDARD

MNIST_BINARY_MLP = {"model": "mlp", "stream": "mnist-binary"}
MNIST_RESHUFFLE_LSTM = {"model": "lstm", "stream": "mnist-reshuffle"}
LANG_RESHUFFLE_GRU = {"model": "gru", "stream": "lang-reshuffle", "seq_len": 25}  # gru_medium.yaml
LANG_BINARY_GRU = {"model": "gru", "stream": "lang-binary", "seq_len": 50}  # lang-binary/configs/gru.yaml

WITH_REPLACEMENT = {"pair_sampling": "with-replacement"}
RAW_PIXELS = {"pixels": "raw"}
ALL_CLASSES = {"head": "all-classes"}
LAST_POSITION = {"readout": "last-position"}
CYCLE_RESPLIT = {"pair_sampling": "cycle-ordered", "test_split": "resplit"}


def experiment(name: str, fields: Mapping[str, Any],
               switches: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """`<name>-correct` and one `<name>-<switch>` arm per switch, each the experiment's fields plus the switch."""
    return {f"{name}-correct": dict(fields), **{f"{name}-{s}": {**fields, **f} for s, f in switches.items()}}


ARTEFACTS = register_sweep(Sweep(
    name="artefacts", title="The reference code's faults, each beside the correct protocol",
    base={},
    arms={
        # mnist-binary.py: ordered pairs with replacement (self-pairs: the 100 % "spikes"), raw pixels, 10 outputs
        **experiment("mnist-binary-mlp", MNIST_BINARY_MLP, {
            "with-replacement": WITH_REPLACEMENT, "raw-pixels": RAW_PIXELS, "all-classes": ALL_CLASSES,
            "reference": {**WITH_REPLACEMENT, **RAW_PIXELS, **ALL_CLASSES}}),
        # nets/lstm.py and nets/gru.py read out[:, -1]
        **experiment("mnist-reshuffle-lstm", MNIST_RESHUFFLE_LSTM, {"last-position": LAST_POSITION}),
        **experiment("lang-reshuffle-gru", LANG_RESHUFFLE_GRU, {"last-position": LAST_POSITION}),
        # lang-binary.py: ordered pairs in cycles, train and test re-split per task; nets/gru.py's readout
        **experiment("lang-binary-gru", LANG_BINARY_GRU, {
            "cycle-resplit": CYCLE_RESPLIT, "reference": {**CYCLE_RESPLIT, **LAST_POSITION}}),
    },
    scales=STANDARD,
    notes={
        "paper": "each experiment's paper protocol (50 MNIST or 100 language tasks x 30 epochs) with and without "
                 "each fault of the reference code",
        "small": "the paper's per-task training (all the data, its batch size, lr and 30 epochs a task), fewer "
                 "tasks: 25 MNIST (with-replacement pairs a class with itself on about 1 task in 10), 50 language",
        "smoke": SMOKE_NOTE,
    },
))
