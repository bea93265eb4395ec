"""Every use of Ray's private API, in one place, each pinned by a test (tests/test_ray_adapter.py) that fails
loudly on a Ray version that changes it.

Tune treats a restore as fault tolerance with an unchanged spec: `Tuner.restore` takes no TuneConfig, so a
resumed sweep's concurrency can only be changed on the restored Tuner's own copy. The autoscaler's node types
have no public getter. Ray Client (`ray://`) runs the Tuner remotely, where neither is reachable, so `lop`
refuses such addresses with the way round (`check_address`). Tune's experiment snapshots have no public reader
that tolerates a damaged file: `status`, `resume` and `repair` read them here, as data, never raising on bad bytes.

Importing this module does not import Ray (`lop sweep status` reads the snapshots without it).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lopmodels.errors import ConfigError
from trainables.files import replacing

if TYPE_CHECKING:
    from ray import tune

    from sweeps.storage import StoragePath

# Tune's knobs are environment variables read when an experiment starts; a user's own value wins.
TUNE_DEFAULTS = {
    # Keeping few checkpoints forces an experiment snapshot after every few: the intended cost, not news.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # No CSV or TensorBoard files per trial: records are read from result.json (JsonLoggerCallback).
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # A failed trial is one line of `Progress` (its name and the exception), not Tune's log of the traceback...
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    # ...nor the output engine's table with the error file's path in Ray's session folder, which it prints at
    # every verbosity: the legacy engine prints nothing at verbose=0 (ray.tune.experimental.output.get_air_verbosity)
    "RAY_AIR_NEW_OUTPUT": "0",
}


def set_tune_defaults() -> None:
    """Set TUNE_DEFAULTS where the user has not, and hide Tune's resume hint: called when a sweep starts or
    resumes, before its Tuner."""
    for key, value in TUNE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.getLogger(TUNE_LOGGER).addFilter(HIDE_RESUME_HINT)  # once: a filter already there is not added again


# An interrupted `Tuner.fit()` logs "Resume experiment with: Tuner.restore(path=..., trainable=...)" (ray.tune.tune),
# which cannot continue a lop sweep by itself; `launch.summarize` prints the `lop sweep resume` that does.
TUNE_LOGGER = "ray.tune.tune"
TUNE_RESUME_HINT = "Resume experiment with:"


class HideResumeHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return TUNE_RESUME_HINT not in record.getMessage()


HIDE_RESUME_HINT = HideResumeHint()


def check_address(address: str | None) -> None:
    """Refuse a Ray Client address: the driver must run where Tune's objects are local."""
    if address and address.startswith("ray://"):
        host = address.removeprefix("ray://").split(":")[0]
        raise ConfigError(f"Ray Client addresses ({address}) are not supported: run lop on a node of the cluster "
                          f"with --address {host}:6379 (the GCS port), or submit it as a job: "
                          f"`ray job submit --address http://{host}:8265 -- lop sweep ...`")


def set_max_concurrent(tuner: tune.Tuner, max_concurrent: int) -> None:
    """Change a restored Tuner's concurrency limit (private: `Tuner._local_tuner._tune_config`)."""
    tuner._local_tuner._tune_config.max_concurrent_trials = max_concurrent


def session_dir() -> Path | None:
    """The folder of this process's Ray session (logs, sockets; about 2 MB a run under /tmp/ray), while connected
    (private: `ray._private.worker._global_node`)."""
    import ray
    node = ray._private.worker._global_node
    return Path(node.get_session_dir_path()) if node is not None else None


# Tune's experiment snapshots: one `experiment_state-<time>.json` per driver session, rewritten as the sweep runs
# (private: `TuneController.CKPT_FILE_TMPL`, and the `trial_data` that `TuneController.save_to_dir` writes: a list
# of [trial state JSON, run metadata JSON] pairs)
SNAPSHOTS = "experiment_state-*.json"
# what a damaged snapshot raises while it is read and parsed: bytes that are not UTF-8 (UnicodeDecodeError is a
# ValueError), JSON cut short, another shape (a list, missing keys), metadata that does not unpickle
DAMAGED = (OSError, ValueError, TypeError, KeyError, AttributeError, EOFError, pickle.UnpicklingError)


def snapshot_rows(snapshot: StoragePath) -> list[tuple[dict, str]] | None:
    """Each trial's state (id, status, config, ...) and its run metadata (still JSON) in one snapshot; None where
    the file does not read as one."""
    try:
        rows = [(json.loads(trial_json), metadata_json)
                for trial_json, metadata_json in json.loads(snapshot.read_text())["trial_data"]]
    except DAMAGED:
        return None
    whole = all(isinstance(trial, dict) and {"trial_id", "status"} <= trial.keys() for trial, _ in rows)
    return rows if whole else None


def snapshot_readable(snapshot: StoragePath) -> bool:
    """The snapshot parses and lists its trials (what Tune's restore reads first)."""
    return snapshot_rows(snapshot) is not None


def snapshot_trials(folder: StoragePath) -> list[dict]:
    """Tune's record of each trial (id, status, config) in the newest snapshot that reads (the newest may be
    mid-rewrite, or damaged); empty where none does."""
    for snapshot in sorted(folder.glob(SNAPSHOTS), reverse=True):
        rows = snapshot_rows(snapshot)
        if rows is not None:
            return [trial for trial, _ in rows]
    return []


def latest_checkpoints(folder: Path) -> dict[str, str]:
    """trial id -> the name of the checkpoint folder Tune will restore the trial from (`checkpoint_000010`), from
    the newest snapshot whose trials and metadata read (private: the cloudpickled `_CheckpointManager` in each
    trial's run metadata). Only the sweep's own snapshot is read, which this driver's kind wrote."""
    from ray.tune.utils.serialization import TuneFunctionDecoder
    for snapshot in sorted(folder.glob(SNAPSHOTS), reverse=True):
        rows = snapshot_rows(snapshot)
        if rows is None:
            continue
        found = {}
        try:
            for trial, metadata_json in rows:
                metadata = json.loads(metadata_json, cls=TuneFunctionDecoder, allow_cloudpickle=True)
                latest = metadata["checkpoint_manager"].latest_checkpoint_result
                if latest is not None:
                    found[trial["trial_id"]] = Path(latest.checkpoint.path).name
        except DAMAGED:
            continue
        return found
    return {}


def requeue_finished(folder: Path, trial_ids: set[str]) -> None:
    """Mark finished trials as errored in the newest experiment snapshot, so that `Tuner.restore(...,
    resume_errored=True)` runs them again from the checkpoint Tune recorded (private: the `status` of each trial's
    JSON state in `trial_data`; Tune restores TERMINATED trials as done, whatever their records)."""
    snapshot = sorted(folder.glob(SNAPSHOTS))[-1]  # the one Tune restores: damaged ones are set aside
    state = json.loads(snapshot.read_text())
    rows = []
    for trial_json, metadata_json in state["trial_data"]:
        trial = json.loads(trial_json)
        if trial["trial_id"] in trial_ids:
            trial["status"] = "ERROR"
            trial_json = json.dumps(trial)
        rows.append([trial_json, metadata_json])
    state["trial_data"] = rows
    with replacing(snapshot) as staged:
        staged.write_text(json.dumps(state))


def autoscaler_config() -> Any | None:
    """The cluster's autoscaler config (node groups with their resources) where the v2 autoscaler or KubeRay set
    one, else None (private: `ray._private.state.state.get_cluster_config`)."""
    import ray
    try:
        return ray._private.state.state.get_cluster_config()
    except ray.exceptions.RaySystemError:  # not connected to a cluster: no autoscaler to ask
        return None


def tuner_callbacks(folder: Path) -> list[Any]:
    """The callbacks a sweep's Tuner was made with, unpickled from its tuner.pkl (private: the state
    `TunerInternal` pickles there, with the RunConfig under `_run_config`); empty where it cannot be read."""
    import ray.cloudpickle as cloudpickle
    try:
        state = cloudpickle.loads((folder / "tuner.pkl").read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return []
    return list(state["_run_config"].callbacks or [])
