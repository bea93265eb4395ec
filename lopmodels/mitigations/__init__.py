"""Mitigations of loss of plasticity, one file each, found by name in `MITIGATIONS`.

A new mitigation is one file with `@MITIGATIONS.register("name")` (and, optionally, the `sweep_arms` it adds
to the `mitigations` sweep) plus its module's line in `MITIGATIONS` (lopmodels/mitigations/base.py); its fields
become typed record columns by themselves (`builtin_fields`).
"""
from lopmodels.mitigations.base import (MITIGATIONS, HookContext, Mitigation, build_mitigation, builtin_fields,
                                        require)

__all__ = ["MITIGATIONS", "HookContext", "Mitigation", "build_mitigation", "builtin_fields", "require"]
