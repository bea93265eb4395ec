"""A numeric config field's valid values, declared beside its help (`trainables.config.about`): `TrialConfig`
checks every field's range in one loop and `lop trial --help` shows it, so each range is written once (torch-free).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lopmodels.limits import FLOAT32_SAFE

INT64_MAX = 2**63 - 1  # a record's integer columns are int64 (trainables/schema.py)


@dataclass(frozen=True)
class Range:
    """Values of `kind` from `low` (excluded when `open_low`) to `high`; `what` words it in an error, `why` (if
    any) says where the bound comes from."""

    kind: type
    low: float
    high: float
    what: str
    open_low: bool = False
    why: str = ""

    def holds(self, value: Any) -> bool:
        """Whether `value` is in range: nan fails every comparison and inf the upper bound, so neither passes."""
        kinds = (int, float) if self.kind is float else int
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        return (self.low < value if self.open_low else self.low <= value) and value <= self.high

    @property
    def interval(self) -> str:
        return f"{'(' if self.open_low else '['}{shown(self.low)}, {shown(self.high)}]"

    def error(self, name: str, value: Any) -> str:
        """The one line for a value out of range: the field, its range (so the fix) and the value given."""
        return f"{name} must be {self.what} in {self.interval}, got {value!r}" + (f" ({self.why})" if self.why else "")


def shown(bound: float) -> str:
    return "2^63-1" if bound == INT64_MAX else f"{bound:g}"


POSITIVE = Range(int, 1, INT64_MAX, "a positive integer")
NON_NEGATIVE = Range(int, 0, INT64_MAX, "a non-negative integer")
# a finite lr above float32's largest is infinite in the first step: refused rather than recorded as diverged
STEP_SIZE = Range(float, 0, FLOAT32_SAFE, "positive and finite", open_low=True,
                  why="the bound is float32's largest: a trial computes in float32")
