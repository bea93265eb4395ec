"""The Ray Tune function trainable: a thin shell over the pure loop that reports, checkpoints and resumes.

Every epoch's record goes to `tune.report`; each task's last epoch also carries a checkpoint holding
`TrialState.state_dict()` (model, optimizer, mitigation state, generators, next task, config). On
start the trial resumes from `tune.get_checkpoint()`, so a restored trial's records continue exactly.
Data comes from the prepared cache on whichever node the trial lands, never inside the config.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables import data as datasets
from trainables.config import TrialConfig
from trainables.loop import resolve_device, run_stream
from trainables.plugins import import_plugins
from trainables.records import provenance, record_row
from trainables.stream_data import resolve

STATE_FILE = "trial_state.pt"


def trial_threads() -> int:
    """As many threads as CPUs Ray gave the trial (Ray sets OMP_NUM_THREADS to them)."""
    return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))


def lop_trial(config: dict[str, Any]) -> None:
    """Run one trial of a sweep: `config` holds `sweep` and `run` (`arm`, `replicate`, `trial`: a `TrialConfig.to_dict()`)."""
    import_plugins(config.get("plugins", []))  # shipped by the driver (runtime_env): registers their entries here
    run = config["run"]
    cfg = TrialConfig.from_dict(run["trial"]).resolved()
    torch.set_num_threads(trial_threads())
    device = resolve_device(cfg.device)
    data = datasets.load(cfg.stream_spec.dataset, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size)
    cfg = resolve(cfg, data)  # the config the records and checkpoints carry (match_steps: epochs from the data)
    saved = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state_file = Path(folder) / STATE_FILE  # absent in a lost checkpoint's empty stand-in: start again
            saved = torch.load(state_file, map_location=device, weights_only=False) if state_file.exists() else None
    trial_id = tune.get_context().get_trial_id()
    extra = provenance(data, device)
    for record, state in run_stream(cfg, data, saved, device):
        row = record_row(cfg, record, sweep=config["sweep"], arm=run["arm"], trial_id=trial_id,
                         data=data, extra=extra, replicate=run["replicate"])
        if not record.last_epoch_of_task:
            tune.report(row)
            continue
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state.state_dict(), Path(folder) / STATE_FILE)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))
