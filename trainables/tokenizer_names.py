"""The tokenizers a language trial may use, and the label each gets: torch-free, so configs and reports read it."""
from __future__ import annotations

from lopmodels.errors import ConfigError
from lopmodels.registry import check_choice

KINDS = ("bpe", "char")


def tokenizer_name(kind: str, vocab_size: int) -> str:
    """The Dataset.tokenizer label and cache folder: "bpe-8192" or "char"."""
    check_choice("tokenizer", kind, KINDS)
    if kind == "bpe" and vocab_size < 16:
        raise ConfigError(f"vocab_size must be at least 16, got {vocab_size}")
    return f"bpe-{vocab_size}" if kind == "bpe" else "char"
