"""Selection rules: table-driven on hand-made score combinations, then through a real store."""

from __future__ import annotations

import pytest

from reflection import Candidate, ConfigError, Review, Sample, Score
from reflection.export.curated import export_records
from reflection.select.rules import (
    Scored,
    judge_margin,
    parse_condition,
    selective,
    threshold,
    topk,
)
from reflection.select.suggestions import suggest


def versions(ori=None, q=None, a=None, qa=None) -> list[Scored]:
    """Original (None), Q = candidate 1, A = candidate 2, QA = candidate 3 (child of Q).

    Each argument is (IFD, r-IFD), with None for a missing score; a missing version is left out.
    """
    found = []
    for cid, kind, parent, scores in (
        (None, "original", None, ori),
        (1, "instruction", None, q),
        (2, "response", None, a),
        (3, "both", 1, qa),
    ):
        if scores is None and cid is not None:
            continue
        ifd, rifd = scores or (None, None)
        found.append(Scored(cid, kind, parent, {"ifd_ppl": ifd, "rifd_ppl": rifd}))
    return found


SELECTIVE_CASES = [
    # (case, versions, expected candidate, expected decision)
    (
        "Q has higher IFD, QA easier to guess",
        versions((0.5, 0.5), (0.7, 0.6), (0.6, 0.4), (0.8, 0.3)),
        3,
        "accept",
    ),
    (
        "Q wins, QA harder to guess: Q kept",
        versions((0.5, 0.5), (0.7, 0.6), (0.6, 0.4), (0.8, 0.9)),
        1,
        "accept",
    ),
    (
        "ori wins, A easier: A",
        versions((0.7, 0.5), (0.6, 0.6), (0.6, 0.4), (0.8, 0.3)),
        2,
        "accept",
    ),
    ("ori wins, A harder: ori", versions((0.7, 0.5), (0.6, 0.6), (0.6, 0.9), None), None, "accept"),
    ("tie on IFD keeps the original", versions((0.6, 0.5), (0.6, 0.2), None, None), None, "accept"),
    (
        "tie on r-IFD keeps the current response",
        versions((0.6, 0.5), None, (0.5, 0.5), None),
        None,
        "accept",
    ),
    (
        "misaligned Q (IFD >= 1) cannot win stage 1",
        versions((0.5, 0.5), (1.2, 0.1), None, (0.5, 0.1)),
        None,
        "accept",
    ),
    ("IFD exactly 1 is misaligned", versions((0.5, 0.5), (1.0, 0.1), None, None), None, "accept"),
    (
        "A with r-IFD >= 1 is not chosen",
        versions((0.5, 0.5), None, (0.4, 1.3), None),
        None,
        "accept",
    ),
    ("A with IFD >= 1 is not chosen", versions((0.5, 0.5), None, (1.1, 0.1), None), None, "accept"),
    ("misaligned original, aligned Q", versions((1.3, 0.5), (0.9, 0.5), None, None), 1, "accept"),
    ("original r-IFD >= 1 but A passes", versions((0.5, 1.4), None, (0.6, 0.8), None), 2, "accept"),
    (
        "every version misaligned: leave out",
        versions((1.2, 0.5), (1.5, 0.4), (0.5, 1.1), None),
        None,
        "reject",
    ),
    (
        "original without r-IFD, A scored and fine",
        versions((0.5, None), None, (0.6, 0.7), None),
        2,
        "accept",
    ),
    ("missing Q IFD: Q cannot win", versions((0.5, 0.5), (None, 0.1), None, None), None, "accept"),
    (
        "two answers to ori: lowest r-IFD",
        versions((0.5, 0.9), None, (0.5, 0.4), None)
        + [Scored(4, "response", None, {"ifd_ppl": 0.5, "rifd_ppl": 0.3})],
        4,
        "accept",
    ),
    ("no scores at all: no suggestion", versions((None, None), (None, None)), "none", None),
]


@pytest.mark.parametrize(
    ("case", "given", "candidate", "decision"), SELECTIVE_CASES, ids=[c[0] for c in SELECTIVE_CASES]
)
def test_selective_rule(case, given, candidate, decision):
    choice = selective(given)
    if candidate == "none":
        assert choice is None
        return
    assert (choice.candidate_id, choice.decision) == (candidate, decision)
    assert choice.reason


def test_selective_reason_names_the_numbers():
    choice = selective(versions((0.5, 0.5), (0.7, 0.6), None, (0.8, 0.3)))
    assert choice.reason == (
        "instruction #1 chosen by the higher-IFD rule: IFD 0.700 (instruction #1) > 0.500"
        " (original); both #3 chosen by the lower-r-IFD rule: r-IFD 0.300 (both #3) < 0.600"
        " (instruction #1)"
    )


def test_a_reason_says_why_the_original_was_excluded():
    # The reported case: the original's IFD >= 1 left it out, and the reason compared r-IFDs
    # that did not compare that way ("r-IFD 0.443 < 0.391").
    choice = selective(versions((1.02, 0.391), None, (0.8, 0.443), None))
    assert (choice.candidate_id, choice.decision) == (2, "accept")
    assert choice.reason == (
        "response #2 replaces the response of original, which is excluded: IFD 1.020 (original) ≥ 1"
    )


def test_close_values_are_printed_so_the_comparison_holds():
    choice = selective(versions((0.44301, 0.5), (0.44349, 0.5)))  # both 0.443 to 3 places
    assert "IFD 0.4435 (instruction #1) > 0.4430 (original)" in choice.reason
    choice = selective(versions((0.99996, 0.5), None, (0.5, 0.2)))
    assert choice.candidate_id == 2  # 0.99996 < 1: the original is eligible, A wins on r-IFD


def test_flagged_versions_are_never_chosen():
    flagged = {"meta_talk": "1 of 1 sentences talk about the answer"}
    given = versions((0.5, 0.5), None, (0.4, 0.2), None)
    given[1] = Scored(2, "response", None, {"ifd_ppl": 0.4, "rifd_ppl": 0.2}, flagged)
    choice = selective(given)
    assert (choice.candidate_id, choice.decision) == (None, "accept")
    assert choice.reason == (
        "response kept: no reflected response is eligible (response #2 is flagged meta_talk:"
        " 1 of 1 sentences talk about the answer)"
    )
    # A flagged original cannot be kept either: the sample is left out.
    given[0] = Scored(None, "original", None, {"ifd_ppl": 0.5, "rifd_ppl": 0.5}, {"empty": "x"})
    choice = selective(given)
    assert choice.decision == "reject" and "original is flagged empty: x" in choice.reason


def test_nan_counts_as_missing():
    choice = selective(versions((0.5, 0.5), (float("nan"), 0.1)))
    assert choice.candidate_id is None


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [("ifd_ppl<1", "ifd_ppl", "<", 1.0), ("judge >= 7", "judge", ">=", 7.0),
     ("drift>0.55", "drift", ">", 0.55), ("x=-2", "x", "=", -2.0), ("a!=1e-3", "a", "!=", 0.001)],
)  # fmt: skip
def test_parse_condition(text, metric, op, value):
    c = parse_condition(text)
    assert (c.metric, c.op, c.value) == (metric, op, value)


@pytest.mark.parametrize("text", ["ifd_ppl", "ifd_ppl < one", "< 1", "ifd_ppl ~ 1"])
def test_parse_condition_rejects(text):
    with pytest.raises(ConfigError, match="METRIC OP NUMBER"):
        parse_condition(text)


def _v(cid, kind, **scores):
    return Scored(cid, kind, None, scores)


@pytest.mark.parametrize(
    ("given", "conditions", "otherwise", "expected"),
    [
        ([_v(None, "original", ifd_ppl=0.5), _v(1, "instruction", ifd_ppl=0.7)], ["ifd_ppl<1"], "reject", (1, "accept")),
        ([_v(None, "original", ifd_ppl=0.5), _v(1, "instruction", ifd_ppl=1.2)], ["ifd_ppl<1"], "reject", (None, "accept")),
        ([_v(None, "original", ifd_ppl=1.5), _v(1, "instruction", ifd_ppl=1.2)], ["ifd_ppl<1"], "reject", (None, "reject")),
        ([_v(None, "original", ifd_ppl=1.5)], ["ifd_ppl<1"], "original", (None, "accept")),
        ([_v(None, "original", ifd_ppl=1.5)], ["ifd_ppl<1"], "none", None),
        # A missing metric never meets a condition.
        ([_v(None, "original"), _v(2, "response", ifd_ppl=0.3, drift=0.9)], ["ifd_ppl<1", "drift>=0.6"], "reject", (2, "accept")),
        ([_v(None, "original", ifd_ppl=0.3), _v(2, "response", ifd_ppl=0.3, drift=0.2)], ["ifd_ppl<1", "drift>=0.6"], "reject", (None, "reject")),
    ],
)  # fmt: skip
def test_threshold_rule(given, conditions, otherwise, expected):
    choice = threshold(given, [parse_condition(c) for c in conditions], otherwise=otherwise)
    assert (choice and (choice.candidate_id, choice.decision)) == expected


@pytest.mark.parametrize(
    ("original", "rivals", "margin", "expected"),
    [
        (5, {1: 8, 2: 6}, 1.0, 1),
        (5, {1: 6, 2: 6}, 1.0, 1),  # tie between rivals: lower candidate id
        (5, {1: 5.5}, 1.0, None),
        (5, {1: 6}, 1.0, 1),  # exactly the margin
        (8, {1: 3}, 0.0, None),
    ],
)
def test_judge_margin_rule(original, rivals, margin, expected):
    given = [_v(None, "original", judge=original)] + [
        _v(c, "response", judge=s) for c, s in rivals.items()
    ]
    choice = judge_margin(given, margin=margin)
    assert (choice.candidate_id, choice.decision) == (expected, "accept")


def test_judge_margin_needs_scores():
    assert judge_margin([_v(None, "original"), _v(1, "response", judge=9)]) is None
    assert judge_margin([_v(None, "original", judge=4), _v(1, "response")]) is None


def test_topk_keeps_the_top_share_below_one():
    samples = {
        sid: [_v(None, "original", ifd_ppl=value)]
        for sid, value in {1: 0.9, 2: 0.5, 3: 0.95, 4: 1.2, 5: None, 6: 0.1, 7: 0.7, 8: 0.3, 9: 0.2, 10: 0.6}.items()
    }  # fmt: skip
    choices = topk(samples, percent=30, version="original")
    kept = sorted(sid for sid, c in choices.items() if c.decision == "accept")
    assert kept == [1, 3, 7]  # floor(30 % of 10) = 3 highest IFD below 1
    assert choices[4].decision == "reject" and "misaligned" in choices[4].reason
    assert 5 not in choices
    assert choices[2].decision == "reject" and "ranks 5 of 8" in choices[2].reason


def test_topk_best_version_is_the_kept_one():
    samples = {
        1: [
            _v(None, "original", ifd_ppl=0.2),
            _v(7, "instruction", ifd_ppl=0.8),
            _v(8, "response", ifd_ppl=1.5),
        ]
    }
    assert topk(samples, percent=100)[1].candidate_id == 7


def test_topk_percent_validated():
    with pytest.raises(ConfigError):
        topk({}, percent=0)


# --------------------------------------------------------------------------- through the store


@pytest.fixture
def scored_store(store):
    ds = store.ensure_dataset("demo")
    store.add_samples(ds.id, [Sample(f"Instruction {i}", output=f"Answer {i}") for i in range(4)])
    ids = store.sample_ids(ds.id)
    q = store.add_candidates(
        [Candidate(sid, "instruction", instruction=f"Better {i}", output=f"Long {i}") for i, sid in enumerate(ids)]
    )  # fmt: skip
    scorer = "Tiny@alpaca"
    table = {  # sample index: ((ori IFD, r-IFD), (Q IFD, r-IFD))
        0: ((0.5, 0.5), (0.8, 0.4)),  # Q
        1: ((0.8, 0.5), (0.6, 0.4)),  # original
        2: ((1.4, 0.5), (1.1, 0.4)),  # reject
        3: ((None, None), (None, None)),  # no suggestion
    }
    scores = []
    for i, ((oi, orr), (qi, qr)) in table.items():
        for cid, ifd, rifd in ((None, oi, orr), (q[i], qi, qr)):
            if ifd is not None:
                scores += [
                    Score(ids[i], "ifd_ppl", ifd, scorer, cid),
                    Score(ids[i], "rifd_ppl", rifd, scorer, cid),
                ]
    store.put_scores(scores)
    return store, ds, ids, q


def test_suggest_stores_one_suggestion_per_sample(scored_store):
    store, ds, ids, q = scored_store
    counts = suggest(store, ds.id)
    assert counts == {"samples": 4, "suggested": 3, "no_suggestion": 1, "accept_original": 1,
                      "accept_reflected": 1, "reject": 1, "flagged_versions": 0, "flags": {},
                      "missing": {"ifd_ppl": 2, "rifd_ppl": 2, "relevance": 8},
                      "checked": 8}  # fmt: skip
    found = store.suggestions(ds.id)
    assert (found[ids[0]].candidate_id, found[ids[0]].decision) == (q[0], "accept")
    assert (found[ids[1]].candidate_id, found[ids[1]].decision) == (None, "accept")
    assert found[ids[2]].decision == "reject"
    assert ids[3] not in found
    assert store.stats(ds.id)["suggestions"] == 3
    run = store.runs("suggest")[-1]
    assert run.status == "done" and run.settings["scorers"] == {
        "ifd_ppl": "Tiny@alpaca",
        "rifd_ppl": "Tiny@alpaca",
    }


def test_suggestions_never_override_a_human_decision(scored_store):
    store, ds, ids, q = scored_store
    store.add_review(Review(ids[0], "reject", annotator="ann"))
    store.add_review(Review(ids[2], "accept", candidate_id=None, annotator="ann"))
    suggest(store, ds.id)
    records, counts = export_records(store, ds.id, undecided="suggested")
    assert counts == {
        "accepted": 1,
        "rejected": 1,
        "suggested": 1,
        "undecided-original": 1,
        "written": 3,
    }
    # The human rejection of sample 0 stands over the suggestion to keep Q; sample 2 is kept
    # as accepted although the rule would drop it.
    assert [r["instruction"] for r in records] == [
        "Instruction 1",
        "Instruction 2",
        "Instruction 3",
    ]


def test_suggested_reject_is_left_out_of_export(scored_store):
    store, ds, ids, q = scored_store
    suggest(store, ds.id)
    records, counts = export_records(store, ds.id, undecided="suggested")
    assert counts["suggested-reject"] == 1
    assert [r["instruction"] for r in records] == ["Better 0", "Instruction 1", "Instruction 3"]


def test_rerun_with_another_rule_replaces_and_clears(scored_store):
    store, ds, ids, q = scored_store
    suggest(store, ds.id)
    suggest(store, ds.id, "threshold", conditions=["ifd_ppl<0.7"], otherwise="none")
    found = store.suggestions(ds.id)
    assert set(found) == {ids[0], ids[1]}
    assert found[ids[0]].candidate_id is None and found[ids[0]].rule == "threshold:ifd_ppl<0.7"
    assert found[ids[1]].candidate_id == q[1]


def test_several_scorers_must_be_chosen(scored_store):
    store, ds, ids, q = scored_store
    store.put_scores([Score(ids[0], "ifd_ppl", 0.1, "Other@vicuna")])
    with pytest.raises(
        ConfigError, match="several scorers gave ifd_ppl: Tiny@alpaca, Other@vicuna"
    ):
        suggest(store, ds.id)
    counts = suggest(store, ds.id, scorers=["Tiny@alpaca"])
    assert counts["suggested"] == 3


def test_unknown_rule(scored_store):
    store, ds, *_ = scored_store
    with pytest.raises(ConfigError, match="unknown rule"):
        suggest(store, ds.id, "best")


# --------------------------------------------------------------------------- export and CLI


def test_export_with_scores_uses_the_seeds_names(scored_store):
    store, ds, ids, q = scored_store
    suggest(store, ds.id)
    records, _ = export_records(store, ds.id, undecided="suggested", with_scores=True)
    first = records[0]
    assert first["instruction"] == "Better 0"
    assert (first["ifd_ppl"], first["rifd_ppl"]) == (0.8, 0.4)  # Q's scores, not the original's
    assert records[2]["ifd_ppl"] is None  # unscored sample: the column is still there
    store.put_scores([Score(ids[0], "ifd_ppl", 0.3, "Other@vicuna", q[0])])
    with pytest.raises(
        ConfigError, match="several scorers gave ifd_ppl: Other@vicuna, Tiny@alpaca"
    ):
        export_records(store, ds.id, undecided="suggested", with_scores=True)
    records, _ = export_records(
        store, ds.id, undecided="suggested", with_scores=True, scores_from=["Other@vicuna"]
    )
    assert (records[0]["ifd_ppl"], records[0]["rifd_ppl"]) == (0.3, 0.4)


def test_cli_score_suggest_stats_export(scored_store, tmp_path):
    from click.testing import CliRunner

    from reflection.cli import main

    store, ds, ids, q = scored_store
    db = str(store.path)
    runner = CliRunner()
    result = runner.invoke(main, ["score", "--db", db, "--metric", "text"])
    assert result.exit_code == 0, result.output
    assert "text: 8 scored, 0 already done (text, run" in result.output
    result = runner.invoke(main, ["suggest", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "samples 4, suggested 3, no suggestion 1, accept original 1, accept reflected 1,"
        " reject 1, flagged versions 0"
    )
    assert result.stderr.splitlines() == [
        "note: 2 versions have no IFD (ifd_ppl): a rule cannot choose them;"
        " run `reflection score --metric ifd`",
        "note: 2 versions have no r-IFD (rifd_ppl): a rule cannot choose them;"
        " run `reflection score --metric rifd`",
        "note: 8 versions have no relevance (relevance): off-topic answers among them go"
        " unflagged; run `reflection score --metric relevance`",
    ]
    again = runner.invoke(main, ["suggest", "--db", db, "--workers", "2"])
    assert again.exit_code == 0 and again.stdout == result.stdout, again.output
    refused = runner.invoke(main, ["suggest", "--db", db, "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output
    result = runner.invoke(
        main, ["suggest", "--db", db, "--rule", "threshold", "--where", "ifd_ppl<<1"]
    )
    assert result.exit_code == 1 and "cannot read condition 'ifd_ppl<<1'" in result.output
    result = runner.invoke(main, ["stats", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    import json

    stats = json.loads(result.output)
    assert stats["suggestions"] == 3
    assert stats["suggestions_by_decision"] == {
        "accept original": 1,
        "accept reflected": 1,
        "reject": 1,
    }
    assert (
        stats["scores_by_metric"]["ifd_ppl"] == 6 and stats["scores_by_metric"]["words_output"] == 8
    )
    assert stats["scorers"]["rifd_ppl"] == ["Tiny@alpaca"]
    out = tmp_path / "scored.jsonl"
    result = runner.invoke(main, ["export", "--db", db, "--out", str(out), "--undecided", "suggested", "--with-scores"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["instruction"] for r in rows] == ["Better 0", "Instruction 1", "Instruction 3"]
    assert rows[0]["ifd_ppl"] == 0.8 and rows[0]["words_instruction"] == 2


def test_an_empty_version_is_not_a_missing_score():
    # Its perplexities and relevance are undefined: asking for them would send the user to
    # compute scores that can never exist.
    from reflection.records import EMPTY_FLAG
    from reflection.select.rules import Scored
    from reflection.select.streamed import missing_scores

    samples = {
        1: [Scored(None, scores={"ifd_ppl": 0.5}),
            Scored(7, "response", scores={}, flags={EMPTY_FLAG: "the output is empty"})],
        2: [Scored(None, scores={})],
    }  # fmt: skip
    assert missing_scores(samples, ["ifd_ppl"]) == {"ifd_ppl": 1}


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
