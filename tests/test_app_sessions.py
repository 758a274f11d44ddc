"""A built-in sign-in survives a reload and a new tab, and ends where it should.

The library first (team.sessions on a real store, its clock passed in), then the app with
AppTest: a "reload" is a new AppTest session whose browser sends the cookie the first one was
told to keep (AppTest cannot send cookies, so Streamlit's per-session client context is
replaced by one that carries it; everything after reading it is the app's own code).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import test_app_auth
from test_app_auth import PASSWORD, app, sign_in, texts

from reflection.store import Store
from reflection.team import accounts, sessions
from reflection.ui import cookie

IDLE_S = 600.0
# The app tests' store (a dataset and one account per role) and its module-scoped template.
db, template = test_app_auth.db, test_app_auth.template


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "sessions.db") as opened:
        accounts.add_user(opened, "rev", "reviewer", actor="test", password=PASSWORD)
        yield opened


def test_a_session_is_kept_by_its_hash_and_resumed_until_idle(store):
    token = sessions.start_session(store, "rev", clock=lambda: 1000.0)
    [row] = store.query("SELECT * FROM sessions")
    assert row["token_hash"] == sessions.token_hash(token) != token
    assert token not in str(row) and PASSWORD not in str(row)
    assert cookie.valid_token(token)
    resumed = sessions.resume_session(store, token, IDLE_S, clock=lambda: 1000.0 + IDLE_S)
    assert resumed.account is not None and resumed.account.name == "rev"
    # Activity was written (older than the touch interval), so the idle time starts again.
    assert store.session(sessions.token_hash(token)).last_seen == 1000.0 + IDLE_S
    later = sessions.resume_session(store, token, IDLE_S, clock=lambda: 1000.0 + 2 * IDLE_S)
    assert later.account is not None
    expired = sessions.resume_session(store, token, IDLE_S, clock=lambda: 1000 + 3.1 * IDLE_S)
    assert (expired.account, expired.reason) == (None, "expired")
    assert store.query("SELECT * FROM sessions") == []  # an idle session is forgotten
    assert sessions.resume_session(store, token, IDLE_S).reason == "unknown"
    assert sessions.resume_session(store, "forged" * 8, IDLE_S).reason == "unknown"


def test_activity_is_written_at_most_every_touch_interval(store):
    token = sessions.start_session(store, "rev", clock=lambda: 1000.0)
    sessions.resume_session(store, token, IDLE_S, clock=lambda: 1030.0)
    assert store.session(sessions.token_hash(token)).last_seen == 1000.0  # 30 s < 60 s
    sessions.resume_session(store, token, IDLE_S, clock=lambda: 1061.0)
    assert store.session(sessions.token_hash(token)).last_seen == 1061.0


# What each change ends, of two sessions of rev; ana's session is never touched.
CHANGES = {
    "sign-out": (lambda store, tokens: sessions.end_session(store, tokens[0]), {0}),
    "password-reset": (
        lambda store, _: accounts.reset_password(store, "rev", "a new password!", actor="ana"),
        {0, 1},
    ),
    "removal": (lambda store, _: accounts.remove_user(store, "rev", actor="ana"), {0, 1}),
    # The role is read from the account on every run, never kept with the session.
    "role-change": (lambda store, _: accounts.set_role(store, "rev", "viewer", actor="ana"), set()),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_what_ends_a_session(store, change):
    act, ends = CHANGES[change]
    accounts.add_user(store, "ana", "admin", actor="test", password=PASSWORD)
    tokens = [sessions.start_session(store, "rev") for _ in range(2)]
    other = sessions.start_session(store, "ana")
    act(store, tokens)
    alive = {n for n, t in enumerate(tokens) if sessions.resume_session(store, t, IDLE_S).account}
    assert alive == {0, 1} - ends
    assert sessions.resume_session(store, other, IDLE_S).account is not None


# --- the app -----------------------------------------------------------------------------------


def kept_token(at) -> str:
    """The token the page told the browser to keep in its cookie."""
    scripts = [h.proto.body for h in at.get("html") if "document.cookie" in h.proto.body]
    [script] = [s for s in scripts if "Max-Age=0" not in s]
    match = re.search(r"reflection_session_\w+=([\w-]+); Path=/; SameSite=Strict'", script)
    assert match, script
    return match[1]


@pytest.fixture
def browser_cookie(monkeypatch, db):
    """Set the cookie the next new session's browser sends."""
    import streamlit.runtime.context as context

    sent: dict[str, str] = {}
    client = SimpleNamespace(cookies=sent, headers={})
    monkeypatch.setattr(context, "_get_client_context", lambda: client)

    def send(token: str) -> None:
        sent.clear()
        sent[cookie.cookie_name(db)] = token

    return send


def test_a_reload_and_a_new_tab_stay_signed_in(db, browser_cookie):
    first = sign_in(app("pages/1_Review.py"), "rev", PASSWORD)
    token = kept_token(first)
    assert PASSWORD not in str([h.proto.body for h in first.get("html")])
    with Store(db) as store:
        [row] = store.query("SELECT token_hash, account FROM sessions")
        assert (row["token_hash"], row["account"]) == (sessions.token_hash(token), "rev")
    browser_cookie(token)
    for page in ("pages/1_Review.py", "pages/3_Dashboard.py"):  # a reload, a new tab
        at = app(page)
        assert not at.exception
        assert "Signed in as **rev** · reviewer" in [m.value for m in at.sidebar.markdown]
        assert not [t for t in at.text_input if t.label == "Password"]
    with Store(db) as store:
        assert len(store.audit_events(action="signin")) == 1  # resumed, not signed in again


def test_after_sign_out_a_reload_shows_only_the_sign_in_form(db, browser_cookie):
    tab = sign_in(app("app.py"), "rev", PASSWORD)
    token = kept_token(tab)
    browser_cookie(token)
    other = app("pages/1_Review.py")  # a second tab on the same sign-in
    assert "Signed in as" in texts(other)
    tab.button(key="_sign_out").click().run()
    assert [t.label for t in tab.text_input] == ["Name", "Password"]
    # The page drops the cookie, if it still holds this token (another tab may hold a newer).
    [forget] = [h.proto.body for h in tab.get("html")]
    assert f"={token}') >= 0" in forget and "Max-Age=0" in forget
    # The other tab is signed out on its next run, and a reload with the old cookie too.
    other.run()
    assert [w.value for w in other.warning] == ["You were signed out: sign in again."]
    reloaded = app("pages/1_Review.py")
    assert [t.label for t in reloaded.text_input] == ["Name", "Password"]
    assert not reloaded.get("metric") and "Instruction" not in texts(reloaded)
    assert not reloaded.warning  # a dead cookie is no news


def test_an_idle_cookie_leads_to_the_sign_in_form(db, browser_cookie, monkeypatch):
    monkeypatch.setenv("REFLECTION_SESSION_IDLE", "5")
    with Store(db) as store:
        token = sessions.start_session(store, "rev", clock=lambda: 0.0)
    browser_cookie(token)
    at = app("pages/3_Dashboard.py")
    assert [w.value for w in at.warning] == [
        "Signed out after 5 minutes without activity: sign in again."
    ]
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert not at.get("metric") and "Instruction" not in texts(at)
    with Store(db) as store:
        assert store.query("SELECT * FROM sessions") == []


@pytest.mark.parametrize("sent", ["", "x" * 43, "<script>alert(1)</script>" + "a" * 40])
def test_a_missing_forged_or_hostile_cookie_signs_nobody_in(db, browser_cookie, sent):
    browser_cookie(sent)
    at = app("pages/1_Review.py")
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert "alert" not in str([h.proto.body for h in at.get("html")])
