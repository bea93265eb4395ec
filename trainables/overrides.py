"""`--set field=value`: the same in `lop trial` and `lop sweep run`. A config field by name (typed from
`TrialConfig`'s annotations), a mitigation's field as `mitigation.<field>` (checked by the mitigation itself)."""
from __future__ import annotations

import dataclasses
from typing import Any

from lopmodels.errors import ConfigError
from trainables.config import TrialConfig

KINDS: dict[str, Any] = {"int": int, "int | None": int, "float | None": float, "float": float, "str": str}
KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}


def typed(f: dataclasses.Field, text: str) -> Any:
    """A command-line string as field `f`'s type; a one-line error naming the field when it is not."""
    if f.type == "tuple[str, ...] | None":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if f.type == "bool":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"--set {f.name}={text}: {f.name} takes true or false")
        return text.lower() in ("true", "1", "yes")
    if "None" in str(f.type) and text.lower() in ("none", "null", ""):
        return None
    kind = KINDS[str(f.type)]
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"--set {f.name}={text}: {f.name} takes {KIND_NAMES[kind]}") from None


def parse_sets(values: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """`--set` pairs as (config fields, typed; the mitigation's fields, as text for the mitigation to check)."""
    from lopmodels import MITIGATIONS
    fields = {f.name: f for f in dataclasses.fields(TrialConfig) if f.name != "mitigation_args"}
    config, mitigation = {}, {}
    for item in values:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ConfigError(f"--set takes field=value, got {item!r}")
        if key.startswith("mitigation."):
            mitigation[key.removeprefix("mitigation.")] = text
        elif key in fields:
            config[key] = typed(fields[key], text)
        elif any(key in {f.name for f in dataclasses.fields(cls)} for _, cls in MITIGATIONS.items()):
            raise ConfigError(f"--set {item}: {key} is a mitigation's field; set it as --set mitigation.{key}={text}")
        else:
            raise ConfigError(f"--set {item}: unknown field {key!r}; set a config field (lop trial --help lists "
                              "them) or a mitigation's field as mitigation.<field>")
    return config, mitigation



def apply_overrides(configs: list[TrialConfig], sets: tuple[str, ...], where: str) -> list[TrialConfig]:
    """`configs` with `--set` applied: config fields to each, a mitigation's field to each config whose
    mitigation has it; a field no config's mitigation has, or the seeds, is a one-line error."""
    from lopmodels import MITIGATIONS
    config, mitigation = parse_sets(sets)
    if {"seed", "stream_seed"} & set(config):
        raise ConfigError("--set seed / stream_seed: a sweep's seeds are its replicates; use --seeds and --seed-start")
    out, used = [], set()
    for cfg in configs:
        known = {f.name for f in dataclasses.fields(MITIGATIONS[cfg.mitigation])}
        mine = {key: value for key, value in mitigation.items() if key in known}
        used |= set(mine)
        out.append(dataclasses.replace(cfg, **config, mitigation_args={**cfg.mitigation_args, **mine}))
    unused = sorted(set(mitigation) - used)
    if unused:
        names = sorted({cfg.mitigation for cfg in configs})
        raise ConfigError(f"--set mitigation.{unused[0]}: no arm of {where} has a mitigation with field "
                          f"{unused[0]!r} (its mitigations: {', '.join(names)})")
    return out
