"""The Import & spot-check page in a real browser: Debian's Chromium driven by Playwright
against `streamlit run app.py` on a free port with an empty temporary database.

A real upload through the file input, the candidates in SQLite afterwards, a spot-check
created from the form, its estimate and narrowing chart once reviews exist, and a hostile
spot-check name shown as text."""

from __future__ import annotations

import json

import pytest
from browser_support import chromium, streamlit_app, wait_ready

from reflection import Review, Store
from reflection.review.spotcheck import report, spotcheck_queue

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 60_000
HOSTILE = "<img src=x onerror=window.__pwned=1>"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Streamlit server on an empty database: (base url, database path)."""
    db = tmp_path_factory.mktemp("browser_import") / "empty.db"
    Store(db).close()
    with streamlit_app(db) as url:
        yield url, db


@pytest.fixture(scope="module")
def page(server):
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1300, "height": 1200})
        tab.set_default_timeout(WAIT_MS)
        yield tab


def test_upload_spotcheck_and_estimate_in_a_browser(server, page, alpaca_records):
    url, db = server
    records = [{**r, "better_answer": r["output"] + " Explained further."} for r in alpaca_records]
    payload = json.dumps(records[:200]).encode()
    page.goto(f"{url}/Import")
    page.get_by_text("Import & spot-check").first.wait_for()
    page.locator("input[type=file]").set_input_files(
        {"name": "reflected.json", "mimeType": "application/json", "buffer": payload}
    )
    page.get_by_text("reflected.json").first.wait_for()
    wait_ready(page, WAIT_MS)  # the upload reruns the page: type after that run has drawn
    dataset = page.get_by_role("textbox", name="Dataset")
    dataset.fill("alpaca")
    dataset.press("Enter")
    playwright_api.expect(dataset).to_have_value("alpaca")
    page.get_by_role("button", name="Import candidates").click()
    page.get_by_text("200 candidates added; 200 originals added").wait_for()
    with Store(db) as store:
        ds = store.dataset("alpaca")
        first = next(store.samples(ds.id))
        [candidate] = store.candidates_for(first.id)
        assert candidate.origin["file"] == "reflected.json"
        assert candidate.output == first.output + " Explained further."

    page.get_by_role("tab", name="Spot-check").click()
    page.get_by_role("button", name="Create spot-check").wait_for()  # the form is drawn
    # The tab's change reruns the page: text typed while that run is still drawing is lost
    # when the form is drawn again (CI saw the spot-check made under the default name).
    wait_ready(page, WAIT_MS)
    name = page.get_by_role("textbox", name="Name")
    name.fill(HOSTILE)
    name.press("Tab")  # leave the field before the click, as a person would
    playwright_api.expect(name).to_have_value(HOSTILE)
    page.get_by_role("button", name="Create spot-check").click()
    page.get_by_text("Spot-check created: 50 drawn of 200.").wait_for()
    with Store(db) as store:
        ids = spotcheck_queue(store, HOSTILE)
        for i, sid in enumerate(ids[:20]):
            cid = store.candidates_for(sid)[0].id
            store.add_review(Review(sid, "reject") if i % 5 == 0 else Review(sid, "accept", cid))
        sentence = report(store, HOSTILE).overall.sentence()

    page.reload()
    page.get_by_role("tab", name="Spot-check").click()
    page.get_by_text(sentence).wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.get_by_text(f"{HOSTILE} · seed 0 · not stratified").count() == 1
    assert page.evaluate("window.__pwned") is None
