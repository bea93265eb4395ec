"""The per-model test cases, built from the model registry: every registered model on every input kind it reads,
so a newly registered model is tested without touching a test."""
from __future__ import annotations

from lopmodels.catalog import MODEL_INFO, READOUTS

MODEL_INPUTS = [(name, kind) for name, info in MODEL_INFO.items() for kind in info.reads]
# the readouts each reads with: every one for a recurrent model, the default (its only) for the others
MODEL_READOUTS = [(name, kind, readout) for name, kind in MODEL_INPUTS for readout in READOUTS
                  if MODEL_INFO[name].recurrent or readout == READOUTS[0]]
