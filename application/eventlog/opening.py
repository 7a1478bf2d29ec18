"""``event_log_for``: the reader for whichever database the application's
recorder writes to. Kept apart from ``reader`` so the database modules can
build on the reader's base without an import circle."""

from __future__ import annotations

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from application.eventlog.postgres_log import PostgresEventLog
from application.eventlog.reader import EventLog
from application.eventlog.sqlite_log import SQLiteEventLog


def event_log_for(recorder: ApplicationRecorder) -> EventLog:
    """The reader of the application's own events table."""
    log: PostgresEventLog | SQLiteEventLog
    if isinstance(recorder, PostgresApplicationRecorder):
        log = PostgresEventLog(recorder)
    elif isinstance(recorder, SQLiteApplicationRecorder):
        log = SQLiteEventLog(recorder)
    else:
        raise TypeError(f"no event log reader for {type(recorder).__name__}")
    log.seal_keys = getattr(recorder, "seal_keys", None)  # checked by its readers
    return log
