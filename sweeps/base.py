"""`Sweep`: a figure or table of the paper as data (arms x replicates x scales), and the sweep registry."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from lopmodels.registry import ConfigError, Registry, check_choice
from trainables.config import TrialConfig

SCALES = ("paper", "small", "smoke")
# Replicates per arm when --seeds is not given: 10 where a trial costs minutes on a CPU (the MLP), else 5.
DEFAULT_SEEDS = 5
CHEAP_MODEL_SEEDS = {"mlp": 10}

# A scale's overrides of an arm's fields: a fixed mapping, or a function of the arm's fields (base + arm), so one
# scale can cut each stream's tasks to that stream's own count (`sweeps.scales.small`).
ScaleOverrides = Union[Mapping[str, Any], Callable[[Mapping[str, Any]], Mapping[str, Any]]]

# Rough seconds per training sample per epoch at the paper's widths on one thread of a 2-core CPU, as a sweep runs
# each trial (tensors in memory, measured: an MLP epoch of 60,000 digits 0.22 s, an LSTM epoch 6.8 s, a GRU epoch
# of 26,000 sentences at length 50 9.1 s); a recurrent model's cost grows with sequence length and roughly with
# hidden size squared. The test pass and the diagnostics are the 20 % added on top.
SECONDS_PER_SAMPLE = {"mlp": 3.7e-6, "lstm": 1.1e-4, "gru": 3.5e-4}
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
    scales: Mapping[str, ScaleOverrides] = field(default_factory=dict)  # "small"/"smoke" -> overrides
    notes: Mapping[str, str] = field(default_factory=dict)  # scale -> what it can and cannot show
    scale_arms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # scale -> its arms (default: all)

    def arms_at(self, scale: str) -> list[str]:
        """The arms a scale runs: all of them unless `scale_arms` names a subset (fig6's `small` is one row)."""
        check_choice("scale", scale, SCALES)
        return list(self.scale_arms.get(scale, self.arms))

    def config(self, arm: str, scale: str, replicate: int) -> TrialConfig:
        check_choice("arm", arm, self.arms)
        check_choice("scale", scale, SCALES)
        fields = {**self.base, **self.arms[arm]}
        overrides = self.scales.get(scale, {})
        fields.update(overrides(fields) if callable(overrides) else overrides)
        # replicate k uses seed = stream_seed = k in every arm: arms are paired, replicates differ in both
        return TrialConfig(**{**fields, "seed": replicate, "stream_seed": replicate})

    def trials(self, scale: str = "paper", seeds: int | None = None, seed_start: int = 0,
               arms: list[str] | None = None) -> list[Trial]:
        """Every trial, arm-major: a plain list that Tune only schedules.

        `seeds=None` gives each arm its default number of replicates (`default_seeds`)."""
        if (seeds is not None and seeds < 1) or seed_start < 0:
            raise ConfigError(f"--seeds must be at least 1 and --seed-start non-negative, got {seeds}, {seed_start}")
        available = self.arms_at(scale)
        for arm in arms or []:
            check_choice(f"arm of sweep {self.name!r}", arm, self.arms)
            if arm not in available:
                raise ConfigError(f"arm {arm!r} of sweep {self.name!r} is not run at scale {scale!r} "
                                  f"(its arms there: {', '.join(available)}); choose another --scale or arm")
        trials = []
        for arm in arms or available:
            count = seeds or default_seeds(self.config(arm, scale, seed_start))
            trials += [Trial(arm, k, self.config(arm, scale, k)) for k in range(seed_start, seed_start + count)]
        return trials


def default_seeds(cfg: TrialConfig) -> int:
    """Replicates of an arm when --seeds is not given: more where a trial is cheap."""
    return CHEAP_MODEL_SEEDS.get(cfg.model, DEFAULT_SEEDS)


def replicate_counts(trials: list[Trial]) -> dict[str, int]:
    """Replicates per arm of a list of trials."""
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.arm] = counts.get(t.arm, 0) + 1
    return counts


def estimated_cpu_seconds(cfg: TrialConfig) -> float:
    """A rough CPU cost of one trial (one thread), for `lop sweep list` and `run`'s plan."""
    cfg = cfg.resolved()
    spec = cfg.stream_spec
    classes = len(cfg.languages) if cfg.languages else len(spec.classes)
    per_class = TRAIN_SAMPLES[spec.dataset] // (classes if spec.dataset == "mnist" else 1)
    if cfg.train_limit:
        per_class = min(per_class, cfg.train_limit // classes)
    samples_per_task = per_class * (2 if spec.is_binary else classes)
    per_sample = SECONDS_PER_SAMPLE[cfg.model] * (cfg.hidden / {"mlp": 25, "lstm": 25, "gru": 64}[cfg.model]) ** 2
    if cfg.model != "mlp":
        per_sample *= cfg.seq_len / (28 if cfg.model == "lstm" else 50)
    epochs = cfg.epochs_for(samples_per_task)  # step-matched arms run more epochs on the small corpus
    return TRIAL_OVERHEAD_SECONDS + cfg.tasks * epochs * samples_per_task * per_sample * 1.2


SWEEPS: Registry[Sweep] = Registry("sweep")


def register_sweep(sweep: Sweep) -> Sweep:
    for scale in sweep.scales:
        check_choice("scale", scale, SCALES)
    for scale, arms in sweep.scale_arms.items():
        for arm in arms:
            check_choice(f"arm of sweep {sweep.name!r} at scale {scale!r}", arm, sweep.arms)
    for scale in SCALES:  # every arm must validate at every scale now, not in hour three
        for arm in sweep.arms_at(scale):
            sweep.config(arm, scale, 0)
    SWEEPS.register(sweep.name)(sweep)
    return sweep

