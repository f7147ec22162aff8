"""The repository keeps its promises: the README's set-up commands are the ones CI runs.

Convention: the README's two set-up commands are its only ``bash`` code blocks under "Quick
start"; other shell examples use ``sh`` blocks.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start)


def test_readme_gives_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    train, test = commands
    assert "pip install" in train and "nnscratch train" in train
    assert "pip install" in test and "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


# --- the README is a front page ---------------------------------------------------------------

def test_readme_is_a_front_page_under_150_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) < 150


def test_readme_links_lead_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert len(local) >= 15
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_readme_results_table_is_made_from_its_results_file():
    """The README cannot run the site's build, so its table is checked against the file the
    site's table is made from (docs/results/accuracy.json)."""
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location("results_tables",
                                                  ROOT / "docs" / "results_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    data = json.loads((ROOT / "docs" / "results" / "accuracy.json").read_text())
    expected = tables.render("accuracy", data)
    assert expected in (ROOT / "README.md").read_text(), (
        "the README's results table is not docs/results/accuracy.json's; it should read:\n"
        + expected)


def test_the_docs_give_the_readme_setup_commands():
    pages = (ROOT / "docs" / "getting-started.md").read_text()
    for command in readme_commands():
        assert command in pages
