"""What the browser tests share: a `streamlit run` of the app on a database, and Debian's
Chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(
    url: str,
    process: subprocess.Popen,
    log: Path | Callable[[], str],
    timeout: float,
    what: str,
) -> None:
    """Wait until the Streamlit server at `url` answers its health check; fail the test with
    the end of its output (a log file, or a function giving it) if `process` exits or
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = log.read_text() if isinstance(log, Path) else log()
            pytest.fail(f"{what} did not start: {output[-3000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def streamlit_app(
    db: Path | str,
    timeout: float = 60,
    launcher: Path | None = None,
    log_dir: Path | None = None,
    script: Path = ROOT / "app.py",
) -> Iterator[str]:
    """The app served on 127.0.0.1 with REFLECTION_DB=db (a SQLite file or a PostgreSQL URL);
    yields its base URL. `launcher`: a script to run instead of `-m streamlit` (one that
    patches the app first). The server's output goes to `log_dir` (default: the file's
    folder). `script`: another Streamlit script to serve the same way (a benchmark's floor)."""
    port = free_port()
    log_path = (log_dir or Path(db).parent) / "streamlit.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, *([str(launcher)] if launcher else ["-m", "streamlit"]),
             "run", str(script),
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env={**os.environ, "REFLECTION_DB": str(db)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log_path, timeout, "streamlit")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Debian Chromium browser (Playwright's Browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def demo_store(folder: Path, backend: str, request: pytest.FixtureRequest) -> Path | str:
    """The demo store built in `folder`; on PostgreSQL, copied whole into a fresh database
    of the session's throw-away cluster (as `reflection migrate` does), whose URL is returned."""
    from reflection import Store
    from reflection.demo import build_demo
    from reflection.store.copy import copy_store

    path = folder / "demo.db"
    build_demo(path)
    if backend == "sqlite":
        return path
    url: str = request.getfixturevalue("pg_cluster").new_database()
    with Store(path) as built, Store(url) as copy:
        copy_store(built, copy)
    return url


# A page is ready for a person's key when its script run is over AND every element of the
# run is drawn. Streamlit draws most widgets (buttons among them) through lazily loaded
# components: until a component's code has loaded and run, its element is a placeholder
# (data-testid="stSkeleton") and its keyboard shortcut is not bound yet. On a slow or busy
# machine that lasts seconds after the run ended, while plain text (the position line) is
# already there: a key pressed then does nothing, as a click on a button not yet drawn would.
READY = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stSkeleton"]');
}"""


def wait_ready(page, timeout_ms: int) -> None:
    """Wait until the page's run is over and all its elements are drawn (see READY), then a
    moment for React to bind the new buttons' shortcuts."""
    with explained(page, "the page did not settle"):
        page.wait_for_function(READY, timeout=timeout_ms, polling=100)
    page.wait_for_timeout(300)


def page_report(page) -> str:
    """What a page shows, for a failed wait's message: address, run state, placeholders
    still drawn, and the start of its text."""
    try:
        state = page.evaluate(
            """() => [document.querySelector('[data-testid="stApp"]')
                        ?.getAttribute('data-test-script-state'),
                      document.querySelectorAll('[data-testid="stSkeleton"]').length,
                      document.body ? document.body.innerText : '']"""
        )
    except Exception as exc:  # a closed or crashed page: say so rather than hide the wait
        return f"{page.url}: could not be read ({exc})"
    run, placeholders, text = state
    return f"{page.url} (run: {run}, placeholders: {placeholders}):\n{text[:1500]}"


@contextlib.contextmanager
def explained(page, what: str, log: Path | None = None) -> Iterator[None]:
    """Turn a timed-out wait on `page` into a failure that shows what the page held (and the
    end of the server's log, if given): a CI log then tells a slow page from a wrong one."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        yield
    except PlaywrightTimeout as exc:
        server = f"\n--- server log:\n{log.read_text()[-2000:]}" if log and log.exists() else ""
        pytest.fail(f"{what}: {exc}\n--- page: {page_report(page)}{server}")
