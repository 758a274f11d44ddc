"""The Import & spot-check page under Streamlit's AppTest: uploads, paths, errors, spot-checks."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from reflection import Review, Store
from reflection.review.spotcheck import report, spotcheck_queue

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "6_Import.py")


def paired(records) -> list[dict]:
    return [{**r, "better_answer": r["output"] + " Explained in more detail."} for r in records]


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "app.db"
    Store(path).close()
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path


def values(array) -> list:
    """A plotly JSON array, plain or binary-encoded ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["annotator"] = "ann"
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_upload_imports_candidates_into_a_new_dataset(db, alpaca_records):
    at = open_page()
    assert "Import & spot-check" in at.title[0].value
    at.file_uploader[0].set_value(
        ("reflected.json", json.dumps(paired(alpaca_records[:40])).encode(), "application/json")
    )
    at.run()
    next(t for t in at.text_input if t.label == "Dataset").set_value("alpaca")
    click(at, "Import candidates")
    assert [s.value.replace("\\", "") for s in at.success] == [
        "Imported reflected.json (paired, kind response, matched by hash) into dataset 'alpaca':"
        " 40 candidates added; 40 originals added; 0 of 40 records matched a sample"
    ]
    with Store(db) as store:
        ds = store.dataset("alpaca")
        sample = next(store.samples(ds.id))
        [candidate] = store.candidates_for(sample.id)
        assert candidate.origin["file"] == "reflected.json"
        assert candidate.output.endswith("Explained in more detail.")


def test_path_import_errors_show_file_and_record_and_write_nothing(db, tmp_path, alpaca_records):
    records = paired(alpaca_records[:10])
    records[3]["better_answer"] = 7
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    at = open_page()
    at.radio[0].set_value("Path on this machine")
    at.run()
    next(t for t in at.text_input if t.label == "Path").set_value(str(path))
    at.run()
    next(t for t in at.text_input if t.label == "Dataset").set_value("d")
    click(at, "Import candidates")
    assert [e.value for e in at.error] == [
        f"{path}, record 4: field 'better_answer' must be text, not int"
    ]
    with Store(db) as store:
        assert store.count_samples() == 0 and store.count_candidates() == 0


def test_bad_field_mapping_is_an_error(db, tmp_path, alpaca_records):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(paired(alpaca_records[:3])), encoding="utf-8")
    at = open_page()
    at.radio[0].set_value("Path on this machine")
    at.run()
    next(t for t in at.text_input if t.label == "Path").set_value(str(path))
    at.run()
    next(t for t in at.text_input if t.label == "Field names").set_value("colour=red")
    click(at, "Import candidates")
    assert "expected FIELD=NAME" in at.error[0].value


def test_spotcheck_is_created_and_its_estimate_and_curve_shown(db, tmp_path, alpaca_records):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(paired(alpaca_records[:300])), encoding="utf-8")
    at = open_page()
    at.radio[0].set_value("Path on this machine")
    at.run()
    next(t for t in at.text_input if t.label == "Path").set_value(str(path))
    at.run()
    next(t for t in at.text_input if t.label == "Dataset").set_value("alpaca")
    click(at, "Import candidates")
    next(t for t in at.text_input if t.label == "Name").set_value("first")
    next(n for n in at.number_input if n.label == "Samples").set_value(30)
    next(n for n in at.number_input if n.label == "Seed").set_value(5)
    click(at, "Create spot-check")
    assert "Spot-check created: 30 drawn of 300." in [s.value for s in at.success]
    assert next(s for s in at.selectbox if s.label == "Dataset").value == "alpaca"
    assert any("no reviews yet" in m.value for m in at.markdown)
    with Store(db) as store:
        ids = spotcheck_queue(store, "first")
        for i, sid in enumerate(ids[:20]):
            candidate = store.candidates_for(sid)[0]
            decision = Review(sid, "reject") if i % 4 == 0 else Review(sid, "accept", candidate.id)
            store.add_review(decision)
        expected = report(store, "first").overall.sentence()
    at.run()
    assert not at.exception
    shown = [m.value.replace("\\", "") for m in at.markdown]
    assert expected in shown
    assert any(c.type == "plotly_chart" for c in at.get("plotly_chart"))
    queue = at.dataframe[-1].value
    assert list(queue["sample"]) == ids and list(queue["status"][:2]) == ["rejected", "accepted"]


def test_duplicate_spotcheck_name_is_an_error(db, tmp_path, alpaca_records):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(paired(alpaca_records[:20])), encoding="utf-8")
    with Store(db) as store:
        from reflection.ingest.adopt import import_candidates
        from reflection.review.spotcheck import create_spotcheck

        import_candidates(store, path, dataset="alpaca")
        create_spotcheck(store, "alpaca", "spot-check", size=5)
    at = open_page()
    click(at, "Create spot-check")
    assert "already exists" in at.error[0].value


def test_dashboard_shows_how_each_spotcheck_narrows(db, tmp_path, alpaca_records):
    from reflection.ingest.adopt import import_candidates
    from reflection.review.spotcheck import create_spotcheck

    path = tmp_path / "r.json"
    path.write_text(json.dumps(paired(alpaca_records[:100])), encoding="utf-8")
    with Store(db) as store:
        import_candidates(store, path, dataset="alpaca")
        create_spotcheck(store, "alpaca", "unreviewed", size=10, seed=1)
        create_spotcheck(store, "alpaca", "half-done", size=20, seed=2)
        for sid in spotcheck_queue(store, "half-done")[:8]:
            store.add_review(Review(sid, "accept", store.candidates_for(sid)[0].id))
    page = str(Path(PAGE).parent / "3_Dashboard.py")
    at = AppTest.from_file(page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    by_title = {(s["layout"].get("title") or {}).get("text"): s for s in specs}
    curve = by_title["Spot-check half-done: bad samples implied"]
    assert values(curve["data"][2]["x"]) == list(range(1, 9))
    # A sample's verdict counts in every spot-check that drew it: "unreviewed" shares some.
    with Store(db) as store:
        shared = set(spotcheck_queue(store, "unreviewed")) & set(
            spotcheck_queue(store, "half-done")[:8]
        )
    other = by_title.get("Spot-check unreviewed: bad samples implied")
    assert (len(values(other["data"][2]["x"])) if other else 0) == len(shared)
