"""The diagnostics' names: record columns on a task's last epoch (docs/records.md, docs/diagnostics.md).

Torch-free, so analysis reads the same names the training loop writes.
"""
from __future__ import annotations

PROBE_DIAGNOSTICS = ("dead_fraction", "saturated_fraction", "effective_rank", "stable_rank", "weight_magnitude")
DIAGNOSTICS = PROBE_DIAGNOSTICS + ("grad_norm",)  # grad_norm: taken at a task's first step, not on the probe
