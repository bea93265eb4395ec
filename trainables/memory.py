"""Whether a trial's model and batches fit in the memory it trains in, checked before its first step.

A size that cannot fit (a `--hidden` of a million) would otherwise fail deep in the allocator with a traceback,
or swap the machine to a halt; the estimate turns it into one line that names the size. It is an estimate:
it counts what grows with the config (parameters and the tensors of one batch), not the data already loaded
or the framework's own overhead, and it refuses only a size that is over the memory free.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lopmodels.base import MODELS, ModelSpec
from lopmodels.catalog import MODEL_INFO
from lopmodels.errors import ConfigError
from trainables.config import TrialConfig

FLOAT_BYTES = 4
PARAMETER_COPIES = 4  # the weights, their gradients and Adam's two moments
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")  # cgroup v2: a container's limit, which the machine-wide free memory ignores


def parameter_count(model: str, spec: ModelSpec) -> int:
    """The model's parameters, counted on the meta device: nothing is allocated, however large."""
    with torch.device("meta"):
        net = MODELS[model](spec)
    return sum(p.numel() for p in net.parameters())


def activation_floats(model: str, spec: ModelSpec, rows: int, steps: int) -> int:
    """Floats of one batch of `rows` samples of `steps` time steps: what backward keeps, and its gradients."""
    info = MODEL_INFO[model]
    layers = 1 if info.recurrent else spec.hidden_layers
    per_step = spec.hidden * layers * info.floats_per_unit_step + (spec.embed or 0)
    return rows * (steps if info.recurrent else 1) * per_step


def machine_free_bytes() -> int:
    """Linux's MemAvailable (free plus reclaimable cache); elsewhere the free pages."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def container_free_bytes() -> int | None:
    """What a cgroup v2 memory limit leaves, or None without one."""
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def free_bytes(device: torch.device) -> int:
    """Memory free to this process on `device`: the GPU's free memory, or the machine's (or its container's)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return min(filter(None, (machine_free_bytes(), container_free_bytes())))


def gigabytes(size: int) -> str:
    return f"{size / 1e9:,.1f} GB"


def config_spec(cfg: TrialConfig) -> ModelSpec:
    """The model a resolved `cfg` builds, known without its data (the config's vocabulary size, a head as wide
    as the stream's classes): what a sweep's driver checks before any trial starts."""
    stream = cfg.stream_spec
    return ModelSpec(input_kind=stream.input_kind, num_classes=len(cfg.languages or stream.classes),
                     hidden=cfg.hidden, embed=cfg.embed, vocab_size=cfg.vocab_size if stream.is_language else None,
                     hidden_layers=cfg.hidden_layers, readout=cfg.readout)


def over(model: str, spec: ModelSpec, rows: int, steps: int, free: int, where: str) -> str | None:
    """Why the model and batches of `rows` samples cannot fit in `free` bytes (of `where`), or None if they can.

    `rows`: the largest batch a trial runs (training, evaluation or the diagnostics' probe)."""
    parameters = parameter_count(model, spec)  # built once on the meta device: for the size and the message
    needed = FLOAT_BYTES * (PARAMETER_COPIES * parameters + activation_floats(model, spec, rows, steps))
    if needed <= free:
        return None
    batch = f"{rows:,} samples" + (f" x {steps} steps" if MODEL_INFO[model].recurrent else "")
    return (f"model {model!r} at hidden {spec.hidden:,} needs about {gigabytes(needed)} "
            f"({parameters:,} parameters with their gradients and Adam's moments, and batches of "
            f"{batch}), more than the {gigabytes(free)} {where}")


def check_fits(model: str, spec: ModelSpec, rows: int, steps: int, device: torch.device) -> None:
    """Raise `ConfigError` naming the size when the model and its batches cannot fit in `device`'s free memory."""
    problem = over(model, spec, rows, steps, free_bytes(device), f"free on {device.type}")
    if problem:
        raise ConfigError(f"{problem}; lower --hidden (or --embed, --batch-size)")
