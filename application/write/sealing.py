"""Writing commit seals in the commit's own transaction
(``application.eventlog.seals`` says what they are and why).

Both recorders call ``seal_commit`` after inserting a commit's events and
before their transaction ends, while they hold the store's write lock
(PostgreSQL's table lock, SQLite's one writer): the previous seal read here
is the last one, and the seal commits with the events or not at all. A
recorder without keys writes no seal (a ledger run without a key file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from application.alerts import AlertKind, raise_alert
from application.eventlog.seals import (
    SEALS_TABLE,
    Seal,
    SealedEvent,
    SealKeys,
    seals_for_commit,
    start_seal,
)

SQLITE_FACTORY_TOPIC = f"{__name__}:SealingSQLiteFactory"

Query = Callable[[str, tuple[Any, ...]], list[Any]]
"""Runs one statement in the commit's transaction and returns its rows."""


def sealed_events(stored: Sequence[StoredEvent], positions: Sequence[int]) -> list[SealedEvent]:
    """The commit's events in position order, as a seal covers them."""
    pairs = sorted(zip(positions, stored, strict=True), key=lambda pair: pair[0])
    return [(position, _hex(event.originator_id), event.originator_version, event.topic,
             bytes(event.state)) for position, event in pairs]


def _hex(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else UUID(originator_id).hex


class SealsMissing(Exception):
    """The log holds events but no seal, at a head the operator did not name."""


def seal_rows(keys: SealKeys, last_seal: Seal | None, head_before: int,
              stored: Sequence[StoredEvent], positions: Sequence[int], start_at: int
              ) -> list[Seal]:
    """The commit's seal rows. The first seal of a log starts sealing at its
    head only when that head is ``start_at`` (0: an empty log; an upgraded
    log's head, as the operator set it): an attacker who empties the seals
    table and appends events cannot make the service start sealing after
    them, and so have them read as written before seals."""
    check_sealing_may_begin(last_seal, head_before, start_at)
    return seals_for_commit(keys, last_seal, head_before, sealed_events(stored, positions))


def check_sealing_may_begin(last_seal: Seal | None, head_before: int, start_at: int) -> None:
    """Raise ``SealsMissing`` (and alert) when a log with no seal is not at
    the head where sealing may begin (``seal_rows`` says why)."""
    if last_seal is None and head_before != start_at:
        why = (f"the log holds events up to position {head_before} and no commit seal; "
               f"sealing may begin only at position {start_at} (DEALS_COMMIT_SEALS_FROM): "
               "were the seals removed?")
        raise_alert(AlertKind.UNAUTHENTICATED_EVENT, "commit refused: the commit seals are gone",
                    dedup_key="seals-missing", position=head_before, why=why)
        raise SealsMissing(why)


def begin_rows(keys: SealKeys, last_seal: Seal | None, head: int, start_at: int) -> list[Seal]:
    """The start seal to write now, before any commit (none when the log
    has seals already): sealing begins when keys are first given, so a
    restart before the first command still finds where it began."""
    if last_seal is not None:
        return []
    check_sealing_may_begin(None, head, start_at)
    return [start_seal(keys, head)]


class SealingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder; each commit also writes its seal."""

    seal_keys: SealKeys | None = None
    seal_start_at = 0

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {SEALS_TABLE} (last_position INTEGER PRIMARY KEY, "
                "first_position INTEGER NOT NULL, key_id TEXT NOT NULL, mac BLOB NOT NULL)"]

    def begin_sealing(self, head_statement: Any) -> None:
        """Write the start seal now when the log has none (``begin_rows``);
        the head is read with the event log's own statement, in this write
        transaction."""
        assert self.seal_keys is not None
        with self.datastore.transaction(commit=True) as c:
            last = self._last_seal(c)
            c.execute(head_statement)
            rows = begin_rows(self.seal_keys, last, c.fetchone()[0] or 0, self.seal_start_at)
            self._insert_seals(c, rows)

    def _last_seal(self, c: Any) -> Seal | None:
        c.execute(f"SELECT first_position, last_position, key_id, mac FROM {SEALS_TABLE} "  # noqa: S608
                  "ORDER BY last_position DESC LIMIT 1")
        row = c.fetchone()
        return Seal(row[0], row[1], row[2], bytes(row[3])) if row else None

    def _insert_seals(self, c: Any, rows: Sequence[Seal]) -> None:
        c.executemany(f"INSERT INTO {SEALS_TABLE} (last_position, first_position, key_id, mac) "  # noqa: S608
                      "VALUES (?, ?, ?, ?)",
                      [(s.last, s.first, s.key_id, s.mac) for s in rows])

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
                       ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if self.seal_keys is None or not positions:
            return positions
        last = self._last_seal(c)
        # rowids are the table's max + 1: the log's head before this commit
        rows = seal_rows(self.seal_keys, last, min(positions) - 1, stored_events, positions,
                         self.seal_start_at)
        self._insert_seals(c, rows)
        return positions


class SealingSQLiteFactory(SQLiteFactory):
    application_recorder_class = SealingSQLiteApplicationRecorder
