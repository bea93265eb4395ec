"""The on-disk cache: where it lives, and bundles of files checked against a manifest.

A bundle is a directory of files plus `manifest.json`, which holds each file's sha256 and
the writer's metadata. Files are written atomically and the manifest last, so a reader sees
either a complete bundle or one whose hashes do not match; either way `read_bundle` says so
and the caller rebuilds under `locked`, because several Ray trials may prepare at once.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainables.files import write_bytes

MANIFEST = "manifest.json"
FORMAT = 1  # bump when the layout of a bundle changes, so old caches are rebuilt


class CacheInvalid(Exception):
    """A bundle is missing or does not match its manifest; the message says which file and why."""


def default_data_dir() -> Path:
    """`LOP_DATA_DIR` if set, else `$XDG_CACHE_HOME/lop` (default `~/.cache/lop`)."""
    if env := os.environ.get("LOP_DATA_DIR"):
        return Path(env).expanduser().absolute()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser().absolute() / "lop"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` (its folder made if needed) in one step, on disk before it replaces the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data, sync=True)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@dataclass(frozen=True)
class Bundle:
    """The verified contents of a bundle directory."""

    path: Path
    meta: dict[str, Any]  # what the writer stored beside the files (source, classes, ...)
    files: dict[str, bytes]
    digest: str  # short sha256 over the files' hashes and the metadata: the dataset's data_hash

    def array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.files[name]), allow_pickle=False)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.files[name]))


def bundle_digest(hashes: Mapping[str, str], meta: Mapping[str, Any]) -> str:
    canonical = json.dumps({"files": dict(hashes), "meta": dict(meta)}, sort_keys=True, ensure_ascii=False)
    return sha256(canonical.encode())[:12]


def write_bundle(path: Path, files: Mapping[str, bytes], meta: Mapping[str, Any]) -> None:
    """Replace the bundle at `path`: drop the manifest, write the files, then the new manifest."""
    manifest = path / MANIFEST
    manifest.unlink(missing_ok=True)
    for name, data in files.items():
        write_atomic(path / name, data)
    hashes = {name: sha256(data) for name, data in files.items()}
    body = {"format": FORMAT, "files": hashes, "meta": dict(meta)}
    write_atomic(manifest, json.dumps(body, indent=1, ensure_ascii=False).encode())


def read_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest of the bundle at `path`; `CacheInvalid` if absent, unreadable or outdated."""
    try:
        body = json.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise CacheInvalid(f"no cache at {path}") from None
    except (OSError, ValueError) as e:
        raise CacheInvalid(f"unreadable {path / MANIFEST} ({e})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CacheInvalid(f"{path / MANIFEST} is not a format-{FORMAT} manifest")
    return body


def read_bundle(path: Path) -> Bundle:
    """Read every file of the bundle and check it against the manifest's sha256."""
    body = read_manifest(path)
    files = {}
    for name, expected in body["files"].items():
        try:
            data = (path / name).read_bytes()
        except OSError as e:
            raise CacheInvalid(f"cannot read {path / name} ({e.strerror})") from None
        if sha256(data) != expected:
            raise CacheInvalid(f"{path / name} does not match its sha256 in {MANIFEST}")
        files[name] = data
    return Bundle(path=path, meta=body["meta"], files=files, digest=bundle_digest(body["files"], body["meta"]))


def cached_bundle(path: Path, usable: Callable[[Bundle], bool], build: Callable[[], None],
                  echo: Callable[[str], None]) -> Bundle:
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


Stamp = tuple[str, tuple[tuple[str, int, int, int], ...]]


def bundle_stamp(path: Path) -> tuple[Stamp, dict[str, Any]]:
    """(The bundle's data hash and each file's size, mtime and inode), and its metadata: from the manifest and
    `stat` only, without reading the files. A rebuild changes the hash; a file damaged or replaced behind the
    manifest's back changes its stat."""
    body = read_manifest(path)
    try:
        stats = tuple((name, s.st_size, s.st_mtime_ns, s.st_ino)
                      for name in sorted(body["files"]) for s in [(path / name).stat()])
    except OSError as e:
        raise CacheInvalid(f"cannot stat a file of {path} ({e.strerror})") from None
    return (bundle_digest(body["files"], body["meta"]), stats), body["meta"]
