"""Peak resident memory of a full-batch training step, above the process's memory with the data
loaded: the figure of issue 16 ("at most 200 MB above the data for a full-batch 784-800-10 step
on the full MNIST, float32").

    NNSCRATCH_DATA=/path/to/mnist python benchmarks/peak_memory.py [--hidden 800] [--one-block]

Each backend runs in a fresh process: load the data, compile the kernels on a few rows (so
compilation is not counted), note the resident memory (VmRSS), build the trainer (which places
the data on the backend: for NumPy a float copy of the training images), reset the peak
(``/proc/self/clear_refs``) and train one full-batch step; the peak (VmHWM) less the memory
with the data loaded is the figure. ``--one-block`` sets the backends' ``block_bytes`` so high
that the whole batch is one block, as before steps were taken in blocks. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import gc, re, sys
from nnscratch.data import load_mnist
from nnscratch.registry import get_backend
from nnscratch.trainer import Trainer

def mb(field):
    text = open("/proc/self/status").read()
    return int(re.search(field + r":\s+(\d+) kB", text).group(1)) / 1024

backend, hidden, one_block = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
data = load_mnist(None)  # NNSCRATCH_DATA
b = get_backend(backend)
if one_block:
    type(b).block_bytes = 2**62
Trainer(data, hidden=(hidden,), batch_size=None, backend=backend).model.gradients(
    b.asarray(data.x_train[:3000]), b.asarray(data.y_train[:3000]))  # compile, not counted
gc.collect()
loaded = mb("VmRSS")
trainer = Trainer(data, hidden=(hidden,), batch_size=None, epochs=1, backend=backend)
placed = mb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident memory
trainer.run_epoch()
print(f"{loaded:.0f} {placed - loaded:.0f} {mb('VmHWM') - loaded:.0f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=800)
    parser.add_argument("--backends", default="numpy,numba")
    parser.add_argument("--one-block", action="store_true",
                        help="the whole batch as one block (as before blocks)")
    args = parser.parse_args()
    if not os.environ.get("NNSCRATCH_DATA"):
        sys.exit("peak_memory.py: set NNSCRATCH_DATA to a folder with the full MNIST")
    print(f"full-batch 784-{args.hidden}-10 step, float32"
          f"{' (one block)' if args.one_block else ''}: MB above the data loaded")
    print(f"{'backend':8s} {'data loaded':>12s} {'trainer built':>14s} {'peak in the step':>17s}")
    for backend in args.backends.split(","):
        out = subprocess.run([sys.executable, "-c", CHILD, backend, str(args.hidden),
                              "1" if args.one_block else "0"],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{backend:8s} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        loaded, placed, peak = out.stdout.split()
        print(f"{backend:8s} {loaded:>9s} MB {'+' + placed:>11s} MB {'+' + peak:>14s} MB")


if __name__ == "__main__":
    main()
