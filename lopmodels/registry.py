"""Name-to-factory tables (models, mitigations, streams, sweeps) whose errors list the valid names."""
from __future__ import annotations

from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad value in a config or on the command line: one line that names it and the fix (exit 2)."""


def check_choice(what: str, value: object, choices: Iterable[str]) -> None:
    """Raise `ConfigError` unless `value` is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


class Registry(Generic[T]):
    """A named table of factories; `REG.register("name")` decorates a class or function."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def __getitem__(self, name: str) -> T:
        check_choice(self.what, name, self._entries)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self):
        return sorted(self._entries.items())
