"""The ledger's eventsourcing Application: event store, snapshots, log.

Commands do not go through methods on this class one at a time; they go
through the command writer (``application.write.writer``), which decides batches
of them against cached aggregates and saves each batch here in one
transaction. This class owns only persistence-facing concerns.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import PersistenceError

from application.eventlog.opening import event_log_for
from application.eventlog.reader import EventLog
from application.eventlog.seals import SealKeys
from application.write.damaged import damaged_aggregate
from domain.account import Account
from domain.errors import AccountNotFound, TransferNotFound
from domain.transfer import Transfer


class LedgerApplication(Application[UUID]):
    name = "DealsLedger"
    env: ClassVar[dict[str, str]] = {"IS_SNAPSHOTTING_ENABLED": "y"}

    def __init__(self, env: dict[str, Any] | None = None) -> None:
        super().__init__(env)
        self.event_log: EventLog = event_log_for(self.recorder)
        """The stored log, for every consumer (``application.eventlog``)."""

    def use_seal_keys(self, keys: SealKeys, *, start_at: int = 0) -> None:
        """Seal every commit from now on and check seals wherever this
        application's log is read (``application.eventlog.seals``). A log
        with no seal yet begins sealing only when its head is ``start_at``
        (``application.write.sealing.seal_rows``)."""
        if not hasattr(type(self.recorder), "seal_keys"):
            raise TypeError(f"{type(self.recorder).__name__} cannot seal commits")
        self.recorder.seal_keys = keys  # type: ignore[attr-defined]
        self.recorder.seal_start_at = start_at  # type: ignore[attr-defined]
        self.event_log.seal_keys = keys  # type: ignore[attr-defined]

    def begin_sealing(self) -> None:
        """Record now, in the log, where authentication begins (the start
        seal), unless the log has seals already: a process that stops before
        its first command leaves the start recorded all the same. Raises
        ``SealsMissing`` when the head is not where sealing may begin."""
        head_statement = self.event_log.statements.head  # type: ignore[attr-defined]
        self.recorder.begin_sealing(head_statement)  # type: ignore[attr-defined]

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        """The aggregate as stored (from its latest snapshot on), or None."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        except PersistenceError:
            raise  # the store did not answer: the writer's outage handling
        except Exception as error:  # a stored row the mapper cannot read
            raise damaged_aggregate(self, aggregate_id, error) from error

    def writer_turn(self) -> AbstractContextManager[None]:
        """Exclusive use of the event store across processes, for a writer
        that keeps losing commits to others (see ``application.write.postgres_recorder``).
        SQLite has one writer at a time already: nothing to take."""
        turn = getattr(self.recorder, "writer_turn", None)
        return turn() if turn is not None else nullcontext()

    def take_snapshot_of(self, aggregate: Aggregate) -> None:
        assert self.snapshots is not None
        self.snapshots.put([Snapshot.take(aggregate)])

    def account(self, account_id: UUID) -> Account:
        account = self.load(account_id)
        if not isinstance(account, Account):
            raise AccountNotFound(f"account {account_id} does not exist")
        return account

    def transfer(self, transfer_id: UUID) -> Transfer:
        transfer = self.load(transfer_id)
        if not isinstance(transfer, Transfer):
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        return transfer
