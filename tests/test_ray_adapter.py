"""The private Ray APIs `lop` relies on (sweeps/ray_adapter.py), pinned: these fail on a Ray version that moves
them, before a user's resume does."""
from __future__ import annotations

import pickle
import time

import pytest

from lopmodels.errors import ConfigError
from sweeps.progress import Progress
from sweeps.ray_adapter import TUNE_DEFAULTS, check_address, set_max_concurrent, set_tune_defaults


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
def test_the_autoscaler_config_reads_on_a_plain_local_ray():
    import ray

    from sweeps.ray_adapter import autoscaler_config
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # never a cluster left running
    try:
        assert autoscaler_config() is None  # no autoscaler: the launcher's file is the fallback (sweeps/cluster.py)
    finally:
        ray.shutdown()


@pytest.mark.ray
def test_a_finished_trial_requeued_in_the_snapshot_reads_as_errored_to_tune(tmp_path):
    import ray
    from ray import tune

    from sweeps.ray_adapter import requeue_finished

    def trainable(config):
        tune.report({"x": config["x"]})

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # never a cluster left running
    try:
        tuner = tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                           run_config=tune.RunConfig(storage_path=str(tmp_path), name="e", verbose=0))
        first, second = (result.metrics["trial_id"] for result in tuner.fit())
        requeue_finished(tmp_path / "e", {first})
        statuses = {trial.trial_id: trial.status for trial in tune.ExperimentAnalysis(str(tmp_path / "e")).trials}
        assert statuses == {first: "ERROR", second: "TERMINATED"}  # what Tuner.restore(resume_errored=True) re-runs
    finally:
        ray.shutdown()
