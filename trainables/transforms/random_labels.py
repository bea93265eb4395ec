"""Random-label MNIST (Lyle et al., 2023; Kumar et al., 2023): each task draws every image's label afresh,
uniformly over the classes, so a task is memorisation. Test labels are drawn too: test accuracy is chance by
construction, and such a stream measures plasticity by training accuracy (`StreamSpec.accuracy`)."""
from __future__ import annotations

import numpy as np
import torch

from trainables.stream_data import DeviceSplit
from trainables.transforms import TASK_TRANSFORMS


def relabelled(split: DeviceSplit, rng: np.random.Generator, num_classes: int) -> DeviceSplit:
    labels_cpu = torch.from_numpy(rng.integers(0, num_classes, size=len(split)))
    return DeviceSplit(split.inputs, labels_cpu.to(split.labels.device), labels_cpu, split.lengths_cpu)


@TASK_TRANSFORMS.register("random-labels")
def random_labels(train: DeviceSplit, test: DeviceSplit, rng: np.random.Generator,
                  num_classes: int) -> tuple[DeviceSplit, DeviceSplit]:
    return relabelled(train, rng, num_classes), relabelled(test, rng, num_classes)
