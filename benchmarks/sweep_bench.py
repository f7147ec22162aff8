"""Sweeps on the full MNIST: how much a second worker buys, what Dask costs per trial, and what
successive halving saves against the whole grid. A benchmark, not a test: it prints figures and
writes them as JSON; it asserts nothing about time.

    NNSCRATCH_DATA=~/mnist python benchmarks/sweep_bench.py [--out DIR] [--only speed|halving]

speed: a 24-trial grid (hidden 64/128/256 x lr 0.05/0.1 x batch 64/128/256/512, 2 epochs),
  1. with train() in a loop in one process, one BLAS thread (no Dask: the baseline),
  2. as a sweep on a LocalCluster of 1 worker, 3. of 2 workers (one BLAS thread per trial),
  4. of 1 worker whose trial may use 2 BLAS threads (what one process on both cores does).
  Dask's cost per trial is (2 - 1) / 24; the speed-up is 2 / 3.
halving: 27 configurations (hidden 32/64/128 x lr 0.01/0.05/0.2 x batch 32/128/512, 9 epochs,
  10% validation) swept as the whole grid and by successive halving (1 epoch, eta 3), both on
  2 workers: the test accuracy of each search's best trial (ranked by validation accuracy),
  the training time (the sum of all trials' epoch seconds) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEED_SPEC = """
[fixed]
epochs = 2
[grid]
hidden = [64, 128, 256]
lr = [0.05, 0.1]
batch_size = [64, 128, 256, 512]
"""

HALVING_GRID = """
[fixed]
epochs = 9
validation = 0.1
[grid]
hidden = [32, 64, 128]
lr = [0.01, 0.05, 0.2]
batch_size = [32, 128, 512]
"""

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS")}

LOOP = """
import sys, time
from nnscratch import train
from nnscratch.data import load_mnist
from nnscratch.sweep_spec import read_spec
data = load_mnist(sys.argv[2])
start = time.perf_counter()
for trial in read_spec(sys.argv[1]).trials:
    train(data, settings=trial.settings, out=sys.argv[3] + "/" + trial.name, progress=False)
print(time.perf_counter() - start)
"""


def timed_sweep(spec: Path, out: Path, **options) -> dict:
    from nnscratch.sweeps import sweep

    start = time.perf_counter()
    result = sweep(spec, out, progress=False, **options)
    wall = time.perf_counter() - start
    done = [r for r in result.rows if r["status"] in ("done", "stopped")]
    best = result.best
    return {"wall_s": round(wall, 2), "train_s": round(sum(r["seconds"] for r in done), 2),
            "trials": len(result.rows),
            "statuses": {s: sum(r["status"] == s for r in result.rows)
                         for s in {r["status"] for r in result.rows}},
            "best_trial": best["trial"], "best_val_accuracy": best["final_val_accuracy"],
            "best_test_accuracy": best["final_test_accuracy"],
            "max_test_accuracy": max(r["final_test_accuracy"] for r in result.rows
                                     if r["status"] == "done")}


def speed(work: Path, data: str) -> dict:
    spec = work / "speed.toml"
    spec.write_text(f'{SPEED_SPEC}\n[data]\npath = "{data}"\n')
    loop = subprocess.run([sys.executable, "-c", LOOP, str(spec), data, str(work / "loop")],
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                          check=True)
    figures = {"loop_1_thread_wall_s": round(float(loop.stdout), 2)}
    for name, options in (("sweep_1_worker", dict(workers=1)),
                          ("sweep_2_workers", dict(workers=2)),
                          ("sweep_1_worker_2_threads", dict(workers=1, threads_per_trial=2))):
        figures[name] = timed_sweep(spec, work / name, **options)
        print(name, figures[name], flush=True)
    one, two = figures["sweep_1_worker"]["wall_s"], figures["sweep_2_workers"]["wall_s"]
    figures["speedup_2_workers_over_1"] = round(one / two, 3)
    figures["speedup_2_workers_over_1_worker_2_threads"] = round(
        figures["sweep_1_worker_2_threads"]["wall_s"] / two, 3)
    figures["dask_cost_per_trial_s"] = round((one - figures["loop_1_thread_wall_s"]) / 24, 3)
    return figures


def halving(work: Path, data: str) -> dict:
    grid = work / "grid.toml"
    grid.write_text(f'{HALVING_GRID}\n[data]\npath = "{data}"\n')
    halved = work / "halving.toml"
    halved.write_text(f'search = "halving"\n{HALVING_GRID}\n[halving]\nmin_epochs = 1\n'
                      f'eta = 3\n[data]\npath = "{data}"\n')
    figures = {}
    for name, spec in (("grid", grid), ("halving", halved)):
        figures[name] = timed_sweep(spec, work / name, workers=2)
        print(name, figures[name], flush=True)
    g, h = figures["grid"], figures["halving"]
    figures["points_below_grid_best"] = round(
        100 * (g["max_test_accuracy"] - h["best_test_accuracy"]), 2)
    figures["train_time_ratio"] = round(h["train_s"] / g["train_s"], 3)
    figures["wall_time_ratio"] = round(h["wall_s"] / g["wall_s"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", choices=("speed", "halving"))
    args = parser.parse_args()
    data = os.environ.get("NNSCRATCH_DATA")
    if not data:
        sys.exit("set NNSCRATCH_DATA to a folder with the full MNIST")
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    results = {"machine_cores": os.cpu_count()}
    if args.only in (None, "speed"):
        results["speed"] = speed(work, data)
    if args.only in (None, "halving"):
        results["halving"] = halving(work, data)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sweep.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
