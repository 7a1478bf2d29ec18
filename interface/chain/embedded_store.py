"""SQLite persistence for the embedded chain: the accounts LiteSVM holds for
us, the slot and recent blockhashes, and an index of landed transactions.

LiteSVM keeps everything in memory and answers neither "which transactions
touched this address" nor "what did this signature do" after a restart, so
this store owns both: each processed transaction commits its accounts and its
index row in ONE SQLite transaction, and a restart restores exactly the state
of the last committed one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from uuid import UUID

from solders.account import Account
from solders.pubkey import Pubkey

from interface.chain.transactions import InnerInstruction

SIGNATURES_PAGE_MAX = 1000  # the RPC method's own cap

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blockhashes (
    blockhash TEXT PRIMARY KEY,
    slot INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY,
    lamports INTEGER NOT NULL CHECK (lamports >= 0),
    owner TEXT NOT NULL,
    executable INTEGER NOT NULL,
    rent_epoch TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    signature TEXT NOT NULL UNIQUE,
    slot INTEGER NOT NULL,
    record TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS address_signatures (
    address TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES transactions (seq),
    PRIMARY KEY (address, seq)
);
"""


@dataclass(frozen=True)
class TokenBalance:
    """A token account's amount before or after a transaction, as RPC nodes
    report it in ``preTokenBalances`` / ``postTokenBalances``."""

    account_index: int
    address: str
    mint: str
    owner: str
    amount: int


@dataclass(frozen=True)
class LandedTransaction:
    """One landed transaction in the index (successful or failed on chain).
    ``error`` is the adapters' text form, ``error_wire`` the RPC JSON form."""

    signature: str
    slot: int
    error: str | None
    error_wire: object | None
    memos: tuple[str, ...]
    memo_transfer_ids: tuple[UUID, ...]
    pre_token_balances: tuple[TokenBalance, ...]
    post_token_balances: tuple[TokenBalance, ...]
    pre_lamports: tuple[int, ...]
    post_lamports: tuple[int, ...]
    fee: int
    compute_units: int
    logs: tuple[str, ...]
    raw: bytes
    inner_instructions: tuple[InnerInstruction, ...] = ()
    """What its programs invoked (CPIs); absent from records written before
    they were kept, read as none."""

    @property
    def token_deltas(self) -> dict[str, int]:
        """Token account address -> change in base units; unchanged accounts
        are left out (a created-but-empty account moved nothing)."""
        before = {balance.address: balance.amount for balance in self.pre_token_balances}
        after = {balance.address: balance.amount for balance in self.post_token_balances}
        deltas = {
            address: after.get(address, 0) - before.get(address, 0)
            for address in before.keys() | after.keys()
        }
        return {address: delta for address, delta in deltas.items() if delta != 0}


@dataclass(frozen=True)
class StoredState:
    slot: int | None
    blockhashes: dict[str, int]  # blockhash -> slot it was issued at
    accounts: list[tuple[Pubkey, Account]]


@dataclass(frozen=True)
class ChainStep:
    """Everything one step of the embedded chain changes, committed together."""

    slot: int
    new_blockhash: tuple[str, int] | None
    oldest_valid_blockhash_slot: int
    accounts: list[tuple[Pubkey, Account | None]]
    landed: LandedTransaction | None = None
    addresses: tuple[str, ...] = ()


class EmbeddedStore:
    """The SQLite file behind one EmbeddedSolana. Not thread-safe on its
    own: EmbeddedSolana serialises every call under its lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load(self) -> StoredState:
        slot_row = self._db.execute("SELECT value FROM chain_state WHERE key = 'slot'").fetchone()
        blockhashes = dict(self._db.execute("SELECT blockhash, slot FROM blockhashes"))
        accounts = [
            (Pubkey.from_string(address), _account(lamports, owner, executable, rent_epoch, data))
            for address, lamports, owner, executable, rent_epoch, data in self._db.execute(
                "SELECT address, lamports, owner, executable, rent_epoch, data FROM accounts"
            )
        ]
        return StoredState(None if slot_row is None else slot_row[0], blockhashes, accounts)

    def commit(self, step: ChainStep) -> None:
        """Write one step atomically: all of it or, on any error, none."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO chain_state (key, value) VALUES ('slot', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (step.slot,),
            )
            self._write_blockhashes(step)
            for address, account in step.accounts:
                self._write_account(address, account)
            if step.landed is not None:
                self._write_landed(step.landed, step.addresses)

    def landed(self, signature: str) -> LandedTransaction | None:
        row = self._db.execute(
            "SELECT record, raw FROM transactions WHERE signature = ?", (signature,)
        ).fetchone()
        return None if row is None else _landed_from_row(*row)

    def signatures_for_address(
        self, address: str, *, before: str | None, limit: int
    ) -> list[LandedTransaction]:
        """Newest first, like getSignaturesForAddress; ``before`` is
        exclusive, and an unknown ``before`` gives an empty page."""
        if not 1 <= limit <= SIGNATURES_PAGE_MAX:
            raise ValueError(f"limit_must_be_1_to_{SIGNATURES_PAGE_MAX}")
        before_seq = self._before_seq(before)
        if before_seq is None:
            return []
        rows = self._db.execute(
            "SELECT t.record, t.raw FROM address_signatures a "
            "JOIN transactions t ON t.seq = a.seq "
            "WHERE a.address = ? AND a.seq < ? ORDER BY a.seq DESC LIMIT ?",
            (address, before_seq, limit),
        )
        return [_landed_from_row(record, raw) for record, raw in rows]

    def close(self) -> None:
        self._db.close()

    def _before_seq(self, before: str | None) -> int | None:
        if before is None:
            return 2**63 - 1
        row = self._db.execute(
            "SELECT seq FROM transactions WHERE signature = ?", (before,)
        ).fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write_blockhashes(self, step: ChainStep) -> None:
        if step.new_blockhash is not None:
            self._db.execute(
                "INSERT INTO blockhashes (blockhash, slot) VALUES (?, ?)", step.new_blockhash
            )
        self._db.execute(
            "DELETE FROM blockhashes WHERE slot < ?", (step.oldest_valid_blockhash_slot,)
        )

    def _write_account(self, address: Pubkey, account: Account | None) -> None:
        if account is None:
            self._db.execute("DELETE FROM accounts WHERE address = ?", (str(address),))
            return
        self._db.execute(
            "INSERT OR REPLACE INTO accounts "
            "(address, lamports, owner, executable, rent_epoch, data) VALUES (?, ?, ?, ?, ?, ?)",
            (
                str(address),
                account.lamports,
                str(account.owner),
                int(account.executable),
                str(account.rent_epoch),  # a u64 that may exceed SQLite's INTEGER
                bytes(account.data),
            ),
        )

    def _write_landed(self, landed: LandedTransaction, addresses: Iterable[str]) -> None:
        cursor = self._db.execute(
            "INSERT INTO transactions (signature, slot, record, raw) VALUES (?, ?, ?, ?)",
            (landed.signature, landed.slot, _record_json(landed), landed.raw),
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO address_signatures (address, seq) VALUES (?, ?)",
            [(address, cursor.lastrowid) for address in addresses],
        )


def read_landed(path: Path, signature: str) -> LandedTransaction | None:
    """One landed transaction, read from the chain's file without writing to
    it (``mode=ro``): for a verifier beside a running settler."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute(
            "SELECT record, raw FROM transactions WHERE signature = ?", (signature,)
        ).fetchone()
    return None if row is None else _landed_from_row(row[0], row[1])


def _account(lamports: int, owner: str, executable: int, rent_epoch: str, data: bytes) -> Account:
    return Account(lamports, data, Pubkey.from_string(owner), bool(executable), int(rent_epoch))


def _record_json(landed: LandedTransaction) -> str:
    record = asdict(landed)
    del record["raw"]
    record["memo_transfer_ids"] = [str(transfer_id) for transfer_id in landed.memo_transfer_ids]
    record["inner_instructions"] = [
        [inner.outer, inner.program_id_index, list(inner.accounts), inner.data.hex()]
        for inner in landed.inner_instructions]
    return json.dumps(record, separators=(",", ":"))


def _landed_from_row(record_json: str, raw: bytes) -> LandedTransaction:
    record = json.loads(record_json)
    return LandedTransaction(
        signature=record["signature"],
        slot=record["slot"],
        error=record["error"],
        error_wire=record["error_wire"],
        memos=tuple(record["memos"]),
        memo_transfer_ids=tuple(UUID(item) for item in record["memo_transfer_ids"]),
        pre_token_balances=tuple(TokenBalance(**item) for item in record["pre_token_balances"]),
        post_token_balances=tuple(TokenBalance(**item) for item in record["post_token_balances"]),
        pre_lamports=tuple(record["pre_lamports"]),
        post_lamports=tuple(record["post_lamports"]),
        fee=record["fee"],
        compute_units=record["compute_units"],
        logs=tuple(record["logs"]),
        raw=bytes(raw),
        inner_instructions=tuple(
            InnerInstruction(outer, program, tuple(accounts), bytes.fromhex(data))
            for outer, program, accounts, data in record.get("inner_instructions", ())),
    )
