"""The Run and Dashboard pages in a real browser (Debian Chromium + Playwright vs streamlit run).

What AppTest cannot show: the Run page's job list updating by itself while a background job
runs (a polling fragment), the job surviving a page reload, and plotly charts drawing
untrusted names as text.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from appdata import build, decide
from browser_support import chromium, explained, streamlit_app, wait_ready
from conftest import screenshot_target
from oracle_server import OracleServer

from reflection.store import Store

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<img src=x onerror=alert(1)>"
SECRET = "sk-browser-SECRET-9191"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """streamlit run on a fresh database (60 samples, some decided): (url, db path)."""
    db = tmp_path_factory.mktemp("app_browser") / "app.db"
    with Store(db) as store:
        built = build(store, 60)
        decide(store, built, {1: ("accept", "response"), 2: ("reject", None)}, HOSTILE)
        picks = ("response", "instruction", None, "response")
        decide(store, built, {i: ("accept", picks[i % 4]) for i in range(4, 30)}, "ana")
        decide(store, built, {i: ("reject", None) for i in range(30, 36)}, "bob")
    with streamlit_app(db) as url:
        yield url, db


@pytest.fixture
def page(app):
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(60_000)  # page loads too, on a busy machine
        tab.dialogs = []
        tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
        yield tab


def progress_text(tab) -> str:
    bars = tab.locator("[data-testid='stProgress']")
    return bars.first.inner_text() if bars.count() else ""


def test_run_page_shows_live_progress_and_survives_a_reload(app, page):
    url, db = app
    with OracleServer(latency=0.4) as oracle:
        page.goto(f"{url}/Run")
        wait_ready(page, 60_000)  # fields typed into while the first run still draws are lost
        page.get_by_label("Endpoint (OpenAI-compatible base URL)").fill(oracle.base_url)
        page.get_by_label("Model").fill("fake-oracle")
        page.get_by_label("Concurrency").fill("1")
        page.get_by_role("textbox", name="API key (kept only in this session)").fill(SECRET)
        page.keyboard.press("Enter")
        page.get_by_text("First N").click()
        page.get_by_label("N", exact=True).fill("8")
        page.keyboard.press("Enter")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Start").click()
        seen = set()
        deadline = time.time() + 30
        while time.time() < deadline and len({s for s in seen if "running" in s}) < 2:
            seen.add(progress_text(page))
            page.wait_for_timeout(200)
        running = sorted(s for s in seen if "running" in s)
        assert len(running) >= 2, seen  # the list moved on by itself, no reload
        page.reload()
        # A new session still sees the job (waited for: a reload on a busy machine takes a while).
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stProgress]')]"
            ".some(e => e.innerText.includes('Job'))",
            timeout=60_000,
        )
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stProgress]')]"
            ".some(e => e.innerText.includes('done · 8/8'))",
            timeout=60_000,
        )
    with Store(db) as store:
        [job] = store.runs("job")
        inner = job.counters["run_id"]
        ids = store.sample_ids(1)
        made = [c for cs in store.candidates_for_samples(ids).values() for c in cs
                if c.run_id == inner]  # fmt: skip
        assert len(made) == 8
        store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for file in db.parent.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file


def test_dashboard_draws_charts_and_names_stay_text(app, page, tmp_path):
    url, _ = app
    page.set_viewport_size({"width": 1400, "height": 2600})  # the whole page in the screenshot
    page.goto(f"{url}/Dashboard")
    # A session's first chart waits for Plotly's code (~4.7 MB) to load and run: 10-18 s on an
    # idle 2-core machine here, several times that on a busy one.
    with explained(page, "the Dashboard drew no chart"):
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    page.wait_for_timeout(1500)
    assert page.locator(".js-plotly-plot").count() >= 7
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator(".js-plotly-plot img").count() == 0  # the name did not become markup
    assert page.locator(".js-plotly-plot").get_by_text(HOSTILE).count() >= 1
    assert page.dialogs == []
    page.screenshot(path=str(screenshot_target("dashboard.png", tmp_path)), full_page=True)


def test_sidebar_navigation_names_home_and_follows_the_work(app, page):
    url, _ = app
    page.goto(url)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_role("link", name="Home").wait_for(timeout=60_000)
    assert page.locator("[data-testid='stSidebarNav']").count() == 0  # Streamlit's own is off
    links = [text.strip() for text in sidebar.get_by_role("link").all_inner_texts()]
    labels = [text.split("\n")[-1].strip() for text in links]
    assert labels == [
        "Home",
        "Import",
        "Review",
        "Bulk",
        "Dashboard",
        "Run",
        "Export",
        "Assign",
        "Adjudicate",
    ], links
    sidebar.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").first.wait_for(timeout=60_000)
    assert page.url.rstrip("/").endswith("/Dashboard")
    sidebar.get_by_role("link", name="Home").click()
    page.get_by_role("heading", name="Reflection Studio").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
