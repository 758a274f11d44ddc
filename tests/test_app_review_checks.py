"""The Review page and the content checks: flags with their reasons, a second yes before an
empty or truncated output is accepted, the history after undo, and the score table's cells."""

from __future__ import annotations

import pytest
from review_data import build_checked_review_db
from test_app_review import button, current, open_page, press, states

from reflection import Store
from reflection.ui import score_cells

pytest.importorskip("streamlit.testing.v1")


@pytest.fixture
def db(tmp_path, monkeypatch):
    """The review fixture, plus an empty truncated reply on the first sample, all checked."""
    path = tmp_path / "review.db"
    ids, empty = build_checked_review_db(path)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path, ids, empty


def warnings(at) -> str:
    """The page's warnings as a reader sees them: markdown escapes taken out."""
    return "\n".join(w.value for w in at.warning).replace("\\", "")


def test_the_flags_show_with_their_reasons(db):
    path, ids, empty = db
    at = open_page()
    shown = warnings(at)
    assert f"⚑ empty: the output is empty (#{empty})" in shown
    assert f"⚑ truncated: the oracle's reply was cut off at the token limit (#{empty})" in shown


def test_accepting_an_empty_output_asks_first(db):
    path, ids, empty = db
    at = open_page()
    at.selectbox(key=f"version_{ids[0]}").select(empty)
    at.run()
    press(at, "Accept candidate")
    assert states(path) == {}  # nothing recorded yet
    assert current(at) == ids[0]
    assert f"#{empty} response (truncated) has an empty output" in warnings(at)
    press(at, "Cancel")
    assert states(path) == {} and not [b for b in at.button if b.label == "Accept anyway"]
    press(at, "Accept candidate")
    press(at, "Accept anyway")
    assert states(path) == {ids[0]: ("accepted", empty, "ann")}
    assert current(at) == ids[1]


def test_a_full_answer_is_accepted_at_once(db):
    path, ids, empty = db
    at = open_page()
    press(at, "Accept candidate")  # the suggested, non-empty response
    assert states(path) == {ids[0]: ("accepted", 1, "ann")}
    assert not [b for b in at.button if b.label == "Accept anyway"]


def test_history_after_accept_and_undo_has_one_type_per_column(db):
    path, ids, empty = db
    at = open_page()
    press(at, "Accept candidate")
    press(at, "Undo")
    assert current(at) == ids[0]
    history = at.dataframe[-1].value
    assert list(history["decision"]) == ["accept", "undo"]
    assert list(history["version"]) == ["#1", "original"]
    assert button(at, "Accept candidate")


@pytest.mark.parametrize(
    ("row", "cells"),
    [
        ({"metric": "words_output", "original": 181.0, "candidate": 212.0, "change": 31.0},
         ["words_output", "181", "212", "+31"]),
        ({"metric": "ifd_ppl", "original": 0.61234, "candidate": None, "change": None},
         ["ifd_ppl", "0.612", "—", "—"]),
        ({"metric": "tokens_output", "original": 2048.0, "candidate": 0.0, "change": -2048.0},
         ["tokens_output", "2,048", "0", "-2,048"]),
    ],
)  # fmt: skip
def test_score_cells(row, cells):
    assert list(score_cells(row).values()) == cells


def test_the_queue_filters_and_the_dashboard_count_content_flags(db):
    from reflection.review.dashboard import flags
    from reflection.store.queue import QueueQuery

    path, ids, empty = db
    with Store(path) as store:
        dataset_id = store.dataset("demo").id
        assert store.queue_ids(dataset_id, QueueQuery(flags=("empty",))) == [ids[0]]
        assert store.queue_ids(dataset_id, QueueQuery(flags=("meta_talk",))) == []
        counts = dict(zip(*flags(store, dataset_id)[["flag", "n"]].T.values, strict=True))
    assert counts["empty"] == 1 and counts["truncated"] == 1 and counts["meta_talk"] == 0
