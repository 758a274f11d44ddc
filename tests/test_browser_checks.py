"""In Chromium: a flagged version shows its flags, and accepting an empty output asks first."""

from __future__ import annotations

import pytest
from browser_support import streamlit_app
from review_data import build_checked_review_db
from test_browser import WAIT_MS, Reviewer, browser  # noqa: F401 (the browser fixture)

from reflection import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The review fixture plus an empty, truncated reply on the first sample, checked."""
    path = tmp_path_factory.mktemp("checks") / "review.db"
    ids, empty = build_checked_review_db(path)
    with streamlit_app(path) as url:
        yield url, path, ids, empty


def test_flags_show_and_an_empty_output_needs_a_second_yes(served, browser):  # noqa: F811
    url, path, ids, empty = served
    reviewer = Reviewer(browser, url, "ann")
    page = reviewer.page
    try:
        assert reviewer.position()[0] == ids[0]
        page.get_by_text("⚑ empty: the output is empty").first.wait_for(timeout=WAIT_MS)
        page.get_by_text("⚑ truncated:").first.wait_for(timeout=WAIT_MS)
        # Show the empty version, then accept it: the page asks before anything is saved.
        page.get_by_label("Version shown beside the original").click()
        page.get_by_role("option", name=f"#{empty}", exact=False).click()
        reviewer.wait_idle()
        page.get_by_text("has an empty output").or_(page.get_by_text("(truncated)")).first.wait_for(
            timeout=WAIT_MS
        )
        page.evaluate("document.activeElement.blur()")  # keys are inert inside the select box
        reviewer.key("a")
        page.get_by_role("button", name="Accept anyway").wait_for(timeout=WAIT_MS)
        with Store(path) as store:
            assert store.reviews_for(ids[0]) == []
        reviewer.key("y")
        reviewer.wait_for_place(2)
        with Store(path) as store:
            state = store.state(ids[0])
        assert (state.status, state.candidate_id, state.annotator) == ("accepted", empty, "ann")
    finally:
        reviewer.close()
