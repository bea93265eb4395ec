"""What Ray Tune costs on top of the bare training loop, measured in one run.

The same trials run twice on this machine, two at a time with one thread each:
1. bare: each trial's `run_stream` in its own Python process (data load included, no Ray, no files);
2. sweep: `lop sweep run` machinery (`run_sweep`) with a local Ray, reporting every epoch and
   checkpointing every task.
Prints the wall times and `overhead=<sweep / bare>` (target: at most 1.15 for trials of a minute or more).

    python benchmarks/sweep_overhead.py --tasks 12 --epochs 10
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys, torch
torch.set_num_threads(1)
from trainables import data
from trainables.config import TrialConfig
from trainables.loop import run_stream
cfg = TrialConfig(model="mlp", stream="mnist-reshuffle", tasks={tasks}, epochs_per_task={epochs},
                  seed=int(sys.argv[1]), stream_seed=int(sys.argv[1]), device="cpu")
for _ in run_stream(cfg, data.load("mnist")):
    pass
"""

SWEEP = """
import sys
from pathlib import Path
from sweeps.base import Sweep
from sweeps.launch import Resources, run_sweep
sweep = Sweep(name="overhead", title="overhead benchmark",
              base={{"model": "mlp", "stream": "mnist-reshuffle", "tasks": {tasks}, "epochs_per_task": {epochs},
                     "device": "cpu"}}, arms={{"baseline": {{}}}})
sys.exit(run_sweep(sweep, scale="paper", seeds={trials}, seed_start=0, arms=None, storage=Path(sys.argv[1]),
                   name=None, address=None, resources=Resources(cpus_per_trial=1), dry_run=False))
"""


def timed(commands: list[list[str]]) -> float:
    started = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"benchmark command failed:\n{err[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=2, help="trials, run two at a time (2 cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as storage:
        bare_code = BARE.format(tasks=args.tasks, epochs=args.epochs)
        bare = 0.0
        for start in range(0, args.trials, 2):  # two at a time, like the sweep on 2 CPUs
            seeds = range(start, min(start + 2, args.trials))
            bare += timed([[sys.executable, "-c", bare_code, str(seed)] for seed in seeds])
        sweep_code = SWEEP.format(tasks=args.tasks, epochs=args.epochs, trials=args.trials)
        sweep = timed([[sys.executable, "-c", sweep_code, str(Path(storage))]])
    per_trial = bare / max(1, (args.trials + 1) // 2)
    print(f"trials={args.trials} tasks={args.tasks} epochs={args.epochs} bare_seconds={bare:.1f} "
          f"(~{per_trial:.0f} s per trial) sweep_seconds={sweep:.1f}")
    print(f"overhead={sweep / bare:.3f}")


if __name__ == "__main__":
    main()
