"""What each model is, torch-free: the facts that configs, sweeps, cost estimates and reports need without
building one. A model is one module (its class, registered in `MODELS`) plus one line here.
"""
from __future__ import annotations

from dataclasses import dataclass

from lopmodels.registry import Registry

INPUT_KINDS = ("image", "tokens")  # 28 rows of 28 pixels; token ids with lengths
PLURALS = {"image": "images", "tokens": "tokens"}
# what a recurrent model's classifier reads: "state" (the forward state at the true last token and the backward
# state at the first) or "last-position" (the reference's `out[:, -1]` of the padded batch)
READOUTS = ("state", "last-position")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    module: str  # the module whose import registers the model's class in `MODELS` (it imports torch)
    default_hidden: int  # units per hidden layer when a config leaves `hidden` out: the paper's width
    reads: tuple[str, ...]  # the input kinds it can read (INPUT_KINDS)
    recurrent: bool  # reads a sequence step by step: the `readout` switch applies
    # CPU seconds per training sample per epoch at default_hidden and 28 steps: the cost estimate until
    # `benchmarks/trial_costs.py` measures the model, flagged as a guess wherever it is used
    fallback_seconds_per_sample: float
    # floats a training step keeps per sample, time step and hidden unit, for the check that a size fits in
    # memory (trainables/memory.py): twice what its forward saves for backward, for the gradients of those
    floats_per_unit_step: int

    def reads_text(self) -> str:
        """"images only", "images or tokens": for error messages."""
        kinds = [PLURALS[k] for k in self.reads]
        return kinds[0] + " only" if len(kinds) == 1 else " or ".join(kinds)

    def __post_init__(self) -> None:
        unknown = set(self.reads) - set(INPUT_KINDS)
        if not self.reads or unknown:
            raise ValueError(f"model {self.name!r} reads {self.reads!r}; choose from {INPUT_KINDS}")


MODEL_INFO: Registry[ModelInfo] = Registry("model")


def register_model_info(info: ModelInfo) -> ModelInfo:
    MODEL_INFO.register(info.name)(info)
    return info


register_model_info(ModelInfo("mlp", "lopmodels.mlp", default_hidden=25, reads=("image",), recurrent=False,
                              fallback_seconds_per_sample=3e-6, floats_per_unit_step=4))
register_model_info(ModelInfo("lstm", "lopmodels.lstm", default_hidden=25, reads=("image", "tokens"), recurrent=True,
                              fallback_seconds_per_sample=8e-5, floats_per_unit_step=40))
register_model_info(ModelInfo("gru", "lopmodels.gru", default_hidden=64, reads=("image", "tokens"), recurrent=True,
                              fallback_seconds_per_sample=2e-4, floats_per_unit_step=32))
