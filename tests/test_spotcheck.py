"""Spot-checks: the interval maths against hand-computed values, seeded reproducible draws,
a planted defect rate recovered from 50 of the real Alpaca pairs, verdict rules, strata,
the narrowing curve, the queue the Review page uses, and the CLI."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import load_alpaca

from reflection import Candidate, ReflectionError, Review, Score, Store
from reflection.cli import main
from reflection.ingest.datasets import import_dataset
from reflection.intervals import (
    Z95,
    combined_estimate,
    effective_n,
    stratum_estimate,
    wilson,
    wilson_interval,
)
from reflection.review.spot_draw import allocate, draw, draw_labelled
from reflection.review.spotcheck import (
    NARROWING_COLUMNS,
    create_spotcheck,
    delete_spotcheck,
    narrowing,
    report,
    spotcheck_queue,
)

pytestmark = pytest.mark.both_backends

# The interval maths and the draws run on an abstract population the size of the whole
# Alpaca file; the spot-checks in a store run on the real pairs of tests/data.
N = 3111
PLANTED = 622  # 20 % of 3,111, rounded
DATA_N = len(load_alpaca())
DATA_PLANTED = round(DATA_N / 5)
CORRUPT = " [TRUNCATED BY ORACLE]"

# --- interval maths --------------------------------------------------------------------------

# Wilson bounds computed by hand from (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n),
# z = 1.959964: e.g. 0 of 10 → high = z²/(n + z²) = 3.841459/13.841459 = 0.277533;
# 5 of 10 → 0.5 ± z·sqrt(0.025 + 0.0096036)/1.3841459 = 0.5 ± 0.263407;
# 1 of 50 → (0.02 + 0.0384146)/1.0768292 ± 1.959964·sqrt(0.000392 + 0.0003841)/1.0768292.
WILSON_TABLE = [
    (0, 10, 0.0, 0.277533),
    (10, 10, 0.722467, 1.0),
    (5, 10, 0.236593, 0.763407),
    (1, 50, 0.003539, 0.104954),
    (8, 50, 0.083374, 0.285142),
    (10, 50, 0.112438, 0.330371),
    (25, 50, 0.366445, 0.633555),
    (0, 1, 0.0, 0.793451),
    (1, 1, 0.206549, 1.0),
    (81, 263, 0.255289, 0.366210),
    (622, 3111, 0.186255, 0.214356),
]


def test_z_is_the_two_sided_95_percent_quantile():
    assert abs(Z95 - 1.959963985) < 1e-9


@pytest.mark.parametrize(("bad", "n", "low", "high"), WILSON_TABLE)
def test_wilson_interval_matches_hand_computed_values(bad, n, low, high):
    got = wilson_interval(bad, n)
    assert got == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


@pytest.mark.parametrize(
    ("p", "n", "low", "high"),
    [
        (0.3, 0, 0.0, 1.0),  # nothing reviewed: anything is possible
        (0.3, math.inf, 0.3, 0.3),  # a census
        (0.0, 5.5, 0.0, 0.411227),  # fractional n: high = z²/(5.5 + z²) = 3.841459/9.341459
    ],
)
def test_wilson_edges(p, n, low, high):
    assert wilson(p, n) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


@pytest.mark.parametrize(
    ("n", "population", "expected"),
    [(50, 3111, 50 * 3110 / 3061), (10, None, 10.0), (5, 5, math.inf), (1, 2, 1.0)],
)
def test_effective_n_folds_in_the_finite_population_correction(n, population, expected):
    assert effective_n(n, population) == pytest.approx(expected)


def test_stratum_estimate_and_its_sentence():
    estimate = stratum_estimate("all", 3111, 50, 50, 10)
    assert estimate.rate == 0.2
    low, high = wilson(0.2, 50 * 3110 / 3061)
    assert (estimate.low, estimate.high) == (low, high)
    value, count_low, count_high = estimate.bad_count
    assert value == pytest.approx(622.2)
    assert estimate.acceptance == (0.8, 1 - high, 1 - low)
    # Half-width (count_high - count_low) / 2 = 336.4 → two digits, 340; 622.2 → 620.
    assert (count_high - count_low) / 2 == pytest.approx(336.4, abs=0.1)
    assert estimate.sentence() == (
        "40 of 50 reviewed accepted (80%, 95 % CI 67%–89%): accepting everything would keep"
        f" about 620 ± 340 bad samples of 3,111 (95 % CI {math.floor(count_low)}–"
        f"{math.ceil(count_high):,})"
    )
    assert stratum_estimate("x", 10, 3, 0, 0).sentence() == "no reviews yet (3 drawn of 10)"


def test_a_census_has_no_uncertainty():
    estimate = stratum_estimate("all", 40, 40, 40, 10)
    assert (estimate.rate, estimate.low, estimate.high) == (0.25, 0.25, 0.25)


def test_combined_estimate_weights_strata_by_population():
    a = stratum_estimate("a", 1000, 20, 20, 4)  # 20 % bad
    b = stratum_estimate("b", 3000, 30, 30, 3)  # 10 % bad
    both = combined_estimate([a, b])
    # p = (1000·0.2 + 3000·0.1) / 4000 = 0.125; Kish n_eff = 1 / (0.25²/n_a' + 0.75²/n_b')
    # with n' the fpc-corrected sizes 20·999/980 and 30·2999/2970.
    n_eff = 1 / (0.25**2 / (20 * 999 / 980) + 0.75**2 / (30 * 2999 / 2970))
    assert both.rate == pytest.approx(0.125)
    assert (both.low, both.high) == pytest.approx(wilson(0.125, n_eff))
    assert (both.population, both.reviewed, both.bad) == (4000, 50, 7)


def test_unreviewed_strata_widen_the_combined_bounds_by_their_size():
    a = stratum_estimate("a", 1000, 20, 20, 4)
    b = stratum_estimate("b", 3000, 30, 0, 0)
    both = combined_estimate([a, b])
    low_a, high_a = wilson(0.2, effective_n(20, 1000))
    assert both.low == pytest.approx(low_a * 1000 / 4000)
    assert both.high == pytest.approx((high_a * 1000 + 3000) / 4000)
    assert both.rate == pytest.approx(0.2)  # the reviewed share stands in for the rest


@pytest.mark.parametrize(
    ("sizes", "total", "how", "expected"),
    [
        ({"a": 100, "b": 10, "c": 1}, 20, "proportional", {"a": 18, "b": 1, "c": 1}),
        ({"a": 100, "b": 10, "c": 1}, 2, "proportional", {"a": 2, "b": 0, "c": 0}),
        ({"a": 3, "b": 3}, 10, "proportional", {"a": 3, "b": 3}),
        ({"a": 5, "b": 50}, 10, "equal", {"a": 5, "b": 5}),
        ({"a": 2, "b": 50}, 10, "equal", {"a": 2, "b": 8}),
        (
            {"a": 600, "b": 300, "c": 100, "d": 0},
            50,
            "proportional",
            {"a": 30, "b": 15, "c": 5, "d": 0},
        ),
    ],
)
def test_allocation_table(sizes, total, how, expected):
    assert allocate(sizes, total, how) == expected


# --- draws -------------------------------------------------------------------------------------


def test_draw_is_seeded_and_reproducible():
    labels = {i: "all" for i in range(1, N + 1)}
    first = draw(labels, 50, seed=7)
    assert first == draw(dict(reversed(labels.items())), 50, seed=7)
    assert first != draw(labels, 50, seed=8)
    assert len({sid for sid, _ in first}) == 50
    assert sorted(first) != first  # review order is shuffled, not by id


def _draw_in_memory(strata, size, seed, allocation="proportional"):
    """The draw before it streamed: every stratum's ids in a list, `rng.sample` over them."""
    by_stratum: dict[str, list[int]] = {}
    for sample_id in sorted(strata):
        by_stratum.setdefault(strata[sample_id], []).append(sample_id)
    counts = allocate({k: len(v) for k, v in by_stratum.items()}, size, allocation)
    picked = []
    for name in sorted(by_stratum):
        rng = random.Random(f"{seed}:{name}")
        picked += [(sid, name) for sid in rng.sample(by_stratum[name], counts[name])]
    picked.sort()
    random.Random(f"{seed}:order").shuffle(picked)
    return picked


@pytest.mark.parametrize("allocation", ["proportional", "equal"])
def test_streamed_draw_gives_the_queue_the_in_memory_draw_gave(allocation):
    """Two passes over labels in id order pick the same samples in the same order as sampling
    from lists did, so a seed still reproduces every spot-check drawn before. Sizes span both
    of `random.sample`'s branches (a pool for small strata, a set for large ones)."""
    rng = random.Random(3)
    names = ["instruction", "response", "both", "no candidate"]
    ids = sorted(rng.sample(range(1, 10 * N), N))  # gaps, as ids of a dataset have
    labels = {sid: names[min(3, int(rng.expovariate(1.2)))] for sid in ids}
    for size in (1, 4, 50, 400, N, N + 10):
        for seed in (0, 1, 7):
            expected = _draw_in_memory(labels, size, seed, allocation)
            passes: list[int] = []

            def labelled(passes=passes):
                passes.append(1)
                return iter(sorted(labels.items()))

            picked, sizes = draw_labelled(labelled, size, seed, allocation)
            assert picked == expected
            assert sizes == Counter(labels.values()) and len(passes) == 2


def test_a_dataset_that_changes_between_the_passes_is_refused():
    rows = [[(1, "all"), (2, "all"), (3, "all")], [(1, "all"), (3, "all")]]
    with pytest.raises(ReflectionError, match="changed while the spot-check was drawn"):
        draw_labelled(lambda: rows.pop(0), 2, seed=0)


def test_intervals_cover_the_true_rate_about_95_percent_of_the_time():
    """Many seeded draws of 50 from 3,111 with 622 planted defects: coverage near 95 %."""
    defective = set(random.Random(11).sample(range(N), PLANTED))
    labels = dict.fromkeys(range(N), "all")
    truth = PLANTED / N
    covered = 0
    for seed in range(400):
        picked = draw(labels, 50, seed)
        bad = sum(sid in defective for sid, _ in picked)
        estimate = stratum_estimate("all", N, 50, 50, bad)
        covered += estimate.low <= truth <= estimate.high
    assert 0.9 <= covered / 400 <= 0.995


def test_stratified_intervals_cover_each_strata_mix():
    rng = random.Random(5)
    labels = {i: ("instruction" if i < 1000 else "response") for i in range(N)}
    defective = set(rng.sample(range(1000), 400)) | set(rng.sample(range(1000, N), 100))
    truth = 500 / N
    covered = 0
    for seed in range(300):
        picked = draw(labels, 60, seed, allocation="equal")
        strata = []
        for name, size in (("instruction", 1000), ("response", N - 1000)):
            ids = [sid for sid, label in picked if label == name]
            bad = sum(sid in defective for sid in ids)
            strata.append(stratum_estimate(name, size, len(ids), len(ids), bad))
        both = combined_estimate(strata)
        covered += both.low <= truth <= both.high
    assert covered / 300 >= 0.9


# --- spot-checks in a store --------------------------------------------------------------------


@pytest.fixture
def planted(store, alpaca_records, tmp_path):
    """The Alpaca samples, each with a response candidate; a fifth of them corrupted."""
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(alpaca_records), encoding="utf-8")
    import_dataset(store, path, dataset="alpaca")
    ids = store.sample_ids(store.dataset("alpaca").id)
    bad = set(random.Random(2023).sample(ids, DATA_PLANTED))
    store.add_candidates(
        Candidate(
            sample_id=sid,
            kind="response",
            instruction=sample.instruction,
            input=sample.input,
            output=(sample.output[:40] + CORRUPT) if sid in bad else sample.output + " Indeed.",
        )
        for sid, sample in zip(ids, store.samples(store.dataset("alpaca").id), strict=True)
    )
    return bad


def review_like_a_person(store: Store, sample_ids, annotator: str = "ann") -> None:
    """Reject a corrupted candidate, accept a good one."""
    for sid in sample_ids:
        candidate = store.candidates_for(sid)[0]  # the response candidate
        if candidate.output.endswith(CORRUPT):
            store.add_review(Review(sid, "reject", annotator=annotator))
        else:
            store.add_review(Review(sid, "accept", candidate_id=candidate.id, annotator=annotator))


def test_spotcheck_of_50_recovers_the_planted_defect_rate(store, planted):
    spot = create_spotcheck(store, "alpaca", "oracle", size=50, seed=2026)
    assert (spot.population, spot.settings["good"]) == (DATA_N, "candidate")
    queue = spotcheck_queue(store, "oracle")
    assert len(queue) == 50 == len(set(queue))
    review_like_a_person(store, queue)
    result = report(store, "oracle").overall
    truth = DATA_PLANTED / DATA_N
    assert result.reviewed == 50
    assert result.bad == sum(sid in planted for sid in queue)
    assert result.low <= truth <= result.high
    value, low, high = result.bad_count
    assert low <= DATA_PLANTED <= high
    assert f"bad samples of {DATA_N:,}" in result.sentence()


def test_same_seed_same_queue_in_another_store(tmp_path, store, planted, alpaca_records):
    first = create_spotcheck(store, "alpaca", "a", size=50, seed=99)
    with Store(tmp_path / "other.db") as other:
        path = tmp_path / "again.json"
        path.write_text(json.dumps(alpaca_records), encoding="utf-8")
        import_dataset(other, path, dataset="alpaca")
        ids = other.sample_ids(other.dataset("alpaca").id)
        other.add_candidates(Candidate(sample_id=sid, kind="response", output="x") for sid in ids)
        create_spotcheck(other, "alpaca", "a", size=50, seed=99)
        assert spotcheck_queue(other, "a") == spotcheck_queue(store, first.id)
    create_spotcheck(store, "alpaca", "b", size=50, seed=100)
    assert spotcheck_queue(store, "b") != spotcheck_queue(store, "a")


def test_verdict_rules(store, planted):
    spot = create_spotcheck(store, "alpaca", "rules", size=8, seed=1)
    ids = spotcheck_queue(store, "rules")
    candidate = {sid: store.candidates_for(sid)[0].id for sid in ids}
    edit = store.add_candidate(Candidate(sample_id=ids[2], kind="edit", output="fixed"))
    run = store.start_run("bulk", spot.dataset_id)
    store.add_reviews(
        [
            Review(ids[0], "accept", candidate_id=candidate[ids[0]]),  # good
            Review(ids[1], "accept"),  # the original chosen over the oracle's: bad
            Review(ids[2], "edit", candidate_id=edit),  # needed a fix: bad
            Review(ids[3], "reject"),  # bad
            Review(ids[4], "skip"),  # no verdict
            Review(ids[5], "accept", candidate_id=candidate[ids[5]], run_id=run.id),  # bulk
            Review(ids[6], "reject"),
            Review(ids[6], "undo"),  # taken back: no verdict
        ]
    )
    overall = report(store, "rules").overall
    assert (overall.reviewed, overall.bad) == (4, 3)
    assert spotcheck_queue(store, "rules", pending=True) == ids[4:]
    # A data spot-check (any accepted version is good) counts the original as good.
    create_spotcheck(store, "alpaca", "data", size=8, seed=1, good="accepted")
    assert spotcheck_queue(store, "data") == ids
    assert (report(store, "data").overall.reviewed, report(store, "data").overall.bad) == (4, 2)


def test_stratified_by_kind_reports_each_stratum(store, planted):
    ds = store.dataset("alpaca")
    ids = store.sample_ids(ds.id)
    both = DATA_N // 6
    store.add_candidates(
        Candidate(sample_id=sid, kind="instruction", output="new") for sid in ids[:both]
    )
    spot = create_spotcheck(store, "alpaca", "kinds", size=60, seed=3, stratify="kind")
    assert spot.strata == {"instruction+response": both, "response": DATA_N - both}
    queue = spotcheck_queue(store, "kinds")
    strata = {item.sample_id: item.stratum for item in store.spotcheck_items(spot.id)}
    in_both = sum(strata[sid] == "instruction+response" for sid in queue)
    assert in_both == round(60 * both / DATA_N)  # proportional: 60 · 52/312 = 10
    review_like_a_person(store, queue[:30])
    result = report(store, "kinds")
    assert [s.stratum for s in result.strata] == ["instruction+response", "response"]
    assert sum(s.reviewed for s in result.strata) == result.overall.reviewed == 30
    assert result.as_dict()["strata"][0]["population"] == both


def test_stratified_by_flag_and_score_bucket(store, planted):
    ds = store.dataset("alpaca")
    ids = store.sample_ids(ds.id)
    store.put_scores(Score(sid, "ifd_ppl", 0.3 + (i % 10) / 10) for i, sid in enumerate(ids))
    spot = create_spotcheck(
        store, "alpaca", "ifd", size=40, seed=4, stratify="score:ifd_ppl", edges=[0.5, 1.0]
    )
    # Values 0.3 .. 1.2: 0.3, 0.4 below 0.5; 0.5 .. 0.9 in between; 1.0 .. 1.2 from 1 up.
    expected = {"< 0.5": 0, "0.5 – 1": 0, "≥ 1": 0}
    for i in range(DATA_N):
        value = 0.3 + (i % 10) / 10
        expected["< 0.5" if value < 0.5 else "0.5 – 1" if value < 1.0 else "≥ 1"] += 1
    assert spot.strata == dict(sorted(expected.items()))
    flagged = create_spotcheck(store, "alpaca", "flags", size=20, seed=4, stratify="flag")
    assert flagged.strata == {
        "misaligned": sum(expected[k] for k in ("≥ 1",)),
        "unflagged": DATA_N - expected["≥ 1"],
    }
    quartiles = create_spotcheck(store, "alpaca", "q", size=20, seed=4, stratify="score:ifd_ppl")
    assert len(quartiles.settings["edges"]) == 3 and len(quartiles.strata) == 4


def test_score_strata_of_candidates_use_each_samples_newest_candidate(store, planted):
    """Stratified by a candidate score, a sample counts with its newest candidate's newest
    score; samples without one form the "no score" stratum. Streamed in sample order, this
    must agree with the candidates' order of creation, not the order scores were written."""
    ids = store.sample_ids(store.dataset("alpaca").id)
    older = store.add_candidates(Candidate(sample_id=s, kind="response", output="a") for s in ids)
    newer = store.add_candidates(
        Candidate(sample_id=s, kind="instruction", output="b") for s in ids[:20]
    )
    # Newer candidates scored first, and each older one scored twice (the later score wins).
    store.put_scores(
        Score(sid, "ifd_ppl", 0.2, candidate_id=c) for sid, c in zip(ids[:20], newer, strict=True)
    )
    store.put_scores(
        Score(sid, "ifd_ppl", 0.9, candidate_id=c) for sid, c in zip(ids, older, strict=True)
    )
    store.put_scores(
        Score(sid, "ifd_ppl", 1.5, candidate_id=c)
        for sid, c in zip(ids[:50], older[:50], strict=True)
    )
    spot = create_spotcheck(
        store, "alpaca", "c", size=30, seed=2, stratify="score:ifd_ppl", edges=[0.5, 1.0],
        version="candidate",
    )  # fmt: skip
    assert spot.strata == {"0.5 – 1": DATA_N - 50, "< 0.5": 20, "≥ 1": 30}
    unscored = create_spotcheck(
        store, "alpaca", "o", size=5, seed=2, stratify="score:ifd_ppl", edges=[1.0]
    )
    assert unscored.strata == {"no score": DATA_N} and unscored.population == DATA_N


def test_narrowing_curve_ends_at_the_report_and_narrows(store, planted):
    create_spotcheck(store, "alpaca", "curve", size=120, seed=8)
    queue = spotcheck_queue(store, "curve")
    review_like_a_person(store, queue)
    frame = narrowing(store, "curve")
    assert list(frame.columns) == NARROWING_COLUMNS
    assert list(frame["reviewed"]) == list(range(1, 121))
    assert set(frame["stratum"]) == {"all"}
    last = frame.iloc[-1]
    overall = report(store, "curve").overall
    assert (last["bad"], last["bad_rate_low"], last["bad_rate_high"]) == (
        overall.bad,
        pytest.approx(overall.low),
        pytest.approx(overall.high),
    )
    width = frame["bad_in_population_high"] - frame["bad_in_population_low"]
    assert width.iloc[-1] < width.iloc[9] / 2
    assert frame["acceptance"].iloc[-1] == pytest.approx(1 - overall.rate)


def test_narrowing_is_empty_before_any_review(store, planted):
    create_spotcheck(store, "alpaca", "fresh", size=5, seed=1)
    frame = narrowing(store, "fresh")
    assert frame.empty and list(frame.columns) == NARROWING_COLUMNS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "at least one sample"),
        ({"stratify": "colour"}, "unknown stratification"),
        ({"stratify": "score"}, "needs a metric"),
        ({"good": "maybe"}, "unknown verdict"),
        ({"kinds": ("poem",)}, "unknown candidate kind"),
        ({"allocation": "random"}, "unknown allocation"),
        ({"version": "newest"}, "unknown version"),
    ],
)
def test_bad_spotcheck_settings(store, planted, kwargs, message):
    with pytest.raises(ReflectionError, match=message):
        create_spotcheck(store, "alpaca", "x", **kwargs)


def test_names_are_unique_per_dataset_and_deleting_keeps_reviews(store, planted):
    create_spotcheck(store, "alpaca", "once", size=3, seed=1)
    with pytest.raises(ReflectionError, match="already exists"):
        create_spotcheck(store, "alpaca", "once", size=3, seed=2)
    review_like_a_person(store, spotcheck_queue(store, "once"))
    delete_spotcheck(store, "once")
    with pytest.raises(ReflectionError, match="no spot-check 'once'"):
        spotcheck_queue(store, "once")
    assert store.scalar("SELECT count(*) FROM reviews") == 3


def test_a_dataset_without_candidates_gets_a_data_spotcheck(store, alpaca_records, tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(alpaca_records[:100]), encoding="utf-8")
    import_dataset(store, path, dataset="plain")
    spot = create_spotcheck(store, "plain", "data", size=10, seed=1)
    assert (spot.settings["good"], spot.population) == ("accepted", 100)
    with pytest.raises(ReflectionError, match="none has a candidate"):
        create_spotcheck(store, "plain", "oracle", size=10, good="candidate")


def test_cli_spotcheck_commands_and_stats(tmp_path, planted, store):
    db = str(store.path)
    runner = CliRunner()
    made = runner.invoke(main, ["spotcheck", "create", "cli", "--db", db, "--size", "50"])
    assert made.exit_code == 0, made.output
    assert f"drew 50 of {DATA_N:,} samples" in made.output
    queue = runner.invoke(main, ["spotcheck", "queue", "cli", "--db", db])
    ids = [int(line) for line in queue.output.split()]
    assert ids == spotcheck_queue(store, "cli")
    review_like_a_person(store, ids[:20])
    shown = runner.invoke(main, ["spotcheck", "show", "cli", "--db", db, "--json", "--curve"])
    data = json.loads(shown.output)
    assert data["overall"]["reviewed"] == 20 and len(data["narrowing"]) == 20
    stats = runner.invoke(main, ["stats", "--db", db])
    assert "spot-check cli: " in stats.output and "accepting everything would keep" in stats.output
    stats_json = json.loads(runner.invoke(main, ["stats", "--db", db, "--json"]).output)
    assert stats_json["spotchecks"]["cli"]["overall"]["bad"] == data["overall"]["bad"]
    again = runner.invoke(main, ["spotcheck", "create", "cli", "--db", db])
    assert again.exit_code == 1 and "already exists" in again.output
    pending = runner.invoke(main, ["spotcheck", "queue", "cli", "--db", db, "--pending"])
    assert [int(v) for v in pending.output.split()] == ids[20:]
    gone = runner.invoke(main, ["spotcheck", "delete", "cli", "--db", db])
    assert gone.exit_code == 0
    assert "No spot-checks yet" in runner.invoke(main, ["spotcheck", "list", "--db", db]).output


@pytest.mark.parametrize(
    ("reviewed", "bad", "expected"),
    [
        (1000, 1000, "0 of 1,000 reviewed accepted (0%, 95 % CI 0%–0.4%)"),
        (1000, 0, "1,000 of 1,000 reviewed accepted (100%, 95 % CI 99.6%–100%)"),
        (10, 5, "5 of 10 reviewed accepted (50%, 95 % CI 24%–76%)"),
    ],
)
def test_sentence_percentages(reviewed, bad, expected):
    # 0 of 1,000 bad: Wilson high = z²/(1000 + z²) = 0.38 % (no fpc: population unknown → huge).
    estimate = stratum_estimate("all", 10**9, reviewed, reviewed, bad)
    assert estimate.sentence().startswith(expected + ": accepting everything")


def test_flag_strata_hold_what_the_queue_filter_of_that_flag_holds(store, planted):
    from reflection.store.queue import QueueQuery

    ds = store.dataset("alpaca")
    ids = store.sample_ids(ds.id)
    store.put_scores(Score(sid, "ifd_ppl", 1.2) for sid in ids[::7])
    store.add_candidates(
        Candidate(sample_id=sid, kind="instruction", status="failed") for sid in ids[::5]
    )
    spot = create_spotcheck(store, "alpaca", "flags", size=DATA_N, seed=1, stratify="flag")
    strata = {item.sample_id: item.stratum for item in store.spotcheck_items(spot.id)}
    for flag in ("misaligned", "parse_failed"):
        in_strata = {sid for sid, label in strata.items() if flag in label.split("+")}
        assert in_strata == set(store.queue_ids(ds.id, QueueQuery(flags=(flag,))))
    assert spot.strata["misaligned+parse_failed"] == len(ids[::35])


def test_narrowing_figures_for_the_dashboard(store, planted):
    from reflection.review.spotcheck import narrowing_figures

    create_spotcheck(store, "alpaca", "reviewed", size=30, seed=1)
    create_spotcheck(store, "alpaca", "untouched", size=30, seed=2)
    untouched = set(spotcheck_queue(store, "untouched"))  # the draws may share samples
    own = [sid for sid in spotcheck_queue(store, "reviewed") if sid not in untouched]
    review_like_a_person(store, own[:12])
    [figure] = narrowing_figures(store, store.dataset("alpaca").id)
    assert "reviewed" in figure.layout.title.text
    high, low, estimate = figure.data
    assert list(estimate.x) == list(range(1, 13))
    assert all(lo <= e <= hi for lo, e, hi in zip(low.y, estimate.y, high.y, strict=True))
    assert figure.layout.yaxis.title.text == f"bad samples of {DATA_N:,}"


def test_a_name_used_in_two_datasets_needs_the_dataset(store, alpaca_records, tmp_path):
    for name, part in (("one", alpaca_records[:20]), ("two", alpaca_records[20:50])):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(part), encoding="utf-8")
        import_dataset(store, path, dataset=name)
        create_spotcheck(store, name, "check", size=5, seed=1)
    with pytest.raises(ReflectionError, match="several datasets have a spot-check called 'check'"):
        spotcheck_queue(store, "check")
    two = spotcheck_queue(store, "check", "two")
    assert {store.sample_dataset(sid) for sid in two} == {store.dataset("two").id}
    assert report(store, "check", "one").overall.population == 20
