"""What a sweep of many tiny trials costs the driver: overhead per trial and experiment-snapshot cost.

Runs one sweep of N tiny trials (an MLP, 1 task, 1 epoch, 100 training and 50 test digits) through
`run_sweep` on a local Ray, with the tool's default Tune settings (or others, via --env), and times:
- the bare trial: the same trial's `run_stream` in this process, data already loaded;
- the sweep's wall time, and per trial: wall x concurrent trials / N, minus the bare trial = overhead,
  split into the time inside the trial's process (Tune's `time_total_s`: data load, model, reporting)
  and the rest (scheduling, starting or resetting the process, the driver's bookkeeping);
- the driver process's CPU time per trial;
- experiment-state snapshots: how many, how long each took to write, and the file's size;
then reads the sweep back with `load_results` to check that every trial's record is there.

    python benchmarks/sweep_scale.py --trials 1000
    python benchmarks/sweep_scale.py --trials 200 --env TUNE_MAX_PENDING_TRIALS_PG=2
    python benchmarks/sweep_scale.py --trials 30 --no-reuse-actors
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = {"model": "mlp", "stream": "mnist-reshuffle", "tasks": 1, "epochs_per_task": 1, "train_limit": 100,
        "test_limit": 50, "device": "cpu"}

DRIVER = """
import json, sys, time
from pathlib import Path
from ray.tune.execution import experiment_state, tune_controller
import sweeps.launch as launch
from sweeps.base import Sweep

saves = []  # seconds to write the experiment state to the driver's staging folder
original_save = tune_controller.TuneController.save_to_dir
def timed_save(self):
    started = time.perf_counter()
    original_save(self)
    saves.append(time.perf_counter() - started)
tune_controller.TuneController.save_to_dir = timed_save

syncs = []  # seconds the driver spent in a snapshot, its upload to storage included when forced
original_sync = experiment_state._ExperimentCheckpointManager.sync_up_experiment_state
def timed_sync(self, save_fn, force=False, wait=False):
    before = len(saves)
    started = time.perf_counter()
    original_sync(self, save_fn, force=force, wait=wait)
    if len(saves) > before:
        syncs.append(time.perf_counter() - started)
experiment_state._ExperimentCheckpointManager.sync_up_experiment_state = timed_sync

launch.REUSE_ACTORS = {reuse}
sweep = Sweep(name="scale", title="scale benchmark", base={tiny}, arms={{"tiny": {{}}}})
started = time.perf_counter()
code = launch.run_sweep(sweep, scale="paper", seeds={trials}, seed_start=0, arms=None, storage=Path(sys.argv[1]),
                        name=None, address=None, resources=launch.Resources(cpus_per_trial=1), dry_run=False)
wall = time.perf_counter() - started
Path(sys.argv[2]).write_text(json.dumps({{"code": code, "wall": wall, "cpu": time.process_time(),
                                          "saves": saves, "syncs": syncs}}))
"""


def bare_trial_seconds(repeats: int = 20) -> float:
    """Median seconds of one tiny trial's `run_stream` in this process, one thread, after a warm-up."""
    import torch
    from trainables import data
    from trainables.config import TrialConfig
    from trainables.loop import run_stream
    torch.set_num_threads(1)
    mnist = data.load("mnist")
    times = []
    for seed in range(repeats + 1):
        cfg = TrialConfig(**TINY, seed=seed, stream_seed=seed)
        started = time.perf_counter()
        for _ in run_stream(cfg, mnist):
            pass
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a Tune setting to try instead of the tool's default (repeatable)")
    parser.add_argument("--no-reuse-actors", action="store_true", help="a new process for every trial")
    parser.add_argument("--keep", type=Path, default=None, help="keep the sweep in this folder")
    args = parser.parse_args()
    env = {**os.environ, **dict(item.split("=", 1) for item in args.env)}
    slots = os.cpu_count() or 1  # one-CPU trials on a local Ray: as many at once as CPUs
    bare = bare_trial_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        storage = args.keep or Path(tmp)
        stats_file = Path(tmp) / "stats.json"
        driver = DRIVER.format(reuse=not args.no_reuse_actors, tiny=repr(TINY), trials=args.trials)
        run = subprocess.run([sys.executable, "-c", driver, str(storage), str(stats_file)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0 or not stats_file.exists():
            sys.exit(f"sweep failed:\n{run.stderr[-3000:]}")
        stats = json.loads(stats_file.read_text())
        from sweeps.results import RESULT_FILE, load_results, read_rows, trial_folders
        frame = load_results(storage / "scale")
        in_trial = statistics.mean(row["time_total_s"] for folder in trial_folders(storage / "scale")
                                   for row in read_rows(folder / RESULT_FILE))
        state_bytes = max(p.stat().st_size for p in (storage / "scale").glob("experiment_state-*.json"))
    n = args.trials
    per_slot = stats["wall"] * slots / n
    saves, syncs = stats["saves"], stats["syncs"]
    print(f"trials={n} finished={frame['trial_id'].nunique()} rows={len(frame)} exit={stats['code']} "
          f"reuse_actors={not args.no_reuse_actors} settings={' '.join(args.env) or 'defaults'}")
    print(f"wall={stats['wall']:.1f}s ({n / stats['wall'] * 60:.0f} trials/min, {slots} at once) "
          f"bare_trial={bare * 1000:.1f}ms")
    print(f"overhead_per_trial={per_slot - bare:.3f}s (wall x {slots} / trials - bare): "
          f"in_trial_process={in_trial - bare:.3f}s outside={per_slot - in_trial:.3f}s "
          f"driver_cpu_per_trial={stats['cpu'] / n * 1000:.1f}ms")
    print(f"snapshots={len(saves)} write_mean={statistics.mean(saves) * 1000:.1f}ms "
          f"write_max={max(saves) * 1000:.1f}ms in_driver_mean={statistics.mean(syncs) * 1000:.1f}ms "
          f"in_driver_max={max(syncs) * 1000:.1f}ms total={sum(syncs):.1f}s "
          f"state_file={state_bytes / 1e6:.1f}MB")


if __name__ == "__main__":
    main()
