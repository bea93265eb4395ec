"""Mitigations of loss of plasticity, one file each, found by name in `MITIGATIONS`.

A new mitigation is one file with `@MITIGATIONS.register("name")` and one import line below.
"""
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, build_mitigation, require

__all__ = ["MITIGATIONS", "HookContext", "Mitigation", "build_mitigation", "require"]
