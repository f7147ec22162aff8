"""The documentation site: it builds with warnings as errors, and every example in it runs.

Each page's fenced blocks run in order, in a fresh folder, as a reader would run them:

- ``python``: executed, one namespace per page (``__name__`` is ``"__main__"``);
- ``pycon``: the ``>>>`` examples run by doctest in that namespace, their output compared;
- ``console``: each ``$ `` line run by bash, the lines after it compared with its output
  (doctest's ``...`` matches anything; none means unchecked); the exit status must be 0, or N
  when the command ends with ``# exit N``;
- a block with ``title="NAME"`` (any language) is written to the file NAME instead.

HOME is an empty folder whose ``~/mnist`` holds the bundled sample's four IDX files, nothing
points at other data, and the user cache is empty. A block that cannot run here (it needs the
internet, a GPU, other machines or hours) says so on the line above its fence,
``<!-- not run: REASON -->``; a shell block without that is an error.
"""

from __future__ import annotations

import doctest
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUN = {"python", "pycon", "console"}
SHOWN = {"text", "toml", "yaml", "json", "csv", "ini", "html", "diff"}
SHELLS = {"sh", "bash", "shell", "zsh", "shell-session", "py", "python3", "ipython"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^"]+)"\s*$')
EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
COMMAND_SECONDS = 300


@dataclass
class Block:
    page: Path
    line: int               # of the opening fence, 1-based
    lang: str
    title: str | None
    text: str
    not_run: str | None     # the reason, for a block that is shown but not run

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, their snippets (``--8<-- "path"``) included."""
    lines = page.read_text().splitlines()
    found, k = [], 0
    while k < len(lines):
        opening = FENCE.match(lines[k])
        if not opening:
            k += 1
            continue
        indent, fence, info = opening.group("indent", "fence", "info")
        closing = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*")
        end = next((j for j in range(k + 1, len(lines)) if closing.fullmatch(lines[j])),
                   len(lines))
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                for line in lines[k + 1:end]]
        above = lines[k - 1] if k > 0 else ""
        reason = NOT_RUN.match(above)
        title = TITLE.search(info)
        words = info.replace("{", " ").replace("}", " ").split()
        lang = words[0].lstrip(".").lower() if words else ""
        found.append(Block(page, k + 1, lang, title and title.group("title"),
                           "\n".join(_with_snippets(body)) + "\n",
                           reason and reason.group("reason")))
        k = end + 1
    return found


def _with_snippets(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        snippet = SNIPPET.match(line)
        out.extend((ROOT / snippet.group("path")).read_text().splitlines() if snippet else [line])
    return out


def commands(text: str) -> list[tuple[str, str]]:
    """A console block's ``(command, expected output)`` pairs."""
    pairs: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and k + 1 < len(lines):
                k += 1
                command += "\n" + lines[k]  # bash reads the backslash-newline as a space
            pairs.append((command, []))
        elif pairs:
            pairs[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block's first line must be a '$ ' command: {line!r}")
        k += 1
    return [(command, "\n".join(out).strip()) for command, out in pairs]


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS).with_suffix(""))


EXAMPLE_PAGES = [page for page in PAGES
                 if any(b.lang in RUN and not b.not_run or b.title for b in blocks(page))]


# --- the rules of the blocks -------------------------------------------------------------------

def test_the_docs_have_pages_and_examples():
    assert len(PAGES) >= 15
    assert len(EXAMPLE_PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_says_what_it_is(page: Path):
    """A block runs, or is plainly not code (output, a file's text), or says why it is not run:
    a shell command cannot hide in a block that nothing runs."""
    for block in blocks(page):
        assert block.lang, f"{block.where}: a code block needs a language (text for output)"
        if block.lang in SHELLS:
            assert block.not_run, (f"{block.where}: a {block.lang} block is not run; make it a "
                                   "console block with '$ ' commands, or say why it cannot run "
                                   "with <!-- not run: REASON --> above it")
        else:
            assert block.lang in RUN | SHOWN, f"{block.where}: unknown language {block.lang!r}"
        if block.not_run:
            print(f"{block.where}: not run: {block.not_run}")


# --- running them ------------------------------------------------------------------------------

@pytest.fixture
def reader(tmp_path, monkeypatch) -> Path:
    """A new reader's machine: a HOME with ``~/mnist`` (the bundled sample), an empty cache,
    nothing pointing at data, and a fresh working folder, which is returned."""
    home = tmp_path / "home"
    mnist = home / "mnist"
    mnist.mkdir(parents=True)
    sample = importlib.resources.files("nnscratch") / "sample"
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with importlib.resources.as_file(sample / name) as path:
            shutil.copyfile(path, mnist / name)
    for name in list(os.environ):
        if name.startswith("NNSCRATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    # matplotlib would build its font cache again in every new HOME
    monkeypatch.setenv("MPLCONFIGDIR", os.environ.get("MPLCONFIGDIR")
                       or str(Path.home() / ".config" / "matplotlib"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=page_id)
def test_examples_run(page: Path, reader: Path):
    namespace: dict = {"__name__": "__main__"}
    for block in blocks(page):
        if block.not_run:
            continue
        if block.title:
            (reader / block.title).parent.mkdir(parents=True, exist_ok=True)
            (reader / block.title).write_text(block.text)
        elif block.lang == "python":
            exec(compile(block.text, block.where, "exec"), namespace)
        elif block.lang == "pycon":
            _run_doctest(block, namespace)
        elif block.lang == "console":
            for command, expected in commands(block.text):
                _run_command(block, command, expected, reader)


def _run_doctest(block: Block, namespace: dict) -> None:
    test = doctest.DocTestParser().get_doctest(block.text, namespace, block.where,
                                               str(block.page), block.line)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=report.append, clear_globs=False)
    namespace.update(test.globs)  # the DocTest ran on a copy: later blocks see its names
    assert result.failed == 0, f"{block.where}:\n" + "".join(report)


def _run_command(block: Block, command: str, expected: str, folder: Path) -> None:
    code = EXIT.search(command)
    done = subprocess.run(["bash", "-c", command], cwd=folder, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=COMMAND_SECONDS)
    where = f"{block.where}: $ {command}"
    want_code = int(code.group("code")) if code else 0
    assert done.returncode == want_code, (f"{where}\nexit status {done.returncode}, "
                                          f"not {want_code}; output:\n{done.stdout}")
    if expected:
        checker = doctest.OutputChecker()
        assert checker.check_output(expected + "\n", done.stdout, FLAGS), (
            f"{where}\nexpected:\n{expected}\ngot:\n{done.stdout}")


# --- the site ----------------------------------------------------------------------------------

def test_the_site_builds_with_warnings_as_errors(tmp_path):
    """``mkdocs build --strict``: a broken link, a missing anchor or page, a reference to the API
    that does not resolve, or a directive of docs/hooks.py naming what does not exist fails."""
    if not _importable("mkdocs"):
        if os.environ.get("NNSCRATCH_REQUIRE_DOCS"):
            pytest.fail("NNSCRATCH_REQUIRE_DOCS is set but mkdocs is not installed")
        pytest.skip('the site needs the docs extra: pip install -e ".[docs]"')
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout
    for page in PAGES:
        relative = page.relative_to(DOCS).with_suffix("")
        built = tmp_path / "site" / (relative.parent if relative.name == "index" else relative)
        assert (built / "index.html").is_file(), f"{page} was not built"


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None
