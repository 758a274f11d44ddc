"""`streamlit run` with the Review page's first draw made slow, for the first-key test.

Loading the sample (`review.load_item`) waits SLOW_LOAD seconds and each shown field
(`ui.show_version_field`) SLOW_FIELD seconds, as on a store of millions of samples on a busy
machine. Patched here, in the test's own launcher, so the app itself has no test hooks; the
page modules look both up on their modules at call time. Usage: like `streamlit run`.
"""

from __future__ import annotations

import os
import sys
import time

from streamlit.web import cli

from reflection import ui
from reflection.review import queue

SLOW_LOAD = float(os.environ.get("SLOW_LOAD", "2.5"))
SLOW_FIELD = float(os.environ.get("SLOW_FIELD", "0.5"))


def _slowed(function, seconds: float):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slow


queue.load_item = _slowed(queue.load_item, SLOW_LOAD)
ui.show_version_field = _slowed(ui.show_version_field, SLOW_FIELD)

if __name__ == "__main__":
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())
