"""Assign: give each sample to several reviewers, move a leaver's open work, see progress."""

import streamlit as st

from reflection import ui
from reflection.errors import ReflectionError
from reflection.team import assign

ui.require_role("assign")
ui.page_header(
    "Assign",
    "👥",
    caption="Each sample goes to `overlap` distinct reviewers, balanced across them; each "
    "reviewer's queue then holds only their assignments, and they review blind.",
)
store = ui.get_store()
dataset = ui.require_dataset(store)
name = ui.annotator()
ui.show_flash()

st.subheader("Progress per reviewer")
rows = assign.progress(store, dataset.id)
if rows:
    ui.progress_table(rows)
else:
    st.info("Nothing in this dataset is assigned: every reviewer works in one shared queue.")

st.subheader("Assign samples")
with st.form("assign_form"):
    reviewers = st.text_input("Reviewers", placeholder="ann, bob, cy", key="assign_reviewers")
    left, middle, right = st.columns(3)
    overlap = left.number_input("Overlap", min_value=1, value=2, step=1, key="assign_overlap")
    limit = middle.number_input(
        "At most this many samples", min_value=0, value=None, step=1, key="assign_limit"
    )
    seed = right.number_input("Seed", value=0, step=1, key="assign_seed")
    if st.form_submit_button("Assign", type="primary"):
        try:
            result = assign.assign_dataset(
                store,
                dataset.id,
                assign.parse_names(reviewers),
                int(overlap),
                limit=None if limit is None else int(limit),
                seed=int(seed),
                actor=name,
            )
        except ReflectionError as exc:
            ui.show_error(exc)
        else:
            ui.flash(
                "success",
                f"Assigned {result.samples:,} samples ({result.assignments:,} assignments).",
            )
            st.rerun()

if rows:
    st.subheader("Reassign open work")
    st.caption("When a reviewer leaves: what they have not decided goes to the others named.")
    with st.form("reassign_form"):
        leaver = st.selectbox("From", [row["reviewer"] for row in rows], key="reassign_from")
        to = st.text_input("To", placeholder="ann, cy", key="reassign_to")
        if st.form_submit_button("Reassign"):
            try:
                moved = assign.reassign(
                    store, dataset.id, leaver, assign.parse_names(to), actor=name
                )
            except ReflectionError as exc:
                ui.show_error(exc)
            else:
                kept = f"; {moved.unplaced:,} stay (already with everyone named)"
                ui.flash(
                    "success",
                    f"Moved {moved.moved:,} open samples from {leaver}"
                    + (kept if moved.unplaced else "."),
                )
                st.rerun()
