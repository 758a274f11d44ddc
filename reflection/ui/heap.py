"""Keep Streamlit's garbage collection after every script run short.

Streamlit runs a full `gc.collect()` when a script run ends (`runner.postScriptGC`, on by
default). A full collection walks every object the collector tracks: with Streamlit, pandas
and the store imported that is about 190,000 objects, and it took 86 ms on the project's
machine, holding the GIL, so the messages of the run that just ended wait behind it and a key
press on the Review page took ~100 ms longer than it needs to. Nearly all of those objects
live as long as the process: modules, their functions, classes and constants. They need no
collecting. So each time the set of imported modules has grown (the first run of each page
imports what it needs), this collects once and moves everything that survives into the
permanent generation (`gc.freeze`); later collections walk only what runs create since.

What it costs: an object alive at a freeze that later becomes part of an unreachable cycle is
not collected. Freezes happen only when modules are added, a bounded number of times in a
process's life, and only what is alive then (mostly modules) is frozen.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_frozen_at = 0  # len(sys.modules) at the last freeze


def freeze_imported_heap() -> bool:
    """Collect and freeze if modules were imported since the last time; True if it did."""
    global _frozen_at
    if len(sys.modules) == _frozen_at:
        return False
    with _lock:
        if len(sys.modules) == _frozen_at:
            return False
        gc.collect()
        gc.freeze()
        _frozen_at = len(sys.modules)
        return True
