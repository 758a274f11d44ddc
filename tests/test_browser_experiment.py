"""A prompt experiment reviewed in a real browser: nothing on the page names a template."""

from __future__ import annotations

import re

import pytest
from browser_support import chromium, streamlit_app, wait_ready
from test_experiment_app import build_experiment_db

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 30_000


def test_review_page_is_blind_in_the_browser(tmp_path):
    db, ids = build_experiment_db(tmp_path)
    with streamlit_app(db) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/Review")
        box = page.get_by_label("Your name")
        box.wait_for(timeout=WAIT_MS)
        wait_ready(page, WAIT_MS)  # text typed into a form still drawing can be lost
        box.fill("ann")
        page.keyboard.press("Enter")
        seen = set()
        for _ in ids:
            line = page.get_by_text(re.compile(r"^Sample \d+ · "))
            line.wait_for(timeout=WAIT_MS)
            page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
                timeout=WAIT_MS
            )
            sample = line.inner_text()
            assert sample not in seen
            seen.add(sample)
            text = page.locator("body").inner_text()
            picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Version shown")
            assert "Version A" in picker.inner_html(), picker.inner_html()[:2000]
            assert "terse" not in text and "thorough" not in text
            assert "terse" not in page.content() and "thorough" not in page.content()
            page.get_by_role("button", name="Next").click()
            page.get_by_text(re.compile(r"^Sample \d+ · ")).filter(
                has_not_text=sample.split(" · ")[0]
            ).or_(page.get_by_text("Queue finished")).first.wait_for(timeout=WAIT_MS)
