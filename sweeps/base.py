"""`Sweep`: a figure or table of the paper as data (arms x replicates x scales), and the sweep registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from lopmodels.registry import ConfigError, Registry, check_choice
from trainables.config import TrialConfig

SCALES = ("paper", "small", "smoke")
DEFAULT_SEEDS = 5

# Rough CPU seconds per training sample per epoch at the paper's widths, 2 threads (MACHINE-NOTES.md);
# a GRU's cost grows with sequence length and roughly with hidden size squared.
SECONDS_PER_SAMPLE = {"mlp": 3e-6, "lstm": 6.5e-5, "gru": 2.7e-4}
TRIAL_OVERHEAD_SECONDS = 2.0
TRAIN_SAMPLES = {"mnist": 60_000, "languages": 800}  # per class for languages (the offline corpus)


@dataclass(frozen=True)
class Trial:
    """One Tune trial of a sweep: its arm, its replicate and its config."""

    arm: str
    replicate: int
    config: TrialConfig


@dataclass(frozen=True)
class Sweep:
    """The runs behind one figure or table: a base config, named arms that vary it, and scales."""

    name: str
    title: str
    base: Mapping[str, Any]  # TrialConfig fields shared by every arm
    arms: Mapping[str, Mapping[str, Any]]  # arm label -> fields that differ from `base`
    scales: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "small"/"smoke" -> overrides
    notes: Mapping[str, str] = field(default_factory=dict)  # scale -> what it can and cannot show

    def config(self, arm: str, scale: str, replicate: int) -> TrialConfig:
        check_choice("arm", arm, self.arms)
        check_choice("scale", scale, SCALES)
        # replicate k uses seed = stream_seed = k in every arm: arms are paired, replicates differ in both
        fields = {**self.base, **self.scales.get(scale, {}), **self.arms[arm], "seed": replicate,
                  "stream_seed": replicate}
        return TrialConfig(**fields)

    def trials(self, scale: str = "paper", seeds: int = DEFAULT_SEEDS, seed_start: int = 0,
               arms: list[str] | None = None) -> list[Trial]:
        """Every trial, arm-major: a plain list that Tune only schedules."""
        if seeds < 1 or seed_start < 0:
            raise ConfigError(f"--seeds must be at least 1 and --seed-start non-negative, got {seeds}, {seed_start}")
        for arm in arms or []:
            check_choice(f"arm of sweep {self.name!r}", arm, self.arms)
        chosen = arms or list(self.arms)
        return [Trial(arm, k, self.config(arm, scale, k)) for arm in chosen
                for k in range(seed_start, seed_start + seeds)]


def estimated_cpu_seconds(cfg: TrialConfig) -> float:
    """A rough CPU cost of one trial on 2 threads, for `lop sweep list` and `run`'s plan."""
    cfg = cfg.resolved()
    spec = cfg.stream_spec
    classes = len(cfg.languages) if cfg.languages else len(spec.classes)
    per_class = TRAIN_SAMPLES[spec.dataset] // (classes if spec.dataset == "mnist" else 1)
    if cfg.train_limit:
        per_class = min(per_class, cfg.train_limit // classes)
    samples_per_task = per_class * (2 if "binary" in cfg.stream else classes)
    per_sample = SECONDS_PER_SAMPLE[cfg.model] * (cfg.hidden / {"mlp": 25, "lstm": 25, "gru": 64}[cfg.model]) ** 2
    if cfg.model != "mlp":
        per_sample *= cfg.seq_len / (28 if cfg.model == "lstm" else 50)
    return TRIAL_OVERHEAD_SECONDS + cfg.tasks * cfg.epochs_per_task * samples_per_task * per_sample * 1.2


SWEEPS: Registry[Sweep] = Registry("sweep")


def register_sweep(sweep: Sweep) -> Sweep:
    for scale in sweep.scales:
        check_choice("scale", scale, SCALES)
    for arm in sweep.arms:  # every arm must validate at every scale now, not in hour three
        for scale in SCALES:
            sweep.config(arm, scale, 0)
    SWEEPS.register(sweep.name)(sweep)
    return sweep

