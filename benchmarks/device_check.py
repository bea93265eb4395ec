"""Prove and time the GPU path in one command: the gpu tests, epoch times, trials per GPU, the grid's GPU-hours.

On a lent GPU machine (Python with torch, numpy, pandas, pyarrow, tokenizers and pytest; no Ray, no `datasets`,
no data cache), from the repository root, in at most about five minutes (`--budget` seconds after the imports):

    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/device_check.py --out $OUT

Without a GPU it prints one line and exits 0; `--device cpu --smoke` runs every phase on tiny shapes on the CPU
(what tests/test_device_check.py runs in CI; its numbers say nothing about a GPU). The phases, in order:

1. tests: `python -m pytest -q -m gpu tests/test_gpu.py` in a subprocess (a trial on CUDA learns, the same seed
   gives the same numbers under deterministic algorithms, a resumed trial equals an uninterrupted one, every
   mitigation runs); its outcome and output tail are recorded.
2. epochs: seconds per epoch and per optimiser step of each model x stream at the paper's shapes (synthetic data
   built in memory: 60,000 / 10,000 images of 28 x 28; 2,600 / 400 sentences of lengths 5..50 per language,
   vocabulary 8192), through `trainables.loop.run_stream` without Ray: a warm-up epoch, then the median of a few.
   A record's `seconds` ends at the loop's one host sync per epoch, so it is CUDA-synchronised.
3. packing: 1, 2, 4 and 8 GRU trials of the paper's lang-reshuffle shapes at once, each in its own process
   (started and warmed up once, before the rounds); per round, the wall time from "go" until every trial has
   run its epochs gives epochs and trials per hour.
4. grid: the paper's whole grid (every registered sweep at scale `paper`, default replicates) in GPU-hours, one
   trial per GPU and at the best packing: each trial's tasks x epochs x steps per epoch x the measured seconds
   per step of its model and stream, scaled by its sequence length.

Each phase ends by a share of `--budget` (30 %, 55 %, 95 % of it; time a phase leaves over goes to the next),
stops early when its share is spent, and records what it measured; `DIR/device_check.json` and
`DIR/device_check.md` are rewritten after every step, so a killed run leaves its results so far.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from lopmodels.catalog import MODEL_INFO
from trainables.config import TrialConfig
from trainables.data import Dataset, Split
from trainables.loop import run_stream
from trainables.streams import BINARY_LANGUAGES, MNIST_CLASSES, RESHUFFLE_LANGUAGES, STREAMS

ROOT = Path(__file__).resolve().parents[1]
TESTS = ("-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py")
CUBLAS_WORKSPACE = ":4096:8"  # cuBLAS's deterministic workspace setting (PyTorch's reproducibility notes)
PHASE_ENDS = {"tests": 0.30, "epochs": 0.55, "packing": 0.95}  # share of the budget by which each phase ends
STARTUP_SHARE = 0.5  # of the packing phase's time, at most, for starting and warming up its processes
LANGUAGES = tuple(dict.fromkeys(BINARY_LANGUAGES + RESHUFFLE_LANGUAGES))  # every language of both streams
VOCAB, MAX_LEN, MIN_LEN, PAD_ID, FIRST_TOKEN = 8192, 50, 5, 0, 2  # ids 0 and 1 are PAD and UNK
PAPER_PER_CLASS = {"mnist": 6000, "languages": 2600}  # training samples per class of the paper's data
PACKED = {"model": "gru", "stream": "lang-reshuffle"}  # the packed trial: the paper's GRU
# (model, stream) at the paper's shapes: the models on their own streams of the paper first, then the grid's others
CASES = (("mlp", "mnist-reshuffle"), ("lstm", "mnist-reshuffle"), ("gru", "lang-reshuffle"), ("gru", "lang-binary"),
         ("mlp", "mnist-binary"), ("lstm", "mnist-binary"), ("gru", "mnist-reshuffle"), ("gru", "mnist-binary"),
         ("lstm", "lang-reshuffle"), ("lstm", "lang-binary"))


@dataclass(frozen=True)
class Settings:
    """What a run measures: the paper's shapes, or tiny ones (`--smoke`)."""

    images: tuple[int, int]  # train, test images per class
    sentences: tuple[int, int]  # train, test sentences per language
    timed_epochs: int  # per model x stream, after the warm-up
    packings: tuple[int, ...]  # concurrent trials per round
    pack_epochs: int  # epochs each packed trial runs per round


PAPER = Settings(images=(6000, 1000), sentences=(2600, 400), timed_epochs=3, packings=(1, 2, 4, 8), pack_epochs=5)
SMOKE = Settings(images=(40, 10), sentences=(20, 5), timed_epochs=2, packings=(1, 2), pack_epochs=2)


# ---- data: the paper's shapes, random content -------------------------------------------------------

def synthetic_images(train: int, test: int) -> Dataset:
    """MNIST's shapes: float32 [N, 28, 28] images (standard normal, as normalised pixels are), 10 classes."""
    generator = torch.Generator().manual_seed(0)

    def split(per_class: int) -> Split:
        labels = torch.arange(len(MNIST_CLASSES)).repeat(per_class)
        return Split(torch.randn(len(labels), 28, 28, generator=generator), labels)

    return Dataset("mnist", "image", MNIST_CLASSES, split(train), split(test),
                   source="synthetic images (benchmarks/device_check.py)", data_hash="synthetic")


def synthetic_languages(train: int, test: int) -> Dataset:
    """Tatoeba's shapes for every language of both streams: random ids, lengths uniform in 5..50, PAD after."""
    generator = torch.Generator().manual_seed(0)

    def split(per_class: int) -> Split:
        labels = torch.arange(len(LANGUAGES)).repeat(per_class)
        lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (len(labels),), generator=generator)
        tokens = torch.randint(FIRST_TOKEN, VOCAB, (len(labels), MAX_LEN), generator=generator)
        tokens[torch.arange(MAX_LEN) >= lengths[:, None]] = PAD_ID
        return Split(tokens, labels, lengths)

    return Dataset("languages", "tokens", LANGUAGES, split(train), split(test),
                   source="synthetic tokens (benchmarks/device_check.py)", data_hash="synthetic",
                   tokenizer=f"bpe-{VOCAB}", vocab_size=VOCAB, pad_id=PAD_ID)


def dataset_for(stream: str, settings: Settings) -> Dataset:
    if STREAMS[stream].is_language:
        return synthetic_languages(*settings.sentences)
    return synthetic_images(*settings.images)


# ---- the report -------------------------------------------------------------------------------------

class Report:
    """The results so far, rewritten as JSON and markdown after every step so that a killed run leaves them."""

    def __init__(self, out: Path, data: dict[str, Any]) -> None:
        self.out, self.data = out, data
        out.mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        for name, text in (("device_check.json", json.dumps(self.data, indent=2)),
                           ("device_check.md", markdown(self.data))):
            partial = self.out / f".{name}.tmp"
            partial.write_text(text + "\n")
            os.replace(partial, self.out / name)


def run_phase(report: Report, name: str, deadline: float, phase: Callable[..., None], *args: Any) -> None:
    """One phase into `report.data[name]`: its own status, or the error that stopped it (the next phases still run)."""
    section: dict[str, Any] = {"status": "running"}
    report.data[name] = section
    report.save()
    started = time.perf_counter()
    print(f"device_check: {name} ...", flush=True)
    try:
        if deadline <= started:
            section["status"] = "skipped: no time left in the budget"
        else:
            phase(section, deadline, report.save, *args)
    except Exception as error:  # recorded, so that one broken phase leaves the others' results
        section.update(status="error", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
    section["seconds"] = round(time.perf_counter() - started, 1)
    report.save()
    print(f"device_check: {name} {section['status']} in {section['seconds']} s", flush=True)


# ---- 1. the gpu tests -------------------------------------------------------------------------------

def gpu_tests(section: dict[str, Any], deadline: float, save: Callable[[], None]) -> None:
    """The tests marked `gpu`, as a user runs them, with cuBLAS's deterministic workspace set before CUDA starts."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE}
    section["command"] = " ".join(("python",) + TESTS)
    try:
        done = subprocess.run([sys.executable, *TESTS], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=deadline - time.perf_counter())
        output, returncode = done.stdout, done.returncode
    except subprocess.TimeoutExpired as expired:  # its output so far is bytes, whatever `text` says
        output, returncode = (expired.output or b"").decode(errors="replace"), None
    lines = [line for line in output.splitlines() if line.strip()]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)",
                                                     lines[-1] if lines else "")}
    if returncode is None:
        status = "timeout"
    elif returncode == 0:
        status = "passed" if counts.get("passed") else "skipped"
    else:
        status = "failed" if returncode == 1 else f"error (pytest exit code {returncode})"
    section.update(status=status, returncode=returncode, counts=counts, summary=lines[-1] if lines else "",
                   output_tail=output[-6000:])


# ---- 2. seconds per epoch ---------------------------------------------------------------------------

def epoch_times(section: dict[str, Any], deadline: float, save: Callable[[], None],
                device: str, settings: Settings) -> None:
    """Each (model, stream) of CASES in turn, each with an equal share of the time left; the rest skipped at the end."""
    cases: list[dict[str, Any]] = []
    section["cases"] = cases
    datasets: dict[str, Dataset] = {}
    for position, (model, stream) in enumerate(CASES):
        now = time.perf_counter()
        if now >= deadline:
            section["skipped"] = [f"{m} {s}" for m, s in CASES[position:]]
            break
        until = now + (deadline - now) / (len(CASES) - position)
        kind = STREAMS[stream].dataset
        if kind not in datasets:
            datasets[kind] = dataset_for(stream, settings)
        cases.append(time_case(model, stream, datasets[kind], device, settings.timed_epochs, until))
        save()
    timed = [c for c in cases if c["epochs_timed"] == settings.timed_epochs]
    section["status"] = "ok" if len(timed) == len(CASES) else "partial: the budget cut some cases short"


def time_case(model: str, stream: str, data: Dataset, device: str, epochs: int, until: float) -> dict[str, Any]:
    """One task of a warm-up + `epochs` epochs; timed epochs stop early at `until` (at least one is timed)."""
    cfg = TrialConfig(model=model, stream=stream, tasks=1, epochs_per_task=1 + epochs, device=device).resolved()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, steps = [], 0
    for record, _ in run_stream(cfg, data):
        steps = record.steps_per_task // cfg.epochs_per_task
        if record.epoch > 0:
            seconds.append(record.seconds)
        if record.epoch > 0 and time.perf_counter() >= until:
            break
    per_epoch = statistics.median(seconds)
    case = {"model": model, "stream": stream, "seq_len": cfg.seq_len, "hidden": cfg.hidden,
            "batch_size": cfg.batch_size, "steps_per_epoch": steps, "epochs_timed": len(seconds),
            "seconds": [round(s, 4) for s in seconds], "seconds_per_epoch": per_epoch,
            "seconds_per_step": per_epoch / steps}
    if device == "cuda":
        case["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(f"  {model} {stream}: {per_epoch:.4f} s/epoch, {1e3 * per_epoch / steps:.2f} ms/step "
          f"({steps} steps, median of {len(seconds)})", flush=True)
    return case


# ---- 3. trials per GPU ------------------------------------------------------------------------------

def packed_trial(index: int, device: str, settings: Settings, commands: Any, results: Any) -> None:
    """One packed trial in its own process: warm up, then `pack_epochs` epochs at each "go" (the parent ends it)."""
    try:
        torch.set_num_threads(1)  # one CPU per trial, as a sweep runs them
        epochs = 1 + settings.pack_epochs * len(settings.packings)  # enough for every round it can join
        cfg = TrialConfig(**PACKED, tasks=1, epochs_per_task=epochs, seed=index, stream_seed=index, device=device)
        trial = run_stream(cfg, dataset_for(PACKED["stream"], settings))
        next(trial)  # the warm-up epoch: CUDA context, kernels, allocator
        results.put(("ready", index, 0.0))
        while True:
            commands.get()  # "go"
            for _ in range(settings.pack_epochs):
                record, _ = next(trial)
                results.put(("epoch", index, record.seconds))
    except Exception:
        results.put(("error", index, traceback.format_exc()))


def packing(section: dict[str, Any], deadline: float, save: Callable[[], None],
            device: str, settings: Settings) -> None:
    """Rounds of 1, 2, 4, 8 concurrent trials of processes started once; each round gets an equal share of the time
    left, so a quick round leaves its time to the larger ones after it."""
    context = mp.get_context("spawn")  # CUDA cannot be forked
    results = context.Queue()
    most = max(settings.packings)
    commands = [context.Queue() for _ in range(most)]
    workers = [context.Process(target=packed_trial, args=(i, device, settings, commands[i], results), daemon=True)
               for i in range(most)]
    resolved = TrialConfig(**PACKED).resolved()
    trial_epochs = resolved.tasks * resolved.epochs_per_task
    rounds: list[dict[str, Any]] = []
    section.update(trial={**PACKED, "tasks": resolved.tasks, "epochs_per_task": resolved.epochs_per_task},
                   epochs_per_round=settings.pack_epochs, rounds=rounds)
    started = time.perf_counter()
    try:
        for worker in workers:
            worker.start()
        ready = wait_ready(results, most, started + STARTUP_SHARE * (deadline - started))
        section.update(ready=ready, startup_seconds=round(time.perf_counter() - started, 1))
        save()
        for position, n in enumerate(settings.packings):
            if n > ready:
                rounds.append({"concurrent": n, "status": f"skipped: only {ready} trials started in time"})
                continue
            now = time.perf_counter()
            left = sum(m <= ready for m in settings.packings[position:])
            result = packing_round(commands[:n], results, settings.pack_epochs, now + (deadline - now) / left)
            result["trials_per_hour"] = result["epochs_per_hour"] / trial_epochs
            rounds.append(result)
            save()
            print(f"  {n} at once: {result['epochs_per_hour']:.0f} epochs/h, {result['trials_per_hour']:.2f} trials/h"
                  f"{'' if result['complete'] else ' (cut short by the budget)'}", flush=True)
            if not result["complete"]:
                break  # its trials are still running: a later round would share the GPU with them
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
    measured = [r for r in rounds if "epochs_per_hour" in r]
    if measured and measured[0]["concurrent"] == 1:
        for r in measured:
            r["speedup"] = r["epochs_per_hour"] / measured[0]["epochs_per_hour"]
    if measured:
        section["best"] = max(measured, key=lambda r: r["epochs_per_hour"])["concurrent"]
    complete = len(measured) == len(settings.packings) and all(r["complete"] for r in measured)
    section["status"] = "ok" if complete else "partial: the budget cut some rounds short"


def next_message(results: Any, until: float) -> tuple[str, int, Any] | None:
    """The next (kind, trial, value) a packed trial sends before `until`, None once time is up (a failed trial
    raises with its traceback)."""
    if (timeout := until - time.perf_counter()) <= 0:
        return None
    try:
        kind, index, value = results.get(timeout=timeout)
    except queue.Empty:
        return None
    if kind == "error":
        raise RuntimeError(f"packed trial {index} failed:\n{value}")
    return kind, index, value


def wait_ready(results: Any, count: int, until: float) -> int:
    """How many of `count` packed trials report ready by `until`."""
    ready = 0
    while ready < count and next_message(results, until) is not None:
        ready += 1
    return ready


def packing_round(commands: list[Any], results: Any, epochs: int, until: float) -> dict[str, Any]:
    """Start `len(commands)` trials at once; the wall time until all ran `epochs` epochs (or what ran by `until`)."""
    n = len(commands)
    for command in commands:
        command.put(True)
    started = time.perf_counter()
    seconds: list[float] = []
    last = started
    while len(seconds) < n * epochs and (message := next_message(results, until)) is not None:
        kind, _, value = message
        if kind == "epoch":  # a late "ready" from a trial that is not in this round is not an epoch
            seconds.append(value)
            last = time.perf_counter()
    complete = len(seconds) == n * epochs
    wall = (last if complete else time.perf_counter()) - started
    return {"concurrent": n, "complete": complete, "epochs": len(seconds), "wall_seconds": round(wall, 3),
            "epochs_per_hour": 3600 * len(seconds) / wall if wall > 0 else 0.0,
            "median_epoch_seconds": statistics.median(seconds) if seconds else None}


# ---- 4. the paper's grid ----------------------------------------------------------------------------

def paper_task_samples(cfg: TrialConfig) -> int:
    """Training samples of one task of the paper's data: every class for reshuffle streams, two for binary ones."""
    spec = cfg.stream_spec
    classes = len(cfg.languages) if cfg.languages else len(spec.classes)
    return PAPER_PER_CLASS[spec.dataset] * (2 if spec.is_binary else classes)


def trial_seconds(cfg: TrialConfig, cases: dict[tuple[str, str], dict[str, Any]]) -> float | None:
    """One trial alone on a GPU: tasks x epochs x steps x the seconds per step measured for its model and stream.

    Without that pair, the same model on the other stream of the same data; sequence length scales a recurrent
    model's step; hidden size and mitigation are not scaled. None when nothing fits was measured.
    """
    cfg = cfg.resolved()
    dataset = cfg.stream_spec.dataset
    case = cases.get((cfg.model, cfg.stream)) or next(
        (c for (m, s), c in cases.items() if m == cfg.model and STREAMS[s].dataset == dataset), None)
    if case is None:
        return None
    samples = paper_task_samples(cfg)
    steps = math.ceil(samples / cfg.batch_size)
    length = cfg.seq_len / case["seq_len"] if MODEL_INFO[cfg.model].recurrent else 1.0
    return cfg.tasks * cfg.epochs_for(samples) * steps * case["seconds_per_step"] * length


def grid(section: dict[str, Any], deadline: float, save: Callable[[], None], report: dict[str, Any]) -> None:
    """GPU-hours of every registered sweep at scale `paper`, one trial per GPU and at the best measured packing."""
    from sweeps.registry import SWEEPS  # here, so that a sweep module that cannot import is this phase's error only

    cases = {(c["model"], c["stream"]): c for c in report.get("epochs", {}).get("cases", [])}
    pack = report.get("packing", {})
    best = pack.get("best")
    speedup = next((r["speedup"] for r in pack.get("rounds", []) if r["concurrent"] == best and "speedup" in r), None)
    sweeps: dict[str, dict[str, Any]] = {}
    missing: dict[str, int] = {}
    total = 0.0
    for name in SWEEPS.names():
        seconds, trials = 0.0, SWEEPS[name].trials("paper")
        for trial in trials:
            cost = trial_seconds(trial.config, cases)
            if cost is None:
                key = f"{trial.config.model} {trial.config.stream}"
                missing[key] = missing.get(key, 0) + 1
            else:
                seconds += cost
        sweeps[name] = {"trials": len(trials), "gpu_hours": seconds / 3600}
        total += seconds
    section.update(
        scale="paper", trials=sum(s["trials"] for s in sweeps.values()), sweeps=sweeps, not_estimated=missing,
        gpu_hours_one_per_gpu=total / 3600, best_packing=best if speedup else 1, packing_speedup=speedup or 1.0,
        gpu_hours_at_best_packing=total / 3600 / (speedup or 1.0),
        assumptions=["each sweep's trials counted in that sweep (arms that two sweeps share count twice)",
                     "seconds per step of the trial's model and stream, alone on the GPU (phase epochs), "
                     "scaled by sequence length; hidden size and mitigation not scaled",
                     "the packing speedup measured for the paper's GRU applies to every trial",
                     "no process start or data loading per trial"],
        status="ok" if not missing else "partial: some trials' model and stream were not measured")


# ---- markdown ---------------------------------------------------------------------------------------

def number(value: Any) -> str:
    """A table cell: three significant digits, whole numbers from 100 on, "-" for a missing value."""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return "-" if value is None else str(value)


def markdown(data: dict[str, Any]) -> str:
    """The JSON's summary for people: one section per phase."""
    machine, settings = data["machine"], data["settings"]
    lines = ["# Device check", "",
             f"Status: **{data['status']}**. Device: {machine.get('gpu', data['settings']['device'])}, torch "
             f"{machine['torch']} (CUDA {machine['cuda']}), Python {machine['python']}, {machine['cpus']} CPUs; "
             f"started {data['started']}; budget {settings['budget_seconds']} s.", ""]
    if settings["smoke"]:
        lines += ["Smoke run (`--smoke`): tiny shapes; the numbers check the plumbing and say nothing about speed.", ""]
    tests = data.get("tests", {})
    lines += ["## GPU tests", "", f"`{tests.get('command', '')}`: **{tests.get('status', 'not run')}** "
              f"({tests.get('summary', '')}).", ""]
    epochs = data.get("epochs", {})
    lines += ["## Seconds per epoch", "", f"Status: {epochs.get('status', 'not run')}.", "",
              "| model | stream | seq_len | batch | steps/epoch | s/epoch | ms/step | epochs timed | peak MiB |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c['model']} | {c['stream']} | {c['seq_len']} | {c['batch_size']} | {c['steps_per_epoch']} | "
              f"{number(c['seconds_per_epoch'])} | {number(1e3 * c['seconds_per_step'])} | {c['epochs_timed']} | "
              f"{number(c.get('peak_memory_mib'))} |" for c in epochs.get("cases", [])]
    pack = data.get("packing", {})
    trial = pack.get("trial", {})
    lines += ["", "## Trials per GPU", "", f"Status: {pack.get('status', 'not run')}. Each trial: "
              f"{trial.get('model')} on {trial.get('stream')} ({trial.get('tasks')} tasks x "
              f"{trial.get('epochs_per_task')} epochs), in its own process, "
              f"{pack.get('epochs_per_round', '-')} epochs a round.", "",
              "| at once | complete | epochs | wall s | epochs/h | trials/h | speedup | median s/epoch |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['concurrent']} | {r.get('complete', r.get('status'))} | {r.get('epochs', '-')} | "
              f"{number(r.get('wall_seconds'))} | {number(r.get('epochs_per_hour'))} | "
              f"{number(r.get('trials_per_hour'))} | {number(r.get('speedup'))} | "
              f"{number(r.get('median_epoch_seconds'))} |" for r in pack.get("rounds", [])]
    g = data.get("grid", {})
    lines += ["", "## The paper's grid", "", f"Status: {g.get('status', 'not run')}."]
    if "gpu_hours_one_per_gpu" in g:
        lines += ["", f"{g['trials']} trials at scale paper: **{g['gpu_hours_one_per_gpu']:.1f} GPU-hours** one trial "
                  f"per GPU, **{g['gpu_hours_at_best_packing']:.1f}** at {g['best_packing']} per GPU "
                  f"(speedup {g['packing_speedup']:.2f}x).", "", "| sweep | trials | GPU-hours, one per GPU |",
                  "|---|---|---|"]
        lines += [f"| {name} | {s['trials']} | {s['gpu_hours']:.2f} |" for name, s in g["sweeps"].items()]
        lines += ["", "Assumptions: " + "; ".join(g["assumptions"]) + "."]
        if g["not_estimated"]:
            lines += ["", f"Not estimated (not measured): {g['not_estimated']}."]
    errors = [f"- {name}: {data[name]['error']}" for name in ("tests", "epochs", "packing", "grid")
              if "error" in data.get(name, {})]
    return "\n".join(lines + (["", "## Errors", ""] + errors if errors else []))


# ---- main -------------------------------------------------------------------------------------------

def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "cpus": os.cpu_count()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
    return info


def interrupted(signum: int, frame: Any) -> None:
    """SIGTERM (a timeout's first signal) ends the run through `finally`, which writes what was measured."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for device_check.json and device_check.md")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, 1 and 2 packed trials (CI, on the CPU)")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds for all phases (default 270)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"device_check: no CUDA device visible (torch {torch.__version__}); nothing to check here "
              "(--device cpu --smoke runs the CPU smoke check)")
        return 0

    start = time.perf_counter()
    signal.signal(signal.SIGTERM, interrupted)
    torch.set_num_threads(1)  # one CPU per trial, as a sweep runs them
    settings = SMOKE if args.smoke else PAPER
    report = Report(args.out, {
        "status": "running", "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": sys.argv,
        "machine": machine(args.device),
        "settings": {"device": args.device, "smoke": args.smoke, "budget_seconds": args.budget, **asdict(settings)},
    })
    ends = {name: start + share * args.budget for name, share in PHASE_ENDS.items()}
    try:
        run_phase(report, "tests", ends["tests"], gpu_tests)
        run_phase(report, "epochs", ends["epochs"], epoch_times, args.device, settings)
        run_phase(report, "packing", ends["packing"], packing, args.device, settings)
        run_phase(report, "grid", start + args.budget, grid, report.data)
        report.data["status"] = "complete"
    finally:
        if report.data["status"] == "running":
            report.data["status"] = "interrupted"
        report.data["seconds"] = round(time.perf_counter() - start, 1)
        report.save()
    g = report.data["grid"]
    if "gpu_hours_one_per_gpu" in g:
        packed = (f", {g['gpu_hours_at_best_packing']:.1f} at {g['best_packing']} per GPU"
                  if g["best_packing"] > 1 else "")
        print(f"device_check: the paper's grid ({g['trials']} trials): {g['gpu_hours_one_per_gpu']:.1f} GPU-hours "
              f"one trial per GPU{packed}")
    print(f"device_check: results in {args.out / 'device_check.json'} and {args.out / 'device_check.md'}")
    proven = ("passed",) if args.device == "cuda" else ("passed", "skipped")  # on a GPU, a skipped test proves nothing
    failed = report.data["tests"]["status"] not in proven or any(
        report.data[name]["status"] == "error" for name in ("epochs", "packing", "grid"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
