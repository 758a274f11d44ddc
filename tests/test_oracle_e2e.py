"""End to end against the real local oracle: llama.cpp serving SmolLM2-135M-Instruct.

Ten real Alpaca pairs are reflected in both modes, through the same library call the CLI and
the app use: instruction reflection shaped by a GBNF grammar, response reflection in JSON
mode. A 135M model writes poor reflections; what must hold is that every sample ends as a
candidate with its raw text and an honest status.
"""

from __future__ import annotations

import pytest

from reflection.records import Sample
from reflection.reflect.local_oracle import LocalOracle
from reflection.reflect.pipeline import reflect_dataset
from reflection.reflect.settings import OracleConfig

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.oracle, pytest.mark.slow]


PAIRS = 6  # real requests to a 135M model on 2 CPU cores: ~10 s each with the grammar


@pytest.fixture(scope="module")
def local_oracle(tmp_path_factory):
    log = tmp_path_factory.mktemp("oracle") / "llama.log"
    with LocalOracle(threads=2, log=log) as oracle:
        yield oracle


@pytest.mark.parametrize(("mode", "json_mode"), [("instruction", False), ("response", True)])
def test_alpaca_pairs_end_as_candidates(store, alpaca_records, local_oracle, mode, json_mode):
    data = store.ensure_dataset("alpaca")
    store.add_samples(data.id, [
        Sample(instruction=r["instruction"], input=r["input"], output=r["output"], position=i)
        for i, r in enumerate(alpaca_records[:PAIRS])
    ])  # fmt: skip
    config = OracleConfig(
        model=local_oracle.model, base_url=local_oracle.base_url, api_key="local",
        dialect="llama.cpp", json_mode=json_mode, concurrency=1, max_tokens=64,
        temperature=0.2, timeout=600, max_attempts=2,
    )  # fmt: skip
    summary = reflect_dataset(store, "alpaca", mode=mode, oracle=config)
    assert summary.status == "done"
    candidates = store.candidates_for_samples(store.sample_ids(data.id))
    assert sorted(candidates) == store.sample_ids(data.id)
    for sample_id, found in candidates.items():
        assert len(found) == 1, sample_id
        candidate = found[0]
        assert candidate.kind == mode
        assert candidate.status in ("ok", "partial", "failed", "truncated"), candidate.error
        assert candidate.raw.strip(), "the raw reply is kept whatever the status"
        assert candidate.model == local_oracle.model
        assert candidate.prompt_tokens > 0 and candidate.completion_tokens > 0
        if candidate.status == "truncated":
            assert candidate.completion_tokens == 64
        if not json_mode:  # the grammar forces the tags, so the critique always parses
            assert candidate.raw.startswith("[Critique]\n") and candidate.critique
    assert summary.counters["stored"] == PAIRS and summary.counters["error"] == 0
