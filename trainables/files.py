"""Files written so that a reader sees the old file or the new one, never half of one (torch-free)."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lopmodels.errors import ConfigError


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, unique to this call, that replaces `target` when the block ends
    without an error (and is removed when it raises): write the new contents there."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes, sync: bool = False) -> None:
    """Replace `target`'s contents with `data` in one step; `sync`: on disk before it replaces the old file."""
    with replacing(target) as tmp, open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())


def check_output(target: Path, *, force: bool, option: str = "--out") -> None:
    """Refuse, before any work, an output file that exists (unless `force`) or that cannot be written: tried by
    creating a file beside it, since permission bits say nothing for root or on a read-only mount."""
    if target.is_dir():
        raise ConfigError(f"{option} {target} is a folder; give a file path")
    if target.exists() and not force:
        raise ConfigError(f"{option} {target} exists; give another path or --force to replace it")
    if not target.parent.is_dir():
        nearest = next((folder for folder in target.parents if folder.exists()), None)
        if nearest is not None and not nearest.is_dir():  # a path under a regular file
            raise ConfigError(f"cannot write {option} {target}: {nearest} is a file, not a folder; give a path "
                              "in a folder")
        raise ConfigError(f"cannot write {option} {target}: folder {target.parent} does not exist; create it or "
                          "give a path in an existing folder")
    probe = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.probe")
    try:
        probe.touch(exist_ok=False)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"cannot write {option} {target}: {reason} ({target.parent}); give a path in a "
                          "writable folder") from None
    probe.unlink(missing_ok=True)
