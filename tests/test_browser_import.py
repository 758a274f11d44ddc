"""The Import & spot-check page in a real browser: Debian's Chromium driven by Playwright
against `streamlit run app.py` on a free port with an empty temporary database.

A real upload through the file input, the candidates in SQLite afterwards, a spot-check
created from the form, its estimate and narrowing chart once reviews exist, and a hostile
spot-check name shown as text."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reflection import Review, Store
from reflection.spotcheck import report, spotcheck_queue

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WAIT_MS = 30_000
HOSTILE = "<img src=x onerror=window.__pwned=1>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Streamlit server on an empty database: (base url, database path)."""
    db = tmp_path_factory.mktemp("browser_import") / "empty.db"
    Store(db).close()
    port = _free_port()
    log_path = db.parent / "streamlit.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env={**os.environ, "REFLECTION_DB": str(db)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                        if reply.read() == b"ok":
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start: {log_path.read_text()}")
                time.sleep(0.3)
            yield url, db
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def page(server):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = chromium.new_page(viewport={"width": 1300, "height": 1200})
        tab.set_default_timeout(WAIT_MS)
        yield tab
        chromium.close()


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
    dataset = page.get_by_role("textbox", name="Dataset")
    dataset.fill("alpaca")
    dataset.press("Enter")
    page.get_by_role("button", name="Import candidates").click()
    page.get_by_text("200 candidates added; 200 originals added").wait_for()
    with Store(db) as store:
        ds = store.dataset("alpaca")
        first = next(store.samples(ds.id))
        [candidate] = store.candidates_for(first.id)
        assert candidate.origin["file"] == "reflected.json"
        assert candidate.output == first.output + " Explained further."

    page.get_by_role("tab", name="Spot-check").click()
    name = page.get_by_role("textbox", name="Name")
    name.fill(HOSTILE)
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
