"""Modules imported on first use, so that reading a registry entry's fields and checks needs no torch.

The mitigations are dataclasses whose fields and `__post_init__` checks every `TrialConfig` runs, which is
how `lop sweep list` and `lop report` validate a sweep; their hooks need torch, which would cost those
commands two seconds. A mitigation file imports `torch` (or `lopmodels.units`) through `lazy` and uses it
as usual: the import happens at the first attribute read, in a trial, and later reads cost nothing.
"""
from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands in for the module `name` until an attribute is read; then imports it and keeps that attribute."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attribute: str) -> Any:  # only called for attributes not yet kept
        value = getattr(import_module(self.__name__), attribute)
        setattr(self, attribute, value)
        return value


def lazy(name: str) -> Any:
    """The module `name`, imported when one of its attributes is first read."""
    return LazyModule(name)
