"""The review app in a real browser: Debian's Chromium driven by Playwright against
`streamlit run app.py` on a free port with a temporary demo database.

What a person sees and presses: the diff marks, one key deciding and moving on (and the
review row in the database by then), keys inert while typing, the edit flow, the hostile
sample staying inert text, two sessions keeping all their decisions. It also saves the
README's screenshot of the Review page to docs/review.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import chromium, demo_store, explained, streamlit_app, wait_ready
from conftest import screenshot_target

from reflection import Store

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
POSITION = re.compile(r"^Sample (\d+) · ([\d,]+) of")
WAIT_MS = 60_000  # a cold page on a busy 2-core CI machine takes its time


# The review loop runs on PostgreSQL too: the tests marked with it get both servers.
ON_BOTH = pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """A Streamlit server on the demo store (SQLite unless a test asks for both):
    (base url, database path or URL)."""
    folder = tmp_path_factory.mktemp("browser")
    db = demo_store(folder, getattr(request, "param", "sqlite"), request)
    with streamlit_app(db, log_dir=folder) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


class Reviewer:
    """One browser session on the Review page, with what it has seen."""

    def __init__(
        self, browser, url: str, name: str, *, from_home: bool = False, password: str = ""
    ):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.set_default_timeout(WAIT_MS)  # page loads too, on a busy machine
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", self._dialog)
        if password:  # a built-in account: the sign-in form, with the keyboard
            self.page.goto(f"{url}/Review")
            box = self.page.get_by_label("Name")
            box.wait_for(timeout=WAIT_MS)
            self.wait_idle()  # typed into a form still drawing, text can be lost (see edit test)
            box.focus()
            self.page.keyboard.type(name)
            self.page.keyboard.press("Tab")
            self.page.keyboard.type(password)
        elif from_home:  # keyboard alone: N on Home opens Review, Tab reaches the name box
            self.page.goto(url)
            self.page.get_by_role("button", name="Start reviewing").wait_for(timeout=WAIT_MS)
            self.wait_idle()
            self.page.keyboard.press("n")
            box = self.page.get_by_label("Your name")
            box.wait_for(timeout=WAIT_MS)
            self.wait_idle()
            for _ in range(40):
                if box.evaluate("e => e === document.activeElement"):
                    break
                self.page.keyboard.press("Tab")
            self.page.keyboard.type(name)
        else:
            self.page.goto(f"{url}/Review")
            box = self.page.get_by_label("Your name")
            box.wait_for(timeout=WAIT_MS)
            self.wait_idle()
            box.fill(name)
        self.page.keyboard.press("Enter")  # submits the name (or sign-in) form
        with explained(self.page, f"{name}: no sample shown after signing in"):
            self.position_line().wait_for(timeout=WAIT_MS)
        self.wait_idle()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def position_line(self):
        return self.page.get_by_text(POSITION)

    def position(self) -> tuple[int, int]:
        """(sample id, place in queue) as the page shows them."""
        match = POSITION.match(self.position_line().inner_text(timeout=WAIT_MS))
        return int(match[1]), int(match[2].replace(",", ""))

    def wait_for_place(self, place: int) -> int:
        """Wait until the page shows the `place`-th sample of the queue; returns its id."""
        with explained(self.page, f"place {place:,} of the queue not shown"):
            line = self.page.get_by_text(re.compile(rf"^Sample \d+ · {place:,} of"))
            line.wait_for(timeout=WAIT_MS)
        return self.position()[0]

    def wait_idle(self) -> None:
        """Wait until the script run finished and every element of it is drawn: a key is
        pressed once its button is there, as a person would."""
        wait_ready(self.page, WAIT_MS)

    def key(self, key: str) -> None:
        self.page.bring_to_front()  # keys go to the focused tab, as for a person
        self.page.wait_for_function("document.hasFocus()", timeout=WAIT_MS)
        self.wait_idle()
        self.page.keyboard.press(key)

    def jump(self, sample_id: int) -> None:
        box = self.page.get_by_label("Jump to sample id")
        box.fill(str(sample_id))
        box.press("Enter")
        self.page.get_by_text(re.compile(rf"^Sample {sample_id} ·")).wait_for(timeout=WAIT_MS)
        box.blur()
        self.wait_idle()

    def close(self) -> None:
        self.context.close()


def reviews_by(db: Path, annotator: str) -> list[tuple[int, str, int | None]]:
    with Store(db) as store:
        rows = store.query(
            "SELECT sample_id, decision, candidate_id FROM reviews WHERE annotator = ? ORDER BY id",
            [annotator],
        )
    return [(r["sample_id"], r["decision"], r["candidate_id"] or None) for r in rows]


def hostile_sample_id(db: Path) -> int:
    with Store(db) as store:
        for sample in store.samples(store.dataset("demo").id):
            if "<script>" in sample.input:
                return sample.id
    raise AssertionError("the demo has no hostile sample")


@ON_BOTH
def test_diff_marks_and_keyboard_review_of_20_samples(server, browser):
    url, db = server
    reviewer = Reviewer(browser, url, "kb", from_home=True)
    try:
        page = reviewer.page
        page.locator("ins.rs-ins").first.wait_for(timeout=WAIT_MS)
        assert page.locator("ins.rs-ins").count() >= 1
        assert page.locator("del.rs-del").count() >= 1
        # Green insertions, struck-through deletions: the marks are styled, not just present.
        assert (
            page.locator("del.rs-del")
            .first.evaluate("e => getComputedStyle(e).textDecorationLine")
            .startswith("line-through")
        )
        sample_id, place = reviewer.position()
        keys = ["a", "x", "s", "o"] * 5
        for step, key in enumerate(keys, start=1):
            reviewer.key(key)
            next_id = reviewer.wait_for_place(place + step)
            # The decision is in SQLite by the time the next sample shows.
            saved = reviews_by(db, "kb")
            assert len(saved) == step
            assert saved[-1][:2] == (
                sample_id,
                {"a": "accept", "x": "reject", "s": "skip", "o": "accept"}[key],
            )
            sample_id = next_id
        decided = reviews_by(db, "kb")
        assert len({sid for sid, _, _ in decided}) == 20
        assert all(cid for _, decision, cid in decided[0::4])  # "a" took the shown candidate
        assert all(cid is None for _, _, cid in decided[3::4])  # "o" took the original
        assert reviewer.dialogs == []
    finally:
        reviewer.close()


def test_keys_are_inert_while_typing_and_notes_are_saved(server, browser):
    url, db = server
    reviewer = Reviewer(browser, url, "typist")
    try:
        sample_id, place = reviewer.position()
        note = reviewer.page.get_by_label("Note")
        note.click()
        note.type("a sox on xenon")  # a, s, o, x, n: every one a shortcut outside a field
        note.press("Enter")
        reviewer.page.wait_for_timeout(1500)
        assert reviewer.position() == (sample_id, place)
        assert reviews_by(db, "typist") == []
        note.blur()
        reviewer.key("x")
        reviewer.wait_for_place(place + 1)
        with Store(db) as store:
            review = store.reviews_for(sample_id)[-1]
        assert (review.annotator, review.decision, review.note) == (
            "typist",
            "reject",
            "a sox on xenon",
        )
    finally:
        reviewer.close()


def test_edit_flow_saves_and_accepts_a_new_version(server, browser):
    url, db = server
    reviewer = Reviewer(browser, url, "editor")
    try:
        sample_id, place = reviewer.position()
        reviewer.key("e")
        output = reviewer.page.get_by_label("Output")
        with explained(reviewer.page, "E did not open the edit form"):
            output.wait_for(timeout=WAIT_MS)
        # A person types once the form is drawn, not the instant its first field appears.
        # Text filled while the rest of the form's first draw was still loading was, in 2 of
        # 22 runs on a loaded machine, not what the submit sent: the saved edit was the text
        # the form opened with.
        reviewer.wait_idle()
        output.fill("An edited answer, checked by a person.")
        assert output.input_value() == "An edited answer, checked by a person."
        reviewer.page.get_by_role("button", name="Save edit and accept").click()
        reviewer.wait_for_place(place + 1)
        with Store(db) as store:
            state = store.state(sample_id)
            edit = store.candidate(state.candidate_id)
        assert (state.status, state.annotator, edit.kind) == ("edited", "editor", "edit")
        assert edit.output == "An edited answer, checked by a person."
        assert edit.parent_id is not None  # edited from the shown candidate
    finally:
        reviewer.close()


@pytest.mark.parametrize("mode", ["Diff", "Side by side", "Raw", "Markdown"])
def test_hostile_sample_stays_inert(server, browser, mode):
    url, db = server
    reviewer = Reviewer(browser, url, f"guard-{mode}")
    try:
        page = reviewer.page
        reviewer.jump(hostile_sample_id(db))
        page.locator('[data-testid="stButtonGroup"]').get_by_text(mode, exact=True).click()
        page.wait_for_timeout(500)
        reviewer.wait_idle()
        page.get_by_text("click me").first.wait_for(timeout=WAIT_MS)
        assert page.get_by_text("<script>alert('x')</script>").count() >= 1
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
        assert page.locator("script:text('alert')").count() == 0
        assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
        assert reviewer.dialogs == []
    finally:
        reviewer.close()


@ON_BOTH
def test_two_sessions_keep_all_their_decisions(server, browser):
    url, db = server
    first, second = Reviewer(browser, url, "ann"), Reviewer(browser, url, "bob")
    try:
        for _ in range(3):
            for reviewer, key in ((first, "a"), (second, "x")):
                place = reviewer.position()[1]
                reviewer.key(key)
                reviewer.wait_for_place(place + 1)
        ann, bob = reviews_by(db, "ann"), reviews_by(db, "bob")
        assert [d for _, d, _ in ann] == ["accept"] * 3
        assert [d for _, d, _ in bob] == ["reject"] * 3
    finally:
        first.close()
        second.close()


def test_screenshot_of_the_review_page(server, browser, tmp_path):
    url, db = server
    screenshot = screenshot_target("review.png", tmp_path)
    reviewer = Reviewer(browser, url, "Ada")
    try:
        with Store(db) as store:
            # A sample whose response reflection changes a short answer: a readable diff.
            # Position 44 (a wrong fact about the longest river), untouched by other tests.
            target = store.queue_ids(store.dataset("demo").id)[44]
        reviewer.jump(target)
        reviewer.page.locator("ins.rs-ins").first.wait_for(timeout=WAIT_MS)
        screenshot.parent.mkdir(exist_ok=True)
        reviewer.page.screenshot(path=str(screenshot))
        assert screenshot.stat().st_size > 20_000
    finally:
        reviewer.close()
