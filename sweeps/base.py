"""`Sweep`: a figure or table of the paper as data (arms x replicates x scales), and the sweep registry."""
from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from lopmodels.errors import ConfigError
from lopmodels.registry import Registry, check_choice
from lopmodels.catalog import MODEL_INFO
from trainables.config import IMAGE_ROWS, TrialConfig
from trainables.datasets import DATASETS
from trainables.streams import STREAMS

SCALES = ("paper", "small", "smoke")
# Replicates per arm when --seeds is not given: 10 where a trial costs minutes on a CPU (the MLP), else 5.
DEFAULT_SEEDS = 5
CHEAP_MODEL_SEEDS = {"mlp": 10}

# A scale's overrides of an arm's fields: a fixed mapping, or a function of the arm's fields (base + arm), so one
# scale can cut each stream's tasks to that stream's own count (`sweeps.scales.small`).
ScaleOverrides = Union[Mapping[str, Any], Callable[[Mapping[str, Any]], Mapping[str, Any]]]

# Measured seconds per training sample per epoch (test pass included), one thread, as a sweep runs each trial:
# written by benchmarks/trial_costs.py, one row per (model, stream) that the registered sweeps run, each at that
# stream's paper shapes. A trial's estimate scales its row by hidden size squared and sequence length (a single
# scaling rule is off by up to 2x across streams, hence a row per stream; `estimated_cpu_seconds`).
TRIAL_COSTS = Path(__file__).with_name("trial_costs.json")
TRIAL_OVERHEAD_SECONDS = 2.0


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
    source: str | None = None  # the YAML file that defined it (docs/sweep-files.md); None: registered in code

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
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(TrialConfig)})
        if unknown:
            raise ConfigError(f"sweep {self.name!r}, arm {arm!r}: unknown config field(s) {', '.join(unknown)}; "
                              f"the fields are TrialConfig's (lop trial --help lists them)")
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


@dataclass(frozen=True)
class TrialCost:
    """A row of the cost table: seconds per training sample per epoch, and the shapes it is scaled from."""

    seconds_per_sample: float
    hidden: int
    seq_len: int  # tokens kept per sentence; 28 rows for images
    stream: str | None  # the stream it was measured on; None: the model's own guess (ModelInfo), unmeasured

    @property
    def measured(self) -> bool:
        return self.stream is not None


@functools.cache
def read_costs(table: Path = TRIAL_COSTS) -> dict[str, dict[str, TrialCost]]:
    """The measured cost of each model on each stream in `table` (model -> stream -> row), read once per process."""
    models = json.loads(table.read_text())["models"]
    return {model: {stream: TrialCost(row["seconds_per_sample"], row["hidden"], row["seq_len"], stream)
                    for stream, row in sorted(streams.items())}
            for model, streams in models.items()}


def trial_cost(cfg: TrialConfig, table: Path = TRIAL_COSTS) -> TrialCost:
    """The row that `cfg`'s estimate is scaled from: its own (model, stream); else the model's row on another
    stream of the same dataset; else any row of the model (of several, the first stream by name); a model
    without a row, the guess its catalog entry declares (`measured` is False: plans flag it)."""
    rows = read_costs(table).get(cfg.model)
    if not rows:
        info = MODEL_INFO[cfg.model]
        return TrialCost(info.fallback_seconds_per_sample, info.default_hidden, IMAGE_ROWS, None)
    if cfg.stream in rows:
        return rows[cfg.stream]
    dataset = cfg.stream_spec.dataset
    same = [row for stream, row in rows.items() if stream in STREAMS and STREAMS[stream].dataset == dataset]
    return (same or list(rows.values()))[0]


def cost_pairs(scale: str = "paper") -> dict[tuple[str, str], int]:
    """Each (model, stream) that the registered sweeps run at `scale`, with the hidden size its row is measured
    at: the most common among those trials (ties: the model's default, else the smallest). The pairs the cost
    table must hold (benchmarks/trial_costs.py measures them)."""
    import sweeps.registry  # noqa: F401  (registers every sweep in SWEEPS)

    hiddens: dict[tuple[str, str], Counter[int]] = {}
    for _, sweep in SWEEPS.items():
        for trial in sweep.trials(scale):
            cfg = trial.config.resolved()
            hiddens.setdefault((cfg.model, cfg.stream), Counter())[cfg.hidden] += 1
    pairs = {}
    for (model, stream), counts in sorted(hiddens.items()):
        default = TrialConfig(model=model, stream=stream).resolved().hidden
        pairs[model, stream] = max(counts, key=lambda h: (counts[h], h == default, -h))
    return pairs


def estimated_cpu_seconds(cfg: TrialConfig, table: Path = TRIAL_COSTS) -> float:
    """A rough CPU cost of one trial (one thread), for `lop sweep list` and `run`'s plan, from the measured table.

    Tasks x epochs per task x training samples per task x seconds per sample, plus a fixed overhead. The seconds
    per sample come from the table's row of the trial's own (model, stream), measured at that stream's paper
    shapes; if that pair has no row, from the model's row on another stream of the same dataset (MNIST or
    languages), else from any row of the model (`trial_cost`). The row is scaled to the trial's shapes by
    (hidden / row's hidden)^2 x (seq_len / row's seq_len): a ratio of 1 at the measured shapes. A model with no
    row at all gets its catalog entry's guess (`unmeasured_models` names them for the plan)."""
    cfg = cfg.resolved()
    cost = trial_cost(cfg, table)
    spec = cfg.stream_spec
    classes = len(cfg.languages) if cfg.languages else len(spec.classes)
    per_class = DATASETS[spec.dataset].train_per_class
    if cfg.train_limit:
        per_class = min(per_class, cfg.train_limit // classes)
    samples_per_task = per_class * (2 if spec.is_binary else classes)
    # the MLP's seq_len is the image's 28 rows, at which it was measured: a ratio of 1
    per_sample = cost.seconds_per_sample * (cfg.hidden / cost.hidden) ** 2 * (cfg.seq_len / cost.seq_len)
    epochs = cfg.epochs_for(samples_per_task)  # step-matched arms run more epochs on the small corpus
    return TRIAL_OVERHEAD_SECONDS + cfg.tasks * epochs * samples_per_task * per_sample


def unmeasured_models(trials: list[Trial], table: Path = TRIAL_COSTS) -> list[str]:
    """The models of `trials` whose cost is their entry's guess: the plan says so and how to measure them."""
    return sorted({t.config.model for t in trials if not trial_cost(t.config.resolved(), table).measured})


def shared_arms(sweep: Sweep, scale: str, arms: list[str]) -> dict[str, list[str]]:
    """Each of `arms` whose trials have the configuration of another registered sweep's arm at `scale` (fig5's
    `baseline` is fig3's `reshuffle`): those arms' trials are one trial each (`lop report` reuses them), so a
    configuration needs running once."""
    import sweeps.registry  # noqa: F401  (registers every sweep in SWEEPS)

    def columns(owner: Sweep, arm: str) -> dict[str, Any]:
        return owner.config(arm, scale, 0).resolved().columns()

    others = [(f"{other.name}/{arm}", columns(other, arm)) for _, other in SWEEPS.items() if other.name != sweep.name
              for arm in other.arms_at(scale)]
    found = {arm: [label for label, cols in others if cols == columns(sweep, arm)] for arm in arms}
    return {arm: labels for arm, labels in found.items() if labels}


SWEEPS: Registry[Sweep] = Registry("sweep")
# a sweep's folder and its arms' trial folders (<arm>-r<k>-<id>): one plain path component each, inside STORAGE
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str, what: str = "--name") -> str:
    """`name` if it is one folder name that stays inside its parent, else a `ConfigError` saying so."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{what} {name!r} must be one folder name of letters, digits, '.', '_' and '-' (no '/', "
                          f"not starting with '.' or '-'); give another {what}")
    return name


def register_sweep(sweep: Sweep) -> Sweep:
    check_name(sweep.name, "sweep name")
    for arm in sweep.arms:
        check_name(arm, f"arm of sweep {sweep.name!r}")
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

