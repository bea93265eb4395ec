"""`lop trial`'s options, made from `TrialConfig`'s fields and their help (`trainables.config.about`), so a new
field is an option without touching the CLI."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from trainables.config import TrialConfig

KINDS: dict[str, Any] = {"int": int, "int | None": int, "float | None": float, "float": float, "str": str}


def option_name(f: dataclasses.Field) -> str:
    return f.metadata.get("option", "--" + f.name.replace("_", "-"))


def config_options(command: Callable) -> Callable:
    """Decorate a click command with one option per TrialConfig field (`--set` for the mitigation's fields)."""
    for f in reversed(dataclasses.fields(TrialConfig)):
        name = option_name(f)
        if f.name == "mitigation_args":
            command = click.option(name, f.name, multiple=True, metavar="FIELD=VALUE",
                                   help="A field of the chosen mitigation.")(command)
        elif f.type == "bool":
            command = click.option(name, f.name, is_flag=True, help=f.metadata["help"])(command)
        elif f.type == "tuple[str, ...] | None":  # comma-separated on the command line
            command = click.option(name, f.name, default=None, help=f.metadata["help"])(command)
        else:
            command = click.option(name, f.name, type=KINDS[str(f.type)], default=f.default,
                                   show_default=f.default is not None, help=f.metadata["help"])(command)
    return command


def config_from_options(values: dict[str, Any], sets: Callable[[tuple[str, ...]], dict[str, str]]) -> TrialConfig:
    """The TrialConfig of `config_options`' values (`sets` parses the `--set` pairs)."""
    fields = {}
    for f in dataclasses.fields(TrialConfig):
        value = values.pop(f.name)
        if f.name == "mitigation_args":
            value = sets(value)
        elif f.type == "tuple[str, ...] | None" and value is not None:
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        fields[f.name] = value
    return TrialConfig(**fields)
