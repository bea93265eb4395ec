"""MLP: 784 -> hidden -> ReLU -> ... -> num_classes (the paper: two hidden layers of 25)."""
from __future__ import annotations

import torch
from torch import nn

from lopmodels.base import Forward, LopModel, ModelSpec, MODELS, UnitSteps, linear_bound
from lopmodels.errors import ConfigError
from lopmodels.units import Slice, UnitLayer

IMAGE_PIXELS = 28 * 28


@MODELS.register("mlp")
class MLP(LopModel):
    """Fully connected ReLU network on flattened images; every hidden layer is a layer of units."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.readout != "state":
            raise ConfigError(f"model 'mlp' has no time steps, so readout {spec.readout!r} does not apply; "
                              "use readout 'state' (or model 'lstm' or 'gru')")
        widths = [IMAGE_PIXELS] + [spec.hidden] * spec.hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Linear(spec.hidden, spec.num_classes)
        self._fan_in = {f"hidden.{i}": layer.in_features for i, layer in enumerate(self.hidden)}
        self._fan_in["head"] = spec.hidden

    def forward_units(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None,
                      steps: bool = False) -> Forward:
        x = inputs.reshape(inputs.shape[0], -1)
        activations = {}
        for i, layer in enumerate(self.hidden):
            x = torch.relu(layer(x))
            activations[f"hidden.{i}"] = x  # a ReLU output is its own |h|
        unit_steps = None
        if steps:  # one step per sample
            unit_steps = UnitSteps({name: a[:, None] for name, a in activations.items()},
                                   torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device))
        return Forward(self.head(x), activations, x, unit_steps)

    def unit_layers(self) -> tuple[UnitLayer, ...]:
        layers = []
        for i, layer in enumerate(self.hidden):
            following = f"hidden.{i + 1}" if i + 1 < len(self.hidden) else "head"
            layers.append(UnitLayer(
                name=f"hidden.{i}",
                size=layer.out_features,
                activation="relu",
                weights_in=(Slice(f"hidden.{i}.weight", 0),),
                biases_in=(Slice(f"hidden.{i}.bias", 0),),
                weights_out=(Slice(f"{following}.weight", 1),),
            ))
        return tuple(layers)

    def init_distribution(self, name: str) -> tuple[str, float]:
        module = name.rsplit(".", 1)[0]
        return "uniform", linear_bound(self._fan_in[module])
