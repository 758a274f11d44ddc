"""Streamlit glue shared by every page: the store, the dataset picker, the annotator, headers.

The only module in `reflection` that imports streamlit. Pages call these helpers and the
library; nothing here holds business logic.

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

from . import diff, review
from .config import default_db_path
from .errors import ReflectionError
from .records import Dataset
from .store import Store

_STORE_KEY = "_reflection_store"
DATASET_KEY = "dataset_name"  # the picked dataset's name, shared by every page
ANNOTATOR_KEY = "annotator"  # the annotator's name, asked once per session


def db_path() -> Path:
    """The database this app works on: $REFLECTION_DB, then ./reflection.db."""
    return default_db_path()


def get_store() -> Store:
    """This session's Store on the database named by REFLECTION_DB (opened once per session)."""
    path = db_path().resolve()
    store = st.session_state.get(_STORE_KEY)
    if store is None or store.path != path:
        if store is not None:
            store.close()
        try:
            store = Store(path, check_same_thread=False)
        except ReflectionError as exc:
            st.error(str(exc))
            st.stop()
        st.session_state[_STORE_KEY] = store
    return store


def page_header(title: str, icon: str = "🪞", *, caption: str | None = None) -> None:
    """Page config, title and the sidebar line naming the database."""
    st.set_page_config(page_title=f"{title} · Reflection Studio", page_icon=icon, layout="wide")
    sidebar_navigation()
    st.title(title)
    if caption:
        st.caption(caption)
    st.sidebar.caption(f"Database: `{db_path()}`")


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
        if page_exists(page):
            st.sidebar.page_link(page, label=label, icon=icon)


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

    With `required`, the page stops at the form until a name is given.
    """
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


# --- review page widgets --------------------------------------------------------------------

VIEW_MODES = ("Diff", "Side by side", "Raw", "Markdown")
_SESSION_KEY = "_review_session"


@st.cache_data(max_entries=2048, show_spinner=False)
def cached_diff(old: str, new: str) -> list[tuple[int, str]]:
    """word_diff, cached on the two texts (identical across sessions, so shared)."""
    return diff.word_diff(old, new)


@st.cache_data(ttl=60, show_spinner=False)
def _filter_options(path: str, dataset_id: int) -> tuple[list[str], list[str]]:
    with Store(path) as store:
        return review.flag_names(store, dataset_id), store.metric_names()


def queue_filters(store: Store, dataset_id: int) -> review.QueueQuery:
    """Sidebar widgets for the queue's order and filters, as a QueueQuery."""
    flags, metrics = _filter_options(str(store.path), dataset_id)
    side = st.sidebar
    side.subheader("Queue")
    checks = {f"Spot-check: {c.name} ({c.size})": c.id for c in store.spotchecks(dataset_id)}
    scope = side.selectbox("Samples", ["All samples", *checks], key="q_scope")
    sort = side.selectbox("Order", list(review.SORTS), key="q_sort")
    statuses = side.multiselect("Status", review.STATUSES, default=["undecided"], key="q_status")
    chosen_flags = side.multiselect("Flags (any of)", flags, key="q_flags")
    text = side.text_input("Search text", key="q_text", placeholder="words in any version")
    ranges = []
    with side.expander("Score range"):
        metric = st.selectbox("Metric", ["(none)", *metrics], key="q_metric")
        version = st.radio("Of", review.VERSIONS, horizontal=True, key="q_version")
        low = st.number_input("Min", value=None, key="q_low", format="%.4f")
        high = st.number_input("Max", value=None, key="q_high", format="%.4f")
        if metric != "(none)":
            ranges.append(review.ScoreRange(metric, low, high, version))
    return review.sort_query(
        sort,
        statuses=tuple(statuses),
        flags=tuple(chosen_flags),
        ranges=tuple(ranges),
        text=text.strip(),
        spotcheck=checks.get(scope),
    )


def review_session(store: Store, dataset_id: int, query: review.QueueQuery) -> review.ReviewSession:
    """This browser session's ReviewSession, re-queried when the dataset or filters change."""
    session = st.session_state.get(_SESSION_KEY)
    if session is None or session.dataset_id != dataset_id:
        session = review.ReviewSession.open(store, dataset_id, query)
        st.session_state[_SESSION_KEY] = session
    elif session.query != query:
        session.reload(store, query)
    return session


def flash(kind: str, message: str) -> None:
    """A message to show on the next run (callbacks cannot draw on the page themselves)."""
    st.session_state["_flash"] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop("_flash", (None, None))
    if kind:
        getattr(st, kind)(diff.escape_markdown(message))


def show_version_field(label: str, old: str, new: str, mode: str) -> None:
    """One field (instruction, input or output) of the original beside the shown version."""
    if not old and not new:
        return
    if mode == "Diff":
        ops = cached_diff(old, new)
        st.html(diff.DIFF_CSS + diff.block_html(diff.inline_html(ops), label=label))
        return
    left, right = st.columns(2)
    if mode == "Side by side":
        ops = cached_diff(old, new)
        left.html(diff.DIFF_CSS + diff.block_html(diff.side_html(ops, "old"), label=label))
        right.html(diff.DIFF_CSS + diff.block_html(diff.side_html(ops, "new"), label=label))
    elif mode == "Raw":
        left.caption(label)
        left.code(old, language=None, wrap_lines=True)
        right.caption(label)
        right.code(new, language=None, wrap_lines=True)
    else:  # Markdown formatting, with links, images and HTML made inert
        left.caption(label)
        left.markdown(diff.safe_markdown(old))
        right.caption(label)
        right.markdown(diff.safe_markdown(new))


def start_edit(sample_id: int | None) -> None:
    """Open (or with None, close) the edit form for a sample."""
    st.session_state["_editing"] = sample_id


def status_counts_line(store: Store, dataset_id: int) -> str:
    """ "12 accepted · 3 rejected · ..." for the dataset, statuses with a count only."""
    counts = store.status_counts(dataset_id)
    return " · ".join(f"{n:,} {status}" for status, n in counts.items() if n)


def state_and_suggestion(item: review.ReviewItem) -> None:
    """Where the sample stands and what the selection rules suggest, in one line each."""
    state = item.state
    if state.review_id:
        version = review.candidate_label(item.candidate(state.candidate_id))
        who = diff.escape_markdown(state.annotator or "someone")
        st.caption(f"Decided: **{state.status}** ({diff.escape_markdown(version)}) by {who}")
    else:
        st.caption("Undecided")
    if item.suggestion:
        s = item.suggestion
        version = (
            "reject"
            if getattr(s, "decision", "accept") == "reject"
            else review.candidate_label(item.candidate(s.candidate_id))
        )
        confidence = f", confidence {s.confidence:.2f}" if s.confidence is not None else ""
        st.info(
            f"Suggested: **{diff.escape_markdown(version)}** — {diff.escape_markdown(s.reason)}"
            f" ({diff.escape_markdown(s.rule)}{confidence})"
        )


def scores_table(rows: list[dict]) -> None:
    """Scores of both versions with the change, signed so a shift is visible at a glance."""
    if not rows:
        st.caption("No scores yet: run `reflection score`.")
        return
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "metric": st.column_config.TextColumn("Metric"),
            "original": st.column_config.NumberColumn("Original", format="%.3f"),
            "candidate": st.column_config.NumberColumn("Shown version", format="%.3f"),
            "change": st.column_config.NumberColumn("Change", format="%+.3f"),
        },
    )


def flag_list(flags: list[str]) -> None:
    if flags:
        st.warning("  \n".join("⚑ " + diff.escape_markdown(flag) for flag in flags))
    else:
        st.caption("No flags.")


def candidate_details(candidate) -> None:
    """The oracle's critique, parse status and raw reply, on demand (all shown as plain text)."""
    with st.expander(f"Critique and raw reply ({candidate.status})"):
        if candidate.error:
            st.text(f"Error: {candidate.error}")
        if candidate.model:
            st.text(f"Model: {candidate.model}")
        st.text("Critique:")
        st.code(candidate.critique or "(none)", language=None, wrap_lines=True)
        st.text("Raw oracle text:")
        st.code(candidate.raw or "(none)", language=None, wrap_lines=True)


def review_history(history: list) -> None:
    if not history:
        return
    with st.expander(f"Review history ({len(history)})"):
        st.dataframe(
            [
                {
                    "time": r.created_at[:19],
                    "decision": r.decision,
                    "version": r.candidate_id or "original",
                    "annotator": r.annotator,
                    "note": r.note,
                    "tags": ", ".join(r.tags),
                }
                for r in history
            ],
            hide_index=True,
        )


# --- home page ------------------------------------------------------------------------------

PAGES = (
    ("pages/6_Import.py", "Import", ":material/upload_file:", "bring in a dataset file"),
    ("pages/1_Review.py", "Review", ":material/rate_review:", "one sample at a time, diffs, keys"),
    ("pages/2_Bulk.py", "Bulk", ":material/checklist:", "a rule for many samples, undone as one"),
    ("pages/3_Dashboard.py", "Dashboard", ":material/monitoring:", "progress, annotators, shifts"),
    ("pages/4_Run.py", "Run", ":material/play_circle:", "reflect or score a selection"),
    ("pages/5_Export.py", "Export", ":material/download:", "the curated set, with provenance"),
)
_ROOT = Path(__file__).resolve().parent.parent


def page_exists(page: str) -> bool:
    return (_ROOT / page).exists()


def page_links() -> None:
    """Links to every page that exists, each with one line on what it is for."""
    for page, label, icon, what in PAGES:
        if page_exists(page):
            st.page_link(page, label=f"{label}: {what}", icon=icon)


@st.cache_data(show_spinner=False, max_entries=64)
def _overview(path: str, dataset_id: int, version: tuple) -> dict:
    with Store(path) as store:
        return review.dataset_overview(store, dataset_id)


def dataset_overview(store: Store, dataset_id: int) -> dict:
    """review.dataset_overview, cached until the store changes (its version is the key)."""
    version = tuple(sorted(store.version().items()))
    return _overview(str(store.path), dataset_id, version)
