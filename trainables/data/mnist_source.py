"""MNIST in the cache: `mnist/arrays/` ({train,test}_{images,labels}.npy, uint8), read as normalised float images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import mnist
from .cache import Bundle, Stamp, bundle_stamp, cached_bundle, npy_bytes, write_bundle
from .dataset import Dataset, Split
from .source import SOURCES, DataSource, Echo

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual normalisation (torchvision's MNIST examples)


class MnistSource(DataSource):
    def prepare(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int,
                **options: Any) -> tuple[Dataset, list[Path]]:
        echo(f"mnist: preparing in {data_dir}")
        return self.read(data_dir, echo, tokenizer=tokenizer, vocab_size=vocab_size), [self._arrays(data_dir)]

    def folder(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Path:
        return self._arrays(data_dir)

    def stamp(self, data_dir: Path, *, tokenizer: str, vocab_size: int) -> Stamp | None:
        return bundle_stamp(self._arrays(data_dir))[0]

    def read(self, data_dir: Path, echo: Echo, *, tokenizer: str, vocab_size: int) -> Dataset:
        return _dataset(self._bundle(data_dir, echo))

    @staticmethod
    def _arrays(data_dir: Path) -> Path:
        return data_dir / "mnist" / "arrays"

    def _bundle(self, data_dir: Path, echo: Echo) -> Bundle:
        path = self._arrays(data_dir)

        def build() -> None:
            source, arrays = mnist.fetch(data_dir / "mnist" / "raw", data_dir, echo)
            files = {f"{key}.npy": npy_bytes(array) for key, array in arrays.items()}
            write_bundle(path, files, {"source": source, "classes": list(mnist.CLASSES)})

        return cached_bundle(path, lambda bundle: True, build, echo)


SOURCES.register("mnist")(MnistSource())


def _dataset(bundle: Bundle) -> Dataset:
    def split(name: str) -> Split:
        pixels = torch.from_numpy(bundle.array(f"{name}_images.npy"))
        images = pixels.float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
        return Split(images, torch.from_numpy(bundle.array(f"{name}_labels.npy")).long())

    return Dataset(name="mnist", kind="image", classes=tuple(bundle.meta["classes"]), train=split("train"),
                   test=split("test"), source=bundle.meta["source"], data_hash=bundle.digest)
