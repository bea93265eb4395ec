"""One trial in-process, without Ray: what `lop trial` runs. Rows go to a parquet file after every task, in the
results schema (`trainables.schema`), so a trial's file concatenates with any export."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable

import pandas as pd

from trainables import data as datasets
from trainables.config import SWITCHES, TrialConfig
from trainables.loop import resolve_device, run_stream
from trainables.records import provenance, record_row
from trainables.schema import write_records
from trainables.stream_data import resolve


def run_trial(cfg: TrialConfig, out: Path, *, data_dir: Path | None = None,
              echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> pd.DataFrame:
    """Train `cfg`'s whole stream, printing one line per task and rewriting `out` after each task."""
    resolved = cfg.resolved()
    device = resolve_device(resolved.device)
    data = datasets.load(resolved.stream_spec.dataset, data_dir=data_dir,
                         tokenizer=resolved.tokenizer, vocab_size=resolved.vocab_size)
    resolved = resolve(resolved, data)  # match_steps: epochs per task from the data's size
    trial_id = "trial_" + uuid.uuid4().hex[:8]
    extra = provenance(data, device)
    echo(f"trial {trial_id}: {resolved.model} on {resolved.stream}, mitigation {resolved.mitigation}, "
         f"{resolved.tasks} tasks x {resolved.epochs_per_task} epochs, device {device}, "
         f"{extra['threads']} threads, data {data.source}")
    switched = [f"{name}={getattr(resolved, name)}" for name, switch in SWITCHES.items()
                if getattr(resolved, name) != switch.values[0]]
    if switched:
        echo(f"protocol switches on (docs/protocols.md): {', '.join(switched)}")
    rows: list[dict] = []
    for record, _ in run_stream(resolved, data, device=device):
        rows.append(record_row(resolved, record, sweep="trial", arm=resolved.mitigation, trial_id=trial_id,
                               data=data, extra=extra))
        if record.last_epoch_of_task:
            write_records(pd.DataFrame(rows), out)
            task_seconds = sum(r["seconds"] for r in rows if r["task"] == record.task)
            status = "  DIVERGED (non-finite loss): trial stopped" if record.diverged else ""
            echo(f"task {record.task + 1:>3}/{resolved.tasks}  classes {','.join(record.task_classes):<40} "
                 f"train acc {record.train_accuracy:.3f}  test acc {record.test_accuracy:.3f}  "
                 f"loss {record.train_loss:.4f}  {task_seconds:.1f}s{status}")
    echo(f"wrote {len(rows)} rows to {out}")
    return pd.DataFrame(rows)
