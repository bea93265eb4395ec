"""Tokenizers for language ID, trained on the training split only, and the token ids they give.

Two kinds, both Hugging Face `tokenizers` objects saved as JSON beside the ids they produced:
"bpe" (byte-pair merges over Metaspace words, so unsegmented scripts such as Chinese work) and
"char" (one id per character seen in training). Both normalise to NFC and nothing else: no
lowercasing, no accent stripping, so Hindi keeps its vowel signs and every script keeps its letters.
Ids 0 and 1 are PAD and UNK; a character never seen in training becomes UNK.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
MAX_LEN = 128  # tokens stored per sentence; a trial truncates further to its seq_len


def _bpe(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    # words at spaces (kept as "▁"), punctuation and single digits apart; CJK runs stay whole and BPE splits them
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True)])
    tokenizer.decoder = decoders.Metaspace()
    # every character of the training text joins the alphabet (no limit_alphabet), so only unseen ones are UNK
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def _char(texts: Sequence[str]) -> Tokenizer:
    alphabet = sorted(set(unicodedata.normalize("NFC", "".join(texts))))
    vocab = {PAD: PAD_ID, UNK: UNK_ID} | {char: i for i, char in enumerate(alphabet, start=2)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # every character its own token
    return tokenizer


def train(kind: str, texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A tokenizer of `kind` fitted to `texts` (the training split), padding and truncating to MAX_LEN."""
    tokenizer = _bpe(texts, vocab_size) if kind == "bpe" else _char(texts)
    assert tokenizer.token_to_id(PAD) == PAD_ID and tokenizer.token_to_id(UNK) == UNK_ID
    tokenizer.enable_truncation(MAX_LEN)
    tokenizer.enable_padding(length=MAX_LEN, pad_id=PAD_ID, pad_token=PAD)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [N, MAX_LEN] padded with PAD, and lengths [N]; a sentence with no tokens becomes one UNK."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(encodings), MAX_LEN)
    lengths = np.array([e.attention_mask for e in encodings], dtype=bool).reshape(ids.shape).sum(axis=1)
    empty = lengths == 0
    ids[empty, 0] = UNK_ID
    lengths[empty] = 1
    return ids, lengths


def unk_rates(tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
              classes: Sequence[str]) -> dict[str, float]:
    """Fraction of real (non-padding) tokens that are UNK, per class."""
    real = torch.arange(tokens.shape[1]) < lengths[:, None]
    unk = ((tokens == UNK_ID) & real).sum(dim=1)
    unk_per_class = torch.bincount(labels, weights=unk.double(), minlength=len(classes))
    real_per_class = torch.bincount(labels, weights=lengths.double(), minlength=len(classes))
    return dict(zip(classes, (unk_per_class / real_per_class.clamp(min=1)).tolist(), strict=True))
