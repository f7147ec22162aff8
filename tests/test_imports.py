"""What imports what: the model loads no data code, no module-level import cycle, nothing heavy
at import time."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nnscratch"

# The package's __init__ imports training, which loads the data code; the model module itself
# must not. So a bare stand-in package (the real folder, without its __init__) is put in place
# first, and the module is imported through it.
WITHOUT_PACKAGE_INIT = """
import importlib.util, sys, types
spec = importlib.util.find_spec("nnscratch")
package = types.ModuleType("nnscratch")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["nnscratch"] = package
import nnscratch.{module}
print(" ".join(sorted(name for name in sys.modules if name.startswith("nnscratch."))))
"""


@pytest.mark.parametrize("module", ["model", "inputs", "serialize", "optim", "settings",
                                    "trainer", "backend", "registry"])
def test_the_model_imports_no_data_loading(module):
    code = WITHOUT_PACKAGE_INIT.format(module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.split()
    assert f"nnscratch.{module}" in loaded  # the stand-in package did import the real module
    data_modules = [name for name in loaded if name.startswith(("nnscratch.data",
                                                                "nnscratch.download"))]
    assert data_modules == []


@pytest.mark.parametrize("package", ["nnscratch_numba", "nnscratch_cupy"])
def test_the_backends_import_no_data_loading(package):
    module = pytest.importorskip(package)
    code = WITHOUT_PACKAGE_INIT.replace("import nnscratch.{module}", f"import {package}")
    # Found here, perhaps from a source folder another test put on sys.path: so in the child.
    where = str(Path(module.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([where, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    loaded = out.stdout.split()
    assert "nnscratch.backend" in loaded  # the backend did import the interface
    assert [name for name in loaded if name.startswith(("nnscratch.data", "nnscratch.download",
                                                        "nnscratch.inputs"))] == []


def test_importing_nnscratch_loads_no_http_stack_and_no_optional_library():
    # Downloading imports urllib.request (and with it ssl and http.client) only when it starts;
    # a backend's array library only when that backend is created.
    code = ("import sys, nnscratch, nnscratch.data, nnscratch.download, nnscratch.augment; "
            "nnscratch.MLP((8,)).predict([[0] * 784]); "
            "assert nnscratch.get_backend().name == 'numpy'; print(sorted(n for n in "
            "('urllib.request', 'http.client', 'ssl', 'numba', 'llvmlite', 'cupy', 'torch', "
            "'dask', 'distributed', 'sklearn', 'scipy', 'threadpoolctl') if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_augmenting_without_numba_says_how_to_install_it(tmp_path):
    # as if Numba were not installed: importing it fails
    code = ("import sys; sys.modules['numba'] = None; import nnscratch\n"
            "try:\n    nnscratch.train(augment='elastic', epochs=1, progress=False, "
            f"out={str(tmp_path / 'run')!r})\n"
            "except nnscratch.ConfigError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ('distorting images needs Numba, which is not installed: '
                                  'pip install "nnscratch[augment]"')
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


# --- no cycles ----------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at module level (not inside a function, not
    under ``if TYPE_CHECKING``): those are the imports that run when it is first imported."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules
            found |= submodules
            if node.module or len(submodules) < len(node.names):  # not just "from . import mod"
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & modules
    return found & modules - {name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in ``graph`` as a list of names (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once left

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_module_level_import_cycle():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    graph = {module_name(path): module_level_imports(path, modules) for path in paths}
    assert "nnscratch.data.cache" in graph["nnscratch.data.sources"]  # the walk sees imports
    assert find_cycle(graph) is None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
