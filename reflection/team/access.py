"""What each role may do: one table, checked on the server whenever an action runs.

Pure: no store, no Streamlit. The app asks `allowed` to draw (or disable) a control and calls
`require` again when the action runs, so a replayed click from a lesser role is refused.
Without sign-in (one person on 127.0.0.1) there is no role and everything is allowed.
"""

from __future__ import annotations

from ..errors import PermissionDenied

ROLES = ("viewer", "reviewer", "admin")

# action -> what it lets someone do, as a refusal names it.
ACTIONS = {
    "read": "read the samples, the dashboards and the agreement figures",
    "decide": "decide samples",
    "import": "import datasets and reflections",
    "run": "start reflection and scoring runs",
    "bulk": "decide samples in bulk",
    "export": "export the curated set",
    "assign": "assign samples to reviewers",
    "adjudicate": "adjudicate disagreements",
    "users": "manage accounts",
    "paths": "read or write files on the server",
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "reviewer": frozenset({"read", "decide"}),
    "admin": frozenset(ACTIONS),
}


def check_role(role: str) -> str:
    """The role, or ValueError naming the roles there are."""
    if role not in PERMISSIONS:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def allowed(role: str | None, action: str) -> bool:
    """Whether `role` may do `action`; None (no sign-in) may do everything."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    return role is None or action in PERMISSIONS.get(role, frozenset())


def require(role: str | None, action: str, *, who: str = "") -> None:
    """Raise PermissionDenied unless `role` may do `action`."""
    if not allowed(role, action):
        whom = f"{who} ({role})" if who else f"a {role}"
        needs = [r for r in ROLES if action in PERMISSIONS[r]]
        raise PermissionDenied(
            f"Refused: {whom} may not {ACTIONS[action]}; that needs the role {' or '.join(needs)}."
        )
