"""The benchmark runner's report: passes merged, ratios taken within each pass, the floor column.

These check benchmarks/run.py on made-up results (no timing is run here), so that the table a
user reads says what the runner's --help promises.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(case: str, name: str, median: float, low: float, high: float,
           dtype: str = "float32") -> dict:
    return {"name": f"test[{case}-{name}]", "extra_info": {
        "case": case, "dtype": dtype, "implementation": name},
        "stats": {"median": median, "min": low, "max": high, "rounds": 3}}


def _results(*benches: dict) -> dict:
    return {"machine_info": {"system": "Linux", "release": "test", "nnscratch": {}},
            "datetime": "2026-11-30T00:00:00", "benchmarks": list(benches)}


def _row(table: str, case: str, name: str) -> list[str]:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == case and cells[2] == name:
            return cells
    raise AssertionError(f"no row {case} {name} in\n{table}")


def test_passes_merge_to_the_median_of_medians_and_the_extremes(run):
    passes = [_results(_bench("epoch-128", "plain-numpy", 0.30, 0.29, 0.31),
                       _bench("epoch-128", "torch", 0.50, 0.49, 0.52)),
              _results(_bench("epoch-128", "plain-numpy", 0.20, 0.19, 0.40)),
              _results(_bench("epoch-128", "plain-numpy", 0.25, 0.24, 0.26))]
    merged = run.merge_passes(passes)
    stats = {b["extra_info"]["implementation"]: b["stats"] for b in merged["benchmarks"]}
    assert stats["plain-numpy"]["median"] == 0.25
    assert (stats["plain-numpy"]["min"], stats["plain-numpy"]["max"]) == (0.19, 0.40)
    assert stats["plain-numpy"]["passes"] == [0.30, 0.20, 0.25]
    assert stats["plain-numpy"]["rounds"] == 9
    assert stats["torch"]["passes"] == [0.50]  # skipped in two passes: kept from the third
    assert merged["passes"] == 3


def test_ratios_are_taken_within_each_pass(run):
    # Ratios of 2.0 and 3.0 within the passes: their median is 2.5, where the ratio of the
    # merged medians (0.35 / 0.15) would be 2.33, mixing times measured minutes apart.
    passes = [_results(_bench("epoch-128", "plain-numpy", 0.40, 0.4, 0.4),
                       _bench("epoch-128", "nnscratch-numba", 0.20, 0.2, 0.2),
                       _bench("epoch-128", "blas-floor", 0.10, 0.1, 0.1)),
              _results(_bench("epoch-128", "plain-numpy", 0.30, 0.3, 0.3),
                       _bench("epoch-128", "nnscratch-numba", 0.10, 0.1, 0.1),
                       _bench("epoch-128", "blas-floor", 0.08, 0.08, 0.08))]
    table = run.markdown_table(run.merge_passes(passes))
    numba = _row(table, "epoch-128", "nnscratch-numba")
    assert numba[6] == "2.50x (2.00-3.00)"        # vs plain NumPy
    assert numba[7] == "-"                         # no PyTorch in these results
    assert numba[8] == "1.62x (1.25-2.00)"         # over the floor: 2.0 and 1.25


def test_one_pass_gives_plain_ratios(run):
    table = run.markdown_table(_results(
        _bench("blog-step", "blog", 0.100, 0.1, 0.1, dtype="float64"),
        _bench("blog-step", "nnscratch-numba", 0.025, 0.02, 0.03)))
    numba = _row(table, "blog-step", "nnscratch-numba")
    assert numba[3:6] == ["25", "20-30", "4.00x"]  # median ms, min-max ms, vs blog (float64)
    assert numba[8] == "-"                         # no floor for the blog step


def test_a_table_is_rebuilt_from_merged_json(run, tmp_path, capsys):
    merged = run.merge_passes([_results(_bench("inference", "plain-numpy", 0.02, 0.02, 0.02))])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(merged))
    assert run.main(["--from-json", str(path), "--out", str(tmp_path)]) == 0
    assert "| inference | float32 | plain-numpy | 20 |" in (tmp_path / "table.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--passes", "0"], "--passes must be at least 1; got 0"),
    (["--passes", "2", "--from-json", "x.json"], "with --from-json nothing is run"),
])
def test_impossible_options_are_refused(run, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        run.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
