"""The layering DESIGN.md promises: only reflection/ui.py imports streamlit; pages are thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
FORBIDDEN_IN_PAGES = {"re", "sqlite3", "sqlite_utils", "openai", "httpx", "torch"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "reflection").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_ui_imports_streamlit(path):
    if path.name == "ui.py" and path.parent.name == "reflection":
        assert "streamlit" in imported_modules(path)
    else:
        assert "streamlit" not in imported_modules(path)


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
    assert not [s for s in strings if "SELECT " in s.upper() and " FROM " in s.upper()]
