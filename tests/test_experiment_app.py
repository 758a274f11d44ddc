"""Blind review of a prompt experiment on the Review page (Streamlit AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflection.records import Candidate, Sample
from reflection.review import experiment as ex
from reflection.store import Store

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Review.py")
TEMPLATE = (
    '[response]\nuser = "{{instruction}} {{input_section}} {{output}} Make it %s. {{format}}"\n'
)


def build_experiment_db(tmp_path):
    """Six samples, all drawn into experiment 'exp', each reflected by 'terse' and 'thorough'."""
    path = tmp_path / "exp.db"
    paths = []
    for name, style in (("terse", "short"), ("thorough", "long")):
        (tmp_path / f"{name}.toml").write_text(TEMPLATE % style)
        paths.append(tmp_path / f"{name}.toml")
    with Store(path) as store:
        ds = store.ensure_dataset("d")
        store.add_samples(
            ds.id, [Sample(instruction=f"q{n}", output=f"a{n}", position=n) for n in range(6)]
        )
        spot = ex.create_experiment(store, "d", "exp", paths, size=6, seed=5)
        for sid in store.spotcheck_sample_ids(spot.id):
            for arm in spot.settings["experiment"]["arms"]:
                store.add_candidate(Candidate(sample_id=sid, kind="response", prompt_hash=arm["hash"],
                                              output=f"{arm['hash'][:4]} answer {sid}", model="m"))  # fmt: skip
        ids = store.spotcheck_sample_ids(spot.id)
    return path, ids


@pytest.fixture
def db(tmp_path, monkeypatch):
    path, ids = build_experiment_db(tmp_path)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    return path, ids


def _texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "text", "code", "title", "header", "subheader")
        for e in at.get(kind)
        if isinstance(getattr(e, "value", None), str)
    ]
    parts += [h.proto.body for h in at.get("html")]
    parts += [f"{s.label} {' '.join(map(str, s.options))}" for s in at.selectbox]
    parts += [str(getattr(e, "label", "")) for e in at.get("expander")]
    return "\n".join(parts)


def test_experiment_versions_are_blind_and_shuffled(db):
    path, ids = db
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["annotator"] = "ann"
    at.run()
    scope = next(s for s in at.sidebar.selectbox if s.label == "Samples")
    scope.set_value("Spot-check: exp (6)").run()
    assert not at.exception, at.exception
    firsts = []
    with Store(path) as store:
        for _ in ids:
            version = next(
                s for s in at.selectbox if s.label == "Version shown beside the original"
            )
            assert version.options == ["original", "Version A", "Version B"]
            text = _texts(at)
            assert "terse" not in text and "thorough" not in text
            assert "#" not in " ".join(version.options)  # no candidate ids either
            sid = int(
                next(c.value for c in at.caption if c.value.startswith("Sample **")).split("**")[1]
            )
            first = ex.blind_order(store, "exp", sid)[0][1]
            assert version.value == first  # the page shows Version A first
            arm = store.candidate(first).prompt_hash
            firsts.append(arm)
            next(b for b in at.button if b.label.startswith("Next")).click()
            at.run()
    assert len(set(firsts)) == 2  # which template comes first varies from sample to sample


def test_dashboard_shows_each_arm(db):
    path, ids = db
    with Store(path) as store:
        first = ex.blind_order(store, "exp", ids[0])[0][1]
        from reflection.records import Review

        store.add_review(
            Review(sample_id=ids[0], decision="accept", candidate_id=first, annotator="r")
        )
        winner = next(
            a["name"] for a in store.spotcheck("exp").settings["experiment"]["arms"]
            if a["hash"] == store.candidate(first).prompt_hash
        )  # fmt: skip
    at = AppTest.from_file(str(Path(PAGE).parent / "3_Dashboard.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Prompt experiment exp: 6 samples" in [s.value for s in at.subheader]
    frame = at.dataframe[-1].value
    rows = {r["template"]: r for r in frame.to_dict("records")}
    assert set(rows) == {"terse", "thorough"}
    assert (rows[winner]["accepted"], rows[winner]["decided"]) == (1, 1)
    assert any("to detect a 10% difference" in c.value for c in at.caption)


def test_all_samples_queue_is_blind_too(db):
    """Outside the experiment's queue the drawn samples stay blind."""
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["annotator"] = "ann"
    at.run()
    version = next(s for s in at.selectbox if s.label == "Version shown beside the original")
    assert version.options == ["original", "Version A", "Version B"]
