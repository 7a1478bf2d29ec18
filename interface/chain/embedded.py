"""The embedded chain: LiteSVM (real SPL Token and Memo programs) plus what a
node has and LiteSVM lacks: slots that advance, blockhashes that expire, an
index of landed transactions per address, and state on disk.

Block height is the slot: each landed transaction is one block, so the slot
moves by one after it and a new blockhash is issued for the new slot. A
blockhash issued at slot S is valid through block height S + 150 (the real
chain's window), so ``last_valid_block_height`` = height at signing + 150.
LiteSVM's own blockhash check is off because its blockhashes are the same in
every fresh instance: a restarted chain would accept a stale transaction.
Our blockhashes are random, so a blockhash from before a restart that is no
longer in the window can never validate again.

A transaction whose blockhash has passed, whose signature already landed, or
that fails preflight simulation is rejected and changes nothing. With
``preflight=False`` (the RPC server's skipPreflight) a transaction that fails
in execution lands with its error and pays its fee, as on a real cluster.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from solders.account import Account
from solders.hash import Hash
from solders.instruction import Instruction
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey, CustodyKeys, as_custody_keys
from interface.chain.embedded_store import (
    ChainStep,
    EmbeddedStore,
    LandedTransaction,
    TokenBalance,
)

BLOCKHASH_VALIDITY_SLOTS = 150
DATABASE_FILE_NAME = "embedded-solana.sqlite3"


@dataclass(frozen=True)
class Rejection:
    """Why the chain refused a transaction; it did not land and changed
    nothing. ``logs`` and ``units_consumed`` come from preflight."""

    error: str
    error_wire: object
    logs: tuple[str, ...] = ()
    units_consumed: int = 0


@dataclass(frozen=True)
class SendOutcome:
    """What became of a transaction handed to ``process``: exactly one of
    landed, rejected, or dropped (accepted, then lost on purpose)."""

    signature: str
    landed: LandedTransaction | None = None
    rejection: Rejection | None = None
    dropped: bool = False


ALREADY_PROCESSED = Rejection("AlreadyProcessed", "AlreadyProcessed")
BLOCKHASH_NOT_FOUND = Rejection("BlockhashNotFound", "BlockhashNotFound")


class EmbeddedSolana:
    """One LiteSVM whose state lives in ``data_dir``. Thread-safe: every
    public method holds one lock (the test RPC server calls from threads)."""

    def __init__(self, data_dir: Path) -> None:
        self._lock = threading.RLock()
        self._svm = LiteSVM().with_blockhash_check(False)
        self._store = EmbeddedStore(data_dir / DATABASE_FILE_NAME)
        self._blockhashes: dict[str, int] = {}
        self._transactions_to_drop = 0
        self._restore()

    # --- queries ------------------------------------------------------------

    @property
    def slot(self) -> int:
        with self._lock:
            return self._slot

    def block_height(self) -> int:
        return self.slot

    def latest_blockhash(self) -> tuple[Hash, int]:
        """The newest blockhash and the last block height it is valid at."""
        with self._lock:
            blockhash, issued_slot = max(self._blockhashes.items(), key=lambda item: item[1])
            return Hash.from_string(blockhash), issued_slot + BLOCKHASH_VALIDITY_SLOTS

    def get_account(self, address: Pubkey) -> Account | None:
        with self._lock:
            return self._svm.get_account(address)

    def rent_lamports(self) -> tx.RentLamports:
        with self._lock:
            return tx.RentLamports(
                mint_account=self._svm.minimum_balance_for_rent_exemption(tx.MINT_ACCOUNT_LEN),
                token_account=self._svm.minimum_balance_for_rent_exemption(tx.TOKEN_ACCOUNT_LEN),
            )

    def rent_exempt_lamports(self, data_len: int) -> int:
        with self._lock:
            return self._svm.minimum_balance_for_rent_exemption(data_len)

    def landed(self, signature: str) -> LandedTransaction | None:
        with self._lock:
            return self._store.landed(signature)

    def signatures_for_address(
        self, address: str, *, before: str | None = None, limit: int = 1000
    ) -> list[LandedTransaction]:
        with self._lock:
            return self._store.signatures_for_address(address, before=before, limit=limit)

    def simulate(self, transaction: Transaction) -> tuple[int, Rejection | None]:
        """Compute units the transaction consumes on the current state and
        why it would fail (None: it would land), as RPC
        ``simulateTransaction`` answers. Changes nothing."""
        with self._lock:
            simulated = self._svm.simulate_transaction(transaction)
        if isinstance(simulated, FailedTransactionMetadata):
            rejection = _rejection(simulated)
            return rejection.units_consumed, rejection
        return simulated.meta().compute_units_consumed(), None

    # --- processing ---------------------------------------------------------

    def process(self, transaction: Transaction, *, preflight: bool = True) -> SendOutcome:
        """Check, execute and index one transaction, then advance one slot."""
        signature = str(transaction.signatures[0])
        with self._lock:
            if self._transactions_to_drop > 0:
                self._transactions_to_drop -= 1
                return SendOutcome(signature, dropped=True)
            rejection = self._check(transaction, preflight=preflight)
            if rejection is not None:
                return SendOutcome(signature, rejection=rejection)
            return self._execute(transaction)

    def _check(self, transaction: Transaction, *, preflight: bool) -> Rejection | None:
        # a node checks the blockhash's age before its status cache, so a
        # landed transaction resent after expiry is BlockhashNotFound too
        if not self._blockhash_is_valid(transaction.message.recent_blockhash):
            return BLOCKHASH_NOT_FOUND
        if self._store.landed(str(transaction.signatures[0])) is not None:
            return ALREADY_PROCESSED
        if not preflight:
            return None
        return self.simulate(transaction)[1]

    def _blockhash_is_valid(self, blockhash: Hash) -> bool:
        issued_slot = self._blockhashes.get(str(blockhash))
        return issued_slot is not None and self._slot <= issued_slot + BLOCKHASH_VALIDITY_SLOTS

    def _execute(self, transaction: Transaction) -> SendOutcome:
        message = transaction.message
        keys = list(message.account_keys)
        before = self._snapshot(keys)
        result = self._svm.send_transaction(transaction)
        after = self._snapshot(keys)
        signature = str(transaction.signatures[0])
        fee_paid = self._lamports(before[0]) != self._lamports(after[0])
        if isinstance(result, FailedTransactionMetadata) and not fee_paid:
            return SendOutcome(signature, rejection=_rejection(result))  # never landed
        landed = self._landed_record(transaction, result, before, after)
        self._advance(1, accounts=tx.writable_keys(message), landed=landed)
        return SendOutcome(signature, landed=landed)

    def _snapshot(self, keys: list[Pubkey]) -> list[Account | None]:
        return [self._svm.get_account(key) for key in keys]

    @staticmethod
    def _lamports(account: Account | None) -> int:
        return 0 if account is None else account.lamports

    def _landed_record(
        self,
        transaction: Transaction,
        result: TransactionMetadata | FailedTransactionMetadata,
        before: list[Account | None],
        after: list[Account | None],
    ) -> LandedTransaction:
        keys = list(transaction.message.account_keys)
        metadata = result.meta() if isinstance(result, FailedTransactionMetadata) else result
        error = result.err() if isinstance(result, FailedTransactionMetadata) else None
        memos = tx.memo_texts(transaction.message)
        return LandedTransaction(
            signature=str(transaction.signatures[0]),
            slot=self._slot,
            error=tx.error_text(error),
            error_wire=None if error is None else tx.error_to_wire(error),
            memos=memos,
            memo_transfer_ids=tx.memo_transfer_ids(memos),
            pre_token_balances=_token_balances(keys, before),
            post_token_balances=_token_balances(keys, after),
            pre_lamports=tuple(self._lamports(account) for account in before),
            post_lamports=tuple(self._lamports(account) for account in after),
            fee=metadata.fee(),
            compute_units=metadata.compute_units_consumed(),
            logs=tuple(metadata.logs()),
            raw=bytes(transaction),
            inner_instructions=_inner_instructions(metadata),
        )

    def _advance(
        self,
        slots: int,
        *,
        accounts: Sequence[Pubkey] = (),
        landed: LandedTransaction | None = None,
    ) -> None:
        """Move to a later slot with a fresh blockhash, and commit the step
        (changed accounts, index row) atomically."""
        self._slot += slots
        self._svm.warp_to_slot(self._slot)
        blockhash = str(Hash(os.urandom(32)))
        self._blockhashes[blockhash] = self._slot
        oldest_valid = self._slot - BLOCKHASH_VALIDITY_SLOTS
        self._blockhashes = {h: s for h, s in self._blockhashes.items() if s >= oldest_valid}
        self._store.commit(
            ChainStep(
                slot=self._slot,
                new_blockhash=(blockhash, self._slot),
                oldest_valid_blockhash_slot=oldest_valid,
                accounts=[(key, self._svm.get_account(key)) for key in accounts],
                landed=landed,
                addresses=() if landed is None else _indexed_addresses(landed),
            )
        )

    # --- restart ------------------------------------------------------------

    def _restore(self) -> None:
        state = self._store.load()
        for address, account in state.accounts:
            self._svm.set_account(address, account)
        if state.slot is None:
            self._slot = self._svm.get_clock().slot
            self._advance(0)
            return
        self._slot = state.slot
        self._svm.warp_to_slot(self._slot)
        self._blockhashes = dict(state.blockhashes)
        if not self._blockhashes:
            self._advance(0)

    def close(self) -> None:
        with self._lock:
            self._store.close()

    # --- test and operator hooks ---------------------------------------------

    def fund(self, address: Pubkey, lamports: int) -> None:
        """Set a system account's lamports: the embedded chain's faucet."""
        self.set_account(address, Account(lamports, b"", SYSTEM_PROGRAM_ID))

    def set_account(self, address: Pubkey, account: Account) -> None:
        """Overwrite an account outside any transaction (tampering in tests);
        persisted like any other change, without advancing the slot."""
        with self._lock:
            self._svm.set_account(address, account)
            self._store.commit(
                ChainStep(
                    slot=self._slot,
                    new_blockhash=None,
                    oldest_valid_blockhash_slot=self._slot - BLOCKHASH_VALIDITY_SLOTS,
                    accounts=[(address, account)],
                )
            )

    def advance_slots(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots_must_be_positive")
        with self._lock:
            self._advance(slots)

    def expire_blockhash(self) -> None:
        """Move past the validity window of every blockhash handed out so far:
        anything signed before now can no longer land."""
        self.advance_slots(BLOCKHASH_VALIDITY_SLOTS + 1)

    def drop_next_transactions(self, count: int = 1) -> None:
        """Fault: accept the next ``count`` transactions and never process
        them, like a leader that lost them."""
        with self._lock:
            self._transactions_to_drop = count

    def freeze_token_account(
        self, custody: CustodyKey | CustodyKeys, token_account: Pubkey
    ) -> SendOutcome:
        """Freeze with the mint's freeze authority, as an operator would."""
        keys = as_custody_keys(custody)
        mint = tx.mint_address(keys.address_base)
        return self._sign_and_process(
            keys, [tx.freeze_account_instruction(keys.mint_authority, token_account, mint)]
        )

    def transfer_directly(
        self, custody: CustodyKey | CustodyKeys, source: Pubkey, destination: Pubkey, amount: int
    ) -> SendOutcome:
        """A transfer signed with the owner key but not by the service: no
        memo, no ledger movement. What reconciliation must notice."""
        keys = as_custody_keys(custody)
        instruction = tx.transfer_checked_instruction(
            keys.owner, source, destination, amount, tx.mint_address(keys.address_base))
        return self._sign_and_process(keys, [instruction])

    def record_observed(
        self, transaction: Transaction, after: Mapping[Pubkey, Account],
        inner: tuple[tx.InnerInstruction, ...],
    ) -> LandedTransaction:
        """Tests: index ``transaction`` as landed, successful, with ``inner``
        instructions, its accounts then holding ``after``, without running
        it: what a cluster records for a program this chain does not have
        (one that moves DEAL by CPI into any address)."""
        with self._lock:
            keys = list(transaction.message.account_keys)
            before = self._snapshot(keys)
            for address, account in after.items():
                self._svm.set_account(address, account)
            now = self._snapshot(keys)
            memos = tx.memo_texts(transaction.message)
            landed = LandedTransaction(
                signature=str(transaction.signatures[0]), slot=self._slot, error=None,
                error_wire=None, memos=memos, memo_transfer_ids=tx.memo_transfer_ids(memos),
                pre_token_balances=_token_balances(keys, before),
                post_token_balances=_token_balances(keys, now),
                pre_lamports=tuple(self._lamports(account) for account in before),
                post_lamports=tuple(self._lamports(account) for account in now),
                fee=0, compute_units=0, logs=(), raw=bytes(transaction), inner_instructions=inner,
            )
            self._advance(1, accounts=list(after), landed=landed)
            return landed

    def _sign_and_process(
        self, custody: CustodyKey | CustodyKeys, instructions: list[Instruction]
    ) -> SendOutcome:
        keys = as_custody_keys(custody)
        blockhash, _ = self.latest_blockhash()
        message = Message.new_with_blockhash(instructions, keys.fee_payer, blockhash)
        return self.process(keys.sign(message, blockhash))


def _rejection(failed: FailedTransactionMetadata) -> Rejection:
    error = failed.err()
    metadata = failed.meta()
    return Rejection(
        error=tx.error_text(error) or "unknown",
        error_wire=tx.error_to_wire(error),
        logs=tuple(metadata.logs()),
        units_consumed=metadata.compute_units_consumed(),
    )


def _token_balances(keys: list[Pubkey], accounts: list[Account | None]) -> tuple[TokenBalance, ...]:
    balances = []
    for index, (key, account) in enumerate(zip(keys, accounts, strict=True)):
        if account is None or not tx.is_token_account(account.owner, bytes(account.data)):
            continue
        state = tx.decode_token_account(bytes(account.data))
        balances.append(
            TokenBalance(index, str(key), str(state.mint), str(state.owner), int(state.amount))
        )
    return tuple(balances)


def _inner_instructions(metadata: TransactionMetadata) -> tuple[tx.InnerInstruction, ...]:
    """What each top-level instruction's programs invoked, in order (LiteSVM
    lists one group per top-level instruction, empty when it made none)."""
    return tuple(
        tx.InnerInstruction(outer, compiled.program_id_index, tuple(compiled.accounts),
                            bytes(compiled.data))
        for outer, group in enumerate(metadata.inner_instructions())
        for compiled in (inner.instruction() for inner in group)
    )


def _indexed_addresses(landed: LandedTransaction) -> tuple[str, ...]:
    """Every account a transaction names, as getSignaturesForAddress sees it."""
    message = Transaction.from_bytes(landed.raw).message
    return tuple(str(key) for key in message.account_keys)
