"""Review: one sample at a time, original beside a candidate; decide with one key."""

import streamlit as st

from reflection import ui
from reflection.errors import ReflectionError
from reflection.review import queue as review

ui.require_role("read")
ui.page_header("Review", "🔍")
store = ui.get_store()
dataset = ui.require_dataset(store)
name = ui.annotator()
viewer = not ui.allowed("decide")  # the buttons say so; the callbacks refuse in any case
session = ui.review_session(store, dataset.id, ui.queue_filters(store, dataset.id), name)


def act(action, *args, **kwargs):
    """Run a session action in a button callback: committed before the next run draws."""
    try:
        message = action(*args, **kwargs)
        if isinstance(message, str):
            ui.flash("info", message)
    except ReflectionError as exc:
        ui.flash("error", str(exc))


@ui.guard("decide")
def decide(decision, candidate_id=None):
    sid = session.current_id
    note = st.session_state.get(f"note_{sid}", "")
    tags = review.parse_tags(st.session_state.get(f"tags_{sid}", ""))
    ui.decide_or_ask(
        session, store, decision, annotator=name, candidate_id=candidate_id, note=note, tags=tags
    )


@ui.guard("decide")
def save_edit(base):
    sid = session.current_id
    text = {f: st.session_state.get(f"edit_{f}_{sid}", "") for f in review.FIELDS}
    note = st.session_state.get(f"note_{sid}", "")
    tags = review.parse_tags(st.session_state.get(f"tags_{sid}", ""))
    act(session.save_edit, store, base, text, annotator=name, note=note, tags=tags)
    st.session_state["_editing"] = None


@ui.guard("decide")
def undo():
    act(session.undo_last, store, name)


with st.sidebar.form("jump", border=False):
    target = st.number_input("Jump to sample id", min_value=1, step=1, value=None, key="jump_id")
    if st.form_submit_button("Go") and target:
        act(session.jump, store, int(target))


@st.fragment
def sample_part() -> None:
    """The sample and its keys. A key press reruns this part alone (a fragment): the
    sidebar's filters, the title and the jump form stay as they are, which halves what the
    browser redraws per key (bench_backends: 150 -> 93 ms at 2,000 samples). What a key
    changes (the place in the queue, the counts, the sample) is all in here; a filter or a
    jump reruns the whole page."""
    ui.recheck_role("read")  # a key does not rerun the page's first line: check here too
    ui.show_flash()
    sid = session.current_id
    actions, nav = st.container(), st.columns([1.3, 1, 1, 5], vertical_alignment="center")
    nav[0].button("Previous", icon=":material/arrow_back:", shortcut="P", on_click=act,
                  args=(session.previous,))  # fmt: skip
    nav[1].button("Next", icon=":material/arrow_forward:", shortcut="N", on_click=act,
                  args=(session.next, store))  # fmt: skip
    nav[2].button("Undo", icon=":material/undo:", shortcut="U", on_click=undo, disabled=viewer)
    if sid is None:
        st.success(
            f"Queue finished: {len(session.ids):,} samples in it. Change the filters for more."
        )
        return

    # The keys come before anything of the sample: a key pressed the moment the sample shows
    # finds its button (and shortcut) already there, however slow the rest of the draw.
    item = review.load_item(store, sid, session.reviewer)
    options, labels, first = ui.version_choices(store, session.query, item)
    chosen_id = st.session_state.get(f"version_{sid}", first)
    chosen_id = chosen_id if chosen_id in options else first
    shown = item.candidate(chosen_id)
    follow = review.suggested_decision(item)
    ui.decision_keys(actions, decide, sid, chosen_id, shown is None, follow, viewer)
    ui.confirm_pending(session, store)
    nav[3].caption(
        f"Sample **{sid}** · {session.index + 1:,} of {session.size_label} in queue · "
        f"{ui.status_counts_line(store, dataset.id, session.reviewer)}"
    )
    st.selectbox(
        "Version shown beside the original",
        options,
        index=options.index(chosen_id),
        format_func=labels.__getitem__,
        key=f"version_{sid}",
    )
    ui.state_and_suggestion(item)

    if st.session_state.get("_editing") == sid:
        with st.form(f"edit_form_{sid}"):
            st.caption(f"Editing {labels[chosen_id]}: saved as a new version and accepted")
            for field in review.FIELDS:
                base_text = getattr(shown or item.sample, field)
                st.text_area(field.capitalize(), base_text, key=f"edit_{field}_{sid}", height=160)
            ui.focus_first_field("Instruction")
            st.form_submit_button(
                "Save edit and accept", type="primary", on_click=save_edit, args=(shown,)
            )
        st.button("Cancel edit", on_click=ui.start_edit, args=(None,))
    else:
        mode = (
            st.segmented_control("View", ui.VIEW_MODES, default="Diff", key="view_mode") or "Diff"
        )
        for field in review.FIELDS:
            new = getattr(shown, field) if shown else getattr(item.sample, field)
            ui.show_version_field(field.capitalize(), getattr(item.sample, field), new, mode)

    left, right = st.columns([3, 2])
    with left:
        ui.scores_table(review.score_rows(item, shown))
        st.text_input("Note", key=f"note_{sid}", placeholder="optional, saved with the decision")
        st.text_input("Tags", key=f"tags_{sid}", placeholder="comma,separated")
    with right:
        ui.flag_list(review.item_flags(item))
        if shown is not None:
            ui.candidate_details(shown)
    ui.review_history(item.history)


sample_part()
