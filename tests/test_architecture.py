"""The structure's rules that a linter of imports does not see (lint-imports checks the layers
and cycles in CI): what a module shares is public and listed in its ``__all__``; no module
imports another module's private names; the checkout's app.py only hands over."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fairscan"
#: scripts Streamlit runs (pages), and the build script of the bundled data
NOT_MODULES = {"dashboard/views", "datasets/_build.py"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not any(str(p.relative_to(PACKAGE)).startswith(x) for x in NOT_MODULES))


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_names_are_listed_and_exist(path):
    tree = ast.parse(path.read_text())
    public = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")}
    if not public:
        return  # a package's docstring only
    mod = importlib.import_module(dotted(path))
    assert hasattr(mod, "__all__"), f"{dotted(path)} has no __all__"
    assert public <= set(mod.__all__), f"{dotted(path)}: public but not in __all__: {sorted(public - set(mod.__all__))}"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{dotted(path)}: __all__ names what it does not define: {missing}"


def test_no_module_imports_another_modules_private_names():
    found = []
    for path in [*modules(), *sorted((PACKAGE / "dashboard" / "views").glob("*.py")), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fairscan"):
                found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found


def test_the_checkout_app_py_only_hands_over():
    text = (ROOT / "app.py").read_text()
    assert len(text.splitlines()) < 60
    assert "from fairscan.dashboard.main import main" in text


def test_no_import_cycle_counting_imports_inside_functions():
    """Tarjan's strongly connected components over every import grimp finds (module level and
    inside functions; `if TYPE_CHECKING:` imports excluded, they never run), with each
    package's __init__ standing for its own code only."""
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("fairscan", exclude_type_checking_imports=True)
    mods = sorted(g.modules)
    edges = {m: sorted(g.find_modules_directly_imported_by(m) & set(mods)) for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in mods:
        if m not in index:
            visit(m)
    assert not cycles, cycles


def test_the_package_imports_its_analyses_on_first_use():
    """``import fairscan.cli`` (what ``fairscan app`` and ``--version`` need) loads neither pandas
    nor the analyses; ``fairscan.audit`` and its siblings are the functions whether or not
    their modules were imported first, in a fresh interpreter."""
    import subprocess
    import sys

    code = """
import sys
import fairscan.cli
assert 'pandas' not in sys.modules and 'fairscan.audit' not in sys.modules, sorted(sys.modules)
import fairscan.audit as by_module, fairscan.compare, fairscan.discover, fairscan.explain
from fairscan.audit import run_audit
import fairscan
for name in ("audit", "compare", "discover", "explain", "counts"):
    assert callable(getattr(fairscan, name)) and type(getattr(fairscan, name)).__name__ == "function", name
assert by_module is fairscan.audit and fairscan.Counts.__name__ == "Counts"
assert set(fairscan.__all__) <= set(dir(fairscan))
try:
    fairscan.nothing
except AttributeError as e:
    assert "nothing" in str(e)
else:
    raise AssertionError("no AttributeError")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
