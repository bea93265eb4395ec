"""Everything about the network: models, their unit maps, mitigations, the optimizer, diagnostics.

Models and mitigations are found by name through their registries (`MODELS` in base.py, `MITIGATIONS` in
mitigations/base.py), which import the built-in entries on first use. Importing this package costs nothing:
the names below load torch when first read, so `lopmodels.errors` and `lopmodels.registry` stay torch-free.
"""
from importlib import import_module
from typing import Any

_EXPORTS = {
    "Forward": "lopmodels.base", "LopModel": "lopmodels.base", "ModelSpec": "lopmodels.base",
    "MODELS": "lopmodels.base", "build_model": "lopmodels.base",
    "MITIGATIONS": "lopmodels.mitigations", "HookContext": "lopmodels.mitigations",
    "Mitigation": "lopmodels.mitigations", "build_mitigation": "lopmodels.mitigations",
    "ConfigError": "lopmodels.errors", "Registry": "lopmodels.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lopmodels' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
