"""`TrialConfig`'s numeric ranges: declared beside each field's help, checked in one place, shown in `--help`."""
from __future__ import annotations

import dataclasses

import pytest

from lopmodels.errors import ConfigError
from trainables.config import TrialConfig
from trainables.ranges import INT64_MAX

NUMERIC = {"int", "int | None", "float", "float | None"}


def test_every_numeric_field_declares_its_range():
    for f in dataclasses.fields(TrialConfig):
        if f.type in NUMERIC:
            assert "range" in f.metadata, f"TrialConfig.{f.name} declares no valid range"


@pytest.mark.parametrize("field,value,message", [
    ("lr", 1e308, "lr must be positive and finite in (0, 3.4e+38], got 1e+308"),
    ("lr", float("inf"), "lr must be positive and finite in (0, 3.4e+38], got inf"),
    ("lr", float("nan"), "lr must be positive and finite in (0, 3.4e+38], got nan"),
    ("lr", 0.0, "lr must be positive and finite"),
    ("lr", True, "lr must be positive and finite"),
    ("tasks", 0, "tasks must be a positive integer in [1, 2^63-1], got 0"),
    ("batch_size", 2.5, "batch_size must be a positive integer"),
    ("hidden", True, "hidden must be a positive integer"),
    ("seed", -1, "seed must be a non-negative integer in [0, 2^63-1], got -1"),
    ("stream_seed", INT64_MAX + 1, "stream_seed must be a non-negative integer"),  # a record's int64 overflows
    ("seed", None, "seed must be a non-negative integer"),  # None is a default only where the field has one
])
def test_a_value_out_of_range_is_one_line_naming_the_field_and_its_range(field, value, message):
    with pytest.raises(ConfigError) as raised:
        TrialConfig(**{field: value})
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("field,value", [
    ("lr", 1e30),  # diverges within a task: the loop records it (tests/test_loop.py, tests/test_sweeps.py)
    ("lr", 3.4e38), ("lr", 1), ("tasks", 1), ("seed", 0), ("seed", INT64_MAX), ("hidden", None),
])
def test_the_ends_of_a_range_are_accepted(field, value):
    assert getattr(TrialConfig(**{field: value}), field) == value


def test_lop_trial_help_shows_each_range():
    from click.testing import CliRunner

    from sweeps.cli import main
    shown = " ".join(CliRunner().invoke(main, ["trial", "--help"], terminal_width=1000).output.split())
    assert "lang-binary 0.1). Range: (0, 3.4e+38]." in shown
    assert "Hidden layers of the MLP. Range: [1, 2^63-1]." in shown
    assert "batch order and mitigation randomness. Range: [0, 2^63-1]." in shown
