"""Test accuracy and wall time of the setups the documentation quotes, each one call of
``train()`` as a user makes it:

    NNSCRATCH_DATA=/path/to/mnist python benchmarks/accuracy.py [--json PATH]
        [--backend numpy]

- 784-128-10, SGD, batch 128, lr 0.5, 5 epochs: ``nnscratch train --lr 0.5``, on the full MNIST
  and on the sample bundled with nnscratch;
- 784-10-10, full batch, lr 0.1, 500 iterations, weights uniform in [0, 0.01): the blog posts';
- 784-800-10, Adam, lr 0.001, cosine schedule, batch 128, 12 epochs.

Each is seed 0, float32. The wall time is the whole ``train()`` call, evaluation included.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nnscratch
from nnscratch.data import load_mnist

import results_file  # benchmarks/results_file.py, beside this script

SETUPS = [
    ("784-128-10, SGD, batch 128, lr 0.5, 5 epochs", "full", dict(lr=0.5)),
    ("784-128-10, SGD, batch 128, lr 0.5, 5 epochs", "sample", dict(lr=0.5)),
    ("784-10-10, full batch, lr 0.1, 500 iterations, init 'seed' (the blog posts)", "full",
     dict(hidden=(10,), batch_size=None, epochs=500, lr=0.1, init="seed")),
    ("784-800-10, Adam, lr 0.001, cosine schedule, batch 128, 12 epochs", "full",
     dict(hidden=(800,), optimizer="adam", lr=0.001, schedule="cosine", epochs=12)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the figures to this results file")
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    full = load_mnist()
    if full.is_sample:
        parser.error("set NNSCRATCH_DATA to the full MNIST")
    sample = load_mnist(Path(nnscratch.__file__).parent / "sample")  # the bundled sample
    rows = []
    for setup, which, options in SETUPS:
        data = full if which == "full" else sample
        start = time.perf_counter()
        result = nnscratch.train(data, backend=args.backend, progress=False, **options)
        seconds = time.perf_counter() - start
        rows.append({"setup": setup,
                     "data": f"{which} MNIST ({len(data.y_train):,} training images)",
                     "backend": args.backend, "test_accuracy": result.test_accuracy,
                     "seconds": seconds})
        print(f"{setup}, {which}: {result.test_accuracy:.2%} in {seconds:.1f} s", flush=True)
    if args.json:
        results_file.write(args.json, rows)


if __name__ == "__main__":
    main()
