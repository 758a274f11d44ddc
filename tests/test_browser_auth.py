"""Sign-in in a real browser: built-in accounts and OIDC, the refusal for each role on each
page, and nothing for a visitor who is not signed in.

The app is started the way a team starts it, `reflection app --secrets secrets.toml`, on a
demo store with one account per role. OIDC runs end to end against a real provider on
127.0.0.1 (the `oidc-provider-mock` package, in a thread of this process): Chromium presses
"Sign in with single sign-on", the provider's form asks who, and Streamlit's own callback
sets its identity cookie. Nothing is mocked inside the app.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import chromium, demo_store, free_port, wait_healthy, wait_ready

from reflection.store import Store
from reflection.team import accounts, sessions

playwright_api = pytest.importorskip("playwright.sync_api")
oidc_mock = pytest.importorskip("oidc_provider_mock")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 60_000
PASSWORD = "correct horse battery"
USERS = {"ana": "admin", "rev": "reviewer", "vic": "viewer"}
OIDC_USER = "alice@example.com"  # a reviewer, signing in with the provider
# URL path, the action the page needs, and a text only the page itself shows.
PAGES = [
    ("", "read", "Next step"),
    ("Review", "read", "Version shown beside the original"),
    ("Dashboard", "read", "Scores before vs after reflection"),
    ("Bulk", "bulk", "Samples this rule decides now"),
    ("Run", "run", "Jobs"),
    ("Export", "export", "Write to a path on this machine"),
    ("Import", "import", "Import candidates"),
]


@contextlib.contextmanager
def reflection_app(
    db: Path | str, secrets: Path, port: int, *options: str, log_dir: Path | None = None
) -> Iterator[str]:
    """`reflection app` on 127.0.0.1:port; stopped with SIGTERM, as a supervisor would."""
    log_path = (log_dir or Path(db).parent) / "app.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reflection", "app", "--db", str(db), "--port", str(port),
             "--headless", "--secrets", str(secrets), *options],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, log_path, 90, "reflection app")
            yield url
        finally:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def write_secrets(path: Path, app_port: int, provider_port: int) -> Path:
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{os.urandom(24).hex()}"\n'
        'client_id = "reflection-studio-test"\n'
        'client_secret = "not-a-real-secret"\n'
        f'server_metadata_url = "http://localhost:{provider_port}'
        '/.well-known/openid-configuration"\n'
    )
    return path


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on localhost (any client id, any user)."""
    with oidc_mock.run_server_in_thread(port=0) as running:
        yield running.server_port


@pytest.fixture(scope="module")
def server(tmp_path_factory, provider, request):
    """(app URL, database) with accounts for every role and OIDC configured."""
    folder = tmp_path_factory.mktemp("auth-browser")
    db = demo_store(folder, getattr(request, "param", "sqlite"), request)
    with Store(db) as store:
        for name, role in USERS.items():
            accounts.add_user(store, name, role, actor="test", password=PASSWORD)
        accounts.add_user(store, OIDC_USER, "reviewer", actor="test", oidc=True)
    port = free_port()
    secrets = write_secrets(folder / "secrets.toml", port, provider)
    with reflection_app(db, secrets, port, log_dir=folder) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def new_context(browser):
    """A fresh browser profile whose waits, page loads included, allow a busy machine."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(WAIT_MS)
    return context


@pytest.fixture
def page(browser):
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_idle(page) -> None:
    wait_ready(page, WAIT_MS)  # run over, every element drawn: a key finds its button


def sign_in(page, url: str, name: str, path: str = "") -> None:
    page.goto(f"{url}/{path}")
    page.get_by_label("Name").wait_for(timeout=WAIT_MS)
    wait_idle(page)  # text typed into a form still drawing can be lost
    page.get_by_label("Name").fill(name)
    page.locator('input[type="password"]').fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=WAIT_MS)
    wait_idle(page)


def body(page) -> str:
    return page.locator("body").inner_text()


def reviews(db: Path) -> list[tuple[str, str]]:
    with Store(db) as store:
        ids = store.sample_ids(store.datasets()[0].id)
        return [(r.decision, r.annotator) for i in ids for r in store.reviews_for(i)]


def wait_for_review(db: Path, annotator: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(who == annotator for _, who in reviews(db)):
            return
        time.sleep(0.2)
    pytest.fail(f"no review by {annotator}: {reviews(db)}")


@pytest.mark.parametrize(("path", "action", "marker"), PAGES, ids=lambda v: v or "Home")
def test_a_visitor_who_is_not_signed_in_sees_only_the_sign_in_form(server, page, path, action, marker):  # fmt: skip
    url, _ = server
    page.goto(f"{url}/{path}")
    page.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    text = body(page)
    for secret in (marker, "demo", "Samples", "Database", "Instruction", "Dataset"):
        assert secret not in text, secret
    hrefs = [link.get_attribute("href") or "" for link in page.get_by_role("link").all()]
    assert [h for h in hrefs if not h.startswith("#")] == [], hrefs  # no navigation either
    assert page.get_by_role("button", name="Deploy").count() == 0


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_sign_in_with_a_built_in_account_and_decide(server, page):
    url, db = server
    sign_in(page, url, "rev")
    text = body(page)
    assert "Next step" in text and "samples wait for a decision" in text, text
    assert "Deploy" not in text  # Streamlit's developer toolbar is hidden
    links = [link.inner_text() for link in page.get_by_role("link").all()]
    assert [link for link in links if link in ("Bulk", "Run", "Export", "Import")] == []
    page.get_by_role("link", name="Review", exact=True).first.click()
    page.get_by_role("button", name="Accept original").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert "Your name" not in body(page)  # the reviewer is the account, not a typed name
    page.get_by_role("button", name="Accept original").click()
    wait_for_review(db, "rev")
    with Store(db) as store:
        assert store.audit_events(action="signin", actor="rev")[-1].detail == {"method": "password"}


@pytest.mark.parametrize("user", list(USERS))
def test_the_refusal_for_each_role_on_each_page(server, browser, user):
    """Signed in once (on the first page's own address), the account opens every page by its
    address: each load is a new Streamlit session, so each page checks the role itself."""
    url, _ = server
    role = USERS[user]
    context = new_context(browser)
    try:
        page = context.new_page()
        for n, (path, action, marker) in enumerate(PAGES):
            if n == 0:
                sign_in(page, url, user, path)
            else:
                page.goto(f"{url}/{path}")
                page.get_by_text(f"Signed in as {user}").wait_for(timeout=WAIT_MS)
                wait_idle(page)
            page.wait_for_timeout(500)
            text = body(page)
            if action == "read" or role == "admin":
                assert "Refused" not in text, (path, text[:400])
                page.get_by_text(marker).first.wait_for(timeout=WAIT_MS)
            else:
                assert f"Refused: {user} ({role}) may not" in text, (path, text[:400])
                assert marker not in text
    finally:
        context.close()


def test_a_built_in_sign_in_survives_a_reload_and_a_new_tab_until_it_ends(server, browser):
    url, db = server
    context = new_context(browser)
    try:
        page = context.new_page()
        sign_in(page, url, "vic", "Dashboard")

        def signed_in(tab, path: str) -> None:
            tab.goto(f"{url}/{path}")
            tab.get_by_text("Signed in as vic").wait_for(timeout=WAIT_MS)
            wait_idle(tab)
            assert tab.get_by_label("Password").count() == 0

        def sign_in_form(tab, path: str) -> str:
            tab.goto(f"{url}/{path}")
            tab.locator('input[type="password"]').wait_for(timeout=WAIT_MS)
            wait_idle(tab)
            text = body(tab)
            for secret in ("Signed in as", "Instruction", "Samples", "demo", "Next step"):
                assert secret not in text, secret
            return text

        page.reload()
        page.get_by_text("Signed in as vic").wait_for(timeout=WAIT_MS)
        signed_in(context.new_page(), "Review")  # a new tab
        [kept] = [c for c in context.cookies() if c["name"].startswith("reflection_session_")]
        assert (kept["sameSite"], kept["expires"]) == ("Strict", -1)  # gone with the browser
        assert PASSWORD not in str(context.cookies())
        # Idle for longer than the idle time (its last activity moved back an hour).
        with Store(db) as store, store.transaction():
            store.conn.execute(
                "UPDATE sessions SET last_seen = last_seen - 3601 WHERE token_hash = ?",
                [sessions.token_hash(kept["value"])],
            )
        assert "Signed out after 60 minutes without activity" in sign_in_form(page, "")
        # Signed in again, then out: a reload and a new tab see only the sign-in form.
        sign_in(page, url, "vic", "Dashboard")
        signed_in(page, "Review")
        page.get_by_role("button", name="Sign out").click()
        page.locator('input[type="password"]').wait_for(timeout=WAIT_MS)
        wait_idle(page)
        assert [c for c in context.cookies() if c["name"].startswith("reflection_")] == []
        sign_in_form(page, "Review")
        sign_in_form(context.new_page(), "Dashboard")
    finally:
        context.close()


def oidc_sign_in(page, url: str, who: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    # The provider's own page: who signs in.
    page.locator('input[name="sub"]').wait_for(timeout=WAIT_MS)
    assert page.url.startswith("http://localhost:")
    page.locator('input[name="sub"]').fill(who)
    page.get_by_role("button", name="Authorize").click()


def test_sign_in_with_the_oidc_provider(server, page):
    url, db = server
    oidc_sign_in(page, url, OIDC_USER)
    page.get_by_text(f"Signed in as {OIDC_USER}").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    assert page.url.startswith(url)
    assert "samples wait for a decision" in body(page)
    # The identity cookie carries the sign-in to a new session on another page.
    page.goto(f"{url}/Bulk")
    page.get_by_text("Refused:").wait_for(timeout=WAIT_MS)
    assert f"Refused: {OIDC_USER} (reviewer) may not decide samples in bulk" in body(page)
    page.goto(f"{url}/Review")
    page.get_by_role("button", name="Accept original").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    page.get_by_role("button", name="Accept original").click()
    wait_for_review(db, OIDC_USER)
    with Store(db) as store:
        methods = {e.detail.get("method") for e in store.audit_events(actor=OIDC_USER)}
        assert methods == {"oidc"}
    # Signing out drops the identity cookie and ends the provider's session (its page asks
    # to confirm), then comes back: the next visit sees the sign-in form again.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click(timeout=WAIT_MS)
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=WAIT_MS)
    page.goto(f"{url}/Review")
    page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=WAIT_MS)
    assert "Version shown" not in body(page)


def test_an_oidc_identity_without_a_role_sees_nothing(server, page):
    url, db = server
    oidc_sign_in(page, url, "mallory@example.com")
    page.get_by_text("no role in this app").wait_for(timeout=WAIT_MS)
    wait_idle(page)
    text = body(page)
    assert "mallory@example.com: no role in this app" in text
    assert "Next step" not in text and "demo" not in text
    with Store(db) as store:
        [event] = store.audit_events(actor="mallory@example.com")
        assert (event.action, event.detail) == ("signin_failed", {"reason": "no role"})


def test_an_idle_oidc_session_is_signed_out_in_this_tab_and_the_next(tmp_path, provider, page):
    # Its own server, with a 15-second idle time (shorter would race a slow sign-in).
    db = tmp_path / "idle.db"
    with Store(db) as store:
        accounts.add_user(store, OIDC_USER, "viewer", actor="test", oidc=True)
    port = free_port()
    secrets = write_secrets(tmp_path / "secrets.toml", port, provider)
    with reflection_app(db, secrets, port, "--session-idle", "0.25") as url:
        oidc_sign_in(page, url, OIDC_USER)
        page.get_by_text(f"Signed in as {OIDC_USER}").wait_for(timeout=WAIT_MS)
        wait_idle(page)
        page.wait_for_timeout(17_000)
        # The next click in this tab finds the session idle: signed out, cookie dropped.
        page.get_by_role("link", name="Dashboard").first.click()  # a new run of this session
        page.get_by_role("button", name="End session").click(timeout=WAIT_MS)
        page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=WAIT_MS)
        # A new tab with a fresh sign-in, left idle, then opened again: the cookie alone
        # does not let it back in.
        oidc_sign_in(page, url, OIDC_USER)
        page.get_by_text(f"Signed in as {OIDC_USER}").wait_for(timeout=WAIT_MS)
        page.wait_for_timeout(17_000)
        page.goto(url)
        page.get_by_role("button", name="End session").click(timeout=WAIT_MS)
        page.get_by_role("button", name="Sign in with single sign-on").wait_for(timeout=WAIT_MS)
        assert "Signed in as" not in body(page)


def test_a_key_on_the_review_page_after_the_idle_time_signs_out(tmp_path, provider, page, request):
    """A key reruns only the sample's part of the Review page (a fragment), not the page's
    first line, so the fragment checks the sign-in itself: a key pressed after the idle time
    shows the signed-out page, not the next sample, and decides nothing."""
    db = demo_store(tmp_path, "sqlite", request)
    with Store(db) as store:
        accounts.add_user(store, "rev", "reviewer", actor="test", password=PASSWORD)
    port = free_port()
    secrets = write_secrets(tmp_path / "secrets.toml", port, provider)
    with reflection_app(db, secrets, port, "--session-idle", "0.25") as url:
        sign_in(page, url, "rev", "Review")
        line = page.get_by_text("in queue ·")
        line.wait_for(timeout=WAIT_MS)
        first = line.inner_text()
        page.keyboard.press("n")  # a key within the idle time moves on
        page.wait_for_function(
            "t => !document.body.innerText.includes(t)", arg=first, timeout=WAIT_MS
        )
        wait_idle(page)
        page.wait_for_timeout(17_000)
        page.keyboard.press("a")  # past it: refused, and the sign-in form instead
        page.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=WAIT_MS)
        assert "in queue ·" not in body(page)
        assert reviews(db) == []
