"""The events table is read in one place: ``application.eventlog``.

A second reader would bring back what the package removed (its own SQL, its
own paging, no reconnect, no query-plan care); this test fails when product
code outside the package reaches for the events table or for the library's
own readers of it. (Tests may: they check the ledger through the library's
reader, independently of ours.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("domain", "application", "projections", "interface")
PACKAGE = Path("application/eventlog")
ALLOWED = {
    # the recorder is the event store: it writes the table (columnar insert,
    # the writer turn named after it), it does not read it
    Path("application/write/postgres_recorder.py"): {"events_table_name"},
}
TOUCHES_THE_TABLE = {
    # the library's own readers of the log
    "select_notifications": re.compile(r"\bselect_notifications\b"),
    "select_events": re.compile(r"\bselect_events\b"),
    "max_notification_id": re.compile(r"\bmax_notification_id\b"),
    # the only way to learn the table's name
    "events_table_name": re.compile(r"\bevents_table_name\b"),
    # or the name written out, in SQL
    "the table by name": re.compile(
        r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+[\"\w.]*\b(stored|dealsledger)_events\b", re.IGNORECASE
    ),
}


def touches(path: Path) -> set[str]:
    text = path.read_text()
    return {what for what, pattern in TOUCHES_THE_TABLE.items() if pattern.search(text)}


def product_modules() -> list[Path]:
    return [path.relative_to(ROOT) for layer in PRODUCT for path in (ROOT / layer).rglob("*.py")]


def test_only_the_event_log_package_queries_the_events_table():
    found = {
        str(path): sorted(touches(ROOT / path) - ALLOWED.get(path, set()))
        for path in product_modules() if PACKAGE not in path.parents
    }
    assert {path: what for path, what in found.items() if what} == {}


def test_the_scan_sees_the_package_reading_the_table():
    """Guards the patterns above against going stale."""
    seen = set().union(*(touches(ROOT / path) for path in product_modules()
                         if PACKAGE in path.parents))
    assert "events_table_name" in seen
    by_name = TOUCHES_THE_TABLE["the table by name"]
    assert by_name.search('SELECT MAX(rowid) FROM stored_events')
    assert by_name.search('select originator_id from "public".dealsledger_events where')
    assert not by_name.search("def insert(stored_events): ...")
