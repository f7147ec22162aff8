"""The gap between a whole run and its isolated steps, measured round by round in one process.

    NNSCRATCH_DATA=/path/to/mnist python benchmarks/end_to_end_gap.py [--rounds 5]
                                                                      [--backends numpy,numba]

The benchmark suite times whole runs (``run-*``) and isolated steps (``blog-step``,
``epoch-*``) minutes apart; on a VM whose speed drifts, their ratio then measures the drift as
much as the gap. Here each round times, back to back on the same loaded data, the whole run as a
user starts it (``train()``, its evaluations and reporting included) and the same steps alone
(``Trainer.run_epoch()``, as the suite's isolated cases do), for each case:

* ``blog``: the posts' setup, 784-10-10, full batch, ``--iterations`` (default 100) iterations;
* ``128`` / ``800``: three epochs of 784-128-10 / 784-800-10, batch 128.

It prints, per backend and case, the median of the rounds' ratios (whole / isolated) with their
range, and the medians of both times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import nnscratch
from nnscratch.trainer import Trainer

CASES = {
    "blog": dict(hidden=(10,), batch_size=None, lr=0.1, init="seed"),
    "128": dict(hidden=(128,), batch_size=128, lr=0.1),
    "800": dict(hidden=(800,), batch_size=128, lr=0.1),
}


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--backends", default="numpy,numba")
    parser.add_argument("--cases", default="blog,128,800")
    args = parser.parse_args()
    data = nnscratch.load_mnist()  # NNSCRATCH_DATA
    for backend in args.backends.split(","):
        for case in args.cases.split(","):
            settings = dict(CASES[case], epochs=args.iterations if case == "blog" else 3,
                            dtype="float32")

            def whole() -> None:
                nnscratch.train(data, backend=backend, progress=False, **settings)

            def isolated() -> None:
                trainer = Trainer(data, backend=backend, **settings)
                for _ in range(settings["epochs"]):
                    trainer.run_epoch()

            whole(), isolated()  # warm-up: compilation and caches are not counted
            pairs = [(timed(whole), timed(isolated)) for _ in range(args.rounds)]
            ratios = [w / i for w, i in pairs]
            print(f"{backend:6s} {case:5s} whole / isolated {statistics.median(ratios):.3f} "
                  f"({min(ratios):.3f}-{max(ratios):.3f}); whole "
                  f"{statistics.median(w for w, _ in pairs):.3f} s, isolated "
                  f"{statistics.median(i for _, i in pairs):.3f} s "
                  f"({settings['epochs']} epochs, {args.rounds} rounds)", flush=True)


if __name__ == "__main__":
    main()
