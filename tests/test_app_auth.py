"""Sign-in and roles in the app, with AppTest on a real store: what each page shows and
refuses, and what a replayed click writes (nothing).

The sign-in form itself is driven like a person would (name, password, Sign in); the role
tests start from a signed-in session (the keys the form sets), to cover every page quickly.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from appdata import build
from streamlit.testing.v1 import AppTest

from reflection.store import Store
from reflection.team import accounts, sessions

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["app.py", *(f"pages/{p.name}" for p in sorted((ROOT / "pages").glob("*.py")))]
NEEDS = {  # the action each page checks first
    "app.py": "read",
    "pages/1_Review.py": "read",
    "pages/2_Bulk.py": "bulk",
    "pages/3_Dashboard.py": "read",
    "pages/4_Run.py": "run",
    "pages/5_Export.py": "export",
    "pages/6_Import.py": "import",
    "pages/7_Assign.py": "assign",
    "pages/8_Adjudicate.py": "adjudicate",
}
USERS = {"ana": "admin", "rev": "reviewer", "vic": "viewer"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with the page tests' dataset and one account per role (hashed once)."""
    path = tmp_path_factory.mktemp("auth") / "template.db"
    with Store(path) as store:
        build(store, 12)
        for name, role in USERS.items():
            accounts.add_user(store, name, role, actor="test", password=PASSWORD)
    return path


@pytest.fixture
def db(template, tmp_path, monkeypatch):
    path = tmp_path / "app.db"
    shutil.copy(template, path)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    monkeypatch.delenv("REFLECTION_DATA_ROOTS", raising=False)
    monkeypatch.delenv("REFLECTION_SESSION_IDLE", raising=False)
    return path


def app(page: str, user: str | None = None, *, seen: float | None = None) -> AppTest:
    """The page, run by a session signed in as `user` (last active at `seen`), or by nobody."""
    at = AppTest.from_file(str(ROOT / page), default_timeout=60)
    if user:
        with Store(os.environ["REFLECTION_DB"]) as store:
            last = time.time() if seen is None else seen
            token = sessions.start_session(store, user, clock=lambda: last)
        at.session_state["_account"] = user
        at.session_state["_account_method"] = "password"
        at.session_state["_account_token"] = token
    return at.run()


def texts(at: AppTest) -> str:
    """Everything the page wrote, as one string."""
    parts = []
    for kind in ("title", "markdown", "caption", "error", "warning", "info", "success", "metric"):
        for element in at.get(kind):
            parts.append(str(getattr(element, "value", "")) + str(getattr(element, "label", "")))
    return " ".join(parts).replace("\\", "")  # flash messages come markdown-escaped


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="_signin_name").input(name)
    [box] = [t for t in at.text_input if t.label == "Password"]
    box.input(password)
    return at.button[0].click().run()


def reviews(path: Path) -> list[tuple[int, str, str]]:
    with Store(path) as store:
        return [
            (r.sample_id, r.decision, r.annotator)
            for i in store.sample_ids(store.datasets()[0].id)
            for r in store.reviews_for(i)
        ]


@pytest.mark.parametrize("page", PAGES)
def test_visitors_who_are_not_signed_in_see_only_the_sign_in_form(db, page):
    at = app(page)
    assert not at.exception
    assert [t.value for t in at.title] == ["Reflection Studio"]
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    # No dataset, no counts, no samples, no navigation, not even the database's name.
    assert not at.sidebar.children or not list(at.sidebar)
    for kind in ("metric", "dataframe", "selectbox", "json", "code", "caption", "markdown"):
        assert not at.get(kind), kind
    assert "Instruction" not in texts(at) and "demo" not in texts(at)


def test_sign_in_with_a_built_in_account_and_decide_under_its_name(db):
    at = sign_in(app("pages/1_Review.py"), "rev", PASSWORD)
    assert not at.exception
    assert not [t for t in at.text_input if t.label.startswith("Your name")]  # no name form
    assert "Signed in as **rev** · reviewer" in [m.value for m in at.sidebar.markdown]
    [accept] = [b for b in at.button if b.label == "Accept original"]
    accept.click().run()
    assert not at.exception
    assert [(decision, who) for _, decision, who in reviews(db)] == [("accept", "rev")]
    with Store(db) as store:
        assert [(e.actor, e.action) for e in store.audit_events(action="signin")] == [
            ("rev", "signin")
        ]


def test_a_wrong_password_is_refused_and_recorded(db):
    at = sign_in(app("app.py"), "rev", "not the password")
    assert [e.value for e in at.error] == ["Wrong name or password."]
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert not at.get("metric")
    with Store(db) as store:
        [event] = store.audit_events(action="signin_failed")
        assert (event.actor, event.detail["reason"]) == ("rev", "password")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("user", list(USERS))
def test_each_role_on_each_page(db, page, user):
    at = app(page, user)
    assert not at.exception
    role = USERS[user]
    refused = [e.value for e in at.error if e.value.startswith("Refused:")]
    if NEEDS[page] == "read" or role == "admin":
        assert refused == []
        assert "Signed in as" in " ".join(m.value for m in at.sidebar.markdown)
    else:
        assert len(refused) == 1
        assert refused[0].startswith(f"Refused: {user} ({role}) may not ")
        assert refused[0].endswith("that needs the role admin.")
        assert not at.get("metric") and not at.get("dataframe")


def test_a_viewer_replaying_a_decision_is_refused_and_nothing_is_written(db):
    at = app("pages/1_Review.py", "vic")
    buttons = {b.label: b for b in at.button}
    decisions = ["Accept candidate", "Accept original", "Reject", "Skip", "As suggested", "Undo"]
    assert all(buttons[label].disabled for label in decisions)
    assert not buttons["Next"].disabled  # reading on is allowed
    # The page a reviewer was sent, with its buttons live; the account is a viewer by the time
    # the click arrives: the callback checks the role then, and refuses.
    at = app("pages/1_Review.py", "rev")
    with Store(db) as store:
        accounts.set_role(store, "rev", "viewer", actor="test")
    [reject] = [b for b in at.button if b.label == "Reject"]
    reject.click().run()
    assert not at.exception
    assert [e.value.replace("\\", "") for e in at.error] == [
        "Refused: rev (viewer) may not decide samples; that needs the role reviewer or admin."
    ]
    assert reviews(db) == []
    with Store(db) as store:
        [event] = store.audit_events(action="refused")
        assert (event.actor, event.target, event.detail) == ("rev", "decide", {"role": "viewer"})


def test_a_role_taken_away_applies_to_the_next_click(db):
    at = app("pages/2_Bulk.py", "ana")
    assert at.metric[0].value != "0"
    with Store(db) as store:
        accounts.set_role(store, "ana", "viewer", actor="test")
    at.button(key="bulk_apply").click().run()
    assert "Refused: ana (viewer) may not decide samples in bulk" in texts(at)
    assert reviews(db) == []


def test_an_idle_session_is_signed_out(db):
    at = app("pages/3_Dashboard.py", "rev", seen=time.time() - 61 * 60)
    assert [w.value for w in at.warning] == [
        "Signed out after 60 minutes without activity: sign in again."
    ]
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert not at.get("metric")


def test_the_idle_time_is_a_setting(db, monkeypatch):
    monkeypatch.setenv("REFLECTION_SESSION_IDLE", "5")
    at = app("pages/3_Dashboard.py", "rev", seen=time.time() - 6 * 60)
    assert "after 5 minutes" in at.warning[0].value
    at = app("pages/3_Dashboard.py", "rev", seen=time.time() - 4 * 60)
    assert not at.warning and at.get("metric")


def test_a_removed_account_is_signed_out_at_once(db):
    at = app("pages/1_Review.py", "rev")
    with Store(db) as store:
        accounts.remove_user(store, "rev", actor="test")
    [accept] = [b for b in at.button if b.label == "Accept original"]
    accept.click().run()
    assert reviews(db) == []
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert "Your account was removed" in at.warning[0].value


def test_sign_out(db):
    at = app("app.py", "ana")
    at.button(key="_sign_out").click().run()
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert at.warning[0].value == "Signed out."
    with Store(db) as store:
        assert [e.action for e in store.audit_events(actor="ana")] == ["signout"]


@pytest.mark.parametrize(
    ("typed", "written", "message"),
    [
        ("curated.json", "curated.json", "Wrote "),
        ("sub/../curated.json", "curated.json", "Wrote "),
        ("../escape.json", None, "`..` leads out of the data roots"),
        ("/tmp/reflection-escape-test.json", None, "outside the data roots"),
        ("link/escape.json", None, "symbolic link leads out"),
    ],
)
def test_export_writes_only_inside_the_data_roots(db, tmp_path, typed, written, message):
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    at = app("pages/5_Export.py", "ana")
    before = {p.name for p in tmp_path.iterdir()}
    at.text_input(key="export_path").input(typed).run()
    at.button(key="export_write").click().run()
    assert message in texts(at)
    after = {p.name for p in tmp_path.iterdir()}
    assert after - before == ({written} if written else set())
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/reflection-escape-test.json").exists()


def test_import_reads_only_inside_the_data_roots(db, tmp_path, monkeypatch):
    roots = tmp_path / "roots"
    roots.mkdir()
    monkeypatch.setenv("REFLECTION_DATA_ROOTS", str(roots))
    secret = tmp_path / "secret.json"
    secret.write_text('[{"instruction": "x", "output": "y", "new_output": "z"}]')
    at = app("pages/6_Import.py", "ana")
    at.radio[0].set_value("Path on this machine").run()
    [path_box] = [t for t in at.text_input if t.label == "Path"]
    path_box.input(str(secret)).run()
    [go] = [b for b in at.button if b.label == "Import candidates"]
    go.click().run()
    assert "outside the data roots" in texts(at)
    with Store(db) as store:
        assert [d.name for d in store.datasets()] == ["demo"]


def test_without_accounts_the_app_stays_open_with_the_name_form(tmp_path, monkeypatch):
    path = tmp_path / "open.db"
    with Store(path) as store:
        build(store, 4)
    monkeypatch.setenv("REFLECTION_DB", str(path))
    at = AppTest.from_file(str(ROOT / "pages/1_Review.py"), default_timeout=60).run()
    assert [t.label for t in at.text_input][0].startswith("Your name")
    assert not [e for e in at.error if "Refused" in e.value]
