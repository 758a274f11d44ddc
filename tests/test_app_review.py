"""The Review page under Streamlit's AppTest: rendering, each decision, undo, edit, filters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from review_data import HOSTILE, build_review_db

from reflection import Review, Store
from reflection.store.copy import copy_store

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Review.py")


@pytest.fixture
def db(tmp_path, monkeypatch, store_target):
    """The review store, on SQLite or (copied there whole) on PostgreSQL."""
    path = tmp_path / "review.db"
    ids = build_review_db(path)
    if store_target != str(tmp_path / "test.db"):  # a PostgreSQL database
        with Store(path) as built, Store(store_target) as copy:
            copy_store(built, copy)
        path = store_target
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path, ids


def open_page(name: str = "ann") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if name:
        at.session_state["annotator"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def press(at: AppTest, label: str) -> AppTest:
    button(at, label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def current(at: AppTest) -> int:
    """The sample id the page shows, read from its position line."""
    line = next(c.value for c in at.caption if c.value.startswith("Sample **"))
    return int(line.split("**")[1])


def html_bodies(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def states(path) -> dict[int, tuple]:
    with Store(path) as store:
        return {
            sid: (st.status, st.candidate_id, st.annotator)
            for sid, st in store.states(store.dataset("demo").id).items()
        }


def test_asks_the_annotator_name_once(db):
    at = open_page(name="")
    assert at.text_input[0].label.startswith("Your name")
    assert not [b for b in at.button if b.label.startswith("Accept")]
    at.text_input[0].input("Ada")
    at.button[-1].click()  # the form's submit button
    at.run()
    assert at.session_state["annotator"] == "Ada"
    assert button(at, "Accept candidate")
    assert any("Annotator: **Ada**" in c.value for c in at.caption)


def test_renders_the_first_sample_with_diff_scores_and_suggestion(db):
    path, ids = db
    at = open_page()
    assert current(at) == ids[0]
    assert at.selectbox(key=f"version_{ids[0]}").value == 1  # the suggested response candidate
    body = html_bodies(at)
    assert '<del class="rs-del">cats</del><ins class="rs-ins">dogs</ins>' in body
    assert '<ins class="rs-ins"> They love walks.</ins>' in body
    assert "Suggested: **\\#1 response \\(ok\\)**" in at.info[0].value
    scores = at.dataframe[0].value
    assert list(scores["metric"]) == ["ifd_ppl"]
    assert list(scores.iloc[0]) == ["ifd_ppl", "0.600", "0.550", "-0.050"]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Accept candidate", ("accepted", 1, "ann")),
        ("Accept original", ("accepted", None, "ann")),
        ("Reject", ("rejected", None, "ann")),
        ("Skip", ("skipped", None, "ann")),
    ],
)
def test_each_decision_is_saved_and_advances(db, label, expected):
    path, ids = db
    at = open_page()
    press(at, label)
    assert states(path) == {ids[0]: expected}
    assert current(at) == ids[1]


def test_note_and_tags_go_with_the_decision(db):
    path, ids = db
    at = open_page()
    at.text_input(key=f"note_{ids[0]}").input("too short")
    at.text_input(key=f"tags_{ids[0]}").input("style, length")
    at.run()
    press(at, "Reject")
    with Store(path) as store:
        review = store.reviews_for(ids[0])[-1]
    assert (review.decision, review.note, review.tags) == (
        "reject",
        "too short",
        ["style", "length"],
    )


def test_accept_the_version_chosen_in_the_selector(db):
    path, ids = db
    at = open_page()
    at.selectbox(key=f"version_{ids[0]}").select_index(0)  # the original beside itself
    at.run()
    assert button(at, "Accept candidate").disabled
    at.selectbox(key=f"version_{ids[0]}").select(1)
    at.run()
    press(at, "Accept candidate")
    assert states(path)[ids[0]][:2] == ("accepted", 1)


def test_undo_takes_back_the_last_decision_and_shows_it(db):
    path, ids = db
    at = open_page()
    press(at, "Accept candidate")
    press(at, "Reject")
    assert current(at) == ids[2]
    press(at, "Undo")
    assert current(at) == ids[1]
    assert ids[1] not in states(path)
    assert any("Undid the decision" in i.value for i in at.info)
    press(at, "Undo")
    assert states(path) == {} and current(at) == ids[0]
    press(at, "Undo")
    assert any("Nothing to undo" in i.value for i in at.info)


def test_edit_saves_a_new_candidate_and_accepts_it(db):
    path, ids = db
    at = open_page()
    press(at, "Edit")
    area = at.text_area(key=f"edit_output_{ids[0]}")
    assert area.value.endswith("They love walks.")  # prefilled with the shown candidate
    area.input("A careful, complete answer about dogs.")  # sent with the form's submit
    press(at, "Save edit and accept")
    with Store(path) as store:
        state = store.state(ids[0])
        edit = store.candidate(state.candidate_id)
    assert (state.status, edit.kind, edit.parent_id, edit.annotator) == ("edited", "edit", 1, "ann")
    assert edit.output == "A careful, complete answer about dogs."
    assert current(at) == ids[1]
    assert not [t for t in at.text_area if t.key and t.key.startswith("edit_")]


def test_empty_edit_is_refused_with_a_message(db):
    path, ids = db
    at = open_page()
    press(at, "Edit")
    at.text_area(key=f"edit_output_{ids[0]}").input("   ")
    press(at, "Save edit and accept")
    assert "needs an instruction and an output" in at.error[0].value
    assert states(path) == {} and current(at) == ids[0]


def test_next_previous_and_jump(db):
    path, ids = db
    at = open_page()
    press(at, "Next")
    assert current(at) == ids[1]
    press(at, "Previous")
    assert current(at) == ids[0]
    at.number_input(key="jump_id").set_value(ids[4])
    press(at, "Go")
    assert current(at) == ids[4]
    at.number_input(key="jump_id").set_value(999)
    press(at, "Go")
    assert "no sample 999" in at.error[0].value
    assert states(path) == {}  # navigation decides nothing


@pytest.mark.parametrize(
    ("widget", "value", "shown"),
    [
        ("q_text", "Repeat", [2]),
        ("q_flags", ["parse_failed"], [4]),
        ("q_status", ["accepted"], [0]),
        ("q_sort", "IFD of original (high first)", [5, 4, 3, 2, 1, 0]),
    ],
)
def test_filters_and_order_choose_the_queue(db, widget, value, shown):
    path, ids = db
    with Store(path) as store:
        store.add_review(Review(sample_id=ids[0], decision="accept", annotator="x"))
    at = open_page()
    if widget in ("q_status", "q_flags"):
        at.multiselect(key=widget).set_value(value)
        expected = [ids[p] for p in shown]
    elif widget == "q_text":
        at.text_input(key=widget).input(value)
        expected = [ids[p] for p in shown]
    else:
        at.selectbox(key=widget).select(value)
        expected = [ids[p] for p in shown if p != 0]  # still undecided only
    at.run()
    assert not at.exception
    session = at.session_state["_review_session"]
    assert session.ids == expected
    assert current(at) == expected[0]


def test_score_range_filter(db):
    path, ids = db
    at = open_page()
    at.selectbox(key="q_metric").select("ifd_ppl")
    at.number_input(key="q_low").set_value(0.75)
    at.run()
    assert at.session_state["_review_session"].ids == [ids[2], ids[3], ids[4], ids[5]]
    at.radio(key="q_version").set_value("change")
    at.number_input(key="q_low").set_value(None)
    at.number_input(key="q_high").set_value(-0.1)
    at.run()
    assert at.session_state["_review_session"].ids == [ids[1], ids[2], ids[3], ids[4], ids[5]]


def test_queue_end_says_so(db):
    path, ids = db
    at = open_page()
    for _ in ids:
        press(at, "Skip")
    assert "Queue finished" in at.success[0].value
    assert len(states(path)) == len(ids)


@pytest.mark.parametrize("mode", ["Diff", "Side by side", "Raw", "Markdown"])
def test_hostile_sample_is_escaped_in_every_view(db, mode):
    path, ids = db
    at = open_page()
    at.segmented_control(key="view_mode").set_value(mode)
    at.number_input(key="jump_id").set_value(ids[2])
    press(at, "Go")
    assert current(at) == ids[2]
    body = html_bodies(at)
    assert "<script" not in body and "<img" not in body
    markdown = "\n".join(m.value for m in at.markdown)
    # In markdown every "<" and "]" arrives backslash-escaped: no HTML, no link can form.
    assert not re.search(r"(?<!\\)[<\]]", markdown)
    if mode in ("Diff", "Side by side"):
        assert "&lt;script&gt;" in body
    if mode == "Raw":
        assert any(HOSTILE in c.value for c in at.code)
    if mode == "Markdown":
        assert "\\[click me\\](javascript:" in markdown


def test_two_sessions_keep_both_decisions(db):
    path, ids = db
    first, second = open_page("ann"), open_page("bob")
    press(first, "Accept candidate")
    press(second, "Next")  # bob's queue snapshot still holds ids[0]; he moves on
    press(second, "Reject")
    press(first, "Reject")  # ann is on ids[1] too: both decisions stay in the log
    with Store(path) as store:
        log = [(r.sample_id, r.decision, r.annotator) for r in store.reviews_for(ids[1])]
    assert log == [(ids[1], "reject", "bob"), (ids[1], "reject", "ann")]
    assert states(path)[ids[0]] == ("accepted", 1, "ann")


def test_follow_the_suggestion(db):
    path, ids = db
    at = open_page()
    press(at, "As suggested")  # sample 1: the suggestion accepts its candidate 1
    assert states(path) == {ids[0]: ("accepted", 1, "ann")}
    at.number_input(key="jump_id").set_value(ids[3])  # no suggestion there
    press(at, "Go")
    assert button(at, "As suggested").disabled


def test_a_spotcheck_is_offered_as_the_queue(db):
    from reflection.review.spotcheck import create_spotcheck, spotcheck_queue

    path, _ = db
    with Store(path) as store:
        create_spotcheck(store, "demo", "oracle check", size=5, seed=7)
        drawn = spotcheck_queue(store, "oracle check", "demo")
    at = open_page()
    scope = next(s for s in at.selectbox if s.label == "Samples")
    scope.set_value("Spot-check: oracle check (5)").run()
    assert not at.exception, at.exception
    assert current(at) == drawn[0]
    press(at, "Reject")
    assert current(at) == drawn[1]


def test_a_diff_that_ran_out_of_time_says_so(db, monkeypatch):
    import reflection.diff
    from reflection.ui import cached_diff

    path, ids = db
    cached_diff.clear()  # results are shared across sessions: start from none
    monkeypatch.setattr(reflection.diff, "DIFF_TIME_LIMIT_S", 1e-9)
    try:
        at = open_page()
        notices = [c.value for c in at.caption if reflection.diff.COARSE_REASON in c.value]
        assert notices and notices[0].startswith("Output: ")
        assert '<ins class="rs-ins">' in html_bodies(at)  # still a diff, a coarser one
    finally:
        cached_diff.clear()
    monkeypatch.undo()
    at = open_page()
    assert not [c for c in at.caption if reflection.diff.COARSE_REASON in c.value]


# The review page on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
