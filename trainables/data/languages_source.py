"""The language corpus in the cache: `languages/text/` (the split sentences) and `languages/TOKENIZER/` (token
ids of those sentences for one tokenizer trained on the training split, with the tokenizer itself)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from . import tokenizer as tok
from .cache import (Bundle, CacheInvalid, Stamp, bundle_stamp, cached_bundle, npy_bytes, parquet_bytes,
                    read_manifest, sha256, write_bundle)
from .dataset import Dataset, Split
from .languages import PAPER_LANGUAGES, check_languages
from .languages import fetch as fetch_sentences
from .source import SOURCES, DataSource, Echo
from trainables.tokenizer_names import tokenizer_name


class LanguagesSource(DataSource):
    """`languages` (ISO 639-3 codes, at least 2; default the paper's 20, or every language of `corpus`) and
    `corpus` (a TSV, CSV or parquet file with columns language and text) replace the cached sentences when they
    differ; `load` reads whatever sentences `prepare` cached last."""

    prepare_options = ("languages", "corpus")

    def prepare(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int,
                languages: Sequence[str] | None = None, corpus: Path | None = None,
                **options: Any) -> tuple[Dataset, list[Path]]:
        tokenizer_name(tokenizer, vocab_size)  # a bad tokenizer fails before any download
        echo(f"languages: preparing in {data_dir}")
        text = _text_bundle(data_dir, _recipe(languages, corpus), echo)
        tokens = _tokens_bundle(data_dir, text, tokenizer, vocab_size, echo)
        return _dataset(tokens), [text.path, tokens.path]

    def folder(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Path:
        return data_dir / "languages" / tokenizer_name(tokenizer, vocab_size)

    def stamp(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Stamp | None:
        (digest, stats), meta = bundle_stamp(self.folder(data_dir, tokenizer=tokenizer, vocab_size=vocab_size))
        (text_digest, text_stats), _ = bundle_stamp(data_dir / "languages" / "text")
        return (digest, stats + text_stats) if meta.get("text_hash") == text_digest else None

    def read(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int) -> Dataset:
        return _dataset(self.tokens(data_dir, echo, tokenizer=tokenizer, vocab_size=vocab_size))

    def tokens(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int) -> Bundle:
        """The token bundle of the cached sentences (with `tokenizer.json`), built if missing."""
        return _tokens_bundle(data_dir, _text_bundle(data_dir, None, echo), tokenizer, vocab_size, echo)


SOURCES.register("languages")(LanguagesSource())


def load_tokenizer(data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int) -> Tokenizer:
    """The tokenizer that made the cached token ids, to encode or decode more text."""
    tokens = LanguagesSource().tokens(data_dir, echo, tokenizer=tokenizer, vocab_size=vocab_size)
    return Tokenizer.from_str(tokens.files["tokenizer.json"].decode())


def _recipe(codes: Sequence[str] | None, corpus: Path | str | None) -> dict[str, Any]:
    """What the text bundle is made from; a cached one with another recipe is rebuilt by `prepare`."""
    if corpus is None:
        return {"languages": list(check_languages(codes or PAPER_LANGUAGES)), "corpus": None}
    corpus = Path(corpus).expanduser().absolute()
    return {"languages": list(codes) if codes else None, "corpus": str(corpus),
            "corpus_sha256": sha256(corpus.read_bytes()) if corpus.is_file() else None}


def _text_bundle(data_dir: Path, recipe: dict[str, Any] | None, echo: Echo) -> Bundle:
    """The split sentences; `recipe` None takes whatever is cached, rebuilding a damaged one as it was made."""
    path = data_dir / "languages" / "text"

    def build() -> None:
        wanted = recipe
        if wanted is None:
            try:
                recorded = read_manifest(path)["meta"]["recipe"]
                wanted = _recipe(recorded["languages"], recorded["corpus"])
            except (CacheInvalid, KeyError, TypeError):
                wanted = _recipe(None, None)
        corpus = Path(wanted["corpus"]) if wanted["corpus"] else None
        source, sentences = fetch_sentences(wanted["languages"], corpus, data_dir / "languages" / "tatoeba",
                                            data_dir, echo)
        files = {"train.parquet": parquet_bytes(sentences.train), "test.parquet": parquet_bytes(sentences.test)}
        write_bundle(path, files, {"source": source, "classes": list(sentences.classes), "recipe": wanted})

    return cached_bundle(path, lambda bundle: recipe is None or bundle.meta["recipe"] == recipe, build, echo)
def _tokens_bundle(data_dir: Path, text: Bundle, kind: str, vocab_size: int, echo: Echo) -> Bundle:
    """Token ids of the text bundle's sentences, for one tokenizer trained on its training split."""
    name = tokenizer_name(kind, vocab_size)
    path = data_dir / "languages" / name

    def build() -> None:
        classes = text.meta["classes"]
        train, test = text.table("train.parquet"), text.table("test.parquet")
        tokenizer = tok.train(kind, train["text"].tolist(), vocab_size)
        files = {"tokenizer.json": tokenizer.to_str().encode()}
        for split, frame in (("train", train), ("test", test)):
            ids, lengths = tok.encode(tokenizer, frame["text"].tolist())
            labels = pd.Categorical(frame["language"], categories=classes).codes
            # stored in the smallest dtype that holds them; load widens to int64
            files[f"{split}_tokens.npy"] = npy_bytes(ids.astype(np.min_scalar_type(tokenizer.get_vocab_size() - 1)))
            files[f"{split}_lengths.npy"] = npy_bytes(lengths.astype(np.min_scalar_type(tok.MAX_LEN)))
            files[f"{split}_labels.npy"] = npy_bytes(labels.astype(np.min_scalar_type(len(classes) - 1)))
        write_bundle(path, files, {"source": text.meta["source"], "classes": classes, "tokenizer": name,
                                   "vocab_size": tokenizer.get_vocab_size(), "pad_id": tok.PAD_ID,
                                   "text_hash": text.digest})

    return cached_bundle(path, lambda bundle: bundle.meta["text_hash"] == text.digest, build, echo)


def _dataset(bundle: Bundle) -> Dataset:
    def split(name: str) -> Split:
        def tensor(key: str) -> torch.Tensor:
            return torch.from_numpy(bundle.array(f"{name}_{key}.npy").astype(np.int64))

        return Split(tensor("tokens"), tensor("labels"), tensor("lengths"))

    meta = bundle.meta
    return Dataset(name="languages", kind="tokens", classes=tuple(meta["classes"]), train=split("train"),
                   test=split("test"), source=meta["source"], data_hash=bundle.digest, tokenizer=meta["tokenizer"],
                   vocab_size=meta["vocab_size"], pad_id=meta["pad_id"])


