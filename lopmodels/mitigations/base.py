"""The hooks a mitigation may implement, and the one context every hook receives.

The training loop calls these hooks and never names a mitigation. A new need adds a field to
`HookContext`, not a new signature.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from lopmodels.errors import ConfigError
from lopmodels.limits import FLOAT32_SAFE
from lopmodels.registry import Registry

if TYPE_CHECKING:  # torch is imported by the trial, not by reading a mitigation's fields (lopmodels/lazy.py)
    import torch

    from lopmodels.base import LopModel


@dataclass
class HookContext:
    """What a hook may look at or change."""

    net: LopModel
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # the trial's own generator, on the trial's device
    task: int = 0
    step: int = 0  # optimizer steps taken so far in the trial
    activations: dict[str, torch.Tensor] | None = None  # this step's unit activations, when asked for
    features: torch.Tensor | None = None


@dataclass
class Mitigation:
    """No mitigation: every hook does nothing. Mitigations subclass this and override hooks."""

    needs_activations: ClassVar[bool] = False  # ask the loop for `ctx.activations` at every step
    # the arms this mitigation adds to the `mitigations` sweep: label -> its fields (`mitigation_args`);
    # None: one arm at the defaults, labelled by the mitigation's registered name
    sweep_arms: ClassVar[Mapping[str, Mapping[str, Any]] | None] = None

    def optimizer_options(self) -> dict[str, Any]:
        """Keyword arguments for the optimizer (L2's weight decay)."""
        return {}

    def on_train_start(self, ctx: HookContext) -> None:
        """Once, on a fresh start (never on resume): record what later hooks compare against."""

    def on_task_start(self, ctx: HookContext) -> None:
        """Before the first step of every task."""

    def penalty(self, ctx: HookContext) -> torch.Tensor | None:
        """A term added to the loss of every step."""
        return None

    def after_step(self, ctx: HookContext) -> None:
        """After every optimizer step."""

    def on_task_end(self, ctx: HookContext) -> None:
        """After the last step of every task."""

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides the future beyond the fields (utilities, ages, initial weights)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()`."""

    def fields(self) -> dict[str, Any]:
        """The hyperparameters, as recorded in the `mitigation.<field>` columns."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# the built-in mitigations: one module each, one line here
MITIGATIONS: Registry[type[Mitigation]] = Registry("mitigation", modules=(
    "lopmodels.mitigations.l2",
    "lopmodels.mitigations.shrink_perturb",
    "lopmodels.mitigations.noise",
    "lopmodels.mitigations.cbp",
    "lopmodels.mitigations.redo",
    "lopmodels.mitigations.l2_init",
    "lopmodels.mitigations.reset",
))
MITIGATIONS.register("none")(Mitigation)


def builtin_fields() -> dict[str, dict[str, str]]:
    """Each built-in mitigation's fields with their types' names (float, int, bool or str), read off the dataclasses:
    the typed `mitigation.<field>` columns of every export (trainables/schema.py). A plugin's mitigations are not
    among them; an export adds their columns from the values it holds."""
    return {name: {f.name: type_name(f) for f in dataclasses.fields(cls)}
            for name, cls in MITIGATIONS.items() if cls.__module__.startswith(__package__ + ".")}


def type_name(spec: dataclasses.Field) -> str:
    """A field's type as written: "float", "int", "bool", "str" (a string under `from __future__ import annotations`)."""
    return getattr(spec.type, "__name__", spec.type)


def build_mitigation(name: str, args: Mapping[str, Any] | None = None) -> Mitigation:
    """The mitigation `name` with hyperparameters `args`; unknown fields and bad values raise `ConfigError`."""
    cls = MITIGATIONS[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    args = dict(args or {})
    for key in args:
        if key not in known:
            valid = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"unknown field {key!r} for mitigation {name!r}; valid fields: {valid}")
    values = {key: _coerce(name, known[key], value) for key, value in args.items()}
    for key, value in values.items():  # inf (or 1e308, inf in float32) passes every `> 0` check and trains to nan
        if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= FLOAT32_SAFE):
            raise ConfigError(f"mitigation {name!r}: {key} must be finite in float32 (at most {FLOAT32_SAFE:g} in "
                              f"size: a trial computes in float32), got {value!r}")
    return cls(**values)


def _coerce(mitigation: str, spec: dataclasses.Field, value: Any) -> Any:
    """Turn a command-line string into the field's type (`--set weight_decay=1e-3`)."""
    kind = {"float": float, "int": int, "bool": bool}.get(type_name(spec), str)
    if not isinstance(value, str) or kind is str:
        return value
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise ConfigError(f"mitigation {mitigation!r}: field {spec.name!r} takes a {kind.__name__}, got {value!r}") from None


def require(condition: bool, mitigation: str, field_name: str, valid: str, value: Any) -> None:
    """Raise `ConfigError` naming the field and its valid range unless `condition` holds."""
    if not condition:
        raise ConfigError(f"mitigation {mitigation!r}: {field_name} must be {valid}, got {value!r}")
