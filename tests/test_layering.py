"""The layering of the source tree, read from the source with ``ast`` (nothing is imported):

* ``solvers`` never imports ``pdenet`` (the dependency goes one way);
* pdenet's subpackages and top-level modules do not import each other in a circle (each module
  collapses to its first component under ``pdenet``: ``pdenet.hj.scheme`` -> ``hj``);
* loading a case imports no matplotlib, and no module calls ``matplotlib.use``.

Every import counts: module level, inside functions (a lazy import breaks an import-time cycle
but not the circle between the packages) and under ``if TYPE_CHECKING:`` (a type is a
dependency too: :mod:`pdenet.models.base` reads its case through a protocol rather than import
:mod:`pdenet.case`), relative imports resolved. Imports made from a string (the lazy model
registry of :mod:`pdenet.models`) are not edges: that is the point of it.

Run as a script (``python tests/test_layering.py [ROOT]``) to print the cycles of any tree.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pdenet", "solvers")


@dataclass(frozen=True)
class Edge:
    source: str
    """The importing module (dotted)."""
    line: int
    target: str
    """The imported module, resolved to a module of the tree (dotted)."""

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module of PACKAGES."""
    out: dict[str, tuple[Path, bool]] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join(parts)] = (path, is_pkg)
    return out


def _targets(module: str, is_pkg: bool, node: ast.Import | ast.ImportFrom,
             known: dict[str, tuple[Path, bool]]) -> list[str]:
    """The dotted names an import statement loads (``from P import name`` loads ``P.name`` when
    that is a module, else ``P``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]


def import_edges(root: Path = ROOT) -> list[Edge]:
    """Every import (module or function level) of one module of the tree by another."""
    known = modules(root)
    edges = []
    for module, (path, is_pkg) in known.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(module, is_pkg, node, known):
                while target not in known and "." in target:   # a name inside a module
                    target = target.rsplit(".", 1)[0]
                if target in known:
                    edges.append(Edge(module, node.lineno, target))
    return list(dict.fromkeys(edges))   # one edge per (module, line, target)


def component(module: str) -> str:
    """``pdenet.hj.scheme`` -> ``hj``; ``pdenet.case`` -> ``case``; ``pdenet`` -> ``pdenet``
    (the package's ``__init__``, the public API)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def component_graph(edges: list[Edge], package: str) -> dict[tuple[str, str], list[Edge]]:
    """(component, component) -> the module imports behind that edge, inside ``package``."""
    graph: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        if e.source.split(".")[0] != package or e.target.split(".")[0] != package:
            continue
        a, b = component(e.source), component(e.target)
        if a != b:
            graph[(a, b)].append(e)
    return dict(graph)


def cycles(graph: dict[tuple[str, str], list[Edge]]) -> list[list[str]]:
    """The elementary cycles of the component graph, each listed once, starting at its smallest
    node (the graph has a few dozen nodes: a plain depth-first enumeration will do)."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in graph:
        succ[a].add(b)
    found: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(succ[node]):
            if nxt == start:
                found.append(list(path))
            elif nxt > start and nxt not in path:
                path.append(nxt)
                walk(start, nxt, path)
                path.pop()

    for start in sorted(succ):
        walk(start, start, [start])
    return found


def describe(cycle: list[str], graph: dict[tuple[str, str], list[Edge]]) -> str:
    """``a -> b -> a`` and, for each edge, the imports that make it."""
    lines = [" -> ".join(cycle + cycle[:1])]
    for a, b in zip(cycle, cycle[1:] + cycle[:1]):
        imports = graph[(a, b)]
        shown = ", ".join(str(e) for e in imports[:4])
        more = f" (+{len(imports) - 4} more)" if len(imports) > 4 else ""
        lines.append(f"    {a} -> {b}: {shown}{more}")
    return "\n".join(lines)


def report(root: Path = ROOT, package: str = "pdenet") -> tuple[list[list[str]], str]:
    graph = component_graph(import_edges(root), package)
    found = cycles(graph)
    return found, "\n".join(describe(c, graph) for c in found)


# -- the tests -----------------------------------------------------------------------------------
def test_solvers_never_imports_pdenet():
    bad = [str(e) for e in import_edges() if e.source.startswith("solvers") and e.target.startswith("pdenet")]
    bad += [f"{e.source}:{e.line} -> {e.target}" for e in _external_imports("solvers")
            if e.target.split(".")[0] == "pdenet"]
    assert not bad, "solvers must not import pdenet:\n" + "\n".join(bad)


def _external_imports(package: str) -> list[Edge]:
    """Absolute imports by ``package`` of anything (resolved or not): catches ``import pdenet.x``
    of a module that does not exist (yet)."""
    out = []
    for module, (path, _) in modules().items():
        if module.split(".")[0] != package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out.extend(Edge(module, node.lineno, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                out.append(Edge(module, node.lineno, node.module))
    return out


def test_no_import_cycles_between_pdenet_packages():
    found, text = report(package="pdenet")
    assert not found, f"{len(found)} import cycle(s) between pdenet's packages:\n{text}"


def test_no_import_cycles_inside_solvers():
    found, text = report(package="solvers")
    assert not found, f"{len(found)} import cycle(s) between solvers' modules:\n{text}"


def test_the_graph_sees_function_level_and_relative_imports():
    edges = {(e.source, e.target) for e in import_edges()}
    # module-level relative import of a sibling module
    assert ("solvers.steppers", "solvers.newton") in edges
    # function-level absolute import (Model.save_schedule imports the march lazily)
    assert ("pdenet.models.base", "solvers.march") in edges
    # a cycle planted in a copy of the graph is found and named with its import
    graph = component_graph(import_edges(), "pdenet")
    planted = dict(graph)
    planted[("mesh", "case")] = [Edge("pdenet.mesh", 1, "pdenet.case")]
    planted.setdefault(("case", "mesh"), [Edge("pdenet.case", 1, "pdenet.mesh")])
    assert any(set(c) == {"case", "mesh"} for c in cycles(planted))
    assert "pdenet.mesh:1 -> pdenet.case" in describe(["case", "mesh"], planted)


def test_loading_a_case_imports_no_matplotlib():
    code = ("import pdenet, sys; pdenet.load_case('cases/fp_ou_1d.toml'); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_no_module_calls_matplotlib_use():
    bad = []
    for module, (path, _) in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "matplotlib" \
                    and any(a.name == "use" for a in node.names):
                bad.append(f"{module}:{node.lineno}: from matplotlib import use")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "use" and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id in ("matplotlib", "mpl"):
                bad.append(f"{module}:{node.lineno}: {node.func.value.id}.use(...)")
    assert not bad, "no module may choose matplotlib's backend:\n" + "\n".join(bad)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # quiet under | head
    where = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    for pkg in PACKAGES:
        found, text = report(where, pkg)
        print(f"{pkg}: {len(found)} import cycle(s)")
        if text:
            print(text)
