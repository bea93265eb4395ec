"""`prepare` and `load`: prepared datasets in the cache, built on first use and rebuilt when damaged.

Layout under the data directory (docs/data.md says more):
    mnist/raw/            the four IDX files, when a user placed them there or a mirror served them
    mnist/arrays/         {train,test}_{images,labels}.npy (uint8), manifest.json
    languages/tatoeba/    CODE.parquet: Tatoeba's exports as downloaded
    languages/text/       train.parquet, test.parquet (language, text), manifest.json
    languages/TOKENIZER/  tokenizer.json, {train,test}_{tokens,lengths,labels}.npy, manifest.json
Each folder with a manifest is a bundle (see cache.py); BUNDLE.lock beside it serialises rebuilds.

`load` keeps what it read for the rest of the process: Ray Tune runs trial after trial in one reused
process, and reading the MNIST arrays again took 0.24 s a trial (docs/performance.md).
"""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from lopmodels.errors import ConfigError
from lopmodels.registry import check_choice

from . import mnist
from . import tokenizer as tok
from .dataset import Dataset, Split
from .cache import (
    Bundle,
    CacheInvalid,
    bundle_digest,
    default_data_dir,
    locked,
    npy_bytes,
    parquet_bytes,
    read_bundle,
    read_manifest,
    sha256,
    write_bundle,
)
from .languages import PAPER_LANGUAGES, check_languages
from .languages import fetch as fetch_sentences

NAMES = ("mnist", "languages")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
Echo = Callable[[str], None]
LOADED_MAX = 4  # datasets a process keeps (MNIST is 0.2 GB in memory); a trial's process uses one or two


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _resolve(name: str, data_dir: Path | str | None) -> Path:
    check_choice("dataset", name, NAMES)
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser().absolute()


def _cached(path: Path, usable: Callable[[Bundle], bool], build: Callable[[], None], echo: Echo) -> Bundle:
    """The bundle at `path`, (re)built under its lock when missing, damaged or not `usable`."""
    def current() -> Bundle | str:
        try:
            bundle = read_bundle(path)
        except CacheInvalid as e:
            return str(e)
        return bundle if usable(bundle) else f"{path} was prepared from other data or settings"

    found = current()
    if isinstance(found, Bundle):
        return found
    with locked(path.with_name(path.name + ".lock")):
        found = current()  # another process may have built it while this one waited
        if isinstance(found, Bundle):
            return found
        echo(f"{found}; preparing it")
        build()
        return read_bundle(path)


def _mnist_bundle(data_dir: Path, echo: Echo) -> Bundle:
    path = data_dir / "mnist" / "arrays"

    def build() -> None:
        source, arrays = mnist.fetch(data_dir / "mnist" / "raw", data_dir, echo)
        files = {f"{key}.npy": npy_bytes(array) for key, array in arrays.items()}
        write_bundle(path, files, {"source": source, "classes": list(mnist.CLASSES)})

    return _cached(path, lambda bundle: True, build, echo)


def _mnist_dataset(bundle: Bundle) -> Dataset:
    def split(name: str) -> Split:
        pixels = torch.from_numpy(bundle.array(f"{name}_images.npy"))
        images = pixels.float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
        return Split(images, torch.from_numpy(bundle.array(f"{name}_labels.npy")).long())

    return Dataset(name="mnist", kind="image", classes=tuple(bundle.meta["classes"]), train=split("train"),
                   test=split("test"), source=bundle.meta["source"], data_hash=bundle.digest)


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

    return _cached(path, lambda bundle: recipe is None or bundle.meta["recipe"] == recipe, build, echo)


def _tokens_bundle(data_dir: Path, text: Bundle, kind: str, vocab_size: int, echo: Echo) -> Bundle:
    """Token ids of the text bundle's sentences, for one tokenizer trained on its training split."""
    name = tok.tokenizer_name(kind, vocab_size)
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

    return _cached(path, lambda bundle: bundle.meta["text_hash"] == text.digest, build, echo)


def _languages_dataset(bundle: Bundle) -> Dataset:
    def split(name: str) -> Split:
        def tensor(key: str) -> torch.Tensor:
            return torch.from_numpy(bundle.array(f"{name}_{key}.npy").astype(np.int64))

        return Split(tensor("tokens"), tensor("labels"), tensor("lengths"))

    meta = bundle.meta
    return Dataset(name="languages", kind="tokens", classes=tuple(meta["classes"]), train=split("train"),
                   test=split("test"), source=meta["source"], data_hash=bundle.digest, tokenizer=meta["tokenizer"],
                   vocab_size=meta["vocab_size"], pad_id=meta["pad_id"])


def _report(dataset: Dataset, folders: Sequence[Path], echo: Echo) -> None:
    """Source, per-class counts (and the test split's UNK rate for tokens), cache folders."""
    echo(f"{dataset.name}: {dataset.source}")
    n = len(dataset.classes)
    train = torch.bincount(dataset.train.labels, minlength=n).tolist()
    test = torch.bincount(dataset.test.labels, minlength=n).tolist()
    if dataset.kind == "tokens":
        echo(f"  tokenizer {dataset.tokenizer}: {dataset.vocab_size} ids (PAD {dataset.pad_id}, UNK {tok.UNK_ID}), "
             f"up to {dataset.max_len} tokens per sentence")
        split = dataset.test
        unk = tok.unk_rates(split.inputs, split.lengths, split.labels, dataset.classes)
        echo(f"  {'class':<6}{'train':>7}{'test':>7}{'test UNK %':>12}")
        for i, name in enumerate(dataset.classes):
            echo(f"  {name:<6}{train[i]:>7}{test[i]:>7}{100 * unk[name]:>12.2f}")
    else:
        echo(f"  {'class':<6}{'train':>7}{'test':>7}")
        for i, name in enumerate(dataset.classes):
            echo(f"  {name:<6}{train[i]:>7}{test[i]:>7}")
    echo(f"  {'total':<6}{sum(train):>7}{sum(test):>7}")
    echo(f"  cache {', '.join(map(str, folders))} (data_hash {dataset.data_hash})")


def prepare(name: str, *, data_dir: Path | None = None, languages: Sequence[str] | None = None,
            tokenizer: str = "bpe", vocab_size: int = 8192, corpus: Path | None = None,
            echo: Echo = print) -> Dataset:
    """Fetch or locate a dataset, cache it, and echo its source, per-class counts and cache folders.

    A valid cache made the same way is reused. For "languages": `languages` (ISO 639-3 codes, at
    least 2; default the paper's 20, or every language of `corpus`) and `corpus` (a TSV, CSV or
    parquet file with columns language and text) replace the cached sentences when they differ.
    """
    data_dir = _resolve(name, data_dir)
    if name == "mnist":
        if languages is not None or corpus is not None:
            raise ConfigError("languages and corpus apply to the 'languages' dataset only")
        echo(f"mnist: preparing in {data_dir}")
        dataset = _mnist_dataset(_mnist_bundle(data_dir, echo))
        folders = [data_dir / "mnist" / "arrays"]
    else:
        tok.tokenizer_name(tokenizer, vocab_size)  # a bad tokenizer fails before any download
        echo(f"languages: preparing in {data_dir}")
        text = _text_bundle(data_dir, _recipe(languages, corpus), echo)
        tokens = _tokens_bundle(data_dir, text, tokenizer, vocab_size, echo)
        dataset = _languages_dataset(tokens)
        folders = [text.path, tokens.path]
    _report(dataset, folders, echo)
    return dataset


# bundle path of the loaded dataset -> (what was on disk then, the dataset); least recently used first
_loaded: OrderedDict[Path, tuple[tuple[Any, ...], Dataset]] = OrderedDict()
_loaded_lock = threading.Lock()


def _stamp(path: Path) -> tuple[str, dict[str, Any], tuple[tuple[str, int, int, int], ...]]:
    """The bundle's data hash, its metadata, and each file's size, mtime and inode: the manifest and `stat` only.

    A rebuild changes the hash; a file damaged or replaced behind the manifest's back changes its stat.
    """
    body = read_manifest(path)
    try:
        stats = tuple((name, s.st_size, s.st_mtime_ns, s.st_ino)
                      for name in sorted(body["files"]) for s in [(path / name).stat()])
    except OSError as e:
        raise CacheInvalid(f"cannot stat a file of {path} ({e.strerror})") from None
    return bundle_digest(body["files"], body["meta"]), body["meta"], stats


def _on_disk(name: str, path: Path) -> tuple[Any, ...] | None:
    """What `load` would read at `path`, as (data hash, file stats), from the manifests and `stat` alone.

    None where reading would (re)build something: a bundle missing or outdated, tokens of other sentences.
    """
    try:
        digest, meta, stats = _stamp(path)
        if name == "mnist":
            return digest, stats
        text_digest, _, text_stats = _stamp(path.with_name("text"))
    except CacheInvalid:
        return None
    return (digest, stats + text_stats) if meta.get("text_hash") == text_digest else None


def _read(name: str, data_dir: Path, tokenizer: str, vocab_size: int) -> Dataset:
    """The dataset from its bundles, (re)building any that is missing, damaged or made from other data."""
    if name == "mnist":
        return _mnist_dataset(_mnist_bundle(data_dir, _stderr))
    text = _text_bundle(data_dir, None, _stderr)
    return _languages_dataset(_tokens_bundle(data_dir, text, tokenizer, vocab_size, _stderr))


def load(name: str, *, data_dir: Path | None = None, tokenizer: str = "bpe", vocab_size: int = 8192) -> Dataset:
    """The prepared dataset from the cache, preparing it first (progress on stderr) if missing or damaged.

    For "languages", the sentences are whatever `prepare` cached last (default: the paper's 20 languages).
    A second call in the process returns the same `Dataset` (its tensors shared: treat them as read-only)
    while the manifests and file stats on disk are unchanged; after a rebuild it reads the new data.
    """
    data_dir = _resolve(name, data_dir)
    if name == "mnist":
        path = data_dir / "mnist" / "arrays"
    else:
        path = data_dir / "languages" / tok.tokenizer_name(tokenizer, vocab_size)
    found = _on_disk(name, path)
    with _loaded_lock:
        if found is not None and path in _loaded and _loaded[path][0] == found:
            _loaded.move_to_end(path)
            return _loaded[path][1]
    dataset = _read(name, data_dir, tokenizer, vocab_size)
    found = _on_disk(name, path)  # after any rebuild; kept only if it describes the data just read
    if found is not None and found[0] == dataset.data_hash:
        with _loaded_lock:
            _loaded[path] = (found, dataset)
            _loaded.move_to_end(path)
            while len(_loaded) > LOADED_MAX:
                _loaded.popitem(last=False)
    return dataset


def load_tokenizer(*, data_dir: Path | None = None, tokenizer: str = "bpe", vocab_size: int = 8192) -> Tokenizer:
    """The tokenizer that made `load("languages", ...)`'s token ids, to encode or decode more text."""
    data_dir = _resolve("languages", data_dir)
    text = _text_bundle(data_dir, None, _stderr)
    tokens = _tokens_bundle(data_dir, text, tokenizer, vocab_size, _stderr)
    return Tokenizer.from_str(tokens.files["tokenizer.json"].decode())
