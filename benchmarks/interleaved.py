"""Time one epoch of mini-batch SGD for several implementations, interleaved round by round.

pytest-benchmark runs each implementation's rounds back to back, so on a machine whose speed
drifts (a shared VM) the ratios of one run drift with it. Interleaving puts every
implementation through the same moments::

    NNSCRATCH_DATA=~/mnist python benchmarks/interleaved.py --hidden 128 --rounds 6

prints each round's seconds and the medians. Implementations: plain NumPy and every available
nnscratch backend (the same code as the suite's ``epoch-*`` cases, from ``baselines.py``).

Mini-batch epochs only: interleaving full-batch steps would be unfair to numba, whose threaded
full-batch kernels run at half speed while OpenBLAS's worker still spins after the previous
implementation's products (26.5 ms against 49 ms, benchmarks/NOTES.md); in training nothing
calls BLAS between numba's full-batch steps. ``benchmarks/run.py --passes N`` is the suite's
own answer to a drifting machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402

import nnscratch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128, help="hidden units (default: 128)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--rounds", type=int, default=6, help="rounds each (default: 6)")
    args = parser.parse_args(argv)

    data = nnscratch.load_mnist()
    print(f"data: {data.source}")
    x, y = data.x_train, data.y_train
    works = {"plain-numpy": baselines.plain_epoch(x, y, args.hidden, args.dtype)}
    for name, info in nnscratch.available_backends().items():
        if info.available:
            works[f"nnscratch-{name}"] = baselines.nnscratch_epoch(name)(x, y, args.hidden,
                                                                        args.dtype)
    for work in works.values():  # warm-up: JIT compilation, first-touch allocations
        work()
    seconds: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(args.rounds):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            seconds[name].append(time.perf_counter() - start)
    print(f"one epoch of 784-{args.hidden}-10, batch 128, {args.dtype}; ms per round, median:")
    for name, times in seconds.items():
        rounds = " ".join(f"{t * 1000:.0f}" for t in times)
        print(f"  {name:18} {rounds}   median {statistics.median(times) * 1000:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
