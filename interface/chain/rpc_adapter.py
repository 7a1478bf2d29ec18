"""``RpcChain``: the chain port on a Solana JSON-RPC endpoint through
solana-py's ``AsyncClient`` (chosen in production by DEALS_SOLANA_RPC_URL).

Errors are sorted by what the caller may do next: anything that says the
endpoint could not answer (transport error, timeout, HTTP error, an RPC error
object, an unparsable answer) is ``ChainUnavailableError``, retry later; a
preflight failure that names a transaction error (-32002 with ``err``) is
``ChainRejectedError``, the transaction will never land. Sending a
transaction that already landed is success, whatever the node says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TxOpts
from solders.errors import SerdeJSONError
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.rpc.responses import GetTransactionResp, RpcConfirmedTransactionStatusWithSignature
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionStatus,
    UiCompiledInstruction,
    UiTransactionStatusMeta,
    UiTransactionTokenBalance,
)

from application.settlement.chain_port import (
    ChainTransaction,
    ChainUnavailableError,
    SignatureStatus,
    SignedSubmission,
)
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain, Simulation, require_statuses_bound
from interface.chain.compute_budget import PriorityFees
from interface.chain.custody import CustodyKey, CustodyKeys

T = TypeVar("T")

COMMITMENT_DEFAULT = "confirmed"
TIMEOUT_S_DEFAULT = 10.0
COMMITMENTS = ("processed", "confirmed", "finalized")
# solana-py wraps every httpx transport/timeout/status error in SolanaRpcException
_UNAVAILABLE = (RPCException, RPCNoResultException, SolanaRpcException, SerdeJSONError)


class RpcChain(SeededTokenChain):
    """The port on a JSON-RPC endpoint. ``commitment`` applies to every read
    and to preflight; ``timeout_s`` bounds each HTTP request."""

    def __init__(
        self,
        endpoint: str,
        custody: CustodyKey | CustodyKeys,
        *,
        commitment: str = COMMITMENT_DEFAULT,
        timeout_s: float = TIMEOUT_S_DEFAULT,
        transport_retries_max: int = 1,
        mint: Pubkey | None = None,
        fees: PriorityFees | None = None,
    ) -> None:
        if commitment not in COMMITMENTS:
            raise ValueError(f"commitment_must_be_one_of {COMMITMENTS}")
        super().__init__(custody, mint, fees)
        self._where = endpoint_for_logs(endpoint)
        self._commitment = Commitment(commitment)
        self._client = AsyncClient(
            endpoint,
            commitment=self._commitment,
            timeout=timeout_s,
            max_transport_retries=transport_retries_max,
        )

    async def send(self, submission: SignedSubmission) -> None:
        opts = TxOpts(skip_confirmation=True, preflight_commitment=self._commitment)
        try:
            await self._client.send_raw_transaction(submission.transaction, opts)
        except RPCException as error:
            wire = _preflight_error_wire(error)
            reason = None if wire is None else tx.wire_error_text(wire)
            if reason is None:
                raise ChainUnavailableError(
                    f"sendTransaction to {self._where} failed: {_describe(error)}") from None
            if reason != "AlreadyProcessed" and not await self._has_landed(submission.signature):
                raise self._refusal(submission, reason, wire) from None
        except _UNAVAILABLE as error:
            raise ChainUnavailableError(
                f"sendTransaction to {self._where} failed: {_describe(error)}") from None
        except BaseException as error:
            if not _is_parser_panic(error):
                raise
            raise ChainUnavailableError("sendTransaction failed: unparsable answer") from None

    async def signature_statuses(
        self, signatures: Sequence[str]
    ) -> dict[str, SignatureStatus | None]:
        require_statuses_bound(signatures)
        if not signatures:
            return {}
        parsed = [Signature.from_string(signature) for signature in signatures]
        response = await self._call(
            "getSignatureStatuses",
            self._client.get_signature_statuses(parsed, search_transaction_history=True),
        )
        return {
            signature: _status(signature, status)
            for signature, status in zip(signatures, response.value, strict=True)
        }

    async def block_height(self) -> int:
        response = await self._call("getBlockHeight", self._client.get_block_height())
        return _non_negative("getBlockHeight", response.value)

    async def blockhash_expiry_height(self) -> int | None:
        """A cluster keeps what it was sent (leaders, forwarding nodes) and
        may land it until its blockhash expires, whoever sent it."""
        return (await self._latest_blockhash())[1]

    async def token_balance(self, account_id: UUID) -> int | None:
        address = tx.token_account_address(self._keys.address_base, account_id)
        if not await self._account_exists(address):
            return None
        response = await self._call(
            "getTokenAccountBalance", self._client.get_token_account_balance(address)
        )
        return _non_negative("getTokenAccountBalance", int(response.value.amount))

    async def signatures_for_account(
        self, account_id: UUID, *, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        if not 1 <= limit <= 1000:
            raise ValueError("limit_must_be_1_to_1000")
        response = await self._call(
            "getSignaturesForAddress",
            self._client.get_signatures_for_address(
                tx.token_account_address(self._keys.address_base, account_id),
                before=None if before is None else Signature.from_string(before),
                limit=limit,
                commitment=self._history_commitment(),
            ),
        )
        entries: list[RpcConfirmedTransactionStatusWithSignature] = response.value
        return [str(entry.signature) for entry in entries]

    async def anchor_signatures(
        self, *, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        return await self._signatures_for(Pubkey.from_string(self.anchor_signer), before, limit)

    async def fee_payer_signatures(
        self, *, payer: str | None = None, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        address = self._keys.fee_payer if payer is None else Pubkey.from_string(payer)
        return await self._signatures_for(address, before, limit)

    async def _signatures_for(self, address: Pubkey, before: str | None, limit: int) -> list[str]:
        """getSignaturesForAddress of ``address``: a page, newest first."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit_must_be_1_to_1000")
        response = await self._call(
            "getSignaturesForAddress",
            self._client.get_signatures_for_address(
                address, before=None if before is None else Signature.from_string(before),
                limit=limit, commitment=self._history_commitment(),
            ),
        )
        return [str(entry.signature) for entry in response.value]

    async def transaction(self, signature: str) -> ChainTransaction | None:
        response = await self._call(
            "getTransaction",
            self._client.get_transaction(
                Signature.from_string(signature),
                encoding="base64",
                commitment=self._history_commitment(),
                max_supported_transaction_version=0,
            ),
        )
        return _chain_transaction(signature, response)

    async def close(self) -> None:
        await self._client.close()

    # --- primitives ---------------------------------------------------------

    async def _account(self, address: Pubkey) -> tuple[Pubkey, bytes] | None:
        response = await self._call("getAccountInfo", self._client.get_account_info(address))
        value = response.value
        return None if value is None else (value.owner, bytes(value.data))

    async def _latest_blockhash(self) -> tuple[Hash, int]:
        response = await self._call("getLatestBlockhash", self._client.get_latest_blockhash())
        return response.value.blockhash, response.value.last_valid_block_height

    async def _rent_lamports(self) -> tx.RentLamports:
        mint = await self._call(
            "getMinimumBalanceForRentExemption",
            self._client.get_minimum_balance_for_rent_exemption(tx.MINT_ACCOUNT_LEN),
        )
        account = await self._call(
            "getMinimumBalanceForRentExemption",
            self._client.get_minimum_balance_for_rent_exemption(tx.TOKEN_ACCOUNT_LEN),
        )
        return tx.RentLamports(mint_account=mint.value, token_account=account.value)

    async def _simulate(self, transaction: Transaction) -> Simulation:
        """simulateTransaction at the configured commitment, signatures
        unchecked (the blockhash is checked: it is the one we sign with)."""
        response = await self._call(
            "simulateTransaction",
            self._client.simulate_transaction(VersionedTransaction.from_legacy(transaction)),
        )
        result = response.value
        if result.err is not None:
            return Simulation(None, tx.error_to_wire(result.err))
        return Simulation(result.units_consumed)

    async def _lamports(self, address: Pubkey) -> int:
        response = await self._call("getBalance", self._client.get_balance(address))
        return _non_negative("getBalance", response.value)

    async def _rent_exempt_lamports(self, data_len: int) -> int:
        response = await self._call(
            "getMinimumBalanceForRentExemption",
            self._client.get_minimum_balance_for_rent_exemption(data_len),
        )
        return _non_negative("getMinimumBalanceForRentExemption", response.value)

    # --- helpers ------------------------------------------------------------

    async def _call(self, method: str, request: Awaitable[T]) -> T:
        """Await one RPC call; every way it can fail to answer is retryable."""
        try:
            return await request
        except _UNAVAILABLE as error:
            raise ChainUnavailableError(
                f"{method} to {self._where} failed: {_describe(error)}") from None
        except BaseException as error:
            if not _is_parser_panic(error):
                raise
            raise ChainUnavailableError(f"{method} failed: unparsable answer") from None

    async def _has_landed(self, signature: str) -> bool:
        return (await self.signature_statuses([signature]))[signature] is not None

    def _history_commitment(self) -> Commitment:
        """getSignaturesForAddress and getTransaction refuse "processed"."""
        if self._commitment == "processed":
            return Commitment("confirmed")
        return self._commitment


def _preflight_error_wire(error: RPCException) -> object | None:
    """The transaction error of a -32002 preflight failure, in its wire
    form (``tx.error_to_wire``); None when the RPC error is about the node,
    not the transaction."""
    detail = error.args[0] if error.args else None
    if not isinstance(detail, SendTransactionPreflightFailureMessage):
        return None
    if detail.data.err is None:
        return None
    if detail.data.err == TransactionErrorFieldless.AlreadyProcessed:
        return "AlreadyProcessed"
    return tx.error_to_wire(detail.data.err)


def _is_parser_panic(error: BaseException) -> bool:
    """solders panics (pyo3's PanicException, a BaseException that cannot
    be imported by name) on an error object missing a field it expects,
    e.g. -32005 without ``data``: that is a bad answer, not a crash of ours."""
    return type(error).__name__ == "PanicException"


def _describe(error: BaseException) -> str:
    """A short, key-free description: type, and the RPC message if any; for
    a request that never got an answer, the transport's cause (refused,
    timed out, name not resolved)."""
    detail = error.args[0] if error.args else None
    message = getattr(detail, "message", None)
    if isinstance(message, str):
        return f"{type(detail).__name__}: {message}"
    cause = error.__cause__
    if isinstance(error, SolanaRpcException) and cause is not None:
        text = str(cause)
        # a URL in the text may carry the provider's API key: the type alone then
        return type(cause).__name__ if not text or "://" in text else f"{type(cause).__name__}: {text}"
    return type(error).__name__


def endpoint_for_logs(endpoint: str) -> str:
    """The endpoint as logs and errors may name it: scheme, host and port.
    Providers put API keys in the path, the query or the user part."""
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return "the configured DEALS_SOLANA_RPC_URL"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _non_negative(method: str, value: int) -> int:
    """solders parses an RPC error object with an unknown code as a bare
    int; a negative height or amount is such an error, not an answer."""
    if value < 0:
        raise ChainUnavailableError(f"{method} failed: error code {value}")
    return value


def _status(signature: str, status: TransactionStatus | None) -> SignatureStatus | None:
    if status is None:
        return None
    confirmation = status.confirmation_status
    return SignatureStatus(
        signature=signature,
        slot=status.slot,
        error=tx.error_text(status.err),
        confirmation="processed" if confirmation is None else _confirmation_name(confirmation),
    )


def _confirmation_name(confirmation: object) -> str:
    name = str(confirmation).rsplit(".", 1)[-1].lower()
    if name not in COMMITMENTS:
        raise ChainUnavailableError(f"unknown confirmation status {confirmation}")
    return name


def _chain_transaction(signature: str, response: GetTransactionResp) -> ChainTransaction | None:
    found = response.value
    if found is None:
        return None
    meta = found.transaction.meta
    if meta is None:
        raise ChainUnavailableError("getTransaction answered without status meta")
    encoded = found.transaction.transaction
    message = Transaction.from_bytes(bytes(encoded)).message
    memos = tx.memo_texts(message)
    accounts = {
        str(message.account_keys[balance.account_index]): (str(balance.owner), str(balance.mint))
        for balance in (*(meta.post_token_balances or ()), *(meta.pre_token_balances or ()))
        if balance.owner is not None
    }
    return ChainTransaction(
        signature=signature,
        slot=found.slot,
        error=tx.error_text(meta.err),
        memo_transfer_ids=tx.memo_transfer_ids(memos),
        memos=memos,
        token_transfers=tx.token_transfers(message, accounts, _inner_instructions(meta)),
        fee_payer=str(message.account_keys[0]),
        signers=tx.signers(message),
        authority_changes=tx.authority_changes(message),
        token_deltas=_token_deltas(
            message.account_keys, meta.pre_token_balances, meta.post_token_balances
        ),
    )


def _inner_instructions(meta: UiTransactionStatusMeta) -> tuple[tx.InnerInstruction, ...]:
    """``meta.innerInstructions``: the instructions each top-level one's
    programs invoked, compiled (base58 data, indexes into the message's
    keys, as a base64-encoded transaction gets them). A parsed form (asked
    only with jsonParsed) names no indexes and is skipped."""
    return tuple(
        tx.InnerInstruction(group.index, inner.program_id_index, tuple(inner.accounts),
                            tx.base58_bytes(inner.data))
        for group in meta.inner_instructions or ()
        for inner in group.instructions
        if isinstance(inner, UiCompiledInstruction)
    )


def _token_deltas(
    keys: Sequence[Pubkey],
    before: Sequence[UiTransactionTokenBalance] | None,
    after: Sequence[UiTransactionTokenBalance] | None,
) -> dict[str, int]:
    def amounts(balances: Sequence[UiTransactionTokenBalance] | None) -> dict[str, int]:
        return {
            str(keys[balance.account_index]): int(balance.ui_token_amount.amount)
            for balance in balances or ()
        }

    pre, post = amounts(before), amounts(after)
    deltas = {key: post.get(key, 0) - pre.get(key, 0) for key in pre.keys() | post.keys()}
    return {key: delta for key, delta in deltas.items() if delta != 0}
