"""What sign-in adds to a page run, measured with Streamlit's AppTest (target: <= 50 ms).

Two copies of one store (the demo dataset, 64 samples): one without accounts (sign-in off,
the annotator typed once), one with an account per role (sign-in on, the session signed in
as the reviewer). For each page, the same AppTest session reruns the page `--repeats` times
in both, interleaved so outside load falls on both alike; the figure is the median run wall
time. A first row times the check alone: a script that only opens the store, against one
that also calls `ui.require_role`. The difference is what sign-in costs each run: reading the secrets for OIDC, one
query for "any account?", one for the signed-in account's role, the idle clock, and on the
Review page the role check behind the buttons.

The one-off cost of signing in (an argon2 check, tens to hundreds of ms by design) is
measured apart: it happens once per session, not per page run.

    python bench/bench_signin.py [--repeats 25]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from reflection.demo import build_demo  # noqa: E402
from reflection.store import Store  # noqa: E402
from reflection.team import accounts, sessions  # noqa: E402

PAGES = {"home": "app.py", "review": "pages/1_Review.py", "dashboard": "pages/3_Dashboard.py"}
# The check alone: a page that opens the store and (signed in) checks the role, nothing else.
CHECK_ONLY = (
    "from reflection import ui\n\nui.get_store()\nif {signed_in}:\n    ui.require_role('read')\n"
)
PASSWORD = "bench password 1"
TARGET_MS = 50


def session(page: str, db: Path, signed_in: bool) -> AppTest:
    os.environ["REFLECTION_DB"] = str(db)
    if page == "check":
        script = db.parent / f"check_{signed_in}.py"
        script.write_text(CHECK_ONLY.format(signed_in=signed_in))
        page = str(script)
    at = AppTest.from_file(str(ROOT / page), default_timeout=120)
    if signed_in:  # as after the sign-in form: an account and its stored session token
        with Store(db) as store:
            token = sessions.start_session(store, "rev")
        at.session_state["_account"] = "rev"
        at.session_state["_account_method"] = "password"
        at.session_state["_account_token"] = token
    else:
        at.session_state["annotator"] = "rev"
    at.run()
    assert not at.exception, at.exception
    refused = [e.value for e in at.error if "Refused" in e.value]
    assert not refused and not [t for t in at.text_input if t.label == "Password"], page
    return at


def rerun(at: AppTest, db: Path) -> float:
    os.environ["REFLECTION_DB"] = str(db)
    start = time.perf_counter()
    at.run()
    took = (time.perf_counter() - start) * 1000
    assert not at.exception, at.exception
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        open_db, signin_db = Path(folder) / "open.db", Path(folder) / "signin.db"
        build_demo(open_db)
        shutil.copy(open_db, signin_db)
        with Store(signin_db) as store:
            for name, role in (("ana", "admin"), ("rev", "reviewer"), ("vic", "viewer")):
                accounts.add_user(store, name, role, actor="bench", password=PASSWORD)
            checks = []
            for _ in range(5):
                start = time.perf_counter()
                accounts.sign_in(store, "rev", PASSWORD)
                checks.append((time.perf_counter() - start) * 1000)

        print(
            f"Page run wall time with and without sign-in (AppTest, ms, median of {args.repeats})"
        )
        print(f"{'page':<12}{'no sign-in':>12}{'signed in':>12}{'added':>9}{'target':>8}  ok")
        for name, page in {"check only": "check", **PAGES}.items():
            plain, signed = session(page, open_db, False), session(page, signin_db, True)
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeats):
                times[False].append(rerun(plain, open_db))
                times[True].append(rerun(signed, signin_db))
            without, with_ = statistics.median(times[False]), statistics.median(times[True])
            added = with_ - without
            ok = "yes" if added <= TARGET_MS else "NO"
            print(f"{name:<12}{without:>12.1f}{with_:>12.1f}{added:>9.1f}{TARGET_MS:>8}  {ok}")
        print(
            f"\nsigning in once (argon2 check of the password), median of 5: "
            f"{statistics.median(checks):.0f} ms; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
