"""The private Ray APIs `lop` relies on (sweeps/ray_adapter.py), pinned: these fail on a Ray version that moves
them, before a user's resume does."""
from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

from lopmodels.errors import ConfigError
from sweeps.progress import Progress
from sweeps.ray_adapter import (SNAPSHOTS, TUNE_DEFAULTS, check_address, set_max_concurrent, set_tune_defaults,
                                snapshot_readable, snapshot_trials)


def test_a_ray_client_address_is_refused_with_the_way_round():
    with pytest.raises(ConfigError, match=r"Ray Client addresses \(ray://head:10001\) are not supported: run lop on "
                                          r"a node of the cluster with --address head:6379"):
        check_address("ray://head:10001")
    for fine in (None, "auto", "10.0.0.1:6379"):
        check_address(fine)


def test_a_restored_tuners_concurrency_lives_where_the_adapter_sets_it():
    import inspect

    from ray import tune
    from ray.tune.impl.tuner_internal import TunerInternal
    tuner = tune.Tuner(lambda config: None, tune_config=tune.TuneConfig(max_concurrent_trials=1))
    set_max_concurrent(tuner, 3)
    assert tuner._local_tuner._tune_config.max_concurrent_trials == 3
    # and that is where fit() takes the limit from, for a new and a restored Tuner alike
    assert ("max_concurrent_trials=self._tune_config.max_concurrent_trials"
            in inspect.getsource(TunerInternal._get_tune_run_arguments))


def test_tunes_resume_hint_is_hidden_where_tune_logs_it():
    import inspect
    import logging

    import ray.tune.tune

    from sweeps.ray_adapter import TUNE_LOGGER, TUNE_RESUME_HINT
    assert TUNE_RESUME_HINT in inspect.getsource(ray.tune.tune) and ray.tune.tune.logger.name == TUNE_LOGGER
    set_tune_defaults()
    hint = logging.LogRecord(TUNE_LOGGER, logging.WARNING, "tune.py", 1, f"saved.\n{TUNE_RESUME_HINT} x", None, None)
    other = logging.LogRecord(TUNE_LOGGER, logging.WARNING, "tune.py", 1, "something else", None, None)
    assert not ray.tune.tune.logger.filter(hint) and ray.tune.tune.logger.filter(other)


def test_tune_defaults_are_set_when_a_sweep_starts_and_never_over_a_users_value(monkeypatch):
    import sweeps.launch  # noqa: F401  (importing the driver sets nothing)
    for key in TUNE_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
    import os
    assert "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S" not in os.environ
    set_tune_defaults()
    assert os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] == "0"
    assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "0"


def test_tune_still_reads_every_default_the_adapter_sets_and_the_legacy_output_stays_silent(monkeypatch):
    import inspect

    from ray.air.constants import AIR_ENV_VARS
    from ray.tune.constants import TUNE_ENV_VARS
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experimental.output import get_air_verbosity
    assert set(TUNE_DEFAULTS) <= TUNE_ENV_VARS | AIR_ENV_VARS
    assert '"TUNE_PRINT_ALL_TRIAL_ERRORS"' in inspect.getsource(TuneController.__init__)
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", TUNE_DEFAULTS["RAY_AIR_NEW_OUTPUT"])
    assert get_air_verbosity(0) is None  # no output engine's reporter: tune.run prints nothing at verbose=0


def test_progress_counts_travel_with_tunes_callback_state_and_its_clock_restarts():
    progress = Progress(total_tasks=10)
    progress.tasks_done = {"a": 3, "b": 1}
    progress.started -= 1000
    restored = pickle.loads(pickle.dumps(progress))  # the RunConfig's copy in tuner.pkl
    assert time.monotonic() - restored.started < 60 and restored.tasks_done == {"a": 3, "b": 1}
    fresh = Progress(total_tasks=10)
    fresh.set_state(progress.get_state())  # what Tune's CallbackList does on restore
    assert fresh.tasks_done == {"a": 3, "b": 1}


@pytest.mark.ray
def test_the_autoscaler_config_and_the_session_folder_read_on_a_plain_local_ray():
    import ray

    from sweeps.ray_adapter import autoscaler_config, session_dir
    context = ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # never a cluster
    try:
        assert autoscaler_config() is None  # no autoscaler: the launcher's file is the fallback (sweeps/cluster.py)
        assert session_dir() == Path(context.address_info["session_dir"]) and session_dir().is_dir()
    finally:
        ray.shutdown()
    assert session_dir() is None


def test_tunes_snapshot_name_is_the_one_the_adapter_reads():
    import fnmatch

    from ray.tune.execution.tune_controller import TuneController
    assert fnmatch.fnmatch(TuneController.CKPT_FILE_TMPL.format("2024-01-01_00-00-00"), SNAPSHOTS)


@pytest.mark.parametrize("damage", [b"\xff\xfe not utf-8", b'{"trial_data": [["{\\"trial_id', b"[1, 2]",
                                    b'{"trial_data": 3}', b'{"trial_data": [["{}", "{}"]]}'])
def test_a_damaged_snapshot_reads_as_damaged_and_an_older_one_is_read(tmp_path, damage):
    trial = {"trial_id": "a1", "status": "TERMINATED", "config": {"sweep": "s"}}
    older = {"trial_data": [[json.dumps(trial), "{}"]], "runner_data": {}}
    (tmp_path / "experiment_state-2000-01-01_00-00-00.json").write_text(json.dumps(older))
    newest = tmp_path / "experiment_state-2000-01-02_00-00-00.json"
    newest.write_bytes(damage)
    assert not snapshot_readable(newest)
    assert snapshot_trials(tmp_path) == [trial]


@pytest.mark.ray
def test_a_finished_experiments_snapshot_and_tuner_read_as_tune_wrote_them(tmp_path):
    """Trials, their latest checkpoints and the Tuner's callbacks read back; a finished trial requeued in the
    snapshot reads as errored to Tune."""
    import tempfile

    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from sweeps.ray_adapter import latest_checkpoints, requeue_finished, tuner_callbacks

    def trainable(config):
        with tempfile.TemporaryDirectory() as folder:
            tune.report({"x": config["x"]}, checkpoint=tune.Checkpoint.from_directory(folder))

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # never a cluster left running
    try:
        tuner = tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                           run_config=tune.RunConfig(storage_path=str(tmp_path), name="e", verbose=0,
                                                     callbacks=[JsonLoggerCallback()]))
        first, second = (result.metrics["trial_id"] for result in tuner.fit())
        folder = tmp_path / "e"
        trials = snapshot_trials(folder)
        assert {(t["trial_id"], t["status"], t["config"]["x"]) for t in trials} == {(first, "TERMINATED", 1),
                                                                                     (second, "TERMINATED", 2)}
        assert latest_checkpoints(folder) == {first: "checkpoint_000000", second: "checkpoint_000000"}
        assert [type(callback) for callback in tuner_callbacks(folder)] == [JsonLoggerCallback]
        requeue_finished(folder, {first})
        assert snapshot_readable(sorted(folder.glob(SNAPSHOTS))[-1]) and not list(folder.glob(".*.tmp"))
        statuses = {trial.trial_id: trial.status for trial in tune.ExperimentAnalysis(str(tmp_path / "e")).trials}
        assert statuses == {first: "ERROR", second: "TERMINATED"}  # what Tuner.restore(resume_errored=True) re-runs
    finally:
        ray.shutdown()
