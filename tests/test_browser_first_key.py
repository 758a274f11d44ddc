"""Every key counts: the first press, as soon as the first sample shows, is not lost.

On a store of a million samples one press in about eight sessions was lost: the first A
after typing a name and pressing Enter, while the page's first draw was still going. Here
the first draw is made slow on purpose (tests/slow_draw_app.py) and A is pressed once, the
moment the first sample's line appears; the review must reach the database.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browser_support import chromium, streamlit_app, wait_ready

from reflection import Store

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
POSITION = re.compile(r"^Sample (\d+) · ([\d,]+) of")
WAIT_S = 60


def _reviews(db: Path, annotator: str) -> list[tuple[int, str, int]]:
    with Store(db) as store:
        rows = store.query(
            "SELECT sample_id, decision, candidate_id FROM reviews WHERE annotator = ?",
            [annotator],
        )
    return [(r["sample_id"], r["decision"], r["candidate_id"]) for r in rows]


@pytest.mark.parametrize("submit", ["enter", "click"])
def test_the_first_key_after_the_name_form_is_not_lost(tmp_path, submit):
    demo = pytest.importorskip("reflection.demo")
    db = tmp_path / "demo.db"
    demo.build_demo(db)
    name = f"first-{submit}"
    with (
        streamlit_app(db, launcher=ROOT / "tests" / "slow_draw_app.py") as url,
        chromium() as browser,
    ):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Review")
        box = page.get_by_label("Your name")
        box.wait_for(timeout=WAIT_S * 1000)
        wait_ready(page, WAIT_S * 1000)  # the name form drawn whole: the race is after it
        box.fill(name)
        if submit == "enter":
            box.press("Enter")
        else:
            page.get_by_role("button", name="Start reviewing").click()
        line = page.get_by_text(POSITION)
        line.wait_for(timeout=WAIT_S * 1000)
        page.keyboard.press("a")  # at once: the draw is still going
        sample_id = int(POSITION.match(line.inner_text())[1])
        deadline = time.monotonic() + WAIT_S
        while not _reviews(db, name) and time.monotonic() < deadline:
            time.sleep(0.2)
        saved = _reviews(db, name)
        assert len(saved) == 1, "the first press was lost"
        assert saved[0][:2] == (sample_id, "accept") and saved[0][2], saved
