"""Markdown tables of the results files in docs/results/, each written by a benchmark script:
the figures on the site come from these files, never typed by hand. ``render(name, data)``
makes the table of ``docs/results/NAME.json``; each table ends with a line saying what ran,
where and when."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {}


def render(name: str, data: dict[str, Any]) -> str:
    if name not in RENDERERS:
        raise ValueError(f"no table is made from results file {name!r}; "
                         f"known: {', '.join(sorted(RENDERERS))}")
    return "\n".join(RENDERERS[name](data) + ["", _provenance(data)])


def table(name: str) -> Callable:
    def register(function: Callable) -> Callable:
        RENDERERS[name] = function
        return function
    return register


def _provenance(data: dict[str, Any]) -> str:
    when = data.get("date") or data.get("datetime", "")[:10]
    machine = data.get("machine") or _cpu(data)
    text = f"Measured {when} on {machine} with `{data['command']}`."
    if data.get("note"):
        text += f" ({data['note'][0].upper()}{data['note'][1:]}.)"
    return text


def _cpu(data: dict[str, Any]) -> str:
    info = data.get("machine_info", {})
    return info.get("cpu", {}).get("brand_raw") or info.get("processor") or "an unknown machine"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


@table("simard2003")
def simard2003(data: dict[str, Any]) -> list[str]:
    lines = ["| distortion | paper's test error | seed | test accuracy | test error | epochs "
             "| wall time | backend |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in data["rows"]:
        lines.append(f"| {row['distortion']} | {_pct(row['paper_error'])} | {row['seed']} "
                     f"| {_pct(row['test_accuracy'])} | {_pct(1 - row['test_accuracy'])} "
                     f"| {row['epochs']} | {_minutes(row['seconds'])} | {row['backend']} |")
    return lines


@table("augment-overhead")
def augment_overhead(data: dict[str, Any]) -> list[str]:
    lines = [f"| backend | an overlapped epoch without | with `--augment {data['augment']}` "
             f"| ratio (range over {data['rounds']} rounds) "
             f"| whole {data['epochs']}-epoch run without / with |",
             "|---|---:|---:|---:|---:|"]
    for row in data["rows"]:
        low, high = row["ratio_range"]
        lines.append(f"| {row['backend']} | {row['epoch_without']:.2f} s "
                     f"| {row['epoch_with']:.2f} s | {row['ratio']:.2f}x ({low:.2f}-{high:.2f}) "
                     f"| {row['run_without']:.1f} s / {row['run_with']:.1f} s: "
                     f"{row['run_ratio']:.2f}x |")
    alone = data["distortions_alone"]
    lines += ["", f"One epoch's distortions alone, on one thread: {alone['median']:.2f} s "
              f"(range {alone['range'][0]:.2f}-{alone['range'][1]:.2f})."]
    return lines


@table("sklearn-compare")
def sklearn_compare(data: dict[str, Any]) -> list[str]:
    columns = data["columns"]
    lines = ["| data | rows x features, classes | " + " | ".join(columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for row in data["rows"]:
        cells = " | ".join(f"{_pct(row['results'][c]['test_accuracy'])} "
                           f"({row['results'][c]['seconds']:.2f} s)" for c in columns)
        lines.append(f"| {row['data']} | {row['rows']} x {row['features']}, {row['classes']} "
                     f"| {cells} |")
    return lines


@table("accuracy")
def accuracy(data: dict[str, Any]) -> list[str]:
    lines = ["| setup | data | backend | test accuracy | wall time |", "|---|---|---|---:|---:|"]
    for row in data["rows"]:
        lines.append(f"| {row['setup']} | {row['data']} | {row['backend']} "
                     f"| {_pct(row['test_accuracy'])} | {row['seconds']:.1f} s |")
    return lines


def _benchmarks_module(name: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return __import__(f"benchmarks.{name}", fromlist=[name])


@table("benchmark-suite")
def benchmark_suite(data: dict[str, Any]) -> list[str]:
    run = _benchmarks_module("run")
    return [run.markdown_table(data).rstrip("\n")]


@table("end-to-end")
def end_to_end(data: dict[str, Any]) -> list[str]:
    """The whole-run figures of ``benchmarks/end_to_end_figures.py``, each ratio taken within a
    pass of the suite (from the passes' medians kept in the merged results)."""
    figures = _benchmarks_module("end_to_end_figures")
    per_pass = []
    for k in range(data["passes"]):
        medians = {}
        for bench in data["benchmarks"]:
            info = bench["extra_info"]
            if info["dtype"] == "float32" or info["implementation"] == "blog":
                medians[info["case"], info["implementation"]] = bench["stats"]["passes"][k]
        per_pass.append(figures.figures(medians))
    lines = ["| figure | target | median of the passes (range) |", "|---|---|---|"]
    for name in per_pass[0]:
        values = [f[name] for f in per_pass if name in f]
        figure, target = name.rsplit(" (target ", 1)
        lines.append(f"| {figure} | {target.rstrip(')')} | {statistics.median(values):.2f}x "
                     f"({min(values):.2f}-{max(values):.2f}) |")
    return lines
