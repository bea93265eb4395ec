"""The tokenizers a language trial may use, and the label each gets: torch-free, so configs and reports read it."""
from __future__ import annotations

from lopmodels.errors import ConfigError
from lopmodels.registry import check_choice

KINDS = ("bpe", "char")
MIN_BPE_VOCAB = 16  # the byte-pair trainer needs room for its special tokens and a few merges


def tokenizer_name(kind: str, vocab_size: int) -> str:
    """The Dataset.tokenizer label and cache folder: "bpe-8192" or "char"."""
    check_choice("tokenizer", kind, KINDS)
    if kind == "bpe" and vocab_size < MIN_BPE_VOCAB:
        raise ConfigError(f"vocab_size must be at least {MIN_BPE_VOCAB}, got {vocab_size}")
    return f"bpe-{vocab_size}" if kind == "bpe" else "char"
