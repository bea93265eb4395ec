"""`lop trial`'s options, made from `TrialConfig`'s fields and their help (`trainables.config.about`), so a new
field is an option without touching the CLI; and `--set field=value`, which means the same in `lop trial` and
`lop sweep run`: a config field by name, a mitigation's field as `mitigation.<field>`."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from trainables.config import TrialConfig
from trainables.overrides import KINDS, parse_sets, typed


def option_name(f: dataclasses.Field) -> str:
    return f.metadata.get("option", "--" + f.name.replace("_", "-"))


def help_text(f: dataclasses.Field) -> str:
    """The field's help, with its valid range where it declares one (`trainables.ranges`)."""
    valid = f.metadata.get("range")
    return f.metadata["help"] + (f" Range: {valid.interval}." if valid else "")


def config_options(command: Callable) -> Callable:
    """Decorate a click command with one option per TrialConfig field (`--set` for the mitigation's fields)."""
    for f in reversed(dataclasses.fields(TrialConfig)):
        name = option_name(f)
        if f.name == "mitigation_args":
            command = click.option(name, f.name, multiple=True, metavar="FIELD=VALUE",
                                   help="A config field (as the options here) or a mitigation's field as "
                                        "mitigation.<field>; repeatable, applied last.")(command)
        elif f.type == "bool":
            command = click.option(name, f.name, is_flag=True, help=help_text(f))(command)
        elif f.type == "tuple[str, ...] | None":  # comma-separated on the command line
            command = click.option(name, f.name, default=None, help=help_text(f))(command)
        else:
            command = click.option(name, f.name, type=KINDS[str(f.type)], default=f.default,
                                   show_default=f.default is not None, help=help_text(f))(command)
    return command


def config_from_options(values: dict[str, Any]) -> TrialConfig:
    """The TrialConfig of `config_options`' values, `--set` pairs applied last."""
    fields = {}
    for f in dataclasses.fields(TrialConfig):
        value = values.pop(f.name)
        if f.type == "tuple[str, ...] | None" and value is not None:
            value = typed(f, value)
        fields[f.name] = value
    config, mitigation = parse_sets(fields.pop("mitigation_args"))
    return TrialConfig(**{**fields, **config, "mitigation_args": mitigation})
