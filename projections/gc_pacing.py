"""Garbage-collector pacing for bulk folds (the audit replay).

A replay allocates millions of small, long-lived objects (rows of the fresh
state) and almost no reference cycles. With CPython's default thresholds a
young-generation collection runs every 700 net allocations and keeps
re-examining objects that will live to the end anyway: pyinstrument and a
``gc.disable()`` experiment put that at ~15% of the audit of a 214k-event
log (85k -> 100k events/s). Raising the first threshold makes collections
~100x rarer without turning the collector off, so cycles made meanwhile by
other threads are still collected.

Thresholds are process-wide: the first bulk fold to start raises them, the
last to finish restores what was there.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (100_000, 50, 100)

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def bulk_fold_pacing() -> Iterator[None]:
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*BULK_THRESHOLDS)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
