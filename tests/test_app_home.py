"""The Home page under AppTest: database and dataset, counts, progress, next step, picker."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_data import build_review_db

from reflection import Review, Sample, Store

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "app.py")


def run_home(**state) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_database_says_how_to_start(tmp_path, monkeypatch):
    path = tmp_path / "new.db"
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = run_home()
    assert path.exists()  # opened and migrated
    assert str(path) in at.markdown[0].value
    assert "reflection demo" in at.info[0].value
    assert not at.metric


def test_counts_progress_and_next_step(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    ids = build_review_db(path)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = run_home()
    assert metrics(at) == {"Samples": "6", "Candidates": "6", "Scores": "12", "Decided": "0"}
    assert at.info[0].value.startswith("6 samples wait for a decision")
    assert "Review" in [link.proto.page for link in at.get("page_link")]
    # The sidebar names the home page Home (not Streamlit's "app") and lists the work's order.
    nav = [link.proto.label for link in at.sidebar.get("page_link")]
    assert nav == [
        "Home", "Import", "Review", "Bulk", "Dashboard", "Run", "Export", "Assign", "Adjudicate",
    ]  # fmt: skip
    next(b for b in at.button if b.label == "Start reviewing").click()  # key N
    at.session_state["annotator"] = "ann"
    at.run()
    assert not at.exception
    assert any(c.value.startswith("Sample **") for c in at.caption)  # on the Review page
    assert [link.proto.label for link in at.sidebar.get("page_link")] == nav
    at.switch_page("app.py").run()
    with Store(path) as store:
        store.add_review(Review(sample_id=ids[0], decision="accept"))
        store.add_review(Review(sample_id=ids[1], decision="reject"))
        store.add_review(Review(sample_id=ids[2], decision="skip"))
    at.run()
    assert metrics(at)["Decided"] == "2"  # skipped is seen, not decided
    table = at.dataframe[0].value
    statuses = dict(zip(table["status"], table["samples"], strict=True))
    assert statuses == {"undecided": 3, "accepted": 1, "edited": 0, "rejected": 1, "skipped": 1}


def test_dataset_picker_is_shared_through_session_state(tmp_path, monkeypatch):
    path = tmp_path / "two.db"
    build_review_db(path)
    with Store(path) as store:
        other = store.ensure_dataset("other")
        store.add_samples(other.id, [Sample(instruction="a", output="b")])
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = run_home()
    picker = at.sidebar.selectbox(key="_dataset_widget")
    assert picker.options == ["demo (6)", "other (1)"]
    picker.select("other")
    at.run()
    assert at.session_state["dataset_name"] == "other"
    assert metrics(at)["Samples"] == "1"
    assert "No reflections yet" in at.info[0].value
    # Another page picks up the same dataset.
    at.session_state["annotator"] = "ann"
    at.switch_page("pages/1_Review.py").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="_dataset_widget").value == "other"
    assert at.session_state["_review_session"].dataset_id == other.id


def test_demo_database_renders(tmp_path, monkeypatch):
    demo = pytest.importorskip("reflection.demo")
    path = tmp_path / "demo.db"
    demo.build_demo(path)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = run_home()
    assert metrics(at)["Samples"] == "64"
    assert metrics(at)["Candidates"] == "128"
