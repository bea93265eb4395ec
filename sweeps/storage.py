"""Where sweeps live: a local or network folder (a `pathlib.Path`), or a URI that `pyarrow.fs` understands.

`location(text)` returns a `Path` for a plain path and a `UriPath` for a URI (`s3://bucket/lop-results`,
`gs://...`, `file:///mnt/shared/lop-results`). A `UriPath` offers the few pathlib operations that the
manifest, `lop sweep status`/`resume` and `lop results export` use, read and written through
`pyarrow.fs`, so those commands work from any machine that can read the storage. Tune itself is given
the URI as its `storage_path`.
"""
from __future__ import annotations

import fnmatch
import os
import threading
import uuid
from pathlib import Path
from typing import Iterator, Union

import pyarrow as pa
import pyarrow.fs as pafs

from lopmodels.errors import ConfigError, StorageUnreachable
from trainables.files import replacing

BUCKET_EXAMPLE = "s3://bucket/lop-results"
URI_EXAMPLES = f"{BUCKET_EXAMPLE}, gs://bucket/lop-results or file:///mnt/shared/lop-results"
CONTACT_SECONDS = 20.0  # a first answer from a bucket, before any work


class UriPath:
    """A file or folder at a `pyarrow.fs` URI, with the pathlib methods sweeps need."""

    def __init__(self, uri: str, fs: pafs.FileSystem, path: str, query: str = "",
                 kind: pafs.FileType | None = None) -> None:
        self.uri = uri.rstrip("/")  # without the query string
        self.fs = fs
        self.path = path.rstrip("/") or "/"  # the same place, as `fs` names it
        self.query = query  # `?region=...` and the like, kept for Tune and for messages
        self._kind = kind  # known from a listing: saves a round trip per file on a bucket

    @classmethod
    def parse(cls, text: str, contact: bool = True) -> "UriPath":
        """The URI `text`; with `contact`, asked about its path once, within a bound (`first_contact`)."""
        uri, _, query = text.partition("?")
        try:
            fs, path = filesystem(text)
        except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ValueError... for bad URIs
            # a URI pyarrow cannot parse is bad input; one it parses but cannot open is out of reach
            kind = ConfigError if isinstance(error, (pa.ArrowInvalid, ValueError)) else StorageUnreachable
            raise kind(f"cannot use storage {text!r}: {str(error).splitlines()[0]}; give a folder or a URI "
                       f"such as {URI_EXAMPLES}") from None
        if contact:
            first_contact(text, fs, path)
        return cls(uri, fs, path, f"?{query}" if query else "")

    def __str__(self) -> str:
        return self.uri + self.query

    def __repr__(self) -> str:
        return f"UriPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UriPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: "UriPath") -> bool:
        return str(self) < str(other)

    def __truediv__(self, name: str) -> "UriPath":
        return self._child(name)

    def _child(self, name: str, kind: pafs.FileType | None = None) -> "UriPath":
        return UriPath(f"{self.uri}/{name}", self.fs, f"{self.path.rstrip('/')}/{name}", self.query, kind)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> "UriPath":
        return UriPath(self.uri.rsplit("/", 1)[0], self.fs, self.path.rsplit("/", 1)[0] or "/", self.query)

    @property
    def local(self) -> Path | None:
        """The same place as a local path, when the URI names the local filesystem (`file://`)."""
        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def resolve(self) -> "UriPath":
        return self

    def _type(self) -> pafs.FileType:
        return self._kind if self._kind is not None else self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def iterdir(self) -> Iterator["UriPath"]:
        for info in self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True)):
            yield self._child(info.base_name, info.type)

    def glob(self, pattern: str) -> Iterator["UriPath"]:
        """Patterns of plain names and `*`, one level per `/` (`*/result.json`), as `Path.glob` reads them."""
        first, _, rest = pattern.partition("/")
        for child in self.iterdir():
            if fnmatch.fnmatchcase(child.name, first):
                if not rest:
                    yield child
                elif child.is_dir():
                    yield from child.glob(rest)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write through a temporary name and move it into place, so readers never see half a file."""
        tmp = self.parent / f".{self.name}.{uuid.uuid4().hex[:8]}.tmp"
        with self.fs.open_output_stream(tmp.path) as stream:
            stream.write(text.encode(encoding))
        self.fs.move(tmp.path, self.path)

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        self.fs.create_dir(self.path, recursive=parents)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        if any(True for _ in self.iterdir()):
            raise OSError(f"{self} is not empty")
        self.fs.delete_dir(self.path)


StoragePath = Union[Path, UriPath]


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of `uri` (pyarrow's, by its scheme) and the path it names there; looked up by name when a
    URI is parsed, so a test can put a bucket that never answers in its place (tests/test_storage.py)."""
    return pafs.FileSystem.from_uri(uri)


def first_contact(text: str, fs: pafs.FileSystem, path: str) -> None:
    """Ask the storage about `path` once, within CONTACT_SECONDS ($LOP_STORAGE_TIMEOUT_S): a bucket with no
    network behind it would otherwise hang (gs:// retries for a quarter of an hour, deaf to Ctrl-C)."""
    seconds = float(os.environ.get("LOP_STORAGE_TIMEOUT_S", CONTACT_SECONDS))
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            fs.get_file_info(path)
            outcome.append(None)
        except BaseException as error:  # reported in the caller's thread
            outcome.append(error)

    thread = threading.Thread(target=ask, daemon=True, name="lop-storage-contact")
    thread.start()
    thread.join(seconds)
    scheme = text.split("://", 1)[0]
    if not outcome:
        raise StorageUnreachable(f"storage {text!r} did not answer within {seconds:g} s; check the network, the "
                                 f"{scheme} credentials and the bucket name (or set LOP_STORAGE_TIMEOUT_S)")
    if outcome[0] is not None:
        first = (str(outcome[0]).strip().splitlines() or [type(outcome[0]).__name__])[0]
        raise StorageUnreachable(f"cannot reach storage {text!r}: {first}; check the {scheme} credentials and "
                                 "the bucket name")


def is_uri(text: str) -> bool:
    return "://" in text


def location(where: str | Path | UriPath, contact: bool = True) -> StoragePath:
    """A local or network folder as an absolute `Path`; anything with a scheme (`s3://`) as a `UriPath` (by
    default asked once, within a bound, whether it answers)."""
    if isinstance(where, UriPath):
        return where
    text = str(where)
    return UriPath.parse(text, contact) if is_uri(text) else Path(text).expanduser().resolve()


def write_text_atomic(target: StoragePath, text: str) -> None:
    """Replace `target`'s contents in one step: a reader sees the old file or the new one, never half."""
    if isinstance(target, UriPath):
        target.write_text(text)
        return
    with replacing(target) as tmp:
        tmp.write_text(text)


def local_path(where: StoragePath) -> Path | None:
    """Where the storage is on this machine's filesystem, or None for a bucket."""
    return where if isinstance(where, Path) else where.local


def probe_folder(marker: str, content: str) -> str | None:
    """Run on one node: None if it sees the driver's `marker` file and can write beside it, else what is wrong."""
    path = Path(marker)
    try:
        if path.read_text() != content:
            return f"{path} holds something else"
    except OSError as error:
        return f"cannot read {path} ({error.strerror or error})"
    probe = path.with_name(f"{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        probe.write_text(content)
        probe.unlink()
    except OSError as error:
        return f"cannot write in {path.parent} ({error.strerror or error})"
    return None
