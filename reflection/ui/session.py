"""The session's store, dataset and annotator, and messages carried to the next run.

Threading: Streamlit runs each browser session's script in its own thread, and one session
never runs two script runs at once, but successive reruns may land on different threads. So
each session gets its own `Store` (kept in `st.session_state`) opened with
`check_same_thread=False`: the connection moves between threads but is never used by two at
once. Sessions never share a connection (a shared one would interleave their transactions);
they share the file, which WAL mode and the busy timeout make safe for several writers.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import streamlit as st

from .. import diff
from ..config import db_key, default_db_path
from ..errors import ReflectionError
from ..jobs import ensure_supervisor
from ..records import Dataset
from ..store import Store

_STORE_KEY = "_reflection_store"
DATASET_KEY = "dataset_name"  # the picked dataset's name, shared by every page
ANNOTATOR_KEY = "annotator"  # the annotator's name, asked once per session
ACCOUNT_KEY = "_account"  # the signed-in account's name (ui.auth): the annotator then
ROLE_KEY = "_account_role"  # its role as of this run (ui.auth), for what navigation shows


def db_path() -> Path | str:
    """The database this app works on: $REFLECTION_DB, then ./reflection.db (a file path, or
    a postgresql:// URL: show it with `db_label`, never as it is)."""
    return default_db_path()


def get_store() -> Store:
    """This session's Store on the database named by REFLECTION_DB (opened once per session)."""
    target = db_path()
    path = target if isinstance(target, str) else target.resolve()
    store = st.session_state.get(_STORE_KEY)
    if store is None or store.target != db_key(path):
        if store is not None:
            store.close()
        try:
            store = Store(path, check_same_thread=False)
        except ReflectionError as exc:
            st.error(str(exc))
            st.stop()
        st.session_state[_STORE_KEY] = store
        # Once per process and database: this server takes over the jobs of servers that died.
        ensure_supervisor(path)
    return store


@st.cache_data(show_spinner=False, max_entries=64)
def _datasets(path: str, catalog_version: tuple[int, int]) -> list[Dataset]:
    with Store(path) as store:
        return store.datasets()


def dataset_picker(store: Store | None = None) -> Dataset | None:
    """The sidebar dataset selectbox shared by all pages; None when the store has no dataset."""
    store = store or get_store()
    # Counting samples per dataset reads a whole index: cached until a dataset or sample is added.
    datasets = _datasets(str(store.path), store.catalog_version())
    if not datasets:
        st.sidebar.info("No dataset yet: run `reflection demo` or `reflection import`.")
        return None
    names = [d.name for d in datasets]
    # The widget's own key is dropped when a page without it runs, so the choice lives in a
    # plain session key and the widget is re-seeded from it on every page.
    current = st.session_state.get(DATASET_KEY)
    index = names.index(current) if current in names else 0
    picked = st.sidebar.selectbox(
        "Dataset",
        names,
        index=index,
        key="_dataset_widget",
        format_func=lambda name: f"{name} ({datasets[names.index(name)].sample_count:,})",
    )
    st.session_state[DATASET_KEY] = picked
    return datasets[names.index(picked)]


def require_dataset(store: Store | None = None) -> Dataset:
    """The picked dataset; on an empty database, say how to get one and stop the page."""
    dataset = dataset_picker(store)
    if dataset is None:
        st.info("This database has no dataset yet. Run `reflection demo` to try the app.")
        st.stop()
    return dataset


def set_annotator(name: str) -> None:
    st.session_state[ANNOTATOR_KEY] = name.strip()


def annotator(*, required: bool = True) -> str:
    """The annotator's name: asked once per session (a form in the page), shown in the sidebar.

    With `required`, the page stops at the form until a name is given. When someone is signed
    in (ui.auth), the name is their account's, and there is no form to type another.
    """
    account = st.session_state.get(ACCOUNT_KEY)
    if account:
        return account
    name = st.session_state.get(ANNOTATOR_KEY, "")
    if name:
        st.sidebar.caption(f"Annotator: **{html.escape(name)}**")
        if st.sidebar.button("Change name", key="_change_annotator"):
            st.session_state[ANNOTATOR_KEY] = ""
            st.rerun()
        return name
    if not required:
        return ""
    with st.form("annotator_form"):
        typed = st.text_input("Your name (stored with every decision)", key="_annotator_input")
        if st.form_submit_button("Start reviewing", type="primary") and typed.strip():
            set_annotator(typed)
            st.rerun()
    st.stop()
    return ""  # unreachable: st.stop() raises


def show_error(exc: Exception) -> None:
    """A ReflectionError's message, as users should read it."""
    st.error(str(exc))


def escaped(text: str) -> str:
    """Untrusted text made safe to place inside HTML."""
    return html.escape(text, quote=True)


def html_list(items: Iterable[str]) -> str:
    """Escaped `<li>` items, for small HTML lists of untrusted strings."""
    return "".join(f"<li>{escaped(item)}</li>" for item in items)


def flash(kind: str, message: str) -> None:
    """A message to show on the next run (callbacks cannot draw on the page themselves)."""
    st.session_state["_flash"] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop("_flash", (None, None))
    if kind:
        getattr(st, kind)(diff.escape_markdown(message))
