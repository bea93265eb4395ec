"""Everything about the network: models, their unit maps, mitigations, the optimizer, diagnostics.

Imports torch only. Models and mitigations are found by name through the registries below;
importing this package registers every built-in entry.
"""
from lopmodels.registry import ConfigError, Registry
from lopmodels.base import Forward, LopModel, ModelSpec, MODELS, build_model
from lopmodels import mlp, lstm, gru  # noqa: F401  (registers the models)
from lopmodels.mitigations import MITIGATIONS, HookContext, Mitigation, build_mitigation

__all__ = [
    "ConfigError", "Registry", "Forward", "LopModel", "ModelSpec", "MODELS", "build_model",
    "MITIGATIONS", "HookContext", "Mitigation", "build_mitigation",
]
