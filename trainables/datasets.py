"""What each dataset is, torch-free: the facts streams, configs and cost estimates need without loading it.

A dataset is one module (its `trainables.data.source.DataSource`: fetch, cache, read) plus one line here.
"""
from __future__ import annotations

from dataclasses import dataclass

from lopmodels.catalog import INPUT_KINDS
from lopmodels.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # the inputs it holds (lopmodels.catalog.INPUT_KINDS): what a model must read to train on it
    train_per_class: int  # training samples per class as prepared by default (the cost estimates' sizes)
    module: str  # the module whose import registers its DataSource in trainables.data.source.SOURCES (torch)
    classes: tuple[str, ...] = ()  # the classes it holds as `lop data prepare` makes it by default, in label order
    # its inputs are 8-bit pixels normalised as MNIST's (trainables/data/mnist_source.py), so the protocol switch
    # pixels="raw" can give the 0-255 values back (docs/protocols.md)
    raw_pixels: bool = False

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"dataset {self.name!r} holds {self.kind!r} inputs; choose from {INPUT_KINDS}")


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    DATASETS.register(info.name)(info)
    return info


register_dataset(DatasetInfo("mnist", "image", train_per_class=6_000, module="trainables.data.mnist_source",
                             classes=tuple(str(d) for d in range(10)), raw_pixels=True))
register_dataset(DatasetInfo("languages", "tokens", train_per_class=800,  # the offline corpus (docs/data.md)
                             module="trainables.data.languages_source",
                             # the paper's 20 languages (ISO 639-3)
                             classes=("spa", "por", "ita", "fra", "ron", "deu", "swe", "rus", "hin", "ara",
                                      "jpn", "kor", "tur", "nld", "ell", "pol", "ukr", "ces", "heb", "cmn")))
