"""Sign-in for the app, and the role check every page and every callback makes.

Sign-in is on whenever the store has an account or OIDC is configured (`[auth]` in
`.streamlit/secrets.toml`), on any address. Then every page starts with
`ui.require_role(action)`: a visitor who is not signed in gets the sign-in form and nothing
else (the page stops before any dataset text or count), and a role without `action` gets a
refusal. Callbacks that write are wrapped in `ui.guard(action)`, which checks again when the
click arrives: a lesser role replaying a widget message is refused and nothing is written.

The account is read from the store on every run, so a role change or a removal applies at
once. A session idle longer than $REFLECTION_SESSION_IDLE minutes is signed out. A built-in
sign-in is a session in the store (team.sessions) whose token the browser keeps in a cookie
(ui.cookie), so a reload or a new tab resumes it; signing out in one tab ends it in all. OIDC
rides on Streamlit's identity cookie, so a fresh session whose cookie is older than the idle
time and whose account has not been active in this server since is signed out there too.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ..diff import escape_markdown
from ..errors import PermissionDenied, SignInError, StoreError
from ..store import Account, Store
from ..team import access, accounts, oidc, paths, sessions
from ..team.settings import TeamSettings
from . import cookie
from .nav import sidebar_navigation
from .session import ACCOUNT_KEY, ROLE_KEY, db_path, flash, get_store

_SEEN_KEY = "_account_seen"  # time of this session's last run while signed in (OIDC)
_TOKEN_KEY = "_account_token"  # a built-in sign-in's session token (team.sessions)
_FORGET_KEY = "_forget_token"  # a dead token the browser's cookie may still hold
_METHOD_KEY = "_account_method"  # "password" or "oidc"
_NOTICE_KEY = "_signin_notice"  # why the session was signed out, shown on the form
_REFUSED_KEY = "_oidc_refused"  # an OIDC identity with no role here (audited once)


@dataclass(frozen=True)
class User:
    """Who runs this page: a signed-in account, or (role None) the one local user."""

    name: str
    role: str | None
    signed_in: bool


def team_settings() -> TeamSettings:
    """The team stage's settings, from the environment `reflection app` set."""
    return TeamSettings.from_env(db_path())


def oidc_providers() -> list[str | None]:
    """The OIDC providers in secrets.toml's [auth] (empty: OIDC is not configured)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return []
        return oidc.providers(st.secrets.get("auth"))
    except Exception:  # an unreadable secrets file: Streamlit reports it; no OIDC here
        return []


@st.cache_resource(show_spinner=False)
def _activity() -> dict[str, float]:
    """Last activity of each OIDC account in this server process (shared by sessions)."""
    return {}


def _start(name: str, method: str, token: str = "") -> None:
    st.session_state[ACCOUNT_KEY] = name
    st.session_state[_METHOD_KEY] = method
    st.session_state[_SEEN_KEY] = time.time()
    if token:
        st.session_state[_TOKEN_KEY] = token
    st.session_state.pop(_NOTICE_KEY, None)
    st.session_state.pop(_FORGET_KEY, None)


def _end(notice: str | None = None) -> None:
    """Forget the signed-in account; an OIDC session also drops Streamlit's identity cookie."""
    method = st.session_state.pop(_METHOD_KEY, None)
    name = st.session_state.pop(ACCOUNT_KEY, None)
    token = st.session_state.pop(_TOKEN_KEY, None)
    if token:
        st.session_state[_FORGET_KEY] = token
    st.session_state.pop(_SEEN_KEY, None)
    st.session_state.pop(ROLE_KEY, None)
    if name:
        _activity().pop(name, None)
    if notice:
        st.session_state[_NOTICE_KEY] = notice
    if method == "oidc":
        st.logout()


def _oidc_account(store: Store, idle_s: float) -> str | None:
    """Sign in the identity in Streamlit's cookie, if it has a role here and is not stale."""
    if not st.user.get("is_logged_in"):
        return None
    email = str(st.user.get("email") or "")
    if st.session_state.get(_REFUSED_KEY) == email:
        return None
    iat = st.user.get("iat") or 0
    issued = float(iat) if isinstance(iat, int | float | str) else 0.0
    last = max(issued, _activity().get(email.lower(), 0.0))
    if issued and time.time() - last > idle_s:
        st.session_state[_NOTICE_KEY] = "Your sign-in expired: sign in again."
        st.logout()
        return None
    try:
        account = accounts.sign_in_oidc(store, email)
    except SignInError as exc:
        st.session_state[_REFUSED_KEY] = email
        st.session_state[_NOTICE_KEY] = str(exc)
        return None
    _start(account.name, "oidc")
    return account.name


def _idle_notice() -> str:
    minutes = f"{team_settings().idle_minutes:g}"
    return f"Signed out after {minutes} minutes without activity: sign in again."


def _password_session(store: Store, idle_s: float) -> Account | None:
    """The built-in account of this session's token; the session ends if the token died."""
    resumed = sessions.resume_session(store, st.session_state.get(_TOKEN_KEY, ""), idle_s)
    if resumed.account is not None:
        return resumed.account
    if resumed.reason == "expired":
        _end(_idle_notice())
    elif store.account(st.session_state.get(ACCOUNT_KEY) or "") is None:
        _end("Your account was removed: ask an admin.")
    else:  # signed out in another tab, or an admin reset the password
        _end("You were signed out: sign in again.")
    return None


def _cookie_session(store: Store, idle_s: float) -> Account | None:
    """A new browser session (a reload, a new tab) resumes the sign-in its cookie holds."""
    token = cookie.read_token(db_path())
    if not token or token == st.session_state.get(_FORGET_KEY):
        return None
    resumed = sessions.resume_session(store, token, idle_s)
    if resumed.account is None:
        st.session_state[_FORGET_KEY] = token
        if resumed.reason == "expired":
            st.session_state[_NOTICE_KEY] = _idle_notice()
        return None
    _start(resumed.account.name, "password", token)
    return resumed.account


def _oidc_session(store: Store, idle_s: float, providers: list[str | None]) -> Account | None:
    """The OIDC account of this session, or of Streamlit's identity cookie (a new session)."""
    if st.session_state.get(_METHOD_KEY) == "oidc":
        name = st.session_state.get(ACCOUNT_KEY)
    else:
        name = _oidc_account(store, idle_s) if providers else None
    if not name:
        return None
    now = time.time()
    if now - st.session_state.get(_SEEN_KEY, 0.0) > idle_s:
        _end(_idle_notice())
        return None
    account = store.account(name)
    if account is None:
        _end("Your account was removed: ask an admin.")
        return None
    st.session_state[_SEEN_KEY] = now
    _activity()[account.name] = now
    return account


def current_user(store: Store | None = None) -> User | None:
    """Who is running this page; None when sign-in is on and nobody (valid) is signed in."""
    store = store or get_store()
    providers = oidc_providers()
    if not accounts.sign_in_enabled(store, bool(providers)):
        st.session_state.pop(ROLE_KEY, None)
        return User("", None, False)
    idle_s = team_settings().idle_minutes * 60
    method = st.session_state.get(_METHOD_KEY)
    if method == "password":
        account = _password_session(store, idle_s)
    elif method == "oidc":
        account = _oidc_session(store, idle_s, providers)
    else:
        account = _cookie_session(store, idle_s) or _oidc_session(store, idle_s, providers)
    if account is None:
        return None
    st.session_state[ROLE_KEY] = account.role
    return User(account.name, account.role, True)


def _sign_in_page(store: Store, providers: list[str | None]) -> None:
    """The sign-in form (and a button per OIDC provider); nothing else of the app."""
    st.set_page_config(page_title="Sign in · Reflection Studio", page_icon="🪞")
    st.title("Reflection Studio")
    notice = st.session_state.get(_NOTICE_KEY)
    if notice:
        st.warning(notice)
    forget = st.session_state.get(_FORGET_KEY)
    if cookie.valid_token(forget):
        st.html(cookie.forget_script(db_path(), forget), unsafe_allow_javascript=True)
    if any(a.kind == "password" for a in store.accounts()) or not providers:
        with st.form("signin_form"):
            name = st.text_input("Name", key="_signin_name")
            password = st.text_input("Password", type="password")
            if st.form_submit_button("Sign in", type="primary"):
                try:
                    account = accounts.sign_in(store, name, password)
                except SignInError as exc:
                    st.error(str(exc))
                else:
                    idle_s = team_settings().idle_minutes * 60
                    sessions.end_idle_sessions(store, idle_s)
                    _start(account.name, "password", sessions.start_session(store, account.name))
                    st.rerun()
    for provider in providers:
        label = f"Sign in with {provider}" if provider else "Sign in with single sign-on"
        if st.button(label, key=f"_signin_oidc_{provider or ''}", type="primary"):
            st.session_state.pop(_REFUSED_KEY, None)
            st.login(provider)
    if st.session_state.get(_REFUSED_KEY) and st.button("Sign out of the provider"):
        st.session_state.pop(_REFUSED_KEY, None)
        st.logout()
    st.stop()


def sign_out() -> None:
    """End this session's sign-in (a button callback)."""
    name = st.session_state.get(ACCOUNT_KEY)
    store = get_store()
    if name:
        store.add_audit_event(name, "signout", name)
    sessions.end_session(store, st.session_state.get(_TOKEN_KEY, ""))
    _end("Signed out.")


UNAVAILABLE = "Everything shown as saved is kept."


def require_role(action: str) -> User:
    """The first line of every page: sign-in form, or refusal, or the user who may go on."""
    store = get_store()
    try:
        user = current_user(store)
    except StoreError as exc:  # the database is down: say so in one line, not a traceback
        st.error(f"{exc}. {UNAVAILABLE}")
        st.button("Try again", type="primary", shortcut="T")  # a click reruns the page (R is
        # Streamlit's own rerun key, which a button may not take)
        st.stop()
    if user is None:
        _sign_in_page(store, oidc_providers())
        st.stop()
    if user.signed_in:
        st.sidebar.markdown(f"Signed in as **{escape_markdown(user.name)}** · {user.role}")
        st.sidebar.button("Sign out", key="_sign_out", on_click=sign_out)
        token = st.session_state.get(_TOKEN_KEY)
        if cookie.valid_token(token):  # a reload or a new tab resumes this sign-in
            st.sidebar.html(cookie.remember_script(db_path(), token), unsafe_allow_javascript=True)
    try:
        access.require(user.role, action, who=user.name)
    except PermissionDenied as exc:
        sidebar_navigation()
        st.error(str(exc))
        st.stop()
    return user


def guard(action: str):
    """Decorate a widget callback: it runs only if the user may still do `action` now."""

    def decorate(callback):
        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            store = get_store()
            try:
                user = current_user(store)
            except StoreError as exc:
                flash("error", f"{exc}. {UNAVAILABLE}")
                return None
            if user is None:
                flash("error", "Refused: sign in first.")
                return None
            try:
                access.require(user.role, action, who=user.name)
            except PermissionDenied as exc:
                store.add_audit_event(user.name, "refused", action, detail={"role": user.role})
                flash("error", str(exc))
                return None
            return callback(*args, **kwargs)

        return guarded

    return decorate


def recheck_role(action: str) -> None:
    """The first line of a fragment (a part of a page that a widget reruns alone, without
    the page's `require_role`): if the user may no longer do `action` (signed out, idle past
    the limit, role changed, database down), rerun the whole page, which says why."""
    try:
        may = allowed(action)
    except StoreError:
        may = False
    if not may:
        st.rerun(scope="app")


def allowed(action: str) -> bool:
    """Whether this run's user may do `action` (to disable controls; callbacks still guard)."""
    user = current_user()
    return user is not None and access.allowed(user.role, action)


def confined_path(typed: str) -> Path:
    """A path typed into a page, if the user may use server paths and it lies in a data root."""
    user = current_user()
    if user is None:
        raise PermissionDenied("Refused: sign in first.")
    access.require(user.role, "paths", who=user.name)
    return paths.confine(typed, team_settings().data_roots)
