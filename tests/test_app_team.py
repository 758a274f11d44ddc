"""The team pages under AppTest: Assign, Adjudicate, a reviewer's blind queue on Review, and
agreement on the Dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reflection.records import Candidate, Review, Sample
from reflection.store import Store
from reflection.team.assign import assign_dataset

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "team.db"
    with Store(path) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(
            ds.id,
            [
                Sample(instruction=f"question {n}", output=f"answer {n}", position=n)
                for n in range(6)
            ],
        )
        for sid in store.sample_ids(ds.id):
            store.add_candidate(Candidate(sample_id=sid, kind="response", output=f"better {sid}"))
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path


def page(name: str, annotator: str | None = "ana") -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    if annotator:
        at.session_state["annotator"] = annotator
    at.run()
    assert not at.exception, at.exception
    return at


def plain(text: str) -> str:
    """Markdown-escaped text (names and messages are) as a person reads it."""
    return text.replace("\\", "")


def texts(at: AppTest) -> str:
    kinds = ("success", "error", "warning", "info", "caption", "markdown")
    return plain(" ".join(str(e.value) for kind in kinds for e in at.get(kind)))


def submit(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_assign_page_assigns_shows_progress_and_reassigns(db):
    at = page("7_Assign.py")
    assert "one shared queue" in texts(at)
    at.text_input(key="assign_reviewers").input("ann, bob, cy")
    at.number_input(key="assign_overlap").set_value(2)
    submit(at, "Assign")
    assert "Assigned 6 samples (12 assignments)." in texts(at)
    progress = at.dataframe[0].value
    assert list(progress["reviewer"]) == ["ann", "bob", "cy"]
    assert list(progress["assigned"]) == [4, 4, 4]
    at.selectbox(key="reassign_from").set_value("bob")
    at.text_input(key="reassign_to").input("dee")
    submit(at, "Reassign")
    assert "Moved 4 open samples from bob." in texts(at)
    assert list(at.dataframe[0].value["reviewer"]) == ["ann", "cy", "dee"]
    with Store(db) as store:
        assert [(e.actor, e.action) for e in store.audit_events()] == [
            ("ana", "assign"), ("ana", "reassign"),
        ]  # fmt: skip


def test_assign_page_reports_a_bad_request(db):
    at = page("7_Assign.py")
    at.text_input(key="assign_reviewers").input("ann")
    at.number_input(key="assign_overlap").set_value(2)
    submit(at, "Assign")
    assert "overlap 2: must be between 1 and the number of reviewers (1)" in plain(
        at.error[0].value
    )


def _disagree(db) -> list[int]:
    with Store(db) as store:
        assign_dataset(store, "d", ["a<b>", "b"], 2)
        ids = store.sample_ids(store.dataset("d").id)
        cand = store.candidates_for(ids[0])[0].id
        store.add_review(Review(sample_id=ids[0], decision="accept", candidate_id=cand,
                                annotator="a<b>"))  # fmt: skip
        store.add_review(Review(sample_id=ids[0], decision="reject", annotator="b"))
        for reviewer in ("a<b>", "b"):
            store.add_review(Review(sample_id=ids[1], decision="reject", annotator=reviewer))
    return ids


def test_adjudicate_page_shows_each_decision_and_records_the_final_one(db):
    ids = _disagree(db)
    at = page("8_Adjudicate.py", annotator="boss")
    assert f"Sample **{ids[0]}** · 1 of 1 disputed" in texts(at)
    labels = [b.label for b in at.button]
    assert "Take a\\<b\\>\\'s\\: accepted \\#1 response \\(ok\\)" in labels  # escaped
    assert "Take b's: rejected" in [plain(label) for label in labels]
    bodies = "\n".join(h.proto.body for h in at.get("html"))
    assert "better" in bodies  # a's version, as a word diff against the original
    submit(at, next(label for label in labels if label.startswith("Take a")))
    assert "No disagreement to settle" in texts(at)
    with Store(db) as store:
        state = store.state(ids[0])
        assert (state.status, state.annotator) == ("accepted", "boss")
        [event] = store.audit_events(action="adjudicate")
        assert event.actor == "boss"
    at.toggle(key="adj_settled").set_value(True).run()
    assert "Adjudicated by boss" in texts(at)
    submit(at, "Undo adjudication")
    with Store(db) as store:
        assert store.state(ids[0]).status == "undecided"


def test_adjudicate_page_with_nothing_to_settle(db):
    at = page("8_Adjudicate.py")
    assert "No disagreement to settle" in texts(at)


def test_review_page_is_a_reviewers_own_blind_queue(db):
    ids = _disagree(db)
    with Store(db) as store:
        mine = store.open_assignments(store.dataset("d").id, "b")
    at = page("1_Review.py", annotator="b")
    line = next(c.value for c in at.caption if c.value.startswith("Sample **"))
    assert "2 of your 6 assigned decided" in line
    assert int(line.split("**")[1]) == mine[0] == ids[2]
    # Someone with no assignment has an empty queue, not the shared one.
    at.session_state["annotator"] = "zed"
    at.run()
    assert "Queue finished: 0 samples in it" in texts(at)


def test_dashboard_shows_agreement(db):
    with Store(db) as store:
        assign_dataset(store, "d", ["a", "b"], 2)
        for n, sid in enumerate(store.sample_ids(store.dataset("d").id)):
            store.add_review(Review(sample_id=sid, decision="accept", annotator="a"))
            decision = "accept" if n % 2 else "reject"
            store.add_review(Review(sample_id=sid, decision=decision, annotator="b"))
    at = page("3_Dashboard.py", annotator=None)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Agreement over all reviewers (6 samples)" in titles
    assert "Cohen's kappa per pair of reviewers" in titles
    assert "Reviewer agreement" in [h.value for h in at.subheader]
