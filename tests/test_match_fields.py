"""import-candidates --match field:NAME on the core fields (instruction, input, output)."""

from __future__ import annotations

import json
import random

import pytest

from reflection.errors import InputError
from reflection.ingest.adopt import import_candidates, summary
from reflection.ingest.datasets import import_dataset


def _write(path, records):
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.fixture
def unique(alpaca_records):
    """200 real Alpaca pairs whose outputs are all different."""
    seen, picked = set(), []
    for r in alpaca_records:
        if r["output"] not in seen:
            seen.add(r["output"])
            picked.append(r)
        if len(picked) == 200:
            return picked


@pytest.fixture
def alpaca(store, unique, tmp_path):
    import_dataset(store, _write(tmp_path / "orig.json", unique), dataset="alpaca")
    return store


def _counts(store):
    return store.scalar("SELECT count(*) FROM candidates"), store.scalar(
        "SELECT count(*) FROM runs"
    )


def test_recycled_set_in_another_order_matches_by_output(alpaca, unique, tmp_path):
    recycled = [dict(r, instruction="In detail: " + r["instruction"]) for r in unique]
    random.Random(7).shuffle(recycled)
    for r in recycled[::3]:  # whitespace differences do not matter
        r["output"] = "  " + r["output"].replace(" ", "  ", 1) + "\n"
    path = _write(tmp_path / "recycled.json", recycled)
    result = import_candidates(alpaca, path, dataset="alpaca", match="field:output")
    assert (result.matched, result.candidates_added, result.kind) == (200, 200, "instruction")
    assert "200 of 200 records matched a sample" in summary(result, path)
    # Each candidate sits on the sample whose output it shares.
    by_sample = {s.id: s for s in alpaca.samples(alpaca.dataset("alpaca").id)}
    for sample_id, instruction in alpaca.conn.execute(
        "SELECT sample_id, instruction FROM candidates"
    ):
        assert instruction == "In detail: " + by_sample[sample_id].instruction


def test_match_by_instruction(alpaca, unique, tmp_path):
    recycled = [dict(r, output=r["output"] + " (checked)") for r in reversed(unique[:20])]
    result = import_candidates(
        alpaca, _write(tmp_path / "r.json", recycled), dataset="alpaca", match="field:instruction"
    )
    assert (result.matched, result.candidates_added, result.kind) == (20, 20, "response")


@pytest.mark.parametrize(
    ("build", "match", "message"),
    [
        (lambda rs: [rs[0], {"instruction": "x"}], "field:output",
         "record 2: missing required field 'output'"),
        (lambda rs: [dict(rs[0], output="Nobody wrote this.")], "field:output",
         "record 1: no sample's 'output' equals the record's 'output' (whitespace normalised)"),
        (lambda rs: [dict(rs[0], uid=1)], "field:uid",
         "record 1: the dataset's samples carry no field 'uid' (the record's 'uid' is '1')"),
        (lambda rs: [rs[1], dict(rs[2], output=rs[1]["output"])], "field:output",
         "record 2: duplicate 'output' (also record 1)"),
    ],
)  # fmt: skip
def test_errors_name_the_field_and_the_side(alpaca, unique, tmp_path, build, match, message):
    before = _counts(alpaca)
    with pytest.raises(InputError) as caught:
        import_candidates(
            alpaca, _write(tmp_path / "bad.json", build(unique)), dataset="alpaca", match=match
        )
    assert message in str(caught.value)
    assert _counts(alpaca) == before


def test_several_samples_sharing_the_value_ask_for_another_field(store, tmp_path):
    originals = [
        {"instruction": "Say yes.", "input": "", "output": "Yes."},
        {"instruction": "Agree.", "input": "", "output": "Yes."},
    ]
    import_dataset(store, _write(tmp_path / "o.json", originals), dataset="d")
    with pytest.raises(InputError, match=r"2 samples share its 'output': match by another field"):
        import_candidates(
            store, _write(tmp_path / "r.json", [dict(originals[0], instruction="Say yes!")]),
            dataset="d", match="field:output",
        )  # fmt: skip
