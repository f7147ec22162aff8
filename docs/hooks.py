"""MkDocs hooks: the parts of the site made from the code and from results files at build time,
so that they cannot go stale.

A page asks for them with a comment on a line of its own:

``<!-- cli-reference -->``
    every ``nnscratch`` command, its usage and its options, read from ``build_parser()``;
``<!-- settings-table -->``
    every field of ``TrainSettings``: option, default, what values it takes, its help;
``<!-- source: nnscratch.model.MLP.forward highlight="bias_relu" -->``
    the source of a function, method or class with its line numbers in its file, the lines
    holding the ``highlight`` text marked;
``<!-- results: NAME -->``
    the table of ``docs/results/NAME.json``, a file a benchmark script wrote
    (``<!-- results: NAME FILE -->``: the table NAME made from ``docs/results/FILE.json``).

A directive that names something that does not exist stops the build.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
DIRECTIVE = re.compile(r"^<!--[ \t]*(cli-reference|settings-table|source:|results:)(.*?)-->[ \t]*$",
                       re.MULTILINE)

sys.path.insert(0, str(ROOT / "docs"))
import results_tables  # noqa: E402  (docs/results_tables.py, beside this file)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def expand(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2).strip()
        try:
            return EXPANDERS[kind](argument)
        except PluginError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure names the page and directive
            raise PluginError(f"{page.file.src_path}: {match.group(0).strip()}: {error}") from error
    return DIRECTIVE.sub(expand, markdown)


# --- the command line ---------------------------------------------------------------------------

def cli_reference(_: str) -> str:
    from nnscratch.cli import build_parser
    parser = build_parser()
    return "\n".join(_command_section(parser, "nnscratch", level=2))


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _command_section(parser: argparse.ArgumentParser, name: str, level: int) -> list[str]:
    lines = [f"{'#' * level} `{name}`", ""]
    if parser.description:
        lines += [_escape_prose(parser.description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    rows = [_option_row(parser, action) for action in parser._actions
            if not isinstance(action, (argparse._SubParsersAction, argparse._HelpAction))
            and action.help != argparse.SUPPRESS]
    if rows:
        lines += ["| argument | what it does |", "|---|---|", *rows, ""]
    for sub_name, sub in _subcommands(parser):
        lines += _command_section(sub, f"{name} {sub_name}", level + (level < 3))
    return lines


def _option_row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    if action.option_strings:
        spelled = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = formatter._get_default_metavar_for_optional(action)
            spelled += " " + formatter._format_args(action, metavar)
    else:
        spelled = formatter._format_args(action, action.dest)
    text = formatter._expand_help(action) if action.help else ""
    if action.choices and not isinstance(action.choices, dict):
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return f"| `{spelled}` | {_escape_cell(text)} |"


# --- the settings -------------------------------------------------------------------------------

def settings_table(_: str) -> str:
    """Each setting with the option ``nnscratch train`` gives it, read from the parser (a
    setting without one stops the build)."""
    from nnscratch.cli import build_parser
    from nnscratch.settings import TrainSettings
    train = dict(_subcommands(build_parser()))["train"]
    options = {action.dest: action.option_strings[0] for action in train._actions
               if action.option_strings}
    rows = ["| setting | option | default | value | what it does |", "|---|---|---|---|---|"]
    for name, default, rule, meta in TrainSettings.describe():
        shown = meta["shown"] or repr(default)
        rows.append(f"| `{name}` | `{options[name]}` | `{shown}` | {_escape_cell(rule.expected)} "
                    f"| {_escape_cell(meta['help'])} |")
    return "\n".join(rows)


# --- source code --------------------------------------------------------------------------------

def source(argument: str) -> str:
    words = shlex.split(argument)
    if not words:
        raise PluginError("source: give a dotted name, such as nnscratch.model.MLP.forward")
    options = dict(word.split("=", 1) for word in words[1:])
    unknown = set(options) - {"highlight"}
    if unknown:
        raise PluginError(f"source: unknown option {sorted(unknown)}")
    path, first, lines = _source_lines(words[0])
    marked = [k + 1 for k, line in enumerate(lines) if options.get("highlight", "\0") in line]
    if "highlight" in options and not marked:
        raise PluginError(f"source: {words[0]} has no line containing {options['highlight']!r}")
    fence = f'```python linenums="{first}" title="{path.relative_to(ROOT)}"'
    if marked:
        fence += f' hl_lines="{" ".join(map(str, marked))}"'
    return "\n".join([fence, textwrap.dedent("\n".join(lines)), "```"])


def _module_file(parts: list[str]) -> tuple[Path, int]:
    """The file of the longest prefix of ``parts`` that names a module, and its length."""
    for cut in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:cut]))
        except ModuleNotFoundError:  # a parent is a module, not a package
            continue
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            return Path(spec.origin).resolve(), cut
    raise PluginError(f"source: no module in {'.'.join(parts)!r}")


def _source_lines(dotted: str) -> tuple[Path, int, list[str]]:
    """The file, first line number and lines of the function, method or class ``dotted``,
    found in the module's syntax tree (so nothing is imported)."""
    parts = dotted.split(".")
    path, cut = _module_file(parts)
    text = path.read_text()
    node: Any = ast.parse(text)
    for name in parts[cut:]:
        node = next((child for child in node.body if getattr(child, "name", None) == name
                     and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                            ast.ClassDef))), None)
        if node is None:
            raise PluginError(f"source: {dotted}: no {name!r} in {path.name}")
    if isinstance(node, ast.Module):
        raise PluginError(f"source: {dotted} is a module; name a function, method or class")
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return path, first, text.splitlines()[first - 1:node.end_lineno]


# --- results files ------------------------------------------------------------------------------

def results(argument: str) -> str:
    """``results: TABLE [FILE]``: the table TABLE made from ``docs/results/FILE.json`` (by
    default ``TABLE.json``)."""
    words = argument.split()
    if len(words) not in (1, 2):
        raise PluginError("results: give a table's name and perhaps its file's")
    path = RESULTS / f"{words[-1]}.json"
    if not path.is_file():
        raise PluginError(f"results: no results file {path.relative_to(ROOT)}")
    return results_tables.render(words[0], json.loads(path.read_text()))


# --- text ---------------------------------------------------------------------------------------

def _escape_cell(text: str) -> str:
    return _escape_prose(" ".join(text.split())).replace("|", "\\|")


def _escape_prose(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


EXPANDERS = {"cli-reference": cli_reference, "settings-table": settings_table,
             "source:": source, "results:": results}
