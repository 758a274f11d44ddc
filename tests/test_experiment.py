"""Prompt experiments: arms, statistics against statsmodels, blind order, promotion."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import (
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from reflection.cli import main
from reflection.errors import ReflectionError
from reflection.records import Candidate, Review, Sample, Score
from reflection.review import experiment as ex

TEMPLATE = """[response]
system = "You improve answers. {style}"
user = "Instruction: {{instruction}}\\n{{input_section}}Answer: {{output}}\\nMake it {style}.\\n{{format}}"
"""


@pytest.fixture
def templates(tmp_path):
    paths = []
    for name, style in (("terse", "shorter"), ("thorough", "more detailed")):
        path = tmp_path / f"{name}.toml"
        path.write_text(TEMPLATE.format(style=style))
        paths.append(path)
    return paths


@pytest.fixture
def arms(store, templates):
    """20 samples, all drawn; 'terse' accepted on 6 (2 of them edited), 'thorough' on 11,
    3 rejected, of 20 decided."""
    ds = store.ensure_dataset("d")
    store.add_samples(
        ds.id, [Sample(instruction=f"q{n}", output=f"a{n}", position=n) for n in range(20)]
    )
    spot = ex.create_experiment(store, "d", "exp", templates, size=20, seed=3)
    hashes = {a["name"]: a["hash"] for a in spot.settings["experiment"]["arms"]}
    ids = store.spotcheck_sample_ids(spot.id)
    made = {}
    for sid in ids:
        for name, h in hashes.items():
            made[(sid, name)] = store.add_candidate(
                Candidate(sample_id=sid, kind="response", output=f"{name} {sid}", prompt_hash=h)
            )
    reviews, scores = [], []
    for i, sid in enumerate(ids):
        if i < 6:
            cid = made[(sid, "terse")]
            if i < 2:
                edit = store.add_candidate(
                    Candidate(sample_id=sid, kind="edit", parent_id=cid, output="fixed")
                )
                reviews.append(
                    Review(sample_id=sid, decision="edit", candidate_id=edit, annotator="r")
                )
            else:
                reviews.append(
                    Review(sample_id=sid, decision="accept", candidate_id=cid, annotator="r")
                )
        elif i < 17:
            reviews.append(
                Review(
                    sample_id=sid,
                    decision="accept",
                    candidate_id=made[(sid, "thorough")],
                    annotator="r",
                )
            )
        else:
            reviews.append(Review(sample_id=sid, decision="reject", annotator="r"))
        scores += [
            Score(sample_id=sid, metric="ifd_ppl", value=0.8, scorer="s"),
            Score(
                sample_id=sid,
                candidate_id=made[(sid, "terse")],
                metric="ifd_ppl",
                value=0.7,
                scorer="s",
            ),
            Score(
                sample_id=sid,
                candidate_id=made[(sid, "thorough")],
                metric="ifd_ppl",
                value=0.6,
                scorer="s",
            ),
        ]
    store.add_reviews(reviews)
    store.put_scores(scores)
    return store, ids, made
    # fmt: skip


def test_statistics_match_statsmodels(arms):
    store, _, _ = arms
    result = ex.report(store, "exp", difference=0.2)
    terse, thorough = result.arms
    assert (terse.name, terse.decided, terse.accepted, terse.edited) == ("terse", 20, 6, 2)
    assert (thorough.accepted, thorough.edited) == (11, 0)
    assert terse.acceptance == 0.3 and terse.edit_rate == pytest.approx(2 / 6)
    assert terse.interval == pytest.approx(proportion_confint(6, 20, alpha=0.05, method="wilson"))
    assert thorough.interval == pytest.approx(proportion_confint(11, 20, method="wilson"))
    # Hand-checked: Wilson 6/20 is (0.1455, 0.5190).
    assert terse.interval == pytest.approx((0.1455, 0.5190), abs=1e-4)
    assert terse.ifd_change == pytest.approx(-0.1) and thorough.ifd_change == pytest.approx(-0.2)
    assert terse.rifd_change is None
    (cmp,) = result.comparisons
    z, p = proportions_ztest([6, 11], [20, 20])
    assert (cmp.z, cmp.p_value) == (pytest.approx(z), pytest.approx(p))
    # Pooled rate 17/40 = 0.425: detect 0.325 vs 0.525 at alpha 0.05, power 0.8.
    effect = proportion_effectsize(0.525, 0.325)
    needed = NormalIndPower().solve_power(effect, alpha=0.05, power=0.8, ratio=1.0)
    assert needed == pytest.approx(zt_ind_solve_power(effect, alpha=0.05, power=0.8))
    assert cmp.needed_per_arm == int(-(-needed // 1)) == 95


def test_blind_order_hides_templates_and_varies(arms):
    store, ids, made = arms
    orders = [ex.blind_order(store, "exp", sid) for sid in ids]
    for sid, order in zip(ids, orders, strict=True):
        assert [label for label, _ in order] == ["Version A", "Version B"]
        assert {cid for _, cid in order} == {made[(sid, "terse")], made[(sid, "thorough")]}
        assert not any("terse" in label or "thorough" in label for label, _ in order)
    firsts = {made[(sid, "terse")] == order[0][1] for sid, order in zip(ids, orders, strict=True)}
    assert firsts == {True, False}  # the template shown first changes from sample to sample
    assert orders == [ex.blind_order(store, "exp", sid) for sid in ids]  # seeded


def test_promote_the_winner_records_it(arms, templates):
    store, _, _ = arms
    assert ex.promoted_prompts(store) is None
    assert ex.promote(store, "exp", actor="lead") == "thorough"
    prompts, detail = ex.promoted_prompts(store)
    assert detail["name"] == "thorough" and detail["experiment"] == "exp"
    assert "more detailed" in prompts.response.user
    (event,) = store.audit_events(action=ex.PROMOTE_ACTION)
    assert (event.actor, event.target) == ("lead", "thorough")
    with pytest.raises(ReflectionError, match="no template 'nope'"):
        ex.promote(store, "exp", "nope")


def test_same_prompt_twice_is_refused(store, templates, tmp_path):
    ds = store.ensure_dataset("d")
    store.add_samples(ds.id, [Sample(instruction="q", output="a")])
    copy = tmp_path / "copy.toml"
    copy.write_text(templates[0].read_text())
    with pytest.raises(ReflectionError, match="ask the same response prompt"):
        ex.create_experiment(store, "d", "e", [templates[0], copy], size=1)


def test_cli_create_show_promote_and_reflect_uses_it(store, templates, fake_oracle, alpaca_records):
    ds = store.ensure_dataset("alpaca")
    store.add_samples(
        ds.id, [Sample(instruction=r["instruction"], output=r["output"], position=i) for i, r in enumerate(alpaca_records[:8])]
    )  # fmt: skip
    db = str(store.path)
    oracle = ["--base-url", fake_oracle.base_url, "--api-key", "sk-test"]
    runner = CliRunner()
    made = runner.invoke(
        main, ["experiment", "create", "--db", db, "--dataset", "alpaca", "--name", "exp",
               "--templates", ",".join(map(str, templates)), "--size", "4", "--seed", "1", *oracle],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert store.scalar("SELECT count(*) FROM candidates") == 8  # 4 samples x 2 templates
    ids = store.spotcheck_sample_ids(store.spotcheck("exp").id)
    first = ex.blind_order(store, "exp", ids[0])[0][1]
    store.add_review(Review(sample_id=ids[0], decision="accept", candidate_id=first, annotator="r"))
    shown = runner.invoke(main, ["experiment", "show", "exp", "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "terse" in shown.output and "thorough" in shown.output and "Wilson" in shown.output
    promoted = runner.invoke(main, ["experiment", "promote", "exp", "--db", db])
    assert promoted.exit_code == 0, promoted.output
    winner = store.candidate(first).prompt_hash
    reflected = runner.invoke(
        main, ["reflect", "--db", db, "--mode", "response", "--limit", "1", "-y", *oracle]
    )
    assert reflected.exit_code == 0, reflected.output
    assert "promoted" in reflected.output
    run = store.query_one("SELECT settings FROM runs WHERE kind = 'reflect' ORDER BY id DESC")
    assert winner in run["settings"]


# Every test here runs on SQLite and on PostgreSQL (conftest.pytest_generate_tests).
pytestmark = pytest.mark.both_backends
