"""The app's heap is frozen after imports, so Streamlit's collection after each run is short.

Streamlit runs a full `gc.collect()` after every script run. In the app's process it walked
~190,000 objects (86 ms, holding the GIL) and held back the key press's page by as much.
`freeze_imported_heap` moves what is alive into the permanent generation whenever new modules
were imported, so a collection walks only what runs made since. Run in a fresh interpreter,
so that this test process's own heap is left alone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import gc, json, sys
    sys.path.insert(0, sys.argv[1])
    from reflection.ui.heap import freeze_imported_heap
    from reflection.review import queue  # what a page imports
    report = {"tracked_before": len(gc.get_objects())}
    report["first"] = freeze_imported_heap()
    report["tracked_after"] = len(gc.get_objects())
    report["frozen"] = gc.get_freeze_count()
    made = [[i] for i in range(1000)]  # what a run makes stays collectable
    report["tracked_made"] = len(gc.get_objects())
    report["again"] = freeze_imported_heap()  # no new module: nothing to do
    sys.path.insert(0, sys.argv[2])
    import fresh_module_for_heap_test  # a page's first run imports something new
    report["after_import"] = freeze_imported_heap()
    report["tracked_end"] = len(gc.get_objects())
    print(json.dumps(report))
    """
)


def test_the_heap_is_frozen_once_per_growth_of_the_imported_modules(tmp_path):
    (tmp_path / "fresh_module_for_heap_test.py").write_text("TABLE = {i: [i] for i in range(50)}\n")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    report = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert report["first"] is True
    assert report["tracked_before"] > 50_000  # the store, pandas and the queue: a large heap
    assert report["frozen"] >= report["tracked_before"] * 0.9
    assert report["tracked_after"] < 100  # a collection now walks almost nothing
    assert report["tracked_made"] >= report["tracked_after"] + 1000  # new objects still are
    assert report["again"] is False
    assert report["after_import"] is True  # the new module, and what was made, frozen too
    assert report["tracked_end"] < 100
