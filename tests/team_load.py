"""Reviewers in Chromium spread over several `reflection app` processes on one database.

Used by `tests/test_team_load.py` (a small team, one app process killed mid-review) and by
`bench/bench_team_load.py` (twenty reviewers on one app process versus three). Each reviewer
is a Debian Chromium of its own, signed in with a built-in account; it reviews its
own assignments with the keyboard (O accepts the original, X rejects), and a press counts as
*shown as saved* once the page shows the next sample of the queue. A reviewer whose server
dies opens the Review page of another server: the sign-in cookie carries over (same host,
same database), and the queue resumes at the first sample it has not decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from browser_support import CHROMIUM, CHROMIUM_ARGS, READY, free_port, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
POSITION = re.compile(r"^Sample (\d+) · ([\d,]+) of")
FINISHED = "Queue finished"
DECISIONS = {"o": "accept", "x": "reject"}


@dataclass
class App:
    """One `reflection app` process (and its Streamlit child, in the same process group)."""

    url: str
    process: subprocess.Popen
    log: Path
    alive: bool = True

    def kill(self) -> None:
        """kill -9 of the whole app: `reflection app` and its Streamlit server."""
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextlib.contextmanager
def app_servers(db: str | Path, count: int, log_dir: Path) -> Iterator[list[App]]:
    """`count` app processes on free ports over one database, each started and healthy."""
    apps: list[App] = []
    try:
        for n in range(count):
            port = free_port()
            log = open(log_dir / f"app{n}.log", "w")  # noqa: SIM115 (closed with the process)
            process = subprocess.Popen(
                [sys.executable, "-m", "reflection", "app", "--db", str(db), "--port", str(port),
                 "--headless"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            )  # fmt: skip
            log.close()
            apps.append(App(f"http://127.0.0.1:{port}", process, log_dir / f"app{n}.log"))
        for app in apps:
            wait_healthy(app.url, app.process, app.log, 120, "reflection app")
        yield apps
    finally:
        for app in apps:
            if app.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(app.process.pid, signal.SIGTERM)
        for app in apps:
            try:
                app.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(app.process.pid, signal.SIGKILL)


def choice(reviewer: str, sample_id: int) -> str:
    """The key a reviewer presses on a sample: fixed per (reviewer, sample), so runs repeat,
    and mixed, so reviewers agree on some samples and not on others."""
    digest = hashlib.sha256(f"{reviewer}:{sample_id}".encode()).digest()
    return "o" if digest[0] % 3 else "x"


@dataclass
class Press:
    reviewer: str
    server: int
    sample_id: int
    key: str
    seconds: float  # key press -> the next sample shown


@dataclass
class Outcome:
    """What the reviewers saw: every press shown as saved, and what happened on the way."""

    saved: list[Press] = field(default_factory=list)
    lost_in_flight: list[tuple[str, int]] = field(default_factory=list)  # (reviewer, sample)
    moved: list[str] = field(default_factory=list)  # reviewers that reconnected elsewhere
    signed_in_again: list[str] = field(default_factory=list)
    unanswered: list[tuple[str, int]] = field(default_factory=list)  # presses pressed again
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Decisions shown as saved per second, all reviewers together."""
        return len(self.saved) / self.seconds if self.seconds else 0.0


IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
QUIET_MS = 500
SETTLED = """quiet => new Promise(done => {
  let timer = setTimeout(finish, quiet);
  const watcher = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(finish, quiet); });
  function finish() { watcher.disconnect(); done(); }
  watcher.observe(document.body, {childList: true, subtree: true});
  setTimeout(finish, 20 * quiet);
})"""
UNANSWERED_S = 5.0  # an idle page, no next sample and no decision stored after this long


class _Reviewer:
    def __init__(self, context, name: str, apps: list[App], server: int, wait_ms: int, store):
        self.context, self.name, self.apps, self.server = context, name, apps, server
        self.wait_ms, self.store = wait_ms, store
        self.page = None

    async def open(self, outcome: Outcome) -> None:
        """The Review page of this reviewer's server; signs in when it asks."""
        self.page = self.page or await self.context.new_page()
        await self.page.goto(f"{self.apps[self.server].url}/Review")
        ready = self.page.get_by_text(POSITION).or_(self.page.get_by_label("Name"))
        await ready.or_(self.page.get_by_text(FINISHED)).first.wait_for(timeout=self.wait_ms)
        if await self.page.get_by_label("Name").count():
            if outcome.moved and self.name in outcome.moved:
                outcome.signed_in_again.append(self.name)
            await self.page.get_by_label("Name").fill(self.name)
            await self.page.locator('input[type="password"]').fill(PASSWORD)
            await self.page.get_by_role("button", name="Sign in", exact=True).click()
            await (
                self.page.get_by_text(POSITION)
                .or_(self.page.get_by_text(FINISHED))
                .first.wait_for(timeout=self.wait_ms)
            )
        await self.idle()

    async def idle(self) -> None:
        """Wait until the page's script run is over and all its elements are drawn, their
        shortcuts bound (browser_support.READY), or until its server died."""
        deadline = time.monotonic() + self.wait_ms / 1000
        while self.apps[self.server].alive:
            try:
                await self.page.wait_for_function(READY, timeout=500, polling=100)
                break
            except Exception:  # playwright's TimeoutError
                if time.monotonic() > deadline:
                    raise
        # Then for the page to settle: no element added or removed for QUIET_MS.
        await self.page.evaluate(SETTLED, QUIET_MS)

    async def position(self) -> tuple[int, int] | None:
        """(sample id, place) shown, or None when the queue is finished."""
        line = self.page.get_by_text(POSITION).or_(self.page.get_by_text(FINISHED)).first
        text = await line.inner_text(timeout=self.wait_ms)
        found = POSITION.match(text)
        return (int(found[1]), int(found[2].replace(",", ""))) if found else None

    async def review(self, presses: int, outcome: Outcome) -> None:
        await self.open(outcome)
        done = 0
        while done < presses:
            if not self.apps[self.server].alive:
                await self._move(outcome)
            shown = await self.position()
            if shown is None:
                return
            sample_id, place = shown
            key = choice(self.name, sample_id)
            started = time.monotonic()
            await self.page.keyboard.press(key)
            following = re.compile(rf"^Sample \d+ · {place + 1:,} of")
            shown_next = self.page.get_by_text(following).or_(self.page.get_by_text(FINISHED))
            if not await self._wait_while_alive(shown_next.first, key, sample_id, outcome):
                outcome.lost_in_flight.append((self.name, sample_id))  # never shown as saved
                continue
            seconds = time.monotonic() - started
            outcome.saved.append(Press(self.name, self.server, sample_id, key, seconds))
            done += 1
            await self.idle()

    async def _wait_while_alive(self, locator, key: str, sample_id: int, outcome: Outcome) -> bool:
        """Wait for `locator` while this reviewer's server lives; False if it died first.

        A press that left the page idle, on the same sample, with no decision stored after
        UNANSWERED_S was never acted on: it is pressed again, as a person would, and counted
        in `outcome.unanswered`."""
        pressed = time.monotonic()
        deadline = pressed + self.wait_ms / 1000
        while True:
            try:
                await locator.wait_for(timeout=500)
                return True
            except Exception:  # playwright's TimeoutError: look again, unless the server died
                if not self.apps[self.server].alive:
                    return False
                if time.monotonic() > deadline:
                    text = await self.page.locator("body").inner_text()
                    raise AssertionError(
                        f"{self.name}: no next sample {self.wait_ms} ms after {key!r};"
                        f" the page says: {text[:3000]}"
                    ) from None
            if time.monotonic() - pressed > UNANSWERED_S and await self._unanswered(sample_id):
                outcome.unanswered.append((self.name, sample_id))
                await self.page.keyboard.press(key)
                pressed = time.monotonic()

    async def _unanswered(self, sample_id: int) -> bool:
        if not await self.page.locator(IDLE).count():
            return False  # a run is going on: the press is being answered
        shown = await self.position()
        if shown is None or shown[0] != sample_id:
            return False
        rows = self.store.query(
            "SELECT 1 FROM reviews WHERE annotator = ? AND sample_id = ?", [self.name, sample_id]
        )
        return not rows

    async def _move(self, outcome: Outcome) -> None:
        alive = [n for n, app in enumerate(self.apps) if app.alive]
        self.server = alive[sum(self.name.encode()) % len(alive)]
        outcome.moved.append(self.name)
        await self.open(outcome)


async def _review_all(
    store,
    apps: list[App],
    reviewers: list[str],
    presses: int,
    kill: tuple[int, int] | None,
    wait_ms: int,
) -> Outcome:
    from playwright.async_api import async_playwright

    outcome = Outcome()
    async with async_playwright() as playwright:
        # A browser per reviewer, as in a real team: a headless browser focuses one page at a
        # time, and Streamlit's shortcuts act only in the focused one.
        browsers = []
        try:
            team = []
            for n, name in enumerate(reviewers):
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                browsers.append(browser)
                context = await browser.new_context(viewport={"width": 1300, "height": 900})
                context.set_default_timeout(wait_ms)  # page loads too, on a busy machine
                team.append(_Reviewer(context, name, apps, n % len(apps), wait_ms, store))
            started = time.monotonic()
            tasks = [asyncio.create_task(r.review(presses, outcome)) for r in team]
            if kill is not None:
                server, after = kill
                on_it = {r.name for r in team if r.server == server}
                while not all(t.done() for t in tasks):
                    counts = Counter(p.reviewer for p in outcome.saved if p.reviewer in on_it)
                    if len(counts) == len(on_it) and min(counts.values()) >= after:
                        break
                    await asyncio.sleep(0.05)
                apps[server].kill()
            await asyncio.gather(*tasks)
            outcome.seconds = time.monotonic() - started
        finally:
            for browser in browsers:
                await browser.close()
    return outcome


def review_together(
    db: str | Path,
    apps: list[App],
    reviewers: list[str],
    presses: int,
    *,
    kill: tuple[int, int] | None = None,
    wait_ms: int = 60_000,
) -> Outcome:
    """Every reviewer presses `presses` keys at once (reviewer n on app n mod len(apps)).
    `kill=(server, after)`: kill -9 that app once each of its reviewers has had `after`
    presses shown as saved."""
    from reflection import Store

    with Store(db) as store:
        return asyncio.run(_review_all(store, apps, reviewers, presses, kill, wait_ms))


def team_store(url: str | Path, folder: Path, reviewers: list[str], samples: int, overlap: int,
               source: Path) -> int:  # fmt: skip
    """A dataset "team" of the first `samples` Alpaca pairs of `source`, an account per
    reviewer, each sample assigned to `overlap` of them; returns the dataset id."""
    import json

    from reflection import Store
    from reflection.ingest.datasets import import_dataset
    from reflection.team import accounts
    from reflection.team.assign import assign_dataset

    records = json.loads(source.read_text())
    records = (records * (samples // len(records) + 1))[:samples]
    path = folder / "team.json"
    path.write_text(json.dumps(records))
    with Store(url) as store:
        import_dataset(store, path, dataset="team")
        for name in reviewers:
            accounts.add_user(store, name, "reviewer", actor="load", password=PASSWORD)
        assign_dataset(store, "team", reviewers, min(overlap, len(reviewers)), seed=1)
        return store.dataset("team").id


def check(url: str | Path, outcome: Outcome, overlap: int) -> dict[str, float]:
    """What must hold after a team's review, checked against the database (AssertionError
    says which): nothing shown as saved is lost or doubled, a row no page showed as saved is
    a press cut off by a kill, every decision is on the reviewer's own assignment, at most
    `overlap` reviewers per sample, and the agreement figures equal those computed here from
    the decision rows. Returns the figures compared."""
    from collections import defaultdict
    from itertools import combinations

    from sklearn.metrics import cohen_kappa_score

    from reflection import Store
    from reflection.team.agreement import agreement

    with Store(url) as store:
        rows = store.query("SELECT sample_id, annotator, decision FROM reviews ORDER BY id")
        assigned = {(r["reviewer"], r["sample_id"]) for r in store.query(
            "SELECT reviewer, sample_id FROM assignments WHERE state = 'active'")}  # fmt: skip
        figures = agreement(store, "team", bootstrap=0)
    per_pair = Counter((r["annotator"], r["sample_id"]) for r in rows)
    assert not per_pair or max(per_pair.values()) == 1, f"doubled: {per_pair.most_common(3)}"
    stored = {(r["annotator"], r["sample_id"]): r["decision"] for r in rows}
    for press in outcome.saved:
        found = stored.get((press.reviewer, press.sample_id))
        assert found == DECISIONS[press.key], f"lost or changed: {press} -> {found}"
    shown = {(p.reviewer, p.sample_id) for p in outcome.saved}
    unseen = set(stored) - shown
    assert unseen <= set(outcome.lost_in_flight), f"saved but never pressed: {unseen}"
    assert set(stored) <= assigned, f"not assigned: {set(stored) - assigned}"
    reviewers_of: dict[int, set[str]] = defaultdict(set)
    for reviewer, sample_id in stored:
        reviewers_of[sample_id].add(reviewer)
    assert max(len(v) for v in reviewers_of.values()) <= overlap

    category = {"accept": "original", "reject": "rejected"}
    rated: dict[int, dict[str, str]] = defaultdict(dict)
    for (reviewer, sample_id), decision in stored.items():
        rated[sample_id][reviewer] = category[decision]
    items = [r for r in rated.values() if len(r) >= 2]
    assert figures.n_items == len(items), (figures.n_items, len(items))
    percent = sum(len(set(r.values())) == 1 for r in items) / len(items) if items else None
    assert (figures.percent is None) == (percent is None)
    assert percent is None or abs(figures.percent - percent) < 1e-9, (figures.percent, percent)
    expected = {}
    for a, b in combinations(sorted({x for r in items for x in r}), 2):
        both = [r for r in items if a in r and b in r]
        if both and len({r[a] for r in both} | {r[b] for r in both}) > 1:
            expected[(a, b)] = float(cohen_kappa_score([r[a] for r in both], [r[b] for r in both]))
    found = {(c["a"], c["b"]): c["kappa"] for c in figures.cohen_kappa if c["kappa"] is not None}
    assert found.keys() == expected.keys(), (found.keys(), expected.keys())
    for pair, kappa in expected.items():
        assert abs(found[pair] - kappa) < 1e-9, (pair, found[pair], kappa)
    return {"items": len(items), "percent": percent or 0.0, "pairs": len(expected)}
