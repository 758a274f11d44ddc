"""A team on PostgreSQL: several app processes over one database, one of them killed
mid-review, and the database restarted under a reviewer (reviewers in Chromium); twenty
reviewers at once on three app processes (Streamlit sessions driven over the websocket).

What must hold (issue 16): no decision shown as saved is lost or doubled, the assignment
overlap holds, the agreement figures equal those computed from the decision rows, the
reviewers of a killed app go on from another one, and a database restart shows a clear
message, after which work goes on. The twenty-reviewer version with throughput figures is
`bench/bench_team_load.py`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from team_load import DECISIONS, PASSWORD, app_servers, check, review_together, team_store

from reflection import Store

pytest.importorskip("playwright.async_api")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

SUBSET = Path(__file__).parent / "data" / "alpaca_subset.json"
REVIEWERS = [f"r{n:02d}" for n in range(1, 7)]
OVERLAP = 2


def decision_rows(url: str) -> list[dict]:
    with Store(url) as store:
        return [dict(r) for r in store.query(
            "SELECT id, sample_id, annotator, decision FROM reviews ORDER BY id"
        )]  # fmt: skip


def test_reviewers_on_two_apps_lose_nothing_when_one_is_killed(pg_cluster, tmp_path):
    url = pg_cluster.new_database()
    team_store(url, tmp_path, REVIEWERS, 60, OVERLAP, SUBSET)
    with app_servers(url, 2, tmp_path) as apps:
        outcome = review_together(url, apps, REVIEWERS, presses=6, kill=(1, 2))
    # Lost, doubled, unassigned, overlap, and agreement against the decision rows:
    figures = check(url, outcome, OVERLAP)
    assert figures["items"] > 0 and figures["pairs"] > 0  # agreement was really compared
    assert len(outcome.saved) == len(REVIEWERS) * 6  # every reviewer finished, moved or not
    assert {DECISIONS[p.key] for p in outcome.saved} == {"accept", "reject"}
    print(f"presses pressed again (the page idle, nothing stored): {outcome.unanswered}")

    # The killed app's reviewers went on from the other one, still signed in.
    killed = {r for n, r in enumerate(REVIEWERS) if n % 2 == 1}
    unfinished = {r for r in killed if sum(p.reviewer == r for p in outcome.saved) < 6}
    before = Counter(p.reviewer for p in outcome.saved if p.server == 1)
    assert set(outcome.moved) == {r for r in killed if before[r] < 6} and unfinished == set()
    assert outcome.moved, "the kill came after every reviewer of that app had finished"
    assert all(before[r] >= 2 for r in killed)  # the kill came mid-review
    assert outcome.signed_in_again == []
    assert {p.server for p in outcome.saved if p.reviewer in outcome.moved} == {0, 1}


def test_a_database_restart_shows_a_message_then_review_goes_on(pg_cluster, tmp_path):
    from browser_support import explained, wait_ready
    from playwright.sync_api import sync_playwright
    from team_load import CHROMIUM, CHROMIUM_ARGS, POSITION

    url = pg_cluster.new_database()
    team_store(url, tmp_path, ["solo"], 10, OVERLAP, SUBSET)
    with app_servers(url, 1, tmp_path) as apps, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{apps[0].url}/Review")
        page.get_by_label("Name").fill("solo")
        page.locator('input[type="password"]').fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()

        def press(key: str, place: int) -> None:
            wait_ready(page, 60_000)  # the buttons drawn, their keys bound
            page.keyboard.press(key)
            with explained(page, f"{key!r}: place {place} not shown", apps[0].log):
                line = page.get_by_text(re.compile(rf"^Sample \d+ · {place} of"))
                line.wait_for(timeout=60_000)

        with explained(page, "no sample after signing in", apps[0].log):
            page.get_by_text(POSITION).wait_for(timeout=60_000)
        press("x", 2)
        pg_cluster.stop_server()
        try:
            wait_ready(page, 60_000)
            page.keyboard.press("x")
            message = page.get_by_text("Everything shown as saved is kept")
            with explained(page, "no message while the database was away", apps[0].log):
                message.first.wait_for(timeout=60_000)
            text = page.locator("body").inner_text()
            assert "PostgreSQL" in text and "Traceback" not in text, text[:2000]
            page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
        finally:
            pg_cluster.start_server()
        # Work goes on: the reviewer reloads the page (still signed in, by the cookie) and
        # the queue resumes at the sample the failed press left undecided.
        page.reload()
        with explained(page, "no sample after the database came back", apps[0].log):
            page.get_by_text(POSITION).wait_for(timeout=90_000)
        first_place = int(POSITION.search(page.get_by_text(POSITION).inner_text())[2])
        press("o", first_place + 1)
        browser.close()
    decisions = [(r["annotator"], r["decision"]) for r in decision_rows(url)]
    assert decisions == [("solo", "reject"), ("solo", "accept")]


def test_twenty_reviewers_at_once_on_three_apps_lose_nothing(pg_cluster, tmp_path):
    """Twenty sessions, spread over three app processes on one PostgreSQL, press keys as fast
    as the pages are drawn. Each is a Streamlit session over its websocket (ws_reviewer.py):
    twenty Chromiums would not fit beside the servers on the CI machine."""
    from ws_reviewer import review_over_protocol

    reviewers = [f"r{n:02d}" for n in range(1, 21)]
    url = pg_cluster.new_database()
    team_store(url, tmp_path, reviewers, 100, OVERLAP, SUBSET)  # 10 assignments each
    with app_servers(url, 3, tmp_path) as apps:
        outcome = review_over_protocol(apps, reviewers, presses=8)
    figures = check(url, outcome, OVERLAP)
    assert len(outcome.saved) == 20 * 8 and len(decision_rows(url)) == 20 * 8
    assert {p.server for p in outcome.saved} == {0, 1, 2}
    assert figures["items"] > 0 and figures["pairs"] > 0  # agreement was really compared
