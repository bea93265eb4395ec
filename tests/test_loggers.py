"""`lop sweep run --logger`: Tune's stock trackers with readable names, recorded for resume and repair; W&B and
MLflow for real but offline (a W&B offline run, an MLflow file store), never the network."""
from __future__ import annotations

import dataclasses
import json
import struct
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lopmodels.diagnostic_names import DIAGNOSTICS
from lopmodels.errors import ConfigError
from sweeps import loggers
from sweeps.cli import main
from sweeps.manifest import Manifest
from tests.faults.test_driver import FLAKY_PLUGIN
from tests.processes import lop

WANDB_BLOCK = 32 * 1024

RESULT = {  # a trial's result as Tune hands it to the callbacks: the record row, then Tune's own keys
    "sweep": "fig1", "arm": "mlp", "trial_id": "abc_00000", "model": "mlp", "hidden": 25, "lr": 0.01,
    "mitigation.weight_decay": 1e-4, "task": 3, "epoch": 1, "task_classes": ["1", "0"], "train_loss": 0.5,
    "train_accuracy": 0.9, "test_accuracy": 0.8, "seconds": 1.5, "diverged": False, "steps_per_task": 10,
    "truncated_fraction": None, "tokens_kept_fraction": None, "code_version": "abc", "device": "cpu",
    **{name: 0.25 for name in DIAGNOSTICS},
    "training_iteration": 8, "time_total_s": 12.0, "done": False, "config": {"run": {"arm": "mlp"}},
}


def invoke(*args: str) -> tuple[int, list[str]]:
    """`lop ARGS` in this process; the exit code and the lines on stderr."""
    run = CliRunner().invoke(main, list(args))
    return run.exit_code, run.stderr.strip().splitlines()


@pytest.fixture
def plugins_env(monkeypatch):
    monkeypatch.setenv("LOP_PLUGINS", "")  # `lop` sets it for the sweep it starts: undone after the test


def test_metrics_are_the_epoch_columns_of_a_record():
    from trainables.loop import EpochRecord
    fields = {f.name: None for f in dataclasses.fields(EpochRecord)}
    columns = EpochRecord(**{**fields, "task_classes": ()}).as_dict()
    assert set(loggers.METRICS) == set(columns) - {"task_classes"} - set(DIAGNOSTICS)


def test_results_reach_trackers_as_metrics_and_diagnostics_beside_tunes_keys():
    shown = loggers.readable(RESULT)
    assert shown["metrics"] == {name: RESULT[name] for name in loggers.METRICS}
    assert shown["diagnostics"] == {name: 0.25 for name in DIAGNOSTICS}
    assert {key: shown[key] for key in ("training_iteration", "time_total_s", "done", "trial_id", "config")} == {
        key: RESULT[key] for key in ("training_iteration", "time_total_s", "done", "trial_id", "config")}
    assert not {"hidden", "lr", "mitigation.weight_decay", "model", "code_version", "task_classes"} & set(shown)
    before = loggers.readable({**RESULT, **{name: None for name in DIAGNOSTICS}})  # not a task's last epoch
    assert before["diagnostics"] == {name: None for name in DIAGNOSTICS}  # the same keys: one CSV header


@pytest.mark.parametrize("given,recorded", [
    ((), ["tensorboard"]), (("none",), []), (("csv", "tensorboard", "csv"), ["csv", "tensorboard"]),
])
def test_the_default_is_tensorboard_none_turns_them_off_and_each_counts_once(given, recorded):
    assert loggers.chosen(given) == recorded


def test_mlflow_defaults_to_a_file_store_in_the_sweep_folder_and_a_bucket_needs_a_server(tmp_path, monkeypatch):
    from sweeps.storage import location
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert loggers.mlflow_settings(tmp_path / "fig1") == {"tracking_uri": (tmp_path / "fig1" / "mlruns").as_uri(),
                                                         "experiment_name": "fig1"}
    with pytest.raises(ConfigError, match="set MLFLOW_TRACKING_URI"):
        loggers.mlflow_settings(location("s3://bucket/lop-results?region=eu-west-1", contact=False) / "fig1")


def test_a_tracker_pickles_as_its_name_and_settings():
    import ray.cloudpickle as pickle
    callback = loggers.tracker("csv", {})
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.lop_logger == ("csv", {}) and loggers.pickled_loggers([copy, object()]) == ["csv"]


@pytest.mark.parametrize("args,message", [
    (["--logger", "tensorbord"], "unknown --logger 'tensorbord'; choose one of: csv, mlflow, none, tensorboard, wandb"),
    (["--logger", "none", "--logger", "csv"], "--logger none turns every tracker off; give it alone"),
])
def test_bad_logger_names_are_one_line(args, message, plugins_env):
    code, lines = invoke("sweep", "run", "fig1", "--scale", "smoke", *args, "--dry-run")
    assert code == 2 and lines == [f"lop: error: {message}"]


@pytest.mark.parametrize("name,package", [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_missing_extra_is_one_line_naming_it_and_the_fix(name, package, monkeypatch, plugins_env, tmp_path):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: importing it raises ImportError
    message = f"lop: error: --logger {name} needs the {package} package: pip install 'recurrent-lop[{name}]'"
    code, lines = invoke("sweep", "run", "fig1", "--scale", "smoke", "--logger", name, "--storage", str(tmp_path))
    assert code == 2 and lines == [message] and not any(tmp_path.iterdir())  # refused before Ray and any folder
    Manifest(sweep="fig1", title="t", scale="smoke", arms=["mlp"], seeds=1, seed_start=0, trials=1, tasks=2,
             cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, max_failures=0, code_version="x",
             data_hash={}, loggers=[name]).write(tmp_path)
    code, lines = invoke("sweep", "resume", str(tmp_path))
    assert code == 2 and lines == [message]


def tensorboard_events(path: Path) -> tuple[dict[str, dict[int, float]], dict[str, object]]:
    """The scalars (tag -> step -> value) and the hparams of a TensorBoard event file (TFRecord framing)."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    data, offset, scalars, hparams = path.read_bytes(), 0, {}, {}
    while offset < len(data):
        length = struct.unpack("<Q", data[offset:offset + 8])[0]
        event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            if value.tag == "_hparams_/session_start_info":
                plugin = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                hparams = {k: v.string_value or v.number_value for k, v in plugin.session_start_info.hparams.items()}
            elif not value.tag.startswith("_hparams_"):
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars, hparams


def wandb_records(path: Path):
    """The protobuf records of a W&B offline run file (a LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2
    data, offset, chunks = path.read_bytes(), 7, b""
    while offset + 7 <= len(data):
        if WANDB_BLOCK - offset % WANDB_BLOCK < 7:  # a block's tail too short for a header is padding
            offset += WANDB_BLOCK - offset % WANDB_BLOCK
            continue
        length, kind = struct.unpack("<HB", data[offset + 4:offset + 7])
        chunks += data[offset + 7:offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            yield wandb_internal_pb2.Record.FromString(chunks)
            chunks = b""


def records(trial_dir: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()])


def test_tensorboard_and_csv_log_readable_names_and_resume_keeps_them(tmp_path, ray_env):
    """A trial fails at its second task and `resume` finishes it: both trackers go on where they were."""
    plugin = tmp_path / "flaky_plugin.py"
    plugin.write_text(FLAKY_PLUGIN)
    env = {**ray_env, "LOP_TEST_MARKER": str(tmp_path / "marker")}
    run = lop("--plugin", str(plugin), "sweep", "run", "flaky", "--seeds", "1", "--max-failures", "0",
              "--logger", "tensorboard", "--logger", "csv", "--storage", str(tmp_path), env=env)
    assert run.returncode == 1, run.stderr[-3000:]
    folder = tmp_path / "flaky"
    assert Manifest.read(folder).loggers == ["tensorboard", "csv"]
    resumed = lop("sweep", "resume", str(folder), env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for trial_dir in sorted(folder.glob("*-r0-*")):
        expected = records(trial_dir).drop_duplicates(["task", "epoch"], keep="last")
        assert len(expected) == 3 * 2  # tasks x epochs
        events = sorted(trial_dir.glob("events.out.tfevents.*"))
        assert len(events) == (2 if trial_dir.name.startswith("flaky") else 1)  # one per driver that ran it
        scalars, hparams = {}, {}
        for path in events:
            found, params = tensorboard_events(path)
            hparams |= params
            for tag, values in found.items():
                scalars.setdefault(tag, {}).update(values)
        steps = list(range(1, 7))  # Tune's training_iteration: one per epoch, on after the resume
        assert sorted(scalars["ray/tune/metrics/test_accuracy"]) == steps
        accuracy = scalars["ray/tune/metrics/test_accuracy"]
        assert [accuracy[step] for step in steps] == pytest.approx(expected["test_accuracy"].tolist(), rel=1e-6)
        assert sorted(scalars["ray/tune/diagnostics/dead_fraction"]) == [2, 4, 6]  # each task's last epoch
        assert not any(tag.endswith(("/hidden", "/lr", "/seed")) for tag in scalars)  # the config is in hparams
        assert hparams["run/trial/model"] == "mlp" and hparams["run/arm"] == trial_dir.name.split("-r0-")[0]
        csv = pd.read_csv(trial_dir / "progress.csv")  # one header: the resumed driver appended to it
        csv = csv.drop_duplicates(["metrics/task", "metrics/epoch"], keep="last")
        assert csv["metrics/test_accuracy"].tolist() == pytest.approx(expected["test_accuracy"].tolist(), rel=1e-6)
        assert csv["diagnostics/effective_rank"].notna().tolist() == [False, True] * 3
        assert not {"hidden", "model", "metrics/task_classes"} & set(csv.columns)
    (folder / "lop-sweep.json").unlink()  # repair finds the trackers in Tune's pickled Tuner
    repaired = lop("--plugin", str(plugin), "sweep", "repair", str(folder), env=env)
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert Manifest.read(folder).loggers == ["tensorboard", "csv"]


def test_wandb_offline_and_mlflow_to_a_file_store(tmp_path, ray_env, monkeypatch):
    from mlflow.tracking import MlflowClient
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the file store here, as the driver wrote it
    uri = (tmp_path / "mlruns").as_uri()
    env = {**ray_env, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true",
           "MLFLOW_TRACKING_URI": uri}
    run = lop("sweep", "run", "fig1", "--scale", "smoke", "--arms", "mlp", "--seeds", "1", "--epochs", "2",
              "--logger", "wandb", "--logger", "mlflow", "--storage", str(tmp_path / "sweeps"), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / "sweeps" / "fig1"
    assert Manifest.read(folder).loggers == ["wandb", "mlflow"]
    expected = records(next(folder.glob("mlp-r0-*")))

    (offline,) = (tmp_path / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")  # one run, to sync later
    logged = list(wandb_records(offline))
    history = [{item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
               for r in logged if r.WhichOneof("record_type") == "history"]
    assert [row["metrics/test_accuracy"] for row in history] == pytest.approx(expected["test_accuracy"].tolist())
    assert [row.get("diagnostics/dead_fraction", float("nan")) for row in history] == pytest.approx(
        expected["dead_fraction"].tolist(), nan_ok=True)  # None (not logged) before each task's last epoch
    assert not any("hidden" in row or "model" in row for row in history)
    config = {item.key: json.loads(item.value_json) for r in logged if r.WhichOneof("record_type") == "config"
              for item in r.config.update}
    assert config["run"]["trial"]["model"] == "mlp" and config["run"]["arm"] == "mlp"

    client = MlflowClient(tracking_uri=uri)
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("fig1").experiment_id])
    history = client.get_metric_history(mlflow_run.info.run_id, "metrics/test_accuracy")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        expected["test_accuracy"].tolist(), rel=1e-6)
    assert len(client.get_metric_history(mlflow_run.info.run_id, "diagnostics/effective_rank")) == 2  # 2 tasks
    assert mlflow_run.data.params["run/trial/model"] == "mlp" and "hidden" not in mlflow_run.data.metrics
    assert mlflow_run.info.status == "FINISHED"


def test_the_advised_command_keeps_the_sweeps_trackers_and_their_absence():
    from sweeps.tune_state import run_command

    manifest = Manifest(sweep="fig1", title="", scale="smoke", arms=["mlp"], seeds=1, seed_start=0, trials=1,
                        tasks=2, cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, max_failures=2,
                        code_version="x", data_hash={})
    untracked = run_command(manifest, Path("/runs/s"))  # `--logger none` (or a sweep from before trackers)
    assert untracked.endswith("--logger none"), untracked
    tracked = run_command(dataclasses.replace(manifest, loggers=["tensorboard", "csv"]), Path("/runs/s"))
    assert tracked.endswith("--logger tensorboard --logger csv"), tracked
