"""Permuted MNIST (Goodfellow et al., 2013; Dohare et al., 2024; Kumar et al., 2023): each task one fixed
random permutation of the pixels, applied to its training and test images alike; labels unchanged."""
from __future__ import annotations

import numpy as np
import torch

from trainables.stream_data import DeviceSplit
from trainables.transforms import TASK_TRANSFORMS


def permuted(split: DeviceSplit, permutation: torch.Tensor) -> DeviceSplit:
    images = split.inputs
    flat = images.reshape(images.shape[0], -1)[:, permutation].reshape(images.shape)
    return DeviceSplit(flat, split.labels, split.labels_cpu, split.lengths_cpu)


@TASK_TRANSFORMS.register("permute-pixels")
def permute_pixels(train: DeviceSplit, test: DeviceSplit, rng: np.random.Generator,
                   num_classes: int) -> tuple[DeviceSplit, DeviceSplit]:
    if train.lengths_cpu is not None:
        raise ValueError("permute-pixels applies to images only")
    pixels = train.inputs[0].numel()
    permutation = torch.from_numpy(rng.permutation(pixels)).to(train.inputs.device)
    return permuted(train, permutation), permuted(test, permutation)
