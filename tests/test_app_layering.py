"""The layering DESIGN.md promises, checked on the source.

- streamlit is imported only in `reflection/ui/`; SQL and the SQLite modules live only in
  `reflection/store/`; pages are thin.
- No import cycle among the modules of `reflection/`, counting imports inside functions too
  (a lazy import is still a dependency; it only hides the loop until run time).
- Lower layers never import higher ones. A layer is a list of top-level parts of the package;
  the order is the dependency order, not the flow's: adopting reflections made elsewhere
  parses oracle replies, so `reflect` sits below `ingest`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reflection"
PAGES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
FORBIDDEN_IN_PAGES = {"re", "sqlite3", "sqlite_utils", "openai", "httpx", "torch"}
SQL = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|CREATE\s+(TABLE|INDEX|VIRTUAL)"
    r"|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b",
    re.IGNORECASE | re.DOTALL,
)
# Bottom first. Parts in one layer may import each other, as long as no cycle forms.
LAYERS = [
    {"errors", "records", "config", "diff", "intervals", "progress"},
    {"formats", "store"},
    {"reflect"},
    {"ingest"},
    {"scoring"},
    {"select"},
    {"review"},
    {"team"},
    {"export"},
    {"jobs", "demo"},
    {"ui", "cli", "__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the packages a file imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def internal_imports(name: str) -> set[str]:
    """The modules of `reflection` one module imports, anywhere in its body."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.add(sub)
                elif target in MODULES:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
    found.discard(name)
    return found


GRAPH = {name: internal_imports(name) for name in MODULES}


def part_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_inside_the_package():
    assert cycles(GRAPH) == []


def test_the_cycle_check_finds_a_loop():
    # The check itself must be able to fail.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(name) for name in MODULES} - {""}
    assert parts <= set(RANK), sorted(parts - set(RANK))


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for name, targets in GRAPH.items():
        part = part_of(name)
        if not part:  # the package's own __init__: the public API, loaded lazily
            continue
        for target in targets:
            other = part_of(target)
            if other and RANK[other] > RANK[part]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_only_the_ui_layer_imports_streamlit(name):
    imports_streamlit = "streamlit" in imported_modules(MODULES[name])
    assert imports_streamlit == (part_of(name) == "ui" and imports_streamlit)


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_sql_lives_only_in_the_store(name):
    if part_of(name) == "store":
        return
    path = MODULES[name]
    assert not imported_modules(path) & {"sqlite3", "sqlite_utils", "psycopg"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    sql = [
        node.value[:60]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL.search(node.value)
    ]
    assert sql == []


def test_the_ui_package_imports_streamlit():
    assert any("streamlit" in imported_modules(MODULES[n]) for n in MODULES if part_of(n) == "ui")


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_no_module_is_over_400_lines(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= 400


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_are_thin(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    assert not imported_modules(path) & FORBIDDEN_IN_PAGES
    strings = [
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert not [s for s in strings if SQL.search(s)]
