"""Experiment trackers for a sweep: each `--logger` name is one of Ray Tune's stock logger callbacks.

Every tracker gets each result regrouped into `metrics/<name>` (the epoch's) and `diagnostics/<name>` (the
task's, on its last epoch) beside Tune's own keys, so its tags read like the records' columns; the trial's
config reaches it as Tune hands it over (TensorBoard hparams, W&B config, MLflow params), not as a metric at
every step. The names go in the manifest; `resume` checks their packages before Ray starts, and the restored
Tuner rebuilds each tracker from its name and the settings it was first built with (`Readable.__reduce__`).
Torch- and Ray-free at import, so the CLI's option can list the names.
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from lopmodels.diagnostic_names import DIAGNOSTICS
from lopmodels.errors import ConfigError
from lopmodels.registry import Registry, check_choice
from sweeps.storage import StoragePath, local_path

# The epoch's columns of a record (trainables.loop.EpochRecord.as_dict; tests/test_loggers.py keeps them equal)
# but for task_classes, which no tracker can plot.
METRICS = ("train_loss", "train_accuracy", "test_accuracy", "task", "epoch", "seconds", "diverged",
           "steps_per_task", "truncated_fraction", "tokens_kept_fraction")
TUNE_KEYS = ("done", "trial_id", "experiment_tag")  # Tune's own, beside ray.tune.result.AUTO_RESULT_KEYS
NONE = "none"
DEFAULT = ("tensorboard",)  # its cost per trial: docs/loggers.md
WANDB_PROJECT = "recurrent-lop"


def no_settings(folder: StoragePath) -> dict[str, Any]:
    return {}


def wandb_settings(folder: StoragePath) -> dict[str, Any]:
    """W&B needs a project: Ray's $WANDB_PROJECT_NAME, else ours; the group is the sweep folder's name."""
    return {"project": os.environ.get("WANDB_PROJECT_NAME") or WANDB_PROJECT}


def mlflow_settings(folder: StoragePath) -> dict[str, Any]:
    """$MLFLOW_TRACKING_URI (a server), else a file store in the sweep folder; one experiment per sweep."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    local = local_path(folder)
    if not uri and local is None:
        raise ConfigError(f"--logger mlflow with storage {folder} needs a tracking server: set MLFLOW_TRACKING_URI "
                          "(e.g. http://host:5000)")
    return {"tracking_uri": uri or (local.resolve() / "mlruns").as_uri(), "experiment_name": folder.name}


@dataclass(frozen=True)
class Logger:
    """A `--logger` choice: its stock callback (`module:Class`), the settings it is built with, the package it
    needs and the extra of this project that installs it, and environment defaults it needs."""

    callback: str
    settings: Callable[[StoragePath], dict[str, Any]] = no_settings
    package: str | None = None
    extra: str | None = None
    env: dict[str, str] = field(default_factory=dict)


LOGGERS: Registry[Logger] = Registry("logger")
LOGGERS.register("tensorboard")(Logger("ray.tune.logger:TBXLoggerCallback"))
LOGGERS.register("csv")(Logger("ray.tune.logger:CSVLoggerCallback"))
LOGGERS.register("wandb")(Logger("ray.air.integrations.wandb:WandbLoggerCallback", wandb_settings, "wandb", "wandb"))
# MLflow 3 refuses a file store unless this opt-out is set, and its database store needs the full `mlflow`.
LOGGERS.register("mlflow")(Logger("ray.air.integrations.mlflow:MLflowLoggerCallback", mlflow_settings, "mlflow",
                                  "mlflow", {"MLFLOW_ALLOW_FILE_STORE": "true"}))
CHOICES = (*LOGGERS.names(), NONE)


def chosen(names: tuple[str, ...]) -> list[str]:
    """The `--logger` values as the manifest records them: the default when none is given, [] for `none`, each
    name once, every package they need importable (checked before Ray starts)."""
    names = names or DEFAULT
    for name in names:
        check_choice("--logger", name, CHOICES)
    if NONE in names:
        if set(names) != {NONE}:
            raise ConfigError(f"--logger {NONE} turns every tracker off; give it alone")
        return []
    unique = list(dict.fromkeys(names))
    for name in unique:
        check_installed(name)
    return unique


def check_installed(name: str) -> None:
    logger = LOGGERS[name]
    if logger.package is None:
        return
    try:
        importlib.import_module(logger.package)
    except ImportError:
        raise ConfigError(f"--logger {name} needs the {logger.package} package: pip install "
                          f"'recurrent-lop[{logger.extra}]'") from None


def callbacks(names: list[str], folder: StoragePath) -> list[Any]:
    """The trackers of a new sweep at `folder`."""
    return [tracker(name, LOGGERS[name].settings(folder)) for name in names]


def tracker(name: str, settings: dict[str, Any]) -> Any:
    """The stock callback of logger `name`, built with `settings`, handed readable results."""
    check_installed(name)  # also where tuner.pkl is read back (resume, repair)
    logger = LOGGERS[name]
    for key, value in logger.env.items():
        os.environ.setdefault(key, value)
    module, _, cls = logger.callback.partition(":")
    callback = readable_class(getattr(importlib.import_module(module), cls))(**settings)
    callback.lop_logger = (name, settings)
    return callback


@functools.cache
def readable_class(stock: type) -> type:
    return type(f"Readable{stock.__name__}", (Readable, stock), {"__module__": __name__})


class Readable:
    """Mixed in before a stock logger callback: it sees `readable(result)`; pickled (in tuner.pkl) as its name
    and settings, so a resumed sweep rebuilds it through this registry."""

    lop_logger: tuple[str, dict[str, Any]]

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        super().log_trial_result(iteration, trial, readable(result))  # type: ignore[misc]

    def __reduce__(self) -> tuple[Callable, tuple[str, dict[str, Any]]]:
        return tracker, self.lop_logger


def readable(result: dict[str, Any]) -> dict[str, Any]:
    """Tune's own keys, then the epoch's metrics and the task's diagnostics (None before its last epoch) in two
    groups: the config and provenance columns are left out (the config reaches the trackers as the trial's)."""
    from ray.tune.result import AUTO_RESULT_KEYS
    tune_keys = {key: value for key, value in result.items() if key in AUTO_RESULT_KEYS or key in TUNE_KEYS}
    return {**tune_keys, "metrics": {name: result.get(name) for name in METRICS},
            "diagnostics": {name: result.get(name) for name in DIAGNOSTICS}}


def pickled_loggers(callbacks: list[Any]) -> list[str]:
    """The logger names among a Tuner's callbacks (`lop sweep repair` reads them back from tuner.pkl)."""
    return [callback.lop_logger[0] for callback in callbacks if isinstance(callback, Readable)]
