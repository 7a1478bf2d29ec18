"""``LiteSvmChain``: the chain port on an in-process ``EmbeddedSolana``, the
embedded default (no validator, no network, state under the data dir).

Sending runs preflight like an RPC node: a transaction that would fail is
refused with ``ChainRejectedError`` and never lands, so on this adapter a
failed movement always surfaces from ``send``, never as a status with an
error. The work is synchronous and takes microseconds, so the async methods
simply call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application.settlement.chain_port import (
    ChainTransaction,
    SignatureStatus,
    SignedSubmission,
)
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain, Simulation, require_statuses_bound
from interface.chain.compute_budget import PriorityFees
from interface.chain.custody import CustodyKey, CustodyKeys
from interface.chain.embedded import EmbeddedSolana
from interface.chain.embedded_store import LandedTransaction

FEE_PAYER_LAMPORTS_MIN = 10 * 10**9  # top up below 10 SOL...
FEE_PAYER_LAMPORTS_TOP_UP = 1_000 * 10**9  # ...to 1000 SOL: the embedded faucet
CONFIRMATION = "finalized"  # one node, no forks: what landed is final


class LiteSvmChain(SeededTokenChain):
    """The port on an embedded chain; ``close`` closes that chain.
    ``faucet``: top the fee payer up before each send (the embedded chain's
    default: SOL there is free); tests of an unfunded fee payer turn it off."""

    def __init__(self, chain: EmbeddedSolana, custody: CustodyKey | CustodyKeys,
                 mint: Pubkey | None = None, fees: PriorityFees | None = None, *,
                 faucet: bool = True) -> None:
        super().__init__(custody, mint, fees)
        self._chain = chain
        self._faucet = faucet

    @property
    def embedded(self) -> EmbeddedSolana:
        """The chain itself, for tests and operator tools."""
        return self._chain

    async def send(self, submission: SignedSubmission) -> None:
        self._ensure_fee_payer_funded()
        outcome = self._chain.process(Transaction.from_bytes(submission.transaction))
        rejection = outcome.rejection
        if rejection is None:
            return  # landed now or (fault injection) dropped
        if self._chain.landed(submission.signature) is not None:
            return  # landed before: AlreadyProcessed, or BlockhashNotFound once expired
        raise self._refusal(submission, rejection.error, rejection.error_wire)

    async def signature_statuses(
        self, signatures: Sequence[str]
    ) -> dict[str, SignatureStatus | None]:
        require_statuses_bound(signatures)
        return {signature: _status(self._chain.landed(signature)) for signature in signatures}

    async def block_height(self) -> int:
        return self._chain.block_height()

    async def blockhash_expiry_height(self) -> int | None:
        """None: nothing sent earlier can land later. The embedded chain runs
        in the settler's process (one process at a time holds its files)
        and executes a transaction, committing it durably with its index
        row, before ``send`` returns; a dead sender's transaction has
        landed, and the lookup sees it, or never will (its bytes died with
        the process or are recorded in the log, which resends the same
        signature). Its block height moves only when a transaction lands,
        so a wait for it would never end."""
        return None

    async def token_balance(self, account_id: UUID) -> int | None:
        data = await self._account_data(tx.token_account_address(self._keys.address_base, account_id))
        return None if data is None else tx.token_account_amount(data)

    async def signatures_for_account(
        self, account_id: UUID, *, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        address = self.token_account_address(account_id)
        page = self._chain.signatures_for_address(address, before=before, limit=limit)
        return [landed.signature for landed in page]

    async def anchor_signatures(
        self, *, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        page = self._chain.signatures_for_address(self.anchor_signer, before=before, limit=limit)
        return [landed.signature for landed in page]

    async def fee_payer_signatures(
        self, *, payer: str | None = None, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        page = self._chain.signatures_for_address(
            payer or str(self._keys.fee_payer), before=before, limit=limit)
        return [landed.signature for landed in page]

    async def transaction(self, signature: str) -> ChainTransaction | None:
        landed = self._chain.landed(signature)
        if landed is None:
            return None
        message = Transaction.from_bytes(landed.raw).message
        return ChainTransaction(
            signature=landed.signature,
            slot=landed.slot,
            error=landed.error,
            memo_transfer_ids=landed.memo_transfer_ids,
            token_deltas=landed.token_deltas,
            memos=landed.memos,
            token_transfers=tx.token_transfers(
                message, _token_accounts(landed), landed.inner_instructions),
            fee_payer=str(message.account_keys[0]),
            signers=tx.signers(message),
            authority_changes=tx.authority_changes(message),
        )

    async def close(self) -> None:
        self._chain.close()

    # --- primitives ---------------------------------------------------------

    async def _account(self, address: Pubkey) -> tuple[Pubkey, bytes] | None:
        account = self._chain.get_account(address)
        return None if account is None else (account.owner, bytes(account.data))

    async def _latest_blockhash(self) -> tuple[Hash, int]:
        return self._chain.latest_blockhash()

    async def _rent_lamports(self) -> tx.RentLamports:
        return self._chain.rent_lamports()

    async def _simulate(self, transaction: Transaction) -> Simulation:
        self._ensure_fee_payer_funded()
        units, rejection = self._chain.simulate(transaction)
        if rejection is not None:
            return Simulation(None, rejection.error_wire)
        return Simulation(units)

    async def _lamports(self, address: Pubkey) -> int:
        account = self._chain.get_account(address)
        return 0 if account is None else account.lamports

    async def _rent_exempt_lamports(self, data_len: int) -> int:
        return self._chain.rent_exempt_lamports(data_len)

    def _ensure_fee_payer_funded(self) -> None:
        if not self._faucet:
            return
        account = self._chain.get_account(self._keys.fee_payer)
        if account is None or account.lamports < FEE_PAYER_LAMPORTS_MIN:
            self._chain.fund(self._keys.fee_payer, FEE_PAYER_LAMPORTS_TOP_UP)


def _token_accounts(landed: LandedTransaction) -> dict[str, tuple[str, str]]:
    """Token account -> (owner, mint): before the transaction where it
    existed (the owner that signed), else after (created by it)."""
    return {balance.address: (balance.owner, balance.mint)
            for balance in (*landed.post_token_balances, *landed.pre_token_balances)}


def _status(landed: LandedTransaction | None) -> SignatureStatus | None:
    if landed is None:
        return None
    return SignatureStatus(landed.signature, landed.slot, landed.error, CONFIRMATION)
