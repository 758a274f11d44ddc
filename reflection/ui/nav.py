"""Navigation: the pages in the order of the work, the header every page draws, links.

Page files are named here and nowhere in the library: the library names a step ("review"),
and `page_path` turns it into the file Streamlit switches to.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..config import db_label
from ..team import access
from .heap import freeze_imported_heap
from .session import ROLE_KEY, db_path

# file, label, icon, what it is for; in the order of the work.
PAGES = (
    ("pages/6_Import.py", "Import", ":material/upload_file:", "bring in a dataset file"),
    ("pages/1_Review.py", "Review", ":material/rate_review:", "one sample at a time, diffs, keys"),
    ("pages/2_Bulk.py", "Bulk", ":material/checklist:", "a rule for many samples, undone as one"),
    ("pages/3_Dashboard.py", "Dashboard", ":material/monitoring:", "progress, annotators, shifts"),
    ("pages/4_Run.py", "Run", ":material/play_circle:", "reflect or score a selection"),
    ("pages/5_Export.py", "Export", ":material/download:", "the curated set, with provenance"),
    ("pages/7_Assign.py", "Assign", ":material/group:", "reviewers, overlap, progress (admin)"),
    ("pages/8_Adjudicate.py", "Adjudicate", ":material/gavel:", "settle disagreements (admin)"),
)
# The library's step names (`review.overview.STEPS`) and the page each one opens.
STEP_PAGES = {
    "import": "pages/6_Import.py",
    "run": "pages/4_Run.py",
    "review": "pages/1_Review.py",
    "bulk": "pages/2_Bulk.py",
    "export": "pages/5_Export.py",
}
# What a role needs to use each page (ui.auth checks it on the page; here it only decides
# which links a signed-in account is shown).
PAGE_ACTIONS = {
    "app.py": "read",
    "pages/6_Import.py": "import",
    "pages/1_Review.py": "read",
    "pages/2_Bulk.py": "bulk",
    "pages/3_Dashboard.py": "read",
    "pages/4_Run.py": "run",
    "pages/5_Export.py": "export",
    "pages/7_Assign.py": "assign",
    "pages/8_Adjudicate.py": "adjudicate",
}
_ROOT = Path(__file__).resolve().parent.parent.parent


def _visible(page: str) -> bool:
    """The page exists and this session's role (none without sign-in) may use it."""
    action = PAGE_ACTIONS.get(page, "read")
    return page_exists(page) and access.allowed(st.session_state.get(ROLE_KEY), action)


def page_exists(page: str) -> bool:
    return (_ROOT / page).exists()


def page_for(step: str) -> str | None:
    """The page file a library step opens, when this app has it."""
    page = STEP_PAGES.get(step)
    return page if page and _visible(page) else None


def page_links() -> None:
    """Links to every page that exists, each with one line on what it is for."""
    for page, label, icon, what in PAGES:
        if _visible(page):
            st.page_link(page, label=f"{label}: {what}", icon=icon)


def page_header(title: str, icon: str = "🪞", *, caption: str | None = None) -> None:
    """Page config, title and the sidebar line naming the database."""
    st.set_page_config(page_title=f"{title} · Reflection Studio", page_icon=icon, layout="wide")
    freeze_imported_heap()  # the collection after this run walks only what runs made
    sidebar_navigation()
    st.title(title)
    if caption:
        st.caption(caption)
    st.sidebar.caption(f"Database: `{db_label(db_path())}`")


def sidebar_navigation() -> None:
    """Home and the pages in the order of the work, in the sidebar.

    Streamlit's own navigation would list the main script as "app" and the pages by file
    number; the app runs with `client.showSidebarNavigation = false` (.streamlit/config.toml,
    and `reflection app` passes it) and draws this instead. Only when the app runs from app.py:
    a page run on its own (as in a test) has no Home to link to.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    main = getattr(ctx, "main_script_path", None)
    if not main or Path(main).resolve() != _ROOT / "app.py":
        return
    for page, label, icon in (("app.py", "Home", ":material/home:"), *(p[:3] for p in PAGES)):
        if _visible(page):
            st.sidebar.page_link(page, label=label, icon=icon)
