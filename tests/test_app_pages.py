"""AppTest for the Bulk, Dashboard, Run and Export pages on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from appdata import build
from oracle_server import OracleServer
from streamlit.testing.v1 import AppTest

from reflection import jobs
from reflection.select import bulk
from reflection.store import Store

ROOT = Path(__file__).resolve().parent.parent
N = 30
ACCEPT_SUGGESTED = next(iter(bulk.PRESETS))


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "app.db"
    with Store(path) as store:
        built = build(store, N)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path, built


def page(name: str, annotator: str | None = "ana") -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=60)
    if annotator:
        at.session_state["annotator"] = annotator
    return at.run()


def messages(at: AppTest) -> str:
    return " ".join(
        e.value for kind in ("success", "error", "warning", "info") for e in at.get(kind)
    )


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_preview_apply_and_undo(db):
    path, built = db
    with Store(path) as store:
        expected = bulk.preview(store, built["dataset"].id, bulk.PRESETS[ACCEPT_SUGGESTED]).count
    at = page("2_Bulk.py")
    assert not at.exception
    assert at.metric[0].value == f"{expected:,}" and expected > 0
    assert len(at.dataframe[0].value) == 5
    at.button(key="bulk_apply").click().run()
    assert f"{expected:,} samples decided" in messages(at)
    with Store(path) as store:
        assert store.status_counts(built["dataset"].id)["accepted"] == expected
        [run] = store.runs("bulk")
        assert {r.run_id for i in built["ids"] for r in store.reviews_for(i)} == {run.id}
    assert at.metric[0].value == "0"  # the same rule now matches nothing
    at.button(key=f"bulk_undo_{run.id}").click().run()
    assert f"{expected:,} decisions taken back" in messages(at)
    with Store(path) as store:
        assert store.status_counts(built["dataset"].id)["accepted"] == 0
    assert at.button(key=f"bulk_undo_{run.id}").disabled


def test_bulk_custom_rule(db):
    path, built = db
    at = page("2_Bulk.py")
    at.selectbox(key="bulk_preset").set_value("Custom rule").run()
    at.radio(key="bulk_action").set_value("reject").run()
    at.selectbox(key="bulk_target").set_value("original").run()
    at.checkbox(key="bulk_failed").check().run()
    assert not at.exception
    failed = sum(1 for i in range(N) if i % 7 == 3)
    assert at.metric[0].value == str(failed)
    at.selectbox(key="bulk_m0").set_value("ifd_ppl").run()
    at.selectbox(key="bulk_op0").set_value(">=").run()
    at.number_input(key="bulk_v0").set_value(1.0).run()
    with_ifd = sum(1 for i in range(N) if i % 7 == 3 and 0.5 + (i % 10) / 10 >= 1.0)
    assert at.metric[0].value == str(with_ifd)
    at.button(key="bulk_apply").click().run()
    with Store(path) as store:
        assert store.status_counts(built["dataset"].id)["rejected"] == with_ifd


def test_bulk_asks_for_a_name_first(db):
    at = page("2_Bulk.py", annotator=None)
    assert not at.exception
    assert at.text_input(key="_annotator_input") is not None
    assert len(at.metric) == 0 and not [b for b in at.button if b.key == "bulk_apply"]


# --- Dashboard -------------------------------------------------------------------------------


def test_dashboard_renders_every_chart(db):
    path, built = db
    with Store(path) as store:
        bulk.apply(store, built["dataset"].id, bulk.PRESETS[ACCEPT_SUGGESTED], annotator="ana")
        accepted = store.status_counts(built["dataset"].id)["accepted"]
    at = page("3_Dashboard.py", annotator=None)
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 9  # progress, annotators, 3 histograms, 2 shift, acceptance, flags
    values = {m.label: m.value for m in at.metric}
    assert values["Samples"] == str(N) and values["Accepted"] == str(accepted)
    specs = [json.loads(c.proto.spec) for c in charts]
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert any(t.startswith("ifd_ppl") for t in titles)
    at.multiselect(key="dash_metrics").set_value(["ifd_ppl"]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 7


def test_dashboard_on_an_empty_database(tmp_path, monkeypatch):
    monkeypatch.setenv("REFLECTION_DB", str(tmp_path / "empty.db"))
    at = page("3_Dashboard.py", annotator=None)
    assert not at.exception and len(at.get("plotly_chart")) == 0


# --- Run -------------------------------------------------------------------------------------


def test_run_page_scores_in_the_background(db):
    path, built = db
    at = page("4_Run.py", annotator=None)
    at.radio(key="run_task").set_value("Score").run()
    at.button(key="run_start").click().run()
    assert not at.exception and "started" in messages(at)
    with Store(path) as store:
        [job] = store.runs("job")
    assert jobs.wait_job(path, job.id, timeout=60)
    at = page("4_Run.py", annotator=None)  # a fresh session, as after a page refresh
    assert any(f"Job {job.id} · score text · done" in p.proto.text for p in at.get("progress"))
    with Store(path) as store:
        assert ("words_output", "text") in store.scorers("words_output")


def test_run_page_reflects_a_selection_and_keeps_the_key_out(db):
    path, built = db
    secret = "sk-page-SECRET-777"
    with OracleServer() as oracle:
        at = page("4_Run.py", annotator=None)
        at.text_input(key="run_base_url").set_value(oracle.base_url)
        at.text_input(key="run_model").set_value("fake-oracle")
        at.selectbox(key="run_mode").set_value("response")
        at.text_input(key="run_api_key").set_value(secret)
        at.radio(key="run_selection").set_value("first").run()
        at.number_input(key="run_first").set_value(3).run()
        at.button(key="run_start").click().run()
        assert not at.exception and "started" in messages(at), messages(at)
        with Store(path) as store:
            [job] = store.runs("job")
            assert jobs.wait_job(path, job.id, timeout=60)
            state = jobs.job_state(store, job.id)
            assert state.status == "done", state.error
            inner = state.inner_run_id
            made = {c.sample_id for cs in store.candidates_for_samples(built["ids"]).values()
                    for c in cs if c.run_id == inner}  # fmt: skip
            assert made == set(built["ids"][:3])
            store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for file in path.parent.iterdir():
        assert secret.encode() not in file.read_bytes()


def test_run_page_reports_bad_input(db):
    at = page("4_Run.py", annotator=None)
    at.radio(key="run_selection").set_value("ids").run()
    at.text_input(key="run_ids").set_value("12-x").run()
    at.button(key="run_start").click().run()
    assert "not a sample id" in messages(at)


# --- Export ----------------------------------------------------------------------------------


def test_export_preview_counts_and_write_to_path(db, tmp_path):
    path, built = db
    with Store(path) as store:
        bulk.apply(store, built["dataset"].id, bulk.PRESETS[ACCEPT_SUGGESTED], annotator="ana")
        accepted = store.status_counts(built["dataset"].id)["accepted"]
    at = page("5_Export.py", annotator=None)
    assert not at.exception
    values = {m.label: m.value for m in at.metric}
    assert values["Accepted"] == str(accepted) and values["Written"] == str(accepted)
    assert values["Undecided"] == str(N - accepted)
    assert len(at.json) == 5
    at.radio(key="export_undecided").set_value("original").run()
    at.checkbox(key="export_provenance").check().run()
    values = {m.label: m.value for m in at.metric}
    assert values["Written"] == str(N)
    first = json.loads(at.json[0].proto.body)
    assert first["provenance"]["dataset"] == "demo"
    at.selectbox(key="export_format").set_value("csv").run()
    target = tmp_path / "out" / "curated.csv"
    target.parent.mkdir()
    at.text_input(key="export_path").set_value(str(target)).run()
    at.button(key="export_write").click().run()
    assert f"Wrote {N:,} records" in messages(at), messages(at)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert "provenance_sample_id" in lines[0] and len(lines) >= N + 1


def test_export_download(db):
    at = page("5_Export.py", annotator=None)
    at.radio(key="export_undecided").set_value("original").run()
    at.button(key="export_prepare").click().run()
    assert not at.exception
    name, data, written = at.session_state["export_file"]
    assert name == "demo.json" and written == N
    records = json.loads(data)
    assert len(records) == N and records[0]["instruction"].startswith("<script>")
    assert len(at.get("download_button")) == 1
