"""Task transforms: what a stream's task does to its inputs or labels beyond choosing and relabelling classes.

A transform is a function `(train, test, rng, num_classes) -> (train, test)` on the task's device splits, where
`rng` is a numpy generator fixed by (stream seed, task): every arm of a replicate sees the same transform, and a
resumed trial needs no transform state. One file each, registered by name; a stream names its transform
(`StreamSpec.transform`).
"""
from lopmodels.registry import Registry

TASK_TRANSFORMS = Registry("task transform", modules=(
    "trainables.transforms.permute_pixels",
    "trainables.transforms.random_labels",
))
