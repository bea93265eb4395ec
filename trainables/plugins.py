"""Plugins: a user's own models, datasets, streams, mitigations or sweeps, in modules outside this package.

A plugin is a module that registers entries when imported (docs/design.md, "Adding an entry"), named by
`lop --plugin NAME` (a dotted module name, or the path of a .py file), by $LOP_PLUGINS (comma-separated), or by an
installed package's entry point in the group `lop.plugins`. The driver imports them before any command runs; a
sweep records them in its manifest, ships the modules that are not installed to Ray's workers
(`runtime_env={"py_modules": ...}`), and every trial imports them before it builds anything, so an entry
registered there works in `lop trial`, in sweeps, on a cluster and on resume.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Iterable

from lopmodels.errors import ConfigError

ENV = "LOP_PLUGINS"
ENTRY_POINT_GROUP = "lop.plugins"
WORKER_FIX = "; workers get only a plugin's own module, not an installed one: install what else it needs on every node"


def plugin_specs(given: Iterable[str] = ()) -> list[str]:
    """`given` followed by $LOP_PLUGINS, each once, in order."""
    from_env = [part.strip() for part in os.environ.get(ENV, "").split(",") if part.strip()]
    return list(dict.fromkeys([*given, *from_env]))


def import_plugin(spec: str) -> ModuleType:
    """The module `spec` names (a dotted name, or a .py file imported under its stem); `ConfigError` with the
    import error's last line when it fails."""
    try:
        if spec.endswith(".py"):
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"plugin {spec!r}: no such file")
            if path.stem in sys.modules and getattr(sys.modules[path.stem], "__file__", None) == str(path):
                return sys.modules[path.stem]
            loader = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = module
            loader.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except ConfigError:
        raise
    except Exception as error:  # a plugin's own failure: its name and the error's last line
        sys.modules.pop(Path(spec).stem if spec.endswith(".py") else spec, None)
        last = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        node = worker_node()
        where, fix = (f" on Ray node {node}", WORKER_FIX) if node else ("", "")
        raise ConfigError(f"plugin {spec!r} failed to import{where}: {type(error).__name__}: {last}{fix}") from None


def worker_node() -> str | None:
    """The address of the Ray node this runs on inside a trial, None on the driver (which imports plugins before
    Ray starts): a plugin that fails only there lacks what `shipped` does not send."""
    ray = sys.modules.get("ray")
    return ray.util.get_node_ip_address() if ray is not None and ray.is_initialized() else None


def import_plugins(specs: Iterable[str]) -> list[ModuleType]:
    """Every plugin of `specs` and of the installed entry points, imported once."""
    modules = [import_plugin(spec) for spec in specs]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            modules.append(point.load())
        except Exception as error:
            raise ConfigError(f"plugin entry point {point.name!r} ({point.value}) failed to import: "
                              f"{type(error).__name__}: {error}") from None
    return modules


def shipped(modules: Iterable[ModuleType]) -> list[ModuleType]:
    """The top-level modules to send to Ray's workers: those not installed (not under a site-packages folder)."""
    tops = {}
    for module in modules:
        top = sys.modules[module.__name__.split(".")[0]]
        where = getattr(top, "__file__", None) or ""
        if where and "site-packages" not in where and "dist-packages" not in where:
            tops[top.__name__] = top
    return list(tops.values())
