"""`lop sweep repair`: rebuild a damaged or lost `lop-sweep.json` from what the sweep folder still holds.

Tune's experiment snapshot names every trial's sweep, arm, replicate and config; the scale is the one at which
the sweep's definition gives exactly those configs; code version and data hashes come from the trials' records.
The trackers (`--logger`) are those of Tune's pickled Tuner. What none of them keeps readably (CPUs and GPUs per
trial, the concurrency limit) is taken from the options.
"""
from __future__ import annotations

from collections import Counter

from lopmodels.errors import ConfigError
from sweeps.base import SCALES, SWEEPS
from sweeps.loggers import pickled_loggers
from sweeps.manifest import MANIFEST, Manifest
from sweeps.ray_adapter import tuner_callbacks
from sweeps.status import last_rows, snapshot_trials
from sweeps.storage import StoragePath, local_path
from trainables.config import TrialConfig


def rebuild_manifest(folder: StoragePath, *, cpus_per_trial: float, gpus_per_trial: float,
                     max_concurrent: int | None) -> Manifest:
    import sweeps.registry  # noqa: F401  (registers every sweep in SWEEPS)

    trials = snapshot_trials(folder)
    if not trials:
        raise ConfigError(f"{folder} holds no readable Tune experiment snapshot (experiment_state-*.json) to rebuild "
                          f"{MANIFEST} from; its records are still exported by `lop results export {folder}`")
    sweep = SWEEPS[trials[0]["config"]["sweep"]]
    runs = [trial["config"]["run"] for trial in trials]
    scales = [scale for scale in SCALES
              if all(run["arm"] in sweep.arms_at(scale)
                     and sweep.config(run["arm"], scale, run["replicate"]).to_dict() == run["trial"] for run in runs)]
    if not scales:
        raise ConfigError(f"the trials in {folder} match sweep {sweep.name!r} at no scale with this code (a sweep run "
                          f"with --set cannot be matched); rebuild {MANIFEST} with the code that started it")
    arm_seeds = Counter(run["arm"] for run in runs)
    rows = last_rows(folder)
    local = local_path(folder)  # a bucket's tuner.pkl is not read: no trackers recorded
    code_versions = sorted({row["code_version"] for row in rows.values() if row.get("code_version")})
    data_hash = {TrialConfig.from_dict(run["trial"]).stream_spec.dataset: rows[trial["trial_id"]]["data_hash"]
                 for trial, run in zip(trials, runs) if trial["trial_id"] in rows}
    return Manifest(
        sweep=sweep.name, title=sweep.title, scale=scales[0], arms=sorted(arm_seeds),
        seeds=next(iter(set(arm_seeds.values()))) if len(set(arm_seeds.values())) == 1 else None,
        seed_start=min(run["replicate"] for run in runs), trials=len(runs),
        tasks=sum(TrialConfig.from_dict(run["trial"]).resolved().tasks for run in runs),
        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent,
        max_failures=int(trials[0].get("max_failures", 2)), code_version=",".join(code_versions) or "unknown",
        data_hash=data_hash, arm_seeds=dict(arm_seeds),
        loggers=pickled_loggers(tuner_callbacks(local)) if local is not None else [],
        notes=sweep.notes.get(scales[0], ""),  # the registry's: the scale was matched with this code
    )
