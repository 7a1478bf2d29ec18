"""What the settlement process knows, folded from the event log.

The settlement process and reconciliation need questions answered that the
aggregates cannot answer cheaply: which movements wait for the chain, in log
order; which submission is in flight; which signatures the ledger ever
submitted and what became of them; each account's balance of SETTLED
movements; and the reconciliation runs and findings. This store keeps those
answers as tables, derived from the log by ``application.settlement.fold``.
Each page of events and the tracking position commit in one transaction with
a compare-and-set on the position (``application.eventlog.tracking``), so
every event is applied exactly once and a crash resumes where the last page
ended. Dropping the tables and folding from position 0 rebuilds everything
(except the reconciliation watermarks, a cache of work already done, which
then starts over, and the chain balances the last reconciliation read, which
the next run reads again).

On SQLite the tables live in their own file beside the event store
(``settlement.sqlite``), so they never wait for the event store's write
lock; on PostgreSQL they are tables in the application's schema, used
through the application's connection pool. The SQL text is shared; only
placeholders, qualification and the blob type differ.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from application.eventlog.locks import HASHTEXT_DDL_LOCK_SQL, settlement_ddl_lock_name
from application.eventlog.sql_text import SqlText, sqlite_write, table_names
from application.eventlog.tracking import Tracking
from domain.system import EXTERNAL_ID, ISSUANCE_ID
from domain.transfer import SETTLED as DOMAIN_SETTLED
from domain.transfer import (
    SETTLEMENT_AWAITING_CAPTURE,
    SETTLEMENT_FAILED,
    SETTLEMENT_QUEUED,
    SETTLEMENT_SUBMITTED,
)

logger = logging.getLogger(__name__)

SETTLEMENT_FILE_NAME = "settlement.sqlite"
SETTLEMENT_SCHEMA_VERSION = 4
"""What the rows mean; tables of another version are rebuilt from the log at
start (1: the first; 2: a movement waiting for the chain is ``queued``, no
longer ``pending``, which now means only a hold's phase; 3: the issuance and
external accounts have settled balances too, for the reconciliation's
supply and outside-custody check; 4: the wallets each account withdrew to
and the deposit returns, for the wallet account rule, ``wallet_accounts``).
The token account each return pays into (``settlement_return_accounts``)
came later under 4 without a rebuild: created empty, that table is right
for every return folded before, none of which named one."""
SCHEMA_VERSION_META = "schema_version"
SETTLEMENT_TRACKING_NAME = "settlement"
OWNER_ROTATION_META = "owner_rotation_started"
"""1 from the moment ``custody rotate owner`` starts moving token accounts
until every one has moved: custody accounts are then owned by two keys, and
a settler signing with either would fail movements that are not at fault."""
TIMELINE_EVENT_META = "timeline_event"
"""An identity of the event at the tracking position (``fold.event_identity``),
written with each page: a store folded from a timeline the log lost (the log
restored without the store, then written to) holds another event's there."""
STORE_REBUILDS_META = "store_rebuilds"
"""Times the store was found of a timeline the log lost and folded again from
the log; kept through that rebuild, so a running settler (in any process)
sees the change and looks the chain up again (``chain_lookup``)."""
FEE_PAYER_ROTATION_META = "fee_payer_rotated_to"
"""The fingerprint (``fee_payer.key_fingerprint``) of the key ``custody
rotate fee-payer`` last moved the fee payer to (0: never rotated). Nothing
on chain says which key pays, so a settler refuses to start with another
(a DEALS_FEE_PAYER_KEYPAIR left at the old key after the rotation)."""
KEPT_THROUGH_RESET = (OWNER_ROTATION_META, STORE_REBUILDS_META, FEE_PAYER_ROTATION_META)
IDS_PER_IN_LIST_MAX = 500
PAGE_ROWS_MAX = 10_000

# Movement status in this store: the Transfer's own settlement words
# (domain.transfer), a hold's wait for its capture included.
AWAITING_CAPTURE = SETTLEMENT_AWAITING_CAPTURE
QUEUED = SETTLEMENT_QUEUED
SUBMITTED = SETTLEMENT_SUBMITTED
SETTLED = DOMAIN_SETTLED
FAILED = SETTLEMENT_FAILED

# Submission status.
IN_FLIGHT = "in_flight"
SUPERSEDED = "superseded"  # expired and replaced by a new signature
REJECTED = "rejected"  # refused as a whole; its movements were signed again

_TABLES = (
    "settlement_tracking", "settlement_movements", "settlement_submissions",
    "settlement_balances", "reconciliation_runs", "reconciliation_findings",
    "reconciliation_watermarks", "reconciliation_balances", "settlement_meta",
    "deposit_cursors",
    "settlement_withdrawals", "deposit_resumes", "deposit_holds",
    "settlement_account_wallets", "settlement_deposit_returns", "settlement_return_accounts",
)

_DDL = """
CREATE TABLE IF NOT EXISTS {settlement_tracking} (
  name TEXT PRIMARY KEY, position BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {settlement_movements} (
  transfer_id TEXT PRIMARY KEY, position BIGINT NOT NULL, source TEXT NOT NULL,
  destination TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount > 0), status TEXT NOT NULL,
  alone INTEGER NOT NULL, signature TEXT, slot BIGINT, compensation TEXT,
  compensation_error TEXT, outcome_position BIGINT);
CREATE INDEX IF NOT EXISTS settlement_movements_queue
  ON {settlement_movements} (status, position);
CREATE TABLE IF NOT EXISTS {settlement_submissions} (
  signature TEXT PRIMARY KEY, position BIGINT NOT NULL, last_valid_block_height BIGINT NOT NULL,
  tx {blob}, transfer_ids TEXT NOT NULL, status TEXT NOT NULL, slot BIGINT,
  outcome_position BIGINT);
CREATE INDEX IF NOT EXISTS settlement_submissions_by_status
  ON {settlement_submissions} (status, position);
CREATE INDEX IF NOT EXISTS settlement_submissions_by_outcome
  ON {settlement_submissions} (outcome_position);
CREATE TABLE IF NOT EXISTS {settlement_balances} (
  account_id TEXT PRIMARY KEY, balance BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {reconciliation_runs} (
  run_id TEXT PRIMARY KEY, position BIGINT NOT NULL, started_at TEXT NOT NULL,
  finished_at TEXT, finished_position BIGINT, checked_accounts BIGINT,
  checked_signatures BIGINT, mismatches BIGINT, unmatched_signatures BIGINT,
  findings_total BIGINT);
CREATE INDEX IF NOT EXISTS reconciliation_runs_finished
  ON {reconciliation_runs} (finished_position);
CREATE TABLE IF NOT EXISTS {reconciliation_findings} (
  finding_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, position BIGINT NOT NULL,
  kind TEXT NOT NULL, account_id TEXT, signature TEXT, transfer_id TEXT, expected BIGINT,
  actual BIGINT, detail TEXT NOT NULL, adjusted_by TEXT);
CREATE INDEX IF NOT EXISTS reconciliation_findings_by_run
  ON {reconciliation_findings} (run_id, position);
CREATE INDEX IF NOT EXISTS reconciliation_findings_by_signature
  ON {reconciliation_findings} (signature);
CREATE TABLE IF NOT EXISTS {reconciliation_watermarks} (
  account_id TEXT PRIMARY KEY, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {reconciliation_balances} (
  account_id TEXT PRIMARY KEY, chain_balance BIGINT NOT NULL, run_id TEXT NOT NULL,
  read_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {settlement_meta} (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {deposit_cursors} (
  account_id TEXT PRIMARY KEY, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {settlement_withdrawals} (
  transfer_id TEXT PRIMARY KEY, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS settlement_withdrawals_by_address
  ON {settlement_withdrawals} (address);
CREATE TABLE IF NOT EXISTS {deposit_resumes} (
  account_id TEXT PRIMARY KEY, signatures TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {deposit_holds} (
  finding_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, signature TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deposit_holds_by_signature ON {deposit_holds} (account_id, signature);
CREATE TABLE IF NOT EXISTS {settlement_account_wallets} (
  account_id TEXT NOT NULL, address TEXT NOT NULL, position BIGINT NOT NULL,
  PRIMARY KEY (account_id, address));
CREATE TABLE IF NOT EXISTS {settlement_deposit_returns} (transfer_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS {settlement_return_accounts} (
  transfer_id TEXT PRIMARY KEY, token_account TEXT NOT NULL)
"""

SETTLEMENT_STEPS = "settlement_steps"
"""Meta counter: settlement events folded so far. Reconciliation reads it
before and after reading the chain: unchanged means no submission was
recorded or resolved meanwhile, so the two views belong together."""
SETTLER_PAUSED = "settler_paused"
"""Meta: 1 while the settler holding the lease is paused by failures (a
chain outage), 0 once a step succeeds; ``settler_active`` reads it."""
VERIFIED_SETTLED_POSITION = "verified_settled_position"
"""Meta: settlements up to this log position were found on chain by a
finished reconciliation (the next run checks only later ones)."""


@dataclass(frozen=True)
class Movement:
    """A movement as the settlement process mirrors it: ``source`` and
    ``destination`` are ledger accounts (the issuance account stands for
    the mint's side of a mint or burn)."""

    transfer_id: UUID
    position: int
    source: UUID
    destination: UUID
    amount: int
    status: str
    alone: bool
    signature: str | None
    slot: int | None
    address: str | None = None
    """A withdrawal's wallet: the tokens go to its associated token account
    (``destination`` is then the external account, which has none)."""
    deposit_return: bool = False
    """A withdrawal that returns a stranger's deposit (an admin's)."""
    token_account: str | None = None
    """A return's destination: the token account the deposit came from,
    paid into as it is (None for a withdrawal, and for a return recorded
    before returns went there: that one goes to ``address``'s associated
    token account, which nothing creates)."""


@dataclass(frozen=True)
class Submission:
    signature: str
    position: int
    last_valid_block_height: int
    transaction: bytes | None
    transfer_ids: tuple[UUID, ...]
    status: str
    slot: int | None
    outcome_position: int | None = None


@dataclass(frozen=True)
class FindingRow:
    finding_id: UUID
    run_id: UUID
    position: int
    kind: str
    account_id: UUID | None
    signature: str | None
    transfer_id: UUID | None
    expected: int | None
    actual: int | None
    detail: str
    adjusted_by: UUID | None


@dataclass(frozen=True)
class ChainBalance:
    """An account's token balance on chain as a reconciliation read it."""

    balance: int
    run_id: UUID
    read_at: str


@dataclass(frozen=True)
class RunRow:
    run_id: UUID
    started_at: str
    finished_at: str | None
    checked_accounts: int
    checked_signatures: int
    mismatches: int
    unmatched_signatures: int
    findings_total: int


class Cursor(Protocol):
    """The DB-API cursor subset the fold and queries use (``?`` placeholders)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SettlementStore:
    """Dialect-neutral queries; subclasses open cursors."""

    kind = "abstract"
    sql: SqlText

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Cursor]:
        """A write transaction. ``durable=False`` for the fold's pages: the
        tables are derived from the log, so a crash may lose the last pages
        (the fold applies them again from the tracking position committed
        with them), never tear one; the commit need not wait for the disk."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError

    def _ddl(self) -> list[str]:
        return self.sql.statements(_DDL)

    # Tracking

    @cached_property
    def tracking(self) -> Tracking:
        """The fold's row in ``settlement_tracking`` (a stored contract: the
        table, its ``name`` and ``position`` columns); ``?`` placeholders on
        both databases, as every cursor here takes them."""
        return Tracking(self.sql.names["settlement_tracking"], SETTLEMENT_TRACKING_NAME,
                        name_column="name", position_column="position")

    def position(self) -> int:
        with self.read() as cursor:
            return self.tracking.position(cursor)

    def timeline(self) -> tuple[int, int | None]:
        """The tracking position and the identity recorded of the event
        there (None: none recorded), in one read, so the two belong together."""
        return self._position_with(TIMELINE_EVENT_META)

    def position_and_rebuilds(self) -> tuple[int, int]:
        """The tracking position and ``STORE_REBUILDS_META``, in one read."""
        position, rebuilds = self._position_with(STORE_REBUILDS_META)
        return position, rebuilds or 0

    def _position_with(self, meta_name: str) -> tuple[int, int | None]:
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT position, (SELECT value FROM {settlement_meta} WHERE name = ?) "
                "FROM {settlement_tracking} WHERE name = ?"
            ), (meta_name, SETTLEMENT_TRACKING_NAME))
            row = cursor.fetchone()
        if row is None:
            return 0, None
        return int(row[0] or 0), None if row[1] is None else int(row[1])

    def set_timeline_event(self, cursor: Cursor, identity: int) -> None:
        """Record the identity of the event a page ends at, in its transaction
        (a statement only: no read, pipelined on PostgreSQL)."""
        cursor.execute(self.sql(
            "INSERT INTO {settlement_meta} (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ), (TIMELINE_EVENT_META, identity))

    # The queue and what is in flight

    def queued(self, limit: int) -> list[Movement]:
        """The oldest movements waiting for the chain, in log order."""
        return self._movements("WHERE status = ? ORDER BY position LIMIT ?", (QUEUED, limit))

    def backlog(self) -> int:
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT COUNT(*) FROM {settlement_movements} WHERE status IN (?, ?)"
            ), (QUEUED, SUBMITTED))
            return int(cursor.fetchone()[0])

    def in_flight(self, limit: int = 16) -> list[Submission]:
        """Submissions recorded and not yet resolved, oldest first."""
        return self._submissions("WHERE status = ? ORDER BY position LIMIT ?", (IN_FLIGHT, limit))

    def movements(self, transfer_ids: Sequence[UUID]) -> dict[UUID, Movement]:
        found: dict[UUID, Movement] = {}
        ids = [transfer_id.hex for transfer_id in transfer_ids]
        for start in range(0, len(ids), IDS_PER_IN_LIST_MAX):
            chunk = ids[start:start + IDS_PER_IN_LIST_MAX]
            marks = ", ".join("?" * len(chunk))
            for movement in self._movements(f"WHERE transfer_id IN ({marks})", chunk):
                found[movement.transfer_id] = movement
        return found

    def wallets_withdrawn_to(self, addresses: Sequence[str]) -> set[str]:
        """Those of ``addresses`` a withdrawal has settled to: the ledger
        paid for their associated token account's creation once (or found it
        there), and pays for it never again (``SettlementProcess._sign``).
        A return paid into the deposit's own token account leaves the
        wallet out: it paid nothing and says nothing of that account.
        Derived from the log, so it holds through restarts and rebuilds."""
        found: set[str] = set()
        unique = sorted(set(addresses))
        for start in range(0, len(unique), IDS_PER_IN_LIST_MAX):
            chunk = unique[start:start + IDS_PER_IN_LIST_MAX]
            marks = ", ".join("?" * len(chunk))
            with self.read() as cursor:
                cursor.execute(self.sql(
                    "SELECT DISTINCT w.address FROM {settlement_withdrawals} w "  # noqa: S608
                    "JOIN {settlement_movements} m ON m.transfer_id = w.transfer_id "
                    f"WHERE m.status = ? AND w.address IN ({marks}) AND NOT EXISTS "
                    "(SELECT 1 FROM {settlement_return_accounts} r "
                    "WHERE r.transfer_id = w.transfer_id)"
                ), (SETTLED, *chunk))
                found.update(str(row[0]) for row in cursor.fetchall())
        return found

    def first_wallets_withdrawn_to(self, account_id: UUID, limit: int) -> set[str]:
        """The first ``limit`` wallets the account asked a withdrawal to, in
        log order, whatever became of it (deposit returns aside): those
        whose token account the fee payer creates (``wallet_accounts``)."""
        if limit <= 0:
            return set()
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT address FROM {settlement_account_wallets} WHERE account_id = ? "
                "ORDER BY position, address LIMIT ?"
            ), (account_id.hex, limit))
            return {str(row[0]) for row in cursor.fetchall()}

    def movement(self, transfer_id: UUID) -> Movement | None:
        return self.movements([transfer_id]).get(transfer_id)

    def submissions(self, signatures: Sequence[str]) -> dict[str, Submission]:
        found: dict[str, Submission] = {}
        for start in range(0, len(signatures), IDS_PER_IN_LIST_MAX):
            chunk = list(signatures[start:start + IDS_PER_IN_LIST_MAX])
            marks = ", ".join("?" * len(chunk))
            for submission in self._submissions(f"WHERE signature IN ({marks})", chunk):
                found[submission.signature] = submission
        return found

    def sent_signatures(self, signatures: Sequence[str]) -> set[str]:
        """Those of ``signatures`` the settler signed and sent (settlements,
        withdrawals, returns): never deposits. A deposit's own signature is
        known too, settled without a submission (no block height): not
        among them, since a transaction may carry deposits not taken yet."""
        return {signature for signature, submission in self.submissions(signatures).items()
                if submission.last_valid_block_height > 0}

    def submission(self, signature: str) -> Submission | None:
        return self.submissions([signature]).get(signature)

    def with_open_findings(self, signature: str, run_id: UUID
                           ) -> tuple[Submission, list[FindingRow]] | None:
        """The signature's row and ``run_id``'s findings on it not yet
        adjusted, assigned or returned; None when it has no row. One
        statement, so both are read at one position: a deposit assigned (or
        a return refused) between two reads would be in neither view, or in
        both (``Reconciler._check_deltas``)."""
        submission = ", ".join(f"s.{name}" for name in _SUBMISSION_COLUMNS.split(", "))
        finding = ", ".join(f"f.{name}" for name in _FINDING_COLUMNS.split(", "))
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {submission}, {finding} FROM {{settlement_submissions}} s "  # noqa: S608
                "LEFT JOIN {reconciliation_findings} f ON f.signature = s.signature "
                "AND f.run_id = ? AND f.adjusted_by IS NULL WHERE s.signature = ? "
                "ORDER BY f.position LIMIT ?"
            ), (run_id.hex, signature, PAGE_ROWS_MAX))
            rows = cursor.fetchall()
        width = len(_SUBMISSION_COLUMNS.split(", "))
        if not rows:
            return None
        return _submission(rows[0]), [_finding(row[width:]) for row in rows
                                      if row[width] is not None]

    def newest_landed_sent(self) -> Submission | None:
        """The submission the settler signed (its bytes kept) whose landing
        was recorded last: its fee payer was the ledger's when this store
        last settled anything (the chain lookup reads that one's history
        too, for a restore across a fee-payer rotation)."""
        found = self._submissions(
            "WHERE status IN (?, ?, ?) AND tx IS NOT NULL ORDER BY outcome_position DESC "
            "LIMIT 1", (SETTLED, FAILED, REJECTED))
        return found[0] if found else None

    # Reconciliation's inputs, in bounded pages

    def balances_page(self, after: str, limit: int) -> list[tuple[UUID, int]]:
        """Settled balances of the accounts with a custody token account, by
        account id (hex), after ``after`` (exclusive)."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT account_id, balance FROM {settlement_balances} WHERE account_id > ? "
                "AND account_id NOT IN (?, ?) ORDER BY account_id LIMIT ?"
            ), (after, ISSUANCE_ID.hex, EXTERNAL_ID.hex, min(limit, PAGE_ROWS_MAX)))
            return [(UUID(row[0]), int(row[1])) for row in cursor.fetchall()]

    def balances_total(self) -> int:
        """Every account's settled balance summed, in one read: zero, as
        double entry has it, unless a row was altered."""
        with self.read() as cursor:
            cursor.execute(self.sql("SELECT SUM(balance) FROM {settlement_balances}"))
            row = cursor.fetchone()
            return 0 if row is None or row[0] is None else int(row[0])

    def balances(self, account_ids: Sequence[UUID]) -> dict[UUID, int]:
        found: dict[UUID, int] = {}
        ids = [account_id.hex for account_id in account_ids]
        with self.read() as cursor:
            for start in range(0, len(ids), IDS_PER_IN_LIST_MAX):
                chunk = ids[start:start + IDS_PER_IN_LIST_MAX]
                marks = ", ".join("?" * len(chunk))
                cursor.execute(self.sql(
                    f"SELECT account_id, balance FROM {{settlement_balances}} "  # noqa: S608
                    f"WHERE account_id IN ({marks})"
                ), chunk)
                found.update((UUID(row[0]), int(row[1])) for row in cursor.fetchall())
        return found

    def settled_after(self, position: int, limit: int) -> list[Submission]:
        """Submissions that settled after log position ``position``, in order."""
        return self._submissions(
            "WHERE status = ? AND outcome_position > ? ORDER BY outcome_position LIMIT ?",
            (SETTLED, position, min(limit, PAGE_ROWS_MAX)),
        )

    def uncompensated_after(self, position: int, limit: int) -> list[tuple[Movement, str]]:
        """Failed movements whose compensation was refused, by log position."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_MOVEMENT_COLUMNS}, compensation_error FROM {{settlement_movements}} "  # noqa: S608
                "WHERE status = ? AND compensation = 'blocked' AND position > ? "
                "ORDER BY position LIMIT ?"
            ), (FAILED, position, min(limit, PAGE_ROWS_MAX)))
            return [(_movement(row[:-1]), str(row[-1] or "")) for row in cursor.fetchall()]

    def watermark(self, account_id: UUID) -> str | None:
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT signature FROM {reconciliation_watermarks} WHERE account_id = ?"
            ), (account_id.hex,))
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def set_watermarks(self, marks: Sequence[tuple[UUID, str]]) -> None:
        if not marks:
            return
        with self.transaction() as cursor:
            for account_id, signature in marks:
                cursor.execute(self.sql(
                    "INSERT INTO {reconciliation_watermarks} (account_id, signature) VALUES (?, ?) "
                    "ON CONFLICT (account_id) DO UPDATE SET signature = excluded.signature"
                ), (account_id.hex, signature))

    def deposit_cursor(self, account_id: UUID) -> str | None:
        """The newest signature on the account's deposit address the deposit
        scan has finished with (credited, recorded as a finding, or not a
        deposit). A cache of work done, like the watermarks: lost, the scan
        starts over, and every credit it repeats is a no-op."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT signature FROM {deposit_cursors} WHERE account_id = ?"
            ), (account_id.hex,))
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def set_deposit_cursor(self, account_id: UUID, signature: str) -> None:
        """Move the cursor to ``signature``, releasing the balance findings
        held until the scan took it (``hold_adjustment``)."""
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "INSERT INTO {deposit_cursors} (account_id, signature) VALUES (?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET signature = excluded.signature"
            ), (account_id.hex, signature))
            cursor.execute(self.sql(
                "DELETE FROM {deposit_holds} WHERE account_id = ? AND signature = ?"
            ), (account_id.hex, signature))

    def hold_adjustment(self, finding_id: UUID, account_id: UUID, signature: str) -> None:
        """A balance finding read while the account's deposit address held
        transactions the deposit scan had not taken, some possibly deposits:
        not adjustable until the scan's cursor reaches ``signature`` (the
        newest then). Released at once if the cursor is there already."""
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "INSERT INTO {deposit_holds} (finding_id, account_id, signature) VALUES (?, ?, ?) "
                "ON CONFLICT (finding_id) DO NOTHING"
            ), (finding_id.hex, account_id.hex, signature))
            cursor.execute(self.sql(
                "DELETE FROM {deposit_holds} WHERE account_id = ? AND signature IN "
                "(SELECT signature FROM {deposit_cursors} WHERE account_id = ?)"
            ), (account_id.hex, account_id.hex))

    def adjustment_hold(self, finding_id: UUID) -> str | None:
        """The signature ``finding_id`` waits for the deposit scan to take."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT signature FROM {deposit_holds} WHERE finding_id = ?"
            ), (finding_id.hex,))
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def deposit_resume(self, account_id: UUID) -> list[str]:
        """Where the deposit scan goes on listing the account's history
        down towards its cursor: the oldest signature each earlier listing
        stopped at when the page bound cut it short, newest first (empty
        when none did). Lost, the scan lists from the top again."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT signatures FROM {deposit_resumes} WHERE account_id = ?"
            ), (account_id.hex,))
            row = cursor.fetchone()
        return [] if row is None else str(row[0]).split(",")

    def set_deposit_resume(self, account_id: UUID, signatures: Sequence[str]) -> None:
        """Keep (or, empty, forget) the resume marks: base58 signatures,
        never containing a comma."""
        with self.transaction() as cursor:
            if not signatures:
                cursor.execute(self.sql("DELETE FROM {deposit_resumes} WHERE account_id = ?"),
                               (account_id.hex,))
                return
            cursor.execute(self.sql(
                "INSERT INTO {deposit_resumes} (account_id, signatures) VALUES (?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET signatures = excluded.signatures"
            ), (account_id.hex, ",".join(signatures)))

    def set_chain_balances(self, run_id: UUID, read_at: str,
                           readings: Sequence[tuple[UUID, int]]) -> None:
        """What a reconciliation read on chain for each account: shown with
        the account (``GET /v1/accounts/{id}``) until the next run reads it."""
        if not readings:
            return
        with self.transaction() as cursor:
            for account_id, chain_balance in readings:
                cursor.execute(self.sql(
                    "INSERT INTO {reconciliation_balances} (account_id, chain_balance, run_id, "
                    "read_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET "
                    "chain_balance = excluded.chain_balance, run_id = excluded.run_id, "
                    "read_at = excluded.read_at"
                ), (account_id.hex, chain_balance, run_id.hex, read_at))

    def chain_balance(self, account_id: UUID) -> ChainBalance | None:
        """The account's balance on chain when a reconciliation last read it."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT chain_balance, run_id, read_at FROM {reconciliation_balances} "
                "WHERE account_id = ?"
            ), (account_id.hex,))
            row = cursor.fetchone()
        if row is None:
            return None
        return ChainBalance(int(row[0]), UUID(hex=row[1]), str(row[2]))

    # Meta values

    def meta(self, name: str) -> int:
        with self.read() as cursor:
            cursor.execute(self.sql("SELECT value FROM {settlement_meta} WHERE name = ?"), (name,))
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def set_meta(self, name: str, value: int) -> None:
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "INSERT INTO {settlement_meta} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ), (name, value))

    def count_step(self, cursor: Cursor) -> None:
        cursor.execute(self.sql(
            "INSERT INTO {settlement_meta} (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = {settlement_meta}.value + 1"
        ), (SETTLEMENT_STEPS,))

    # Reconciliation runs and findings

    def latest_run(self) -> RunRow | None:
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_RUN_COLUMNS} FROM {{reconciliation_runs}} "  # noqa: S608
                "WHERE finished_position IS NOT NULL ORDER BY finished_position DESC LIMIT 1"
            ))
            row = cursor.fetchone()
        return None if row is None else _run(row)

    def run(self, run_id: UUID) -> RunRow | None:
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_RUN_COLUMNS} FROM {{reconciliation_runs}} WHERE run_id = ?"  # noqa: S608
            ), (run_id.hex,))
            row = cursor.fetchone()
        return None if row is None else _run(row)

    def findings(self, run_id: UUID, limit: int, *, after: int = 0) -> list[FindingRow]:
        """``run_id``'s findings recorded after log position ``after``, in
        log order: a keyset page (each finding has a position of its own)."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_FINDING_COLUMNS} FROM {{reconciliation_findings}} "  # noqa: S608
                "WHERE run_id = ? AND position > ? ORDER BY position LIMIT ?"
            ), (run_id.hex, after, min(limit, PAGE_ROWS_MAX)))
            return [_finding(row) for row in cursor.fetchall()]

    def open_findings(self, run_id: UUID, limit: int) -> list[FindingRow]:
        """``run_id``'s findings not yet adjusted, assigned or returned,
        oldest first (at most ``limit``, bounded by ``PAGE_ROWS_MAX``)."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_FINDING_COLUMNS} FROM {{reconciliation_findings}} "  # noqa: S608
                "WHERE run_id = ? AND adjusted_by IS NULL ORDER BY position LIMIT ?"
            ), (run_id.hex, min(limit, PAGE_ROWS_MAX)))
            return [_finding(row) for row in cursor.fetchall()]

    def open_findings_count(self, run_id: UUID) -> int:
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT COUNT(*) FROM {reconciliation_findings} "
                "WHERE run_id = ? AND adjusted_by IS NULL"
            ), (run_id.hex,))
            return int(cursor.fetchone()[0])

    def unresolved_findings(self, run_id: UUID, account_id: UUID) -> list[FindingRow]:
        """``run_id``'s findings about ``account_id`` not yet adjusted or
        assigned, oldest first (at most ``PAGE_ROWS_MAX``)."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_FINDING_COLUMNS} FROM {{reconciliation_findings}} "  # noqa: S608
                "WHERE run_id = ? AND account_id = ? AND adjusted_by IS NULL "
                "ORDER BY position LIMIT ?"
            ), (run_id.hex, account_id.hex, PAGE_ROWS_MAX))
            return [_finding(row) for row in cursor.fetchall()]

    def finding(self, finding_id: UUID) -> FindingRow | None:
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_FINDING_COLUMNS} FROM {{reconciliation_findings}} "  # noqa: S608
                "WHERE finding_id = ?"
            ), (finding_id.hex,))
            row = cursor.fetchone()
        return None if row is None else _finding(row)

    def reset(self, *, lost_timeline: bool = False) -> None:
        """Empty every table and move tracking back to 0 (a rebuild);
        ``lost_timeline``: the store was of a timeline the log lost, counted
        in ``STORE_REBUILDS_META`` in the same transaction."""
        with self.transaction() as cursor:
            self._reset(cursor)
            if lost_timeline:
                cursor.execute(self.sql(
                    "INSERT INTO {settlement_meta} (name, value) VALUES (?, 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = {settlement_meta}.value + 1"
                ), (STORE_REBUILDS_META,))

    def _reset(self, cursor: Cursor) -> None:
        """Empty what the fold rebuilds from the log (the deposit scan's
        cursors and resumes too: the chain is scanned again, and a deposit
        credited on a lost timeline is credited again, once, by its
        signature); keep what only an operator's command knows (an
        unfinished owner rotation: the log cannot say it, and losing it let
        a settler start on half-moved accounts after a rebuild or a schema
        upgrade; the rotated fee payer's fingerprint) and the count of
        rebuilds a running settler compares."""
        marks = ", ".join("?" * len(KEPT_THROUGH_RESET))
        for table in _TABLES:
            kept = f" WHERE name NOT IN ({marks})" if table == "settlement_meta" else ""
            cursor.execute(self.sql(f"DELETE FROM {{{table}}}{kept}"),  # noqa: S608
                           KEPT_THROUGH_RESET if kept else ())
        self.tracking.seed(cursor)

    def _create(self, cursor: Cursor) -> None:
        """Create what is missing; tables of another ``SETTLEMENT_SCHEMA_VERSION``
        are emptied (the fold rebuilds them from the log), in the same
        transaction that marks the new version."""
        for statement in self._ddl():
            cursor.execute(statement)
        self.tracking.seed(cursor)
        cursor.execute(self.sql("SELECT value FROM {settlement_meta} WHERE name = ?"),
                       (SCHEMA_VERSION_META,))
        row = cursor.fetchone()
        if row is not None and int(row[0]) == SETTLEMENT_SCHEMA_VERSION:
            return
        logger.info("settlement tables of schema version %s: rebuilding them from the log",
                    row[0] if row else 1)
        self._reset(cursor)
        cursor.execute(self.sql(
            "INSERT INTO {settlement_meta} (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        ), (SCHEMA_VERSION_META, SETTLEMENT_SCHEMA_VERSION))

    # Row readers

    def _movements(self, where: str, params: Sequence[Any]) -> list[Movement]:
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_MOVEMENT_COLUMNS} FROM {{settlement_movements}} {where}"  # noqa: S608
            ), params)
            return [_movement(row) for row in cursor.fetchall()]

    def _submissions(self, where: str, params: Sequence[Any]) -> list[Submission]:
        with self.read() as cursor:
            cursor.execute(self.sql(
                f"SELECT {_SUBMISSION_COLUMNS} FROM {{settlement_submissions}} {where}"  # noqa: S608
            ), params)
            return [_submission(row) for row in cursor.fetchall()]


_MOVEMENT_COLUMNS = (
    "transfer_id, position, source, destination, amount, status, alone, signature, slot, "
    "(SELECT address FROM {settlement_withdrawals} "
    "WHERE {settlement_withdrawals}.transfer_id = {settlement_movements}.transfer_id), "
    "EXISTS (SELECT 1 FROM {settlement_deposit_returns} "
    "WHERE {settlement_deposit_returns}.transfer_id = {settlement_movements}.transfer_id), "
    "(SELECT token_account FROM {settlement_return_accounts} "
    "WHERE {settlement_return_accounts}.transfer_id = {settlement_movements}.transfer_id)"
)
_SUBMISSION_COLUMNS = (
    "signature, position, last_valid_block_height, tx, transfer_ids, status, slot, "
    "outcome_position"
)
_RUN_COLUMNS = (
    "run_id, started_at, finished_at, checked_accounts, checked_signatures, mismatches, "
    "unmatched_signatures, findings_total"
)
_FINDING_COLUMNS = (
    "finding_id, run_id, position, kind, account_id, signature, transfer_id, expected, actual, "
    "detail, adjusted_by"
)


def _uuid(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


def _movement(row: Sequence[Any]) -> Movement:
    return Movement(
        UUID(row[0]), int(row[1]), UUID(row[2]), UUID(row[3]), int(row[4]), str(row[5]),
        bool(row[6]), row[7], None if row[8] is None else int(row[8]), row[9], bool(row[10]),
        row[11],
    )


def _submission(row: Sequence[Any]) -> Submission:
    return Submission(
        str(row[0]), int(row[1]), int(row[2]), None if row[3] is None else bytes(row[3]),
        tuple(UUID(item) for item in str(row[4]).split(",") if item), str(row[5]),
        None if row[6] is None else int(row[6]), None if row[7] is None else int(row[7]),
    )


def _run(row: Sequence[Any]) -> RunRow:
    return RunRow(
        UUID(row[0]), str(row[1]), row[2], *(int(value or 0) for value in row[3:8]),
    )


def _finding(row: Sequence[Any]) -> FindingRow:
    return FindingRow(
        UUID(row[0]), UUID(row[1]), int(row[2]), str(row[3]), _uuid(row[4]), row[5],
        _uuid(row[6]), None if row[7] is None else int(row[7]),
        None if row[8] is None else int(row[8]), str(row[9]), _uuid(row[10]),
    )


# SQLite


class SQLiteSettlementStore(SettlementStore):
    kind = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sql = SqlText({**table_names(_TABLES, None), "blob": "BLOB"})
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # derived data: a power cut may lose the last pages, never tear one,
        # and the fold re-applies them from the tracking position it kept
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction() as cursor:
            self._create(cursor)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Cursor]:
        with sqlite_write(self._db, self._lock) as cursor:
            yield cursor

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._db.close()


# PostgreSQL


class _PgCursor:
    """A psycopg cursor that takes ``?`` placeholders."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), tuple(params))

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class PostgresSettlementStore(SettlementStore):
    kind = "postgres"

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.sql = SqlText({**table_names(_TABLES, datastore.schema), "blob": "BYTEA"})
        with self.transaction() as cursor:
            # concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog
            cursor.execute(HASHTEXT_DDL_LOCK_SQL, (settlement_ddl_lock_name(datastore.schema),))
            self._create(cursor)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Cursor]:
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn:
            if durable:
                with conn.transaction():
                    yield _PgCursor(conn.cursor(row_factory=tuple_row))
                return
            # the fold's pages: their writes go out pipelined, so a page costs
            # a round trip per read, not per statement (errors surface at the
            # next read or at the commit, and roll the whole page back)
            with conn.pipeline(), conn.transaction():
                cursor = _PgCursor(conn.cursor(row_factory=tuple_row))
                cursor.execute("SET LOCAL synchronous_commit = off")
                yield cursor

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """Reads are single statements on an autocommit connection: no
        BEGIN/ROLLBACK round trips."""
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn:
            yield _PgCursor(conn.cursor(row_factory=tuple_row))

    def close(self) -> None:
        pass  # the pool belongs to the application


def open_settlement_store(recorder: Any) -> SettlementStore:
    """The store beside the application's event store (``app.recorder``)."""
    from eventsourcing.postgres import PostgresApplicationRecorder
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresSettlementStore(recorder.datastore)
    if isinstance(recorder, SQLiteApplicationRecorder):
        db_name = recorder.datastore.pool.db_name
        if recorder.datastore.pool.is_sqlite_memory_mode:
            raise ValueError("settlement needs a file-backed or PostgreSQL event store")
        return SQLiteSettlementStore(Path(db_name).parent / SETTLEMENT_FILE_NAME)
    raise TypeError(f"no settlement store for {type(recorder).__name__}")
