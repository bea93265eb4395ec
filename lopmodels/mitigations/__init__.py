"""Mitigations of loss of plasticity, one file each, found by name in `MITIGATIONS`.

A new mitigation is one file with `@MITIGATIONS.register("name")` and one import line below.
"""
from lopmodels.mitigations.base import MITIGATIONS, HookContext, Mitigation, build_mitigation, require
from lopmodels.mitigations import l2  # noqa: F401  (registers "l2")
from lopmodels.mitigations import shrink_perturb  # noqa: F401  (registers "shrink-perturb")
from lopmodels.mitigations import noise  # noqa: F401  (registers "noise")
from lopmodels.mitigations import cbp  # noqa: F401  (registers "cbp")
from lopmodels.mitigations import redo  # noqa: F401  (registers "redo")
from lopmodels.mitigations import l2_init  # noqa: F401  (registers "l2-init")
from lopmodels.mitigations import reset  # noqa: F401  (registers "reset")

__all__ = ["MITIGATIONS", "HookContext", "Mitigation", "build_mitigation", "require"]
