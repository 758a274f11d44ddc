"""Ten reviewers signed in at once, each in their own browser context, each working through
their assigned queue with the keyboard: no decision lost, no sample with more than `overlap`
reviewers, no "database is locked", and the reviewer on every decision is the signed-in
account.

The accounts are built-in ones, made in the store as `reflection users add` makes them
(argon2 hashes); each context signs in through the sign-in form (test_browser.Reviewer).
"""

from __future__ import annotations

from collections import Counter

import pytest
from browser_support import chromium, streamlit_app
from test_browser import Reviewer

from reflection.records import Candidate, Sample
from reflection.store import Store
from reflection.team import accounts
from reflection.team.assign import assign_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REVIEWERS = [f"rev{n}" for n in range(10)]
SAMPLES, OVERLAP = 30, 2
PER_REVIEWER = SAMPLES * OVERLAP // len(REVIEWERS)  # 6: the deal is balanced
PASSWORD = "correct horse battery"
# Each reviewer decides with one key: accept the candidate, accept the original, or reject.
KEYS = {"a": "accept", "o": "accept", "x": "reject"}


def key_of(reviewer: str) -> str:
    return "aox"[REVIEWERS.index(reviewer) % 3]


@pytest.fixture
def team_db(tmp_path):
    db = tmp_path / "team.db"
    with Store(db) as store:
        ds = store.ensure_dataset("team")
        store.add_samples(
            ds.id,
            [Sample(instruction=f"Explain topic {n}.", output=f"Topic {n} is simple.", position=n)
             for n in range(SAMPLES)],
        )  # fmt: skip
        for sid in store.sample_ids(ds.id):
            store.add_candidate(
                Candidate(sample_id=sid, kind="response", output=f"Topic {sid}, explained well.")
            )
        accounts.add_user(store, "lead", "admin", actor="test", password=PASSWORD)
        for name in REVIEWERS:
            accounts.add_user(store, name, "reviewer", actor="lead", password=PASSWORD)
        assign_dataset(store, "team", REVIEWERS, OVERLAP, seed=11, actor="lead")
    return db


def test_ten_reviewers_work_through_their_queues_at_once(team_db):
    with streamlit_app(team_db) as url, chromium() as browser:
        reviewers = []
        try:
            for name in REVIEWERS:
                reviewers.append(Reviewer(browser, url, name, password=PASSWORD))
                # The session is the account's: its name in the sidebar, no name form.
                reviewers[-1].page.get_by_text(f"Signed in as {name}").wait_for()
                assert reviewers[-1].page.get_by_label("Your name").count() == 0
            assert {r.position()[1] for r in reviewers} == {1}
            for step in range(PER_REVIEWER):
                # Every reviewer presses their key before any waits: the script runs and
                # their writes overlap on the server.
                for reviewer in reviewers:
                    reviewer.key(key_of(REVIEWERS[reviewers.index(reviewer)]))
                for reviewer in reviewers:
                    if step + 1 < PER_REVIEWER:
                        reviewer.wait_for_place(step + 2)
                    else:
                        reviewer.page.get_by_text("Queue finished").wait_for(timeout=60_000)
        finally:
            for reviewer in reviewers:
                reviewer.close()
        log = (team_db.parent / "streamlit.log").read_text()
    assert "database is locked" not in log
    assert "Traceback" not in log

    with Store(team_db) as store:
        signed_in = {event.actor for event in store.audit_events(action="signin")}
        rows = store.query(
            "SELECT r.sample_id, r.annotator, r.decision, r.candidate_id FROM reviews r ORDER BY r.id"
        )
        assigned = {
            (row["sample_id"], row["reviewer"])
            for row in store.query("SELECT sample_id, reviewer FROM assignments")
        }
    assert signed_in == set(REVIEWERS)  # every decision below is a signed-in account's
    # No decision lost: each reviewer decided each of their samples once, with their key.
    by_reviewer = Counter(row["annotator"] for row in rows)
    assert by_reviewer == dict.fromkeys(REVIEWERS, PER_REVIEWER)
    assert {(row["sample_id"], row["annotator"]) for row in rows} == assigned
    for row in rows:
        key = key_of(row["annotator"])
        assert row["decision"] == KEYS[key]
        assert bool(row["candidate_id"]) == (key == "a")
    # No sample gets more than `overlap` reviewers.
    per_sample = Counter(row["sample_id"] for row in rows)
    assert set(per_sample.values()) == {OVERLAP}
