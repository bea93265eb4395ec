"""What `lop report` reads: sweep folders and compact exports, merged per sweep, each trial counted once.

A sweep can arrive in parts: a compact export of the replicates one session finished and the folder of the
ones still running, or exports of seeds 0-1 and 2-4 run as separate `lop sweep run --seed-start` calls. The
parts of one sweep are merged into one `SweepRun`; a trial found in two parts (the same arm, seeds and
configuration) is kept once, the copy with more finished tasks. A trial is also shared between sweeps: the
registered sweeps repeat configurations (fig1's `mlp` is fig4's `baseline`, fig5's `baseline` and `reset` are
fig3's reshuffle arms), and the trials of one are the trials of the other, never run twice (`shared_trials`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.compact import is_compact, read_compact, with_task_seconds
from sweeps.results import load_results
from analysis.metrics import TRIAL, config_columns, final_accuracy, trial_status
from lopmodels.errors import ConfigError, LopError, NoResults
from sweeps.base import SCALES
from sweeps.manifest import Manifest
from sweeps.registry import SWEEPS
from trainables.config import TrialConfig
from trainables.tokenizer_names import tokenizer_name
from trainables.plugins import import_plugins

Echo = Callable[[str], None]
REPLICATE = ("arm", "seed", "stream_seed")
# config columns that do not make two trials different experiments: where they ran
NOT_IDENTITY = {"device"}


@dataclass(frozen=True)
class SweepRun:
    """One sweep as read from one or more sources (sweep folders, compact exports)."""

    sources: tuple[Path, ...]
    manifests: tuple[Manifest, ...]  # one per source, in the order given
    records: pd.DataFrame

    @property
    def manifest(self) -> Manifest:
        """The first source's manifest: the sweep's name, title and scale (the same in every source)."""
        return self.manifests[0]

    @property
    def name(self) -> str:
        return self.manifest.sweep

    @property
    def where(self) -> str:
        return ", ".join(map(str, self.sources))

    @property
    def arms(self) -> list[str]:
        """The arms asked for by any source, in the order first asked."""
        return list(dict.fromkeys(arm for m in self.manifests for arm in m.arms))

    def asked(self) -> dict[str, list[int]]:
        """The replicates (seeds) each arm was asked to run, over every source."""
        return {arm: sorted({seed for m in self.manifests if arm in m.arms for seed in m.replicates(arm)})
                for arm in self.arms}

    @property
    def code_versions(self) -> list[str]:
        return list(dict.fromkeys(m.code_version for m in self.manifests))


def read_source(path: Path) -> SweepRun:
    """A sweep folder or a compact export, as a one-source `SweepRun`; `ConfigError` naming what is wrong."""
    if is_compact(path):
        manifest, records = read_compact(path)
    elif not path.is_dir():
        raise ConfigError(f"no sweep at {path}: not a folder or a compact export (.parquet); give the folder that "
                          "`lop sweep run` printed or a file of `lop results export --compact`")
    else:
        manifest, records = Manifest.read(path), with_task_seconds(load_results(path))
    import_plugins(manifest.plugins)  # the entries its trials name (a compact export from before has none)
    if set(records["sweep"]) != {manifest.sweep}:
        raise ConfigError(f"the records at {path} belong to sweep(s) {', '.join(sorted(set(records['sweep'])))}, "
                          f"its manifest to {manifest.sweep}; give an unedited sweep folder or export")
    if final_accuracy(records).empty:
        raise NoResults(f"sweep {manifest.sweep} at {path} has no finished task yet; report it once a trial "
                        "has finished its first task (see `lop sweep status`)")
    return SweepRun((path,), (manifest,), records)


def canonical(value: Any) -> Any:
    """A value as compared across sources: JSON and parquet give 25 or 25.0, None or NaN, lists or arrays."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(canonical(v) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def trial_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: `trial_status` (ids, config columns, tasks finished) and the data hash."""
    status = trial_status(records)
    if "data_hash" not in records.columns:
        return status
    return status.merge(records.drop_duplicates(TRIAL)[TRIAL + ["data_hash"]], on=TRIAL)


def differences(a: Mapping[str, Any], b: Mapping[str, Any], columns: Iterable[str]) -> list[str]:
    return [f"{c} {a.get(c)} vs {b.get(c)}" for c in columns
            if c not in NOT_IDENTITY and canonical(a.get(c)) != canonical(b.get(c))]


def merge(parts: list[SweepRun], echo: Echo) -> tuple[SweepRun, list[str]]:
    """The parts of one sweep as one `SweepRun`, each trial once; notes on the duplicates dropped.

    `ConfigError` where the parts ran at different scales, or give one replicate two different configurations."""
    first = parts[0]
    scales = {p.manifest.scale for p in parts}
    if len(scales) > 1:
        raise ConfigError(f"sweep {first.name} is given at scales {', '.join(sorted(scales))} "
                          f"({', '.join(p.where for p in parts)}); report each scale separately")
    kept: dict[tuple, tuple[dict, SweepRun]] = {}  # replicate -> (its trial row, its source)
    notes = []
    for part in parts:
        for trial in trial_table(part.records).to_dict("records"):
            key = tuple(canonical(trial[c]) for c in REPLICATE)
            if key not in kept:
                kept[key] = (trial, part)
                continue
            other, where = kept[key]
            columns = config_columns(part.records)
            differ = differences(other, trial, columns + ["data_hash"])
            if differ:
                raise ConfigError(f"sweep {first.name}: arm {trial['arm']} replicate {trial['seed']} differs between "
                                  f"{where.where} and {part.where} ({', '.join(differ)}); report them separately")
            better = trial["tasks_finished"] > other["tasks_finished"]
            chosen, chosen_at = (trial, part) if better else (other, where)
            notes.append(f"{first.name}: arm {trial['arm']} replicate {trial['seed']} is in both {where.where} and "
                         f"{part.where}; counted once (the copy from {chosen_at.where}, "
                         f"{int(chosen['tasks_finished'])} of {int(chosen['tasks'])} tasks)")
            kept[key] = (chosen, chosen_at)
    for note in notes:
        echo(f"report: {note}")
    chosen = {id(part): [tuple(t[c] for c in TRIAL) for t, p in kept.values() if p is part] for part in parts}
    records = pd.concat([part.records[pd.MultiIndex.from_frame(part.records[TRIAL]).isin(chosen[id(part)])]
                         for part in parts], ignore_index=True)
    sources = tuple(s for p in parts for s in p.sources)
    return SweepRun(sources, tuple(m for p in parts for m in p.manifests), records), notes


def read_sweeps(paths: list[Path], echo: Echo) -> tuple[list[SweepRun], list[str], list[str]]:
    """Every readable sweep of `paths`, its parts merged (sorted by name: fig1 ... fig6, table1), one problem
    per unreadable source or unmergeable sweep, and notes on duplicate trials counted once."""
    parts: dict[str, list[SweepRun]] = {}
    problems, notes = [], []
    for path in paths:
        echo(f"report: reading {path}")
        try:
            run = read_source(path)
        except LopError as error:
            problems.append(str(error))
            continue
        parts.setdefault(run.name, []).append(run)
    runs = []
    for name in sorted(parts):
        try:
            run, dropped = merge(parts[name], echo)
        except ConfigError as error:
            problems.append(str(error))
            continue
        runs.append(run)
        notes += dropped
    return runs, problems, notes


def identity(columns: Mapping[str, Any]) -> tuple:
    """What makes two trials of possibly different sweeps the same experiment: every config column but the
    replicate's seeds and where it ran, as recorded (`record_row`: the data's tokenizer label, null for images;
    the vocabulary size is in that label)."""
    values = ((c, canonical(v)) for c, v in columns.items()
              if c not in NOT_IDENTITY | {"seed", "stream_seed", "vocab_size"})
    # a null equals an absent column: records of several mitigations hold every one's `mitigation.<field>`
    return tuple(sorted((c, v) for c, v in values if v is not None))


def expected_identity(cfg: TrialConfig) -> tuple[tuple, bool]:
    """`identity` of the records a registered arm's config gives, and whether its epochs per task come from the
    data (match_steps: left out of the identity, as the config does not know them)."""
    resolved = cfg.resolved()
    columns = resolved.columns()
    columns["tokenizer"] = (tokenizer_name(resolved.tokenizer, resolved.vocab_size)
                            if resolved.stream_spec.is_language else None)
    if resolved.match_steps:
        del columns["epochs_per_task"]
    return identity(columns), resolved.match_steps


def shared_trials(records: pd.DataFrame, scales: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Records of registered sweep arms filled by trials run under another sweep's arm with the same
    configuration and seeds, relabelled to the arm they stand for (the same `trial_id`; column `shared_from`
    names the arm they ran as), and the scale of each sweep so filled that is not in `scales`.

    A replicate an arm ran itself is never replaced. `scales`: the scale each read sweep ran at; a sweep not
    read is matched at every scale (its arms' task counts differ by scale, so at most one matches)."""
    trials = trial_table(records)
    if trials.empty:
        return records.iloc[:0], {}
    index: dict[tuple[tuple, bool], list[dict]] = {}
    for trial in trials.to_dict("records"):
        if canonical(trial["seed"]) != canonical(trial["stream_seed"]):
            continue  # a registered replicate k has seed = stream seed = k
        columns = {c: trial.get(c) for c in config_columns(records)}
        full = identity(columns)
        index.setdefault((full, False), []).append(trial)
        if canonical(trial.get("match_steps")):
            index.setdefault((identity({c: v for c, v in columns.items() if c != "epochs_per_task"}), True),
                             []).append(trial)
    own = set(zip(trials["sweep"], trials["arm"], trials["seed"].map(canonical)))
    chosen, found_scales = [], {}
    for name, sweep in SWEEPS.items():
        for scale in ([scales[name]] if name in scales else SCALES):
            for arm in sweep.arms_at(scale):
                for trial in index.get(expected_identity(sweep.config(arm, scale, 0)), []):
                    seed = canonical(trial["seed"])
                    if (trial["sweep"], trial["arm"]) == (name, arm) or (name, arm, seed) in own:
                        continue
                    own.add((name, arm, seed))
                    chosen.append({"sweep": name, "arm": arm, "from_sweep": trial["sweep"], "from_arm": trial["arm"],
                                   "trial_id": trial["trial_id"]})
                    if name not in scales:
                        found_scales[name] = scale
    if not chosen:
        return records.iloc[:0], {}
    picks = pd.DataFrame(chosen)
    rows = records.merge(picks.rename(columns={"sweep": "to_sweep", "arm": "to_arm"}),
                         left_on=["sweep", "arm", "trial_id"], right_on=["from_sweep", "from_arm", "trial_id"])
    rows["shared_from"] = rows["sweep"] + "/" + rows["arm"]
    rows = rows.drop(columns=["sweep", "arm", "from_sweep", "from_arm"]).rename(
        columns={"to_sweep": "sweep", "to_arm": "arm"})
    return rows[[*records.columns, "shared_from"]], found_scales


def shared_notes(shared: pd.DataFrame) -> list[str]:
    """One line per arm filled by another's trials: which replicates, from which arm."""
    if shared.empty:
        return []
    groups = shared.drop_duplicates(["sweep", "arm", "seed"]).groupby(["sweep", "arm", "shared_from"])["seed"]
    return [f"{sweep}/{arm}: replicate(s) {', '.join(str(int(s)) for s in sorted(seeds))} are the trials of "
            f"{source} (the same configuration and seeds), not run twice"
            for (sweep, arm, source), seeds in groups]
