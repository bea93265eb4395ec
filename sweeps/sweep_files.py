"""Sweeps from a user's file: `lop sweep run path/to/my_sweep.yaml` or `.py`, validated like the built-in ones.

A YAML file holds a sweep's data (`name`, `title`, `base`, `arms`, optional `notes`, `scale_arms`, and `scales`:
`standard` for the figures' `small` and `smoke`, or a mapping of scale to field overrides); it names only
registered entries, so the trials need nothing else and `resume`, `status`, `export` and `report` work from the
folder alone. A Python file is a plugin (trainables/plugins.py) that registers exactly one new sweep (and any
entries of its own): it is recorded and shipped like one, so `resume` needs it where it was. docs/sweep-files.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lopmodels.errors import ConfigError
from sweeps.base import SWEEPS, Sweep, register_sweep
from sweeps.scales import STANDARD

KEYS = {"name", "title", "base", "arms", "scales", "notes", "scale_arms"}


def is_sweep_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".py"))


def load_sweep_file(path: Path) -> Sweep:
    """The one sweep `path` defines, registered; a one-line `ConfigError` naming the file and the fix."""
    import sweeps.registry  # noqa: F401  (the built-in sweeps first: a file's sweep must not take their names)
    if not path.is_file():
        raise ConfigError(f"no sweep file at {path}; give the path of a .yaml or .py file defining a Sweep "
                          "(docs/sweep-files.md), or a sweep's name from `lop sweep list`")
    if path.suffix == ".py":
        return python_sweep(path)
    return yaml_sweep(path)


def python_sweep(path: Path) -> Sweep:
    import os

    from trainables.plugins import ENV, import_plugin, plugin_specs
    before = set(SWEEPS.names())
    import_plugin(str(path))
    new = sorted(set(SWEEPS.names()) - before)
    if len(new) != 1:
        raise ConfigError(f"{path} registers {len(new)} new sweeps ({', '.join(new) or 'none'}); a sweep file "
                          "registers exactly one, with register_sweep(Sweep(...))")
    os.environ[ENV] = ",".join(plugin_specs([str(path.resolve())]))  # recorded and shipped as a plugin
    return SWEEPS[new[0]]


def yaml_sweep(path: Path) -> Sweep:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({reason}); fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep file holds a mapping with {', '.join(sorted(KEYS))}")
    unknown, missing = sorted(set(data) - KEYS), sorted({"name", "arms"} - set(data))
    if unknown or missing:
        raise ConfigError(f"{path}: " + "; ".join(
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing {', '.join(missing)}"] if missing else []))
            + f"; the keys are {', '.join(sorted(KEYS))}")
    if str(data["name"]) in SWEEPS:
        raise ConfigError(f"{path}: a sweep named {data['name']!r} is already registered; give the file's sweep "
                          "another name")
    scales = data.get("scales", "standard")
    if scales == "standard":
        scales = STANDARD
    elif not isinstance(scales, dict):
        raise ConfigError(f"{path}: scales is `standard` or a mapping of scale to field overrides, got {scales!r}")
    try:
        sweep = Sweep(name=str(data["name"]), title=str(data.get("title", data["name"])), base=data.get("base") or {},
                      arms=_mapping(path, "arms", data["arms"]), scales=scales, notes=data.get("notes") or {},
                      scale_arms={k: tuple(v) for k, v in (data.get("scale_arms") or {}).items()},
                      source=str(path.resolve()))
    except TypeError as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        return register_sweep(sweep)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _mapping(path: Path, key: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) or v is None for v in value.values()):
        raise ConfigError(f"{path}: {key} maps each arm's label to its fields (a mapping, possibly empty)")
    return {str(label): dict(fields or {}) for label, fields in value.items()}
