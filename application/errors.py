"""Refusals that come from running the ledger rather than from its rules."""

from __future__ import annotations

from domain.errors import LedgerError


class LedgerUnavailable(LedgerError):
    """The event store could not be reached or stayed contended: the command
    was not applied and may be retried with the same id."""

    code = "unavailable"


class StoreDamaged(LedgerError):
    """A stored event the command needs cannot be decoded (a damaged or
    tampered row): nothing was applied; the audit names its position. Not
    the client's fault, and not a bug: 503 with an alert."""

    code = "store_damaged"
    aggregate_id: object = None
    position: int | None = None
    """The damaged row's log position, when it could be told."""


class InternalError(LedgerError):
    """A bug: the command was not applied. Logged with its traceback."""

    code = "internal_error"


class SettlementUnavailable(LedgerError):
    """Settlement or reconciliation cannot run in this process now: the
    chain is unreachable, or the embedded chain is held by the settler of
    another process (ask that one). Nothing was changed; retry later."""

    code = "unavailable"


class ReconciliationNotFound(LedgerError):
    """No reconciliation has finished yet."""

    code = "reconciliation_not_found"
