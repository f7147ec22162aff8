"""Run the benchmark suite and write its results: JSON, a Markdown table, a bar chart.

    NNSCRATCH_DATA=~/mnist python benchmarks/run.py [--out DIR] [--passes N] [--threads N]
                                                    [--quick] [-k EXPR]

writes ``DIR/results.json`` (pytest-benchmark's format, with the machine, library versions, BLAS
and thread settings), ``DIR/table.md`` (medians with min-max, and ratios against the blog's code,
plain NumPy and PyTorch measured in the same run) and ``DIR/chart.png`` (needs matplotlib).

With ``--passes N`` the whole suite runs N times, one pass after another, each pass written to
``DIR/pass-K.json``. pytest-benchmark times each implementation's rounds back to back, so on a
machine whose speed drifts (a shared VM) one pass can favour whichever implementation ran in a
quiet spell; the passes show how far that goes. ``results.json`` then holds, for each row, the
median of the passes' medians and the min and max over all rounds, and every ratio is computed
within each pass and reported as the median with its range over the passes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
FLOOR = "blas-floor"
CASE_ORDER = ("run-blog", "blog-step", "run-128", "epoch-128", "run-800", "epoch-800",
              "first-command", "inference", "transfer")


def run_suite(results: Path, threads: int | None, quick: bool, select: str | None) -> Path:
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in THREAD_VARS})
    if quick:
        env["NNSCRATCH_BENCH_QUICK"] = "1"
    command = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks"), "--benchmark-only",
               f"--benchmark-json={results}", "-p", "no:cacheprovider", "-q"]
    if select:
        command += ["-k", select]
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    if code != 0:
        raise SystemExit(f"run.py: the benchmark suite failed (pytest exit status {code}); "
                         "its output is above")
    return results


def _key(bench: dict) -> tuple[str, str, str]:
    info = bench["extra_info"]
    return info["case"], info["dtype"], info["implementation"]


def _rows(results: dict) -> dict[tuple[str, str], dict[str, dict]]:
    """{(case, dtype): {implementation: stats}} from pytest-benchmark's JSON."""
    table: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for bench in results["benchmarks"]:
        case, dtype, name = _key(bench)
        table[(case, dtype)][name] = bench["stats"]
    return table


def merge_passes(passes: list[dict]) -> dict:
    """One results dict from several passes of the suite: each row's median is the median of
    its passes' medians, its min and max those of all its rounds, and ``stats["passes"]`` lists
    each pass's median (the table's ratio ranges come from those). Rows missing from a pass
    (skipped there) are merged from the passes that have them."""
    merged = dict(passes[0])
    rows: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    first: dict[tuple[str, str, str], dict] = {}
    for results in passes:
        for bench in results["benchmarks"]:
            rows[_key(bench)].append(bench["stats"])
            first.setdefault(_key(bench), bench)
    merged["benchmarks"] = []
    for key, stats in rows.items():
        medians = [s["median"] for s in stats]
        combined = {"median": statistics.median(medians), "min": min(s["min"] for s in stats),
                    "max": max(s["max"] for s in stats),
                    "rounds": sum(s["rounds"] for s in stats), "passes": medians}
        merged["benchmarks"].append({**first[key], "stats": combined})
    merged["passes"] = len(passes)
    return merged


def _sort_key(key: tuple[str, str]) -> tuple:
    case, dtype = key
    base = case.split(",")[0]
    return (CASE_ORDER.index(base) if base in CASE_ORDER else len(CASE_ORDER), case, dtype)


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.3g}"


def _ratio(numerator: dict | None, denominator: dict | None) -> str:
    """``numerator``'s median time over ``denominator``'s; with several passes, the median of
    the per-pass ratios and their range (each ratio taken within one pass, where both were
    measured in the same stretch of time)."""
    if numerator is None or denominator is None:
        return "-"
    if "passes" not in numerator or "passes" not in denominator:
        return f"{numerator['median'] / denominator['median']:.2f}x"
    ratios = [a / b for a, b in zip(numerator["passes"], denominator["passes"])]
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}x"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def markdown_table(results: dict) -> str:
    """Medians (ms) with min-max, speed-ups against the baselines of the same case, and for the
    epochs the time over the floor of the same run (``blas-floor``: its two BLAS products)."""
    table = _rows(results)
    lines = ["| case | dtype | implementation | median ms | min-max ms | vs blog | vs plain NumPy "
             "| vs PyTorch | over floor |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for case, dtype in sorted(table, key=_sort_key):
        row = table[(case, dtype)]
        blog = table.get((case, "float64"), {}).get("blog")  # the blog's code is float64 only
        for name, stats in sorted(row.items(), key=lambda item: item[1]["median"]):
            lines.append(
                f"| {case} | {dtype} | {name} | {_ms(stats['median'])} | "
                f"{_ms(stats['min'])}-{_ms(stats['max'])} | {_ratio(blog, stats)} | "
                f"{_ratio(row.get('plain-numpy'), stats)} | {_ratio(row.get('torch'), stats)} | "
                f"{_ratio(stats, row.get(FLOOR))} |")
    return "\n".join(lines) + "\n"


def machine_summary(results: dict) -> str:
    machine = results["machine_info"]
    extra = machine.get("nnscratch", {})
    versions = ", ".join(f"{k} {v}" for k, v in extra.get("versions", {}).items())
    threads = ", ".join(f"{k}={v}" for k, v in extra.get("threads", {}).items())
    cpu = machine.get("cpu", {}).get("brand_raw", machine.get("processor", "unknown CPU"))
    passes = results.get("passes", 1)
    how = (f"; {passes} passes of the suite: each median is the median of the passes' medians, "
           "each ratio the median of the ratios within a pass, with their range in brackets"
           if passes > 1 else "")
    return (f"Machine: {cpu}; {machine.get('system')} {machine.get('release')}. {versions}. "
            f"BLAS: {extra.get('blas', 'unknown')}. Threads: {threads}. Run {results['datetime']}"
            f"{how}{' (QUICK MODE: smoke test, not figures)' if extra.get('quick') else ''}.\n")


def bar_chart(results: dict, path: Path, dtype: str = "float32") -> str:
    """Medians of each case for ``dtype`` as horizontal bars; returns a note for the user."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (pip install matplotlib)"
    table = _rows(results)
    cases = [c for c, d in sorted(table, key=_sort_key) if d == dtype]
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 1.2 + 1.1 * sum(
        len(table[(c, dtype)]) for c in cases) / 2), squeeze=False)
    for ax, case in zip(axes[:, 0], cases):
        row = dict(table[(case, dtype)])
        blog = table.get((case, "float64"), {}).get("blog")
        if blog is not None:
            row["blog (float64)"] = blog
        names = sorted(row, key=lambda n: row[n]["median"], reverse=True)
        ax.barh(names, [1e3 * row[n]["median"] for n in names],
                color=["#c44" if n.startswith("nnscratch") else "#999" for n in names])
        ax.set_title(f"{case} ({dtype}), median ms: lower is better", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="folder for results.json, table.md, chart.png "
                             "(default: benchmarks/results)")
    parser.add_argument("--threads", type=int, help="threads for BLAS, OpenMP, Numba and "
                        "PyTorch (sets OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS; default: untouched)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny data, two rounds; the figures mean nothing")
    parser.add_argument("--passes", type=int, default=1, metavar="N",
                        help="run the whole suite N times and report the spread of every ratio "
                             "over the passes (default: 1)")
    parser.add_argument("-k", dest="select", help="pytest -k expression to run a subset")
    parser.add_argument("--from-json", type=Path,
                        help="only rebuild table.md and chart.png from an existing results.json")
    args = parser.parse_args(argv)
    if args.passes < 1:
        parser.error(f"--passes must be at least 1; got {args.passes}")
    if args.from_json and args.passes > 1:
        parser.error("--passes runs the suite; with --from-json nothing is run")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        results_path = args.from_json
        results = json.loads(results_path.read_text())
    else:
        results_path = args.out / "results.json"
        if args.passes == 1:
            results = json.loads(run_suite(results_path, args.threads, args.quick,
                                           args.select).read_text())
        else:
            passes = []
            for k in range(1, args.passes + 1):
                print(f"pass {k} of {args.passes}", flush=True)
                path = run_suite(args.out / f"pass-{k}.json", args.threads, args.quick,
                                 args.select)
                passes.append(json.loads(path.read_text()))
            results = merge_passes(passes)
            results_path.write_text(json.dumps(results, indent=2))
    table = machine_summary(results) + "\n" + markdown_table(results)
    (args.out / "table.md").write_text(table)
    print(table)
    print(bar_chart(results, args.out / "chart.png"))
    print(f"results: {results_path}\ntable: {args.out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
