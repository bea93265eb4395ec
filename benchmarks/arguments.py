"""Argument types the benchmark scripts share (each script runs on its own: `python benchmarks/NAME.py`)."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def positive(text: str) -> int:
    """A positive integer, or argparse's one-line error naming the value."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def names_among(choices: Sequence[str], what: str = "model") -> Callable[[str], list[str]]:
    """An argument type for a comma-separated list of `choices`: unknown or no names give one line naming them."""
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what}(s) {', '.join(unknown) or repr(text)}; "
                                             f"choose from: {', '.join(choices)}")
        return names
    return parse
