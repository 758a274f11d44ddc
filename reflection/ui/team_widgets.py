"""Widgets of the team pages: reviewer progress, disputes side by side, agreement."""

from __future__ import annotations

import streamlit as st

from .. import diff
from ..review import queue as review
from ..store import Store
from ..team import adjudicate
from ..team import figures as team_figures
from ..team.agreement import Agreement, agreement
from .review_widgets import show_version_field


def progress_table(rows: list[dict]) -> None:
    """Each reviewer's assigned, decided, skipped and open samples, with a progress bar."""
    st.dataframe(
        rows,
        hide_index=True,
        column_order=["reviewer", "assigned", "decided", "skipped", "open", "done"],
        column_config={
            "reviewer": st.column_config.TextColumn("Reviewer"),
            "done": st.column_config.ProgressColumn("Done", min_value=0.0, max_value=1.0),
        },
    )


def decision_label(decision: adjudicate.ReviewerDecision) -> str:
    """ "accepted #12 response" / "rejected", as plain text."""
    if decision.status == "rejected":
        return "rejected"
    return f"{decision.status} {review.candidate_label(decision.candidate)}"


def show_dispute(dispute: adjudicate.Dispute) -> None:
    """Every reviewer's decision side by side: the version each chose, as word diffs
    against the original (a rejection shows the original)."""
    columns = st.columns(max(1, len(dispute.decisions)))
    for column, decision in zip(columns, dispute.decisions, strict=False):
        with column:
            who = diff.escape_markdown(decision.reviewer)
            st.markdown(f"**{who}**: {diff.escape_markdown(decision_label(decision))}")
            if decision.note:
                st.caption(f"Note: {diff.escape_markdown(decision.note)}")
            shown = decision.candidate if decision.status != "rejected" else None
            for field in review.FIELDS:
                old = getattr(dispute.sample, field)
                new = getattr(shown, field) if shown else old
                show_version_field(field.capitalize(), old, new, "Diff")
    if dispute.adjudication is not None:
        vote = dispute.adjudication
        version = review.candidate_label(dispute.candidate(vote.candidate_id))
        what = "rejected" if vote.status == "rejected" else f"{vote.status} {version}"
        st.info(
            f"Adjudicated by {diff.escape_markdown(vote.annotator)}: {diff.escape_markdown(what)}"
        )


def adopt_label(decision: adjudicate.ReviewerDecision) -> str:
    """A button label adopting a reviewer's decision, safe as markdown."""
    return diff.escape_markdown(f"Take {decision.reviewer}'s: {decision_label(decision)}")


@st.cache_data(show_spinner="Computing agreement…", max_entries=16)
def _agreement(path: str, dataset_id: int, version: tuple, bootstrap: int) -> Agreement:
    with Store(path) as store:
        return agreement(store, dataset_id, bootstrap=bootstrap)


def agreement_section(store: Store, dataset_id: int, bootstrap: int = 1000) -> None:
    """The Dashboard's agreement: overall figures, kappa per pair, each reviewer's table."""
    version = tuple(sorted(store.version().items()))
    result = _agreement(str(store.path), dataset_id, version, bootstrap)
    st.subheader("Reviewer agreement")
    if not result.n_items:
        st.caption("No sample was decided by two or more reviewers yet.")
        return
    left, right = st.columns(2)
    left.plotly_chart(team_figures.overall_figure(result), width="stretch")
    right.plotly_chart(team_figures.kappa_figure(result), width="stretch")
    st.dataframe(
        team_figures.reviewer_table(result),
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn("Agree share", format="%.2f")},
    )
    with st.expander("Each reviewer against the consensus"):
        for reviewer in result.confusion:
            st.dataframe(team_figures.confusion_frame(result, reviewer))
