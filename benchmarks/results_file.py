"""Results files: what a benchmark script measured, as JSON, with the command, the date and the
machine. The documentation's tables are made from them (docs/results/, docs/results_tables.py),
so no figure on the site is typed by hand."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy

import nnscratch


def machine() -> str:
    """The CPU's name and the number of cores this process may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def write(path: str | os.PathLike, rows: list[dict[str, Any]], **about: Any) -> Path:
    """Write ``rows`` to ``path`` with the command that made them and where and when it ran;
    ``about`` adds fields (a note on the setup, say)."""
    command = " ".join(shlex.quote(word) for word in ["python", *sys.argv])
    if os.environ.get("NNSCRATCH_DATA"):  # where the data came from, not this machine's path
        command = f"NNSCRATCH_DATA=/path/to/mnist {command}"
    record = {
        "command": command,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "versions": {"nnscratch": nnscratch.__version__, "numpy": numpy.__version__,
                     "python": platform.python_version()},
        **about,
        "rows": rows,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"results: {path}")
    return path
