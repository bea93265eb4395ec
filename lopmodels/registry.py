"""Name-to-factory tables (models, mitigations, streams, sweeps) whose errors list the valid names."""
from __future__ import annotations

from importlib import import_module
from typing import Callable, Generic, Iterable, TypeVar

from lopmodels.errors import ConfigError

T = TypeVar("T")


def check_choice(what: str, value: object, choices: Iterable[str]) -> None:
    """Raise `ConfigError` unless `value` is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


class Registry(Generic[T]):
    """A named table of factories; `REG.register("name")` decorates a class or function.

    `modules`: the modules whose import registers the built-in entries (or a function that lists them),
    imported on the table's first use, so that importing the table is cheap and every lookup sees every
    built-in entry."""

    def __init__(self, what: str, modules: tuple[str, ...] | Callable[[], Iterable[str]] = ()) -> None:
        self.what = what
        self._entries: dict[str, T] = {}
        self._modules = modules
        self._loaded = not modules

    def _load(self) -> dict[str, T]:
        if not self._loaded:
            self._loaded = True
            for module in self._modules() if callable(self._modules) else self._modules:
                import_module(module)
        return self._entries

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def __getitem__(self, name: str) -> T:
        check_choice(self.what, name, self._load())
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self):
        return iter(sorted(self._load()))

    def names(self) -> list[str]:
        return sorted(self._load())

    def items(self):
        return sorted(self._load().items())
