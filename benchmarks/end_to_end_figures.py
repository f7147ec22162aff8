"""Issue 16's figures from a benchmark run: whole runs against each other and against their
isolated steps, each ratio taken within one pass, then the median over the passes with its
range.

    python benchmarks/end_to_end_figures.py DIR

reads ``DIR/pass-*.json`` (or ``DIR/results.json`` for a single pass) written by
``benchmarks/run.py -k "test_run or test_first or blog or epoch or floor" --passes N --out DIR``
and prints one line per figure. The whole runs are 500 iterations of the posts' setup
(``run-blog``) and three epochs with a test evaluation after each (``run-128``, ``run-800``);
"per step" divides them by that count, so the setup, the evaluations and the reporting are
part of the whole run's figure and not of the isolated one.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ITERATIONS, EPOCHS = 500, 3
BACKENDS = ("nnscratch-numpy", "nnscratch-numba")


def medians(path: Path) -> dict[tuple[str, str], float]:
    """{(case, implementation): median seconds} of one pass, float32 cases and the blog's own
    code (float64)."""
    found = {}
    for bench in json.loads(path.read_text())["benchmarks"]:
        info = bench["extra_info"]
        if info["dtype"] == "float32" or info["implementation"] == "blog":
            found[info["case"], info["implementation"]] = bench["stats"]["median"]
    return found


def figures(m: dict[tuple[str, str], float]) -> dict[str, float]:
    out = {}

    def ratio(name: str, top: tuple[str, str], bottom: tuple[str, str], scale: float = 1.0):
        if top in m and bottom in m:
            out[name] = m[top] / (m[bottom] * scale)

    ratio("run-blog: the posts' code / numba (target >= 5)", ("run-blog", "blog"),
          ("run-blog", "nnscratch-numba"))
    ratio("run-blog: numpy / numba (target >= 2.5)", ("run-blog", "nnscratch-numpy"),
          ("run-blog", "nnscratch-numba"))
    ratio("run-128: PyTorch loop / numba (target >= 2)", ("run-128", "torch"),
          ("run-128", "nnscratch-numba"))
    ratio("run-800: numba / its BLAS floor (target <= 1.2)", ("run-800", "nnscratch-numba"),
          ("epoch-800", "blas-floor"), EPOCHS)
    for backend in BACKENDS:
        name = backend.removeprefix("nnscratch-")
        ratio(f"run-blog / (500 x blog-step), {name} (target <= 1.1)", ("run-blog", backend),
              ("blog-step", backend), ITERATIONS)
        for hidden in (128, 800):
            ratio(f"run-{hidden} / (3 x epoch-{hidden}), {name} (target <= 1.1)",
                  (f"run-{hidden}", backend), (f"epoch-{hidden}", backend), EPOCHS)
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    passes = sorted(folder.glob("pass-*.json")) or [folder / "results.json"]
    per_pass = [figures(medians(p)) for p in passes]
    print(f"{len(per_pass)} pass(es) in {folder}; median (min-max over the passes)")
    for name in per_pass[0]:
        values = [f[name] for f in per_pass if name in f]
        print(f"  {name}: {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
