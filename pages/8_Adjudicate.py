"""Adjudicate: the samples reviewers disagree on, every decision side by side; the admin
records the final one."""

import streamlit as st

from reflection import ui
from reflection.errors import ReflectionError
from reflection.team import adjudicate

ui.require_role("adjudicate")
ui.page_header(
    "Adjudicate",
    "⚖️",
    caption="Samples whose reviewers disagree. Each reviewer's chosen version is shown as a "
    "word diff against the original; your decision is final for the consensus.",
)
store = ui.get_store()
dataset = ui.require_dataset(store)
name = ui.annotator()
ui.show_flash()

settled = st.sidebar.toggle("Include adjudicated samples", key="adj_settled")
ids = adjudicate.disputes(store, dataset.id, adjudicated=settled)
if not ids:
    st.success("No disagreement to settle in this dataset.")
    st.stop()
place = st.session_state.get("adj_place", 0) % len(ids)
sid = ids[place]


@ui.guard("adjudicate")
def settle(decision, candidate_id=None):
    note = st.session_state.get(f"adj_note_{sid}", "")
    try:
        adjudicate.adjudicate(store, sid, name, decision, candidate_id, note)
        ui.flash("success", f"Sample {sid}: {decision} recorded.")
    except ReflectionError as exc:
        ui.flash("error", str(exc))


@ui.guard("adjudicate")
def reopen():
    adjudicate.undo_adjudication(store, sid, name)
    ui.flash("info", f"Sample {sid}: adjudication taken back.")


def move(step):
    st.session_state["adj_place"] = place + step


nav = st.columns([1, 1, 6], vertical_alignment="center")
nav[0].button("Previous", shortcut="P", on_click=move, args=(-1,))
nav[1].button("Next", shortcut="N", on_click=move, args=(1,))
nav[2].caption(f"Sample **{sid}** · {place + 1:,} of {len(ids):,} disputed")

dispute = adjudicate.load_dispute(store, sid)
for decision in dispute.decisions:
    st.button(
        ui.adopt_label(decision),
        key=f"adopt_{sid}_{decision.reviewer}",
        on_click=settle,
        args=decision.decision(),
    )
keys = st.columns(3)
keys[0].button("Accept original", shortcut="O", on_click=settle, args=("accept",))
keys[1].button("Reject", shortcut="X", on_click=settle, args=("reject",))
if dispute.adjudication is not None:
    keys[2].button("Undo adjudication", shortcut="U", on_click=reopen)
st.text_input("Note", key=f"adj_note_{sid}", placeholder="optional, saved with the decision")
ui.show_dispute(dispute)
