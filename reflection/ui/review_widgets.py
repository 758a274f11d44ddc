"""Widgets of the Review page: filters, the shown version beside the original, scores, flags."""

from __future__ import annotations

import dataclasses

import streamlit as st

from .. import diff
from ..errors import ConfirmationNeeded, ReflectionError
from ..records import REVIEW_STATUSES
from ..review import queue as review
from ..store import Store
from .session import flash

VIEW_MODES = ("Diff", "Side by side", "Raw", "Markdown")
_SESSION_KEY = "_review_session"


@st.cache_data(max_entries=2048, show_spinner=False)
def cached_diff(old: str, new: str) -> diff.WordDiff:
    """The word diff, cached on the two texts (identical across sessions, so shared)."""
    return diff.diff_words(old, new)


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
    statuses = side.multiselect("Status", REVIEW_STATUSES, default=["undecided"], key="q_status")
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


def review_session(
    store: Store, dataset_id: int, query: review.QueueQuery, annotator: str = ""
) -> review.ReviewSession:
    """This browser session's ReviewSession, re-queried when the dataset or filters change.

    On an assigned dataset it is `annotator`'s own queue (blind to the other reviewers').
    """
    reviewer = review.queue_reviewer(store, dataset_id, annotator) if annotator else None
    query = dataclasses.replace(query, reviewer=reviewer)
    session = st.session_state.get(_SESSION_KEY)
    if session is None or session.dataset_id != dataset_id:
        session = review.ReviewSession.open(store, dataset_id, query)
        st.session_state[_SESSION_KEY] = session
    elif session.query != query:
        session.reload(store, query)
    return session


def version_choices(store: Store, query: review.QueueQuery, item) -> tuple[list, dict, object]:
    """The versions to pick from, their labels and the one shown first. For a sample in a
    prompt experiment they are blind: "Version A", "B", ... in a seeded order per sample, with
    no id, kind or template, and the first of them shown first."""
    from ..review.experiment import blind_labels

    blind = blind_labels(store, item.sample.dataset_id, item.sample.id, query.spotcheck)
    labels = {c.id: review.candidate_label(c) for c in item.candidates} | {None: "original"}
    if not blind:
        shown = review.default_candidate(item)
        return [None, *(c.id for c in item.candidates)], labels, shown.id if shown else None
    rest = [c.id for c in item.candidates if c.id not in blind]
    labels.update(blind)
    decided = item.state.candidate_id
    first = decided if decided and decided in labels else next(iter(blind))
    return [None, *blind, *rest], labels, first


def show_version_field(label: str, old: str, new: str, mode: str) -> None:
    """One field (instruction, input or output) of the original beside the shown version."""
    if not old and not new:
        return
    if mode in ("Diff", "Side by side"):
        found = cached_diff(old, new)
        if found.coarse:  # the word pass ran out of time: say what is shown instead
            st.caption(f"{label}: {found.reason}")
    if mode == "Diff":
        st.html(diff.DIFF_CSS + diff.block_html(diff.inline_html(found.ops), label=label))
        return
    left, right = st.columns(2)
    if mode == "Side by side":
        left.html(diff.DIFF_CSS + diff.block_html(diff.side_html(found.ops, "old"), label=label))
        right.html(diff.DIFF_CSS + diff.block_html(diff.side_html(found.ops, "new"), label=label))
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


def decision_keys(
    box, decide, sample_id: int, chosen_id, no_candidate: bool, follow, viewer: bool
) -> None:
    """The six decision buttons and their keys, in `box`: accept the shown candidate (A) or
    the original (O), edit (E), reject (X), skip (S), or follow the suggestion (G).
    `decide(decision, candidate_id=None)` is the page's callback."""
    keys = box.columns(6)
    keys[0].button(
        "Accept candidate",
        shortcut="A",
        type="primary",
        width="stretch",
        disabled=no_candidate or viewer,
        on_click=decide,
        args=("accept", chosen_id),
    )
    for key, (label, shortcut, callback, args) in enumerate(
        (
            ("Accept original", "O", decide, ("accept", None)),
            ("Edit", "E", start_edit, (sample_id,)),
            ("Reject", "X", decide, ("reject",)),
            ("Skip", "S", decide, ("skip",)),
        ),
        start=1,
    ):
        keys[key].button(
            label, shortcut=shortcut, on_click=callback, args=args, disabled=viewer, width="stretch"
        )
    keys[5].button("As suggested", shortcut="G", width="stretch", disabled=follow is None or viewer,
                   on_click=decide, args=follow or ("skip",))  # fmt: skip


def start_edit(sample_id: int | None) -> None:
    """Open (or with None, close) the edit form for a sample; opening puts the cursor in it."""
    st.session_state["_editing"] = sample_id
    st.session_state["_focus_edit"] = sample_id is not None


# Puts the cursor in the edit form's first field once it is drawn (Streamlit has no autofocus).
_FOCUS_SCRIPT = """<script>
(function () {
  let tries = 0;
  function focus() {
    const field = document.querySelector('textarea[aria-label="%s"]');
    if (field) { field.focus(); field.setSelectionRange(0, 0); return; }
    if (++tries < 100) { setTimeout(focus, 50); }
  }
  focus();
})();
</script>"""


def focus_first_field(label: str) -> None:
    """After E: the cursor goes to the field labelled `label`, once, not on every rerun."""
    if st.session_state.pop("_focus_edit", False):
        st.html(_FOCUS_SCRIPT % label, unsafe_allow_javascript=True)


def decide_or_ask(
    session: review.ReviewSession, store: Store, decision: str, *, confirmed=False, **details
) -> None:
    """Record a decision (a button callback). One that needs a second yes (accepting an empty
    output or a truncated reply) is kept pending instead, for `confirm_pending` to ask."""
    sample_id = session.current_id
    try:
        session.decide(store, decision, confirmed=confirmed, **details)
        st.session_state.pop("_confirm", None)
    except ConfirmationNeeded as exc:
        st.session_state["_confirm"] = {
            "sample_id": sample_id, "decision": decision, "details": details, "message": str(exc),
        }  # fmt: skip
    except ReflectionError as exc:
        flash("error", str(exc))


def _cancel_confirmation() -> None:
    st.session_state.pop("_confirm", None)


def confirm_pending(session: review.ReviewSession, store: Store) -> None:
    """The second step of a decision that needs one: why, then Accept anyway (Y) or Cancel."""
    pending = st.session_state.get("_confirm")
    if not pending or pending["sample_id"] != session.current_id:
        return
    box = st.container(border=True)
    box.warning("⚠ " + diff.escape_markdown(pending["message"]) + " Accept it anyway?")
    left, right, _ = box.columns([1.4, 1, 4])
    left.button(
        "Accept anyway", type="primary", shortcut="Y", key="confirm_yes", on_click=decide_or_ask,
        args=(session, store, pending["decision"]), kwargs={"confirmed": True, **pending["details"]},
    )  # fmt: skip
    right.button("Cancel", key="confirm_no", on_click=_cancel_confirmation)


def status_counts_line(store: Store, dataset_id: int, reviewer: str | None = None) -> str:
    """ "12 accepted · 3 rejected · ..." for the dataset, statuses with a count only; for a
    reviewer's assigned queue, their own progress."""
    if reviewer is not None:
        mine = store.reviewer_progress(dataset_id, reviewer)
        if not mine:
            return "nothing assigned to you"
        row = mine[0]
        skipped = f" · {row['skipped']:,} skipped" if row["skipped"] else ""
        return f"{row['decided']:,} of your {row['assigned']:,} assigned decided{skipped}"
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


def _number(value: float | None, whole: bool, signed: bool = False) -> str:
    if value is None:
        return "—"
    sign = "+" if signed else ""
    return f"{value:{sign},.0f}" if whole else f"{value:{sign}.3f}"


def score_cells(row: dict) -> dict:
    """One score row as the table shows it: counts without decimals, a dash where missing."""
    present = [row[k] for k in ("original", "candidate") if row[k] is not None]
    whole = bool(present) and all(float(v).is_integer() for v in present)
    return {
        "metric": row["metric"],
        "original": _number(row["original"], whole),
        "candidate": _number(row["candidate"], whole),
        "change": _number(row["change"], whole, signed=True),
    }


def scores_table(rows: list[dict]) -> None:
    """Scores of both versions with the change, signed so a shift is visible at a glance."""
    if not rows:
        st.caption("No scores yet: run `reflection score`.")
        return
    st.dataframe(
        [score_cells(row) for row in rows],
        hide_index=True,
        column_config={
            "metric": st.column_config.TextColumn("Metric"),
            "original": st.column_config.TextColumn("Original"),
            "candidate": st.column_config.TextColumn("Shown version"),
            "change": st.column_config.TextColumn("Change"),
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
                    # Text throughout: a column of ids and "original" is not one Arrow type.
                    "version": f"#{r.candidate_id}" if r.candidate_id else "original",
                    "annotator": r.annotator,
                    "note": r.note,
                    "tags": ", ".join(r.tags),
                }
                for r in history
            ],
            hide_index=True,
        )
