"""The `lop` command: prepare data, run one trial (and, with the sweep commands, whole sweeps).

Bad input is a one-line error naming the problem and the fix, exit code 2, nothing written.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from lopmodels.errors import ConfigError, LopError
from trainables.files import check_output
from trainables.schema import FORMATS
from trainables.config import TrialConfig
from trainables.datasets import DATASETS
from trainables.tokenizer_names import KINDS as TOKENIZER_KINDS, MIN_BPE_VOCAB
from sweeps.base import SCALES
from sweeps.loggers import CHOICES as LOGGER_CHOICES
from sweeps.trial_options import config_from_options, config_options

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    click.echo(f"lop: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def friendly_errors(command: Callable) -> Callable:
    """Turn the errors a user can fix into one line and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LopError as error:
            fail(str(error))
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recurrent-lop", message="lop (recurrent-lop) %(version)s")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="A module (dotted name or .py file) that registers your own models, datasets, streams, "
                   "mitigations or sweeps; repeatable; also $LOP_PLUGINS. Sweeps ship it to Ray's workers.")
def main(plugins: tuple[str, ...]) -> None:
    """Loss of plasticity in recurrent models: data, trials, sweeps, results, reports."""
    from trainables.plugins import ENV, import_plugins, plugin_specs
    specs = plugin_specs(plugins)
    try:
        import_plugins(specs)
    except LopError as error:
        fail(str(error))
    os.environ[ENV] = ",".join(specs)  # what a sweep started by this command records and ships


@main.group()
def data() -> None:
    """Fetch or locate the datasets and cache them."""


@data.command("prepare")
@click.argument("which", default="all", metavar="[" + "|".join([*DATASETS.names(), "all"]) + "]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (default: $LOP_DATA_DIR, else a per-user cache).")
@click.option("--languages", default=None, help="Comma-separated ISO 639-3 codes (default: the paper's 20, "
              + ",".join(DATASETS["languages"].classes) + ").")
@click.option("--tokenizer", type=click.Choice(TOKENIZER_KINDS), default=TrialConfig.tokenizer, show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=MIN_BPE_VOCAB), default=TrialConfig.vocab_size, show_default=True)
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Your own corpus: TSV/CSV/parquet with columns `language` and `text`.")
@friendly_errors
def data_prepare(which: str, data_dir: Path | None, languages: str | None, tokenizer: str,
                 vocab_size: int, corpus: Path | None) -> None:
    """Fetch or locate MNIST and/or the language corpus, cache them, print sources and counts."""
    from trainables.data import prepare
    from trainables.data.source import SOURCES
    names = DATASETS.names() if which == "all" else [DATASETS[which].name]  # an unknown name lists the datasets
    codes = [c.strip() for c in languages.split(",") if c.strip()] if languages else None
    given = {"languages": codes, "corpus": corpus}
    for name in names:
        own = SOURCES[name].prepare_options  # with "all", each dataset gets only the options it takes
        options = {key: value for key, value in given.items() if key in own or which != "all"}
        prepare(name, data_dir=data_dir, tokenizer=tokenizer, vocab_size=vocab_size, echo=click.echo, **options)


@main.command("trial")
@config_options
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: torch's).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Parquet file for the per-epoch records.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def trial(threads: int | None, data_dir: Path | None, out: Path, force: bool, **fields: Any) -> None:
    """Run one trial in this process (no Ray) and write its per-epoch records to --out."""
    from trainables.loop import resolve_device
    from trainables.local_trial import run_trial
    cfg = config_from_options(fields)
    if cfg.match_steps and cfg.epochs_per_task is not None:
        raise ConfigError("--match-steps sets the epochs per task from the data; drop --epochs or --match-steps")
    if out.suffix != ".parquet":
        raise ConfigError(f"--out must name a .parquet file, got {out}")
    check_output(out, force=force)
    try:
        resolve_device(cfg.device)
    except RuntimeError as error:
        raise ConfigError(str(error)) from None
    if threads:
        import torch
        torch.set_num_threads(threads)
    run_trial(cfg, out, data_dir=data_dir, echo=lambda line: click.echo(line, err=True))


@main.group()
def sweep() -> None:
    """Run, resume and inspect sweeps (one Ray Tune experiment each)."""


@sweep.command("list")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="List only the sweep of this file (.yaml or .py; docs/sweep-files.md).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts (keys: docs/analysis.md).")
@friendly_errors
def sweep_list(path: Path | None, as_json: bool) -> None:
    """Every sweep with its title, arms, and trial count and rough CPU cost per scale."""
    from sweeps.listing import listing_text, sweep_entries
    from sweeps.registry import SWEEPS
    from sweeps.sweep_files import load_sweep_file
    entries = sweep_entries([load_sweep_file(path).name] if path else SWEEPS.names())
    click.echo(json.dumps({"sweeps": entries}, indent=2) if as_json else listing_text(entries))


@sweep.command("run")
@click.argument("name")
@click.option("--scale", default="paper", show_default=True, metavar="[" + "|".join(SCALES) + "]",
              help="paper: the paper's tasks and epochs; small: its per-task training, fewer tasks; smoke: seconds.")
@click.option("--seeds", type=int, default=None,
              help="Replicates per arm (default: 10 for MLP arms, 5 for the others); replicate k uses "
                   "seed = stream seed = k.")
@click.option("--seed-start", type=int, default=0, show_default=True)
@click.option("--arms", default=None, help="Comma-separated subset of the sweep's arms.")
@click.option("--storage", default="lop-results", show_default=True,
              help="Where sweeps live: a folder (on a cluster, one every node mounts) or a URI such as "
                   "s3://bucket/lop-results.")
@click.option("--name", "experiment", default=None, help="Experiment name (default: the sweep's name).")
@click.option("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True)
@click.option("--max-concurrent", type=int, default=None)
@click.option("--max-failures", type=int, default=2, show_default=True,
              help="Retries of a failed trial (a lost node, a crash), each from its last checkpoint.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Override a config field in every arm (as lop trial's options), or a mitigation's field as "
                   "mitigation.<field> in every arm whose mitigation has it; repeatable; recorded in the manifest.")
@click.option("--tasks", type=int, default=None, help="Shorthand for --set tasks=N.")
@click.option("--epochs", type=int, default=None, help="Shorthand for --set epochs_per_task=N.")
@click.option("--logger", "loggers", multiple=True, metavar="[" + "|".join(LOGGER_CHOICES) + "]",
              help="Experiment tracker, repeatable (default: tensorboard; none: no tracker); wandb and mlflow need "
                   "their extra (docs/loggers.md); recorded in the manifest for resume.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the trials; run nothing, write nothing.")
@friendly_errors
def sweep_run(name: str, scale: str, seeds: int | None, seed_start: int, arms: str | None, storage: str,
              experiment: str | None, address: str | None, cpus_per_trial: float, gpus_per_trial: float,
              max_concurrent: int | None, max_failures: int, sets: tuple[str, ...], tasks: int | None,
              epochs: int | None, loggers: tuple[str, ...], dry_run: bool) -> None:
    """Run every trial of sweep NAME (a registered sweep, or a .yaml or .py sweep file: docs/sweep-files.md) as
    one Tune experiment at STORAGE/NAME."""
    from sweeps.launch import Resources, run_sweep
    from sweeps.registry import SWEEPS
    from sweeps.sweep_files import is_sweep_file, load_sweep_file
    if is_sweep_file(name):
        name = load_sweep_file(Path(name)).name
    sets = (*sets, *([f"tasks={tasks}"] if tasks is not None else []),
            *([f"epochs_per_task={epochs}"] if epochs is not None else []))
    resources = Resources(cpus_per_trial, gpus_per_trial, max_concurrent, max_failures)
    arm_list = None if arms is None else [a.strip() for a in arms.split(",") if a.strip()]
    if arm_list == []:
        raise ConfigError(f"--arms {arms!r} names no arm; give some of: {', '.join(SWEEPS[name].arms)}, or leave "
                          "--arms out for all")
    sys.exit(run_sweep(SWEEPS[name], scale=scale, seeds=seeds, seed_start=seed_start, arms=arm_list,
                       storage=storage, name=experiment, address=address, resources=resources,
                       dry_run=dry_run, overrides=sets, loggers=loggers))


@sweep.command("resume")
@click.argument("path")
@click.option("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray).")
@click.option("--max-concurrent", type=int, default=None)
@click.option("--cpus-per-trial", type=float, default=None, help="Change the trials' CPUs (default: as run).")
@click.option("--gpus-per-trial", type=float, default=None, help="Change the trials' GPUs (default: as run).")
@friendly_errors
def sweep_resume(path: str, address: str | None, max_concurrent: int | None, cpus_per_trial: float | None,
                 gpus_per_trial: float | None) -> None:
    """Finish an interrupted sweep: finished trials stay, interrupted ones continue from their last task."""
    from sweeps.resume import resume_sweep
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be at least 1, got {max_concurrent}")
    sys.exit(resume_sweep(path, address=address, max_concurrent=max_concurrent, cpus_per_trial=cpus_per_trial,
                          gpus_per_trial=gpus_per_trial))


@sweep.command("status")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts (keys: docs/analysis.md).")
@friendly_errors
def sweep_status(path: str, as_json: bool) -> None:
    """Counts by state, each trial's last task and accuracy, and errors with their last line (the exception)."""
    from sweeps.status import status_data, sweep_status as status
    click.echo(json.dumps(status_data(path), indent=2) if as_json else status(path))


@sweep.command("repair")
@click.argument("path")
@click.option("--cpus-per-trial", type=float, default=1.0, show_default=True)
@click.option("--gpus-per-trial", type=float, default=0.0, show_default=True)
@click.option("--max-concurrent", type=click.IntRange(min=1), default=None)
@click.option("--force", is_flag=True, help="Replace a manifest that still reads.")
@friendly_errors
def sweep_repair(path: str, cpus_per_trial: float, gpus_per_trial: float, max_concurrent: int | None,
                 force: bool) -> None:
    """Rebuild a damaged or lost lop-sweep.json from the sweep's Tune snapshot and records."""
    from sweeps.manifest import MANIFEST, Manifest
    from sweeps.repair import rebuild_manifest
    from sweeps.storage import location
    folder = location(path)
    if (folder / MANIFEST).is_file() and not force:
        try:
            Manifest.read(folder)
        except ConfigError:
            pass  # damaged: what repair is for
        else:
            raise ConfigError(f"{folder / MANIFEST} reads fine; nothing to repair (--force rebuilds it anyway)")
    manifest = rebuild_manifest(folder, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                                max_concurrent=max_concurrent)
    manifest.write(folder)
    click.echo(f"rebuilt {folder / MANIFEST}: sweep {manifest.sweep}, scale {manifest.scale}, {manifest.trials} "
               f"trials ({', '.join(f'{a} {n}' for a, n in manifest.arm_seeds.items())}); continue with "
               f"`lop sweep resume {folder}`", err=True)


@main.group()
def results() -> None:
    """Results as a dataframe."""


@results.command("export")
@click.argument("path")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True,
              help="csv: the same columns, `task_classes` comma-joined (docs/records.md).")
@click.option("--compact", is_flag=True,
              help="Only each task's last epoch (where the diagnostics are), with the sweep's manifest: the "
                   "kilobytes `lop report` reads, for publishing results without the sweep folder.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def results_export(path: str, out: Path, fmt: str, compact: bool, force: bool) -> None:
    """Every trial's full per-epoch history as one tidy file (one row per trial x task x epoch, the columns of
    docs/records.md), or with --compact its tasks' last epochs."""
    from analysis.compact import write_compact
    from sweeps.results import load_results
    from sweeps.manifest import Manifest
    from sweeps.storage import location
    from trainables.schema import write_records
    if compact and fmt != "parquet":
        raise ConfigError("--compact writes parquet (the sweep's manifest travels in its metadata); drop --format")
    if out.suffix != f".{fmt}":
        raise ConfigError(f"--out must name a .{fmt} file for --format {fmt}, got {out}")
    check_output(out, force=force)
    manifest = Manifest.read(location(path)) if compact else None
    frame = load_results(path)
    warn_damaged(path)
    if manifest is not None:
        frame = write_compact(frame, manifest, out)
    else:
        write_records(frame, out, fmt)
    click.echo(f"wrote {len(frame)} rows ({frame['trial_id'].nunique()} trials) to {out}", err=True)


def warn_damaged(path: str | Path) -> None:
    """Name each trial whose records have gaps: what is read from it is short (`lop sweep resume` re-runs it)."""
    from sweeps.status import damaged_trials
    from sweeps.storage import location
    for damage in damaged_trials(location(path)).values():
        click.echo(f"warning: {damage.line(path)}; its records are read as far as they go", err=True)


@main.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for report.md, report.html, figures/ and tables/.")
@click.option("--force", is_flag=True, help="Replace a report already in --out.")
@friendly_errors
def report(paths: tuple[Path, ...], out: Path, force: bool) -> None:
    """The paper's figures and tables with confidence intervals, from sweep folders and compact exports
    (`lop results export --compact`): the parts of one sweep are merged, each trial counted once."""
    from analysis.report import write_report
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the report")
    if (out / "report.md").exists() and not force:
        raise ConfigError(f"--out {out} holds a report; give another folder or --force to replace it")
    nearest = next(folder for folder in (out, *out.parents) if folder.exists())  # where the folders will be made
    check_output(nearest / "report.md", force=True)
    for path in paths:
        if path.is_dir():
            warn_damaged(path)
    problems = write_report(list(paths), out, echo=lambda line: click.echo(line, err=True))
    if problems:
        raise ConfigError("; ".join(problems))


if __name__ == "__main__":
    main()
