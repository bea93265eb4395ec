"""Argument types the benchmark scripts share (each script runs on its own: `python benchmarks/NAME.py`)."""
from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """A positive integer, or argparse's one-line error naming the value."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
