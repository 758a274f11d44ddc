"""Paths that people type into the app, confined to the data roots the server was given.

`reflection app --data-root DIR` (repeatable; default: the database's folder) names the only
folders the app may read or write at a typed path. A typed path is refused, before anything
is opened, when:

- it is absolute and lies in no root;
- its `..` parts climb out of the root it starts in (checked on the text, before any link);
- a symbolic link on the way (the file itself, or a folder above it) leads out of every root.

Relative paths start at the first root. A path that does not exist yet (an export target) is
checked through its nearest existing folder. What is checked is what is returned: callers
open the resolved path, so a link swapped in later is not followed to a place never checked
(a race with someone who may already write inside a root remains; roots are trusted folders).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import PermissionDenied

ROOTS_ENV = "REFLECTION_DATA_ROOTS"


def parse_roots(value: str | None) -> list[Path]:
    """Roots from $REFLECTION_DATA_ROOTS: folders separated by os.pathsep."""
    return [Path(part) for part in (value or "").split(os.pathsep) if part.strip()]


def resolve_roots(roots: Sequence[str | Path]) -> list[Path]:
    """The roots as real absolute folders (links resolved), each once, in the order given."""
    resolved: list[Path] = []
    for root in roots:
        real = Path(os.path.realpath(Path(root).expanduser()))
        if real not in resolved:
            resolved.append(real)
    return resolved


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _names(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def confine(path: str | Path, roots: Sequence[str | Path]) -> Path:
    """The real path of `path` if it lies inside one of `roots`; PermissionDenied if not."""
    real_roots = resolve_roots(roots)
    if not real_roots:
        raise PermissionDenied("No data root is configured: start the app with --data-root DIR.")
    text = str(path).strip()
    if not text:
        raise PermissionDenied("No path given.")
    typed = Path(text).expanduser()
    start = typed if typed.is_absolute() else Path(roots[0]).expanduser().absolute() / typed
    # The text first: `..` must not climb out, whatever the links on the way would do.
    lexical = Path(os.path.normpath(start))
    literal_roots = [Path(os.path.normpath(Path(r).expanduser().absolute())) for r in roots]
    if not any(_inside(lexical, root) for root in [*literal_roots, *real_roots]):
        if ".." in typed.parts:
            raise PermissionDenied(
                f"{text}: refused, `..` leads out of the data roots ({_names(real_roots)}); "
                "nothing was read or written."
            )
        raise PermissionDenied(
            f"{text}: refused, outside the data roots ({_names(real_roots)}); "
            "nothing was read or written. An admin can add a root with --data-root DIR."
        )
    # Then the links: where the path really leads must still be inside a root.
    real = Path(os.path.realpath(start))
    if not any(_inside(real, root) for root in real_roots):
        raise PermissionDenied(
            f"{text}: refused, a symbolic link leads out of the data roots "
            f"({_names(real_roots)}) to {real}; nothing was read or written."
        )
    return real
