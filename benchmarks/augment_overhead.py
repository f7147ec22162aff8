"""What distorting the training images costs a run, measured round by round in one process.

    NNSCRATCH_DATA=/path/to/mnist python benchmarks/augment_overhead.py [--rounds 3]
        [--epochs 4] [--backends numba,numpy] [--augment elastic]

Each round runs, back to back on the same loaded data, the reproduction's network and settings
(784-800-10, Adam, lr 0.001, batch 128; see benchmarks/simard2003.py) through ``train()`` twice:
with ``--augment`` and without. An augmented run makes epoch 1's images before it trains
(``EpochImages.get``), then each next epoch's in a background thread while the backend trains
on the current ones; the last epoch has no next one.

It prints, per backend, the medians over the rounds of:

* the seconds of an epoch that overlaps the next one's distortions (epochs 2 .. E-1; an epoch's
  time includes any wait for its images) with and without augmentation, and their ratio;
* the whole run's wall time with and without, and their ratio;
* the seconds the distortions of one epoch take alone, in one thread, with nothing else
  running (``augment.distort`` on all 60,000 images).
"""

from __future__ import annotations

import argparse
import statistics
import time

import nnscratch
from nnscratch.augment import Distortion, distort, epoch_key
from nnscratch.training import training_data

import results_file  # benchmarks/results_file.py, beside this script

SETTINGS = dict(hidden=(800,), optimizer="adam", lr=0.001, batch_size=128, progress=False)


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--backends", default="numba,numpy")
    parser.add_argument("--augment", default="elastic")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the figures to this results file")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3: epochs 2 .. E-1 are the overlapped ones")
    data = training_data(None)
    if data.is_sample:
        parser.error("set NNSCRATCH_DATA to the full MNIST")
    distortion = Distortion.from_settings(nnscratch.TrainSettings(augment=args.augment))
    distort(data.x_train[:10], 0, distortion)  # compiled (or loaded from the cache) first
    alone, figures = [], []
    for backend in args.backends.split(","):
        rows: dict[str | None, list[tuple[float, float]]] = {None: [], args.augment: []}
        for _ in range(args.rounds):
            for augment in (None, args.augment):
                wall, result = timed(lambda: nnscratch.train(
                    data, epochs=args.epochs, backend=backend, augment=augment, **SETTINGS))
                middle = [s.seconds for s in result.history[1:-1]]
                rows[augment].append((statistics.median(middle), wall))
            alone.append(timed(lambda: distort(data.x_train, epoch_key(0, 1), distortion))[0])
        plain = [epoch for epoch, _ in rows[None]]
        augmented = [epoch for epoch, _ in rows[args.augment]]
        walls = [(w, v) for (_, w), (_, v) in zip(rows[None], rows[args.augment])]
        ratios = [a / p for p, a in zip(plain, augmented)]
        print(f"{backend}: overlapped epoch {statistics.median(plain):.2f} s without, "
              f"{statistics.median(augmented):.2f} s with {args.augment}: "
              f"{statistics.median(ratios):.3f}x (rounds {min(ratios):.3f}-{max(ratios):.3f}); "
              f"whole run of {args.epochs} epochs "
              f"{statistics.median(w for w, _ in walls):.1f} s / "
              f"{statistics.median(v for _, v in walls):.1f} s: "
              f"{statistics.median(v / w for w, v in walls):.3f}x")
        figures.append({"backend": backend, "epoch_without": statistics.median(plain),
                        "epoch_with": statistics.median(augmented),
                        "ratio": statistics.median(ratios), "ratio_range": [min(ratios),
                                                                           max(ratios)],
                        "run_without": statistics.median(w for w, _ in walls),
                        "run_with": statistics.median(v for _, v in walls),
                        "run_ratio": statistics.median(v / w for w, v in walls)})
    print(f"one epoch's distortions alone, one thread: {statistics.median(alone):.2f} s "
          f"(range {min(alone):.2f}-{max(alone):.2f})")
    if args.json:
        results_file.write(args.json, figures, augment=args.augment, epochs=args.epochs,
                           rounds=args.rounds,
                           distortions_alone={"median": statistics.median(alone),
                                              "range": [min(alone), max(alone)]})


if __name__ == "__main__":
    main()
