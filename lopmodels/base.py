"""What every model provides: a forward pass, its unit map, and its own initialisation distribution."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import nn

from lopmodels.catalog import MODEL_INFO, PLURALS, READOUTS
from lopmodels.errors import ConfigError
from lopmodels.registry import Registry, check_choice
from lopmodels.units import UnitLayer



@dataclass(frozen=True)
class ModelSpec:
    """What a model needs to know about its input and output; built by the trial from its config and data."""

    input_kind: str  # "image" (28 rows of 28 pixels) or "tokens"
    num_classes: int
    hidden: int
    embed: int | None = None  # token embedding size (tokens only)
    vocab_size: int | None = None  # tokens only
    hidden_layers: int = 2  # MLP depth
    # what the classifier of a recurrent model reads: "state" (the forward state at the true last token and
    # the backward state at the first) or "last-position" (the reference's `out[:, -1]` of the padded batch)
    readout: str = "state"

    def __post_init__(self) -> None:
        check_choice("readout", self.readout, READOUTS)
        for name in ("num_classes", "hidden", "hidden_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ConfigError(f"a task needs at least two classes, got {self.num_classes}")
        if self.input_kind == "tokens" and (not self.vocab_size or not self.embed or self.embed < 1):
            raise ConfigError("a token model needs a positive vocab_size and embed")


class UnitSteps(NamedTuple):
    """Every unit's value at every time step, for diagnostics that look at single steps (saturation)."""

    values: dict[str, torch.Tensor]  # UnitLayer.name -> [B, T, units]; an MLP has one step (T = 1)
    valid: torch.Tensor  # [B, T] bool: the steps that read a real token (not padding)


class Forward(NamedTuple):
    """A forward pass that also exposes the hidden units (for CBP, ReDo and diagnostics)."""

    logits: torch.Tensor  # [B, num_classes]
    # UnitLayer.name -> [B, units]: each unit's activity per sample, mean |h_t| over the sample's valid steps
    # (Dohare et al. 2024, Sokar et al. 2023); an MLP unit has one step, its ReLU output
    activations: dict[str, torch.Tensor]
    features: torch.Tensor  # [B, F]: the classifier's input
    steps: UnitSteps | None = None  # only when `forward_units(..., steps=True)`: the training path skips it


class LopModel(nn.Module):
    """A classifier over one stream's inputs whose hidden units are declared in `unit_layers`."""

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_units(inputs, lengths).logits

    def forward_units(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None,
                      steps: bool = False) -> Forward:
        """Logits, unit activities and features; with `steps`, also every unit's value at every step."""
        raise NotImplementedError

    def unit_layers(self) -> tuple[UnitLayer, ...]:
        raise NotImplementedError

    def init_distribution(self, name: str) -> tuple[str, float]:
        """("uniform", bound) or ("normal", std): how parameter `name` is initialised."""
        raise NotImplementedError

    def draw_init(self, name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Fresh values for (part of) parameter `name`, from its initialisation distribution."""
        kind, scale = self.init_distribution(name)
        device = generator.device
        if kind == "normal":
            return torch.randn(shape, generator=generator, device=device).mul_(scale)
        return torch.rand(shape, generator=generator, device=device).mul_(2 * scale).sub_(scale)

    def fresh_parameters(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A complete fresh initialisation, one tensor per parameter (shrink-and-perturb's w_fresh)."""
        return {name: self.draw_init(name, tuple(p.shape), generator) for name, p in self.named_parameters()}

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise every parameter from the trial's own generator (never the global RNG)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(self.draw_init(name, tuple(param.shape), generator))


def linear_bound(fan_in: int) -> float:
    """PyTorch's default bound for `nn.Linear` weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in)


# every model's class, found by name; the modules that register them are listed in lopmodels/catalog.py
MODELS: Registry[Callable[[ModelSpec], LopModel]] = Registry(
    "model", modules=lambda: [info.module for _, info in MODEL_INFO.items()])


def build_model(name: str, spec: ModelSpec, generator: torch.Generator) -> LopModel:
    """The model `name`, initialised from `generator`, on the generator's device."""
    info = MODEL_INFO[name]
    if spec.input_kind not in info.reads:
        able = [m for m, other in MODEL_INFO.items() if spec.input_kind in other.reads]
        raise ConfigError(f"model {name!r} reads {info.reads_text()}, not {PLURALS[spec.input_kind]}; "
                          f"use {' or '.join(map(repr, able))}")
    if name not in MODELS:
        raise ConfigError(f"model {name!r} is in lopmodels/catalog.py but its module {info.module} registers "
                          f"no class under that name; decorate the class with @MODELS.register({name!r})")
    net = MODELS[name](spec).to(generator.device)
    net.reset_parameters(generator)
    return net
