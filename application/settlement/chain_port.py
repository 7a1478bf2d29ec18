"""The chain port: what settlement and reconciliation need from Solana.

The application layer speaks only this protocol; the adapters in
``interface/chain/`` implement it on an embedded LiteSVM (the default) or on
a JSON-RPC endpoint. Amounts are int base units of the DEAL mint (8 decimals),
ledger accounts are named by their UUIDs, and on-chain addresses are base58
strings, so nothing here ties the application to solders types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


class ChainError(Exception):
    """Root of the chain port's errors. Messages never carry key material."""


class ChainUnavailableError(ChainError):
    """The RPC endpoint failed or timed out; the call may be retried."""


class ChainRejectedError(ChainError):
    """The chain refused this signed transaction (preflight or execution
    failure): it has not landed. Sent again after the refusing state changed
    (an account unfrozen), the same bytes could land, so once its movements
    are signed anew it must never be sent again; the settlement process
    resends a refused submission only while it is still the one in force.
    The adapter forgets the token accounts it would have created."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FeePayerRefusedError(ChainRejectedError):
    """The chain refused the transaction because the fee payer could not pay
    (the fee, the rent of an account it creates, or its own rent-exempt
    minimum after either): the movements are not at fault, so this never
    fails one; the same bytes may land once the fee payer is funded."""


class CustodyAccountUnsafeError(ChainError):
    """A custody token account the movements need already exists at its seed
    address but is not one the ledger could have made (another owner or
    mint, a delegate, a close authority: someone holding the address base
    key created it first). Nothing is signed: settlement stops until it is
    resolved (docs/operations.md). ``account_id``: the ledger account,
    ``address``: its token account (base58), ``problem``: what is wrong."""

    def __init__(self, account_id: UUID, address: str, problem: str) -> None:
        super().__init__(f"the custody token account {address} of ledger account {account_id} "
                         f"is not safe to send to: {problem}; settlement stops "
                         "(docs/operations.md, Unsafe custody token account)")
        self.account_id = account_id
        self.address = address
        self.problem = problem


class FeePayerUnfundedError(ChainError):
    """The fee payer holds less than one more transaction may cost: settlement
    signs nothing new until it is funded (``application.settlement.fee_payer``)."""


@dataclass(frozen=True)
class FeePayerFunds:
    """The fee payer's SOL as the chain holds it, in lamports.

    ``reserve_lamports``: what the fee payer must keep (its own rent-exempt
    minimum: the chain refuses a transaction that leaves it between zero and
    that). ``transaction_lamports_max``: the most one settlement or anchor
    transaction can take from it (fees of its signatures and the rent of the
    most token accounts one transaction can create)."""

    address: str
    lamports: int
    reserve_lamports: int
    transaction_lamports_max: int

    @property
    def needed_lamports(self) -> int:
        """The least that pays for one more transaction, whatever it holds."""
        return self.reserve_lamports + self.transaction_lamports_max

    @property
    def transactions_affordable(self) -> int:
        """How many transactions the balance pays for, each at its worst."""
        return max(0, (self.lamports - self.reserve_lamports) // self.transaction_lamports_max)


@dataclass(frozen=True)
class ChainMovement:
    """One ledger movement to mirror on chain. ``source`` is None for a mint,
    ``destination`` is None for a burn, or for a withdrawal, whose
    ``destination_wallet`` (a base58 address) names the wallet whose
    associated token account receives the tokens, or, for a deposit return,
    whose ``destination_token_account`` (base58) is the token account that
    receives them as it is: never created, so the transfer fails when it
    was closed or holds another mint.
    ``creates_wallet_account``: the transaction creates the wallet's account
    when missing, the fee payer paying its rent; False once the ledger paid
    for it (a wallet that closed it must create it again itself)."""

    transfer_id: UUID
    source: UUID | None
    destination: UUID | None
    amount: int
    destination_wallet: str | None = None
    creates_wallet_account: bool = True
    destination_token_account: str | None = None


@dataclass(frozen=True)
class SignedSubmission:
    """A signed, not yet sent, transaction carrying one or more movements.

    The settlement process records it in the event log before sending, so a
    restart can resend the very same bytes (same signature) until
    ``last_valid_block_height`` has passed, and only then re-sign."""

    signature: str
    last_valid_block_height: int
    transaction: bytes
    transfer_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class SignatureStatus:
    """A landed transaction: ``error`` is None when it succeeded."""

    signature: str
    slot: int
    error: str | None
    confirmation: str  # "processed" | "confirmed" | "finalized"


@dataclass(frozen=True)
class TokenTransfer:
    """One SPL Token ``transfer`` or ``transfer_checked`` of a landed
    transaction, top-level or made inside another program (a CPI), as a
    deposit scan reads it: token account addresses (base58), the source's
    owner at the time (None when the chain did not say), the mint (None for
    a plain ``transfer`` whose destination the chain did not describe), the
    amount in base units, and where it ran: top-level instruction
    ``instruction``, and ``inner`` its position among the instructions
    invoked inside that one (None: the top-level instruction itself)."""

    source: str
    source_owner: str | None
    destination: str
    mint: str | None
    amount: int
    instruction: int = 0
    inner: int | None = None
    checked: bool = True
    """A ``transfer_checked`` (False: a plain ``transfer``)."""

    @property
    def position(self) -> str:
        """Where it ran, as a deposit id names it: ``"2"`` or ``"2.0"``."""
        return str(self.instruction) if self.inner is None else f"{self.instruction}.{self.inner}"


@dataclass(frozen=True)
class ChainTransaction:
    """A landed transaction as reconciliation sees it."""

    signature: str
    slot: int
    error: str | None
    memo_transfer_ids: tuple[UUID, ...]
    token_deltas: dict[str, int]  # token account address -> change in base units
    memos: tuple[str, ...] = ()  # every memo's text, in instruction order
    token_transfers: tuple[TokenTransfer, ...] = ()  # its transfers, inner ones too, in order
    fee_payer: str | None = None  # who paid for it (its first signer), base58
    signers: tuple[str, ...] = ()  # every key that signed it, fee payer first, base58
    authority_changes: tuple[str, ...] = ()  # accounts whose authority it changes, when
    # SPL Token SetAuthority instructions are all it holds (else empty), base58


FEE_PAYER_ROTATION_MEMO = "deals-ledger:fee-payer-rotation"
"""The memo of the transaction ``custody rotate fee-payer`` lands: the old
fee payer pays for it and the new one co-signs, so the chain itself links
each fee payer to the one before it (``ChainTransaction.signers``), and the
restore lookup walks the history of every fee payer the ledger had since
the backup, whatever the restored log remembers."""


class ChainPort(Protocol):
    """Solana as the settlement process and reconciliation use it."""

    @property
    def mint_address(self) -> str: ...

    @property
    def movements_per_transaction_max(self) -> int:
        """The most movements one transaction can ever carry (all between
        accounts already on chain): the bound on what ``sign_movements`` is
        offered."""
        ...

    @property
    def netted_movements_per_transaction_max(self) -> int:
        """The same bound when netting (one transfer for them all: only
        the memo naming each grows)."""
        ...

    def token_account_address(self, account_id: UUID) -> str: ...

    def wallet_token_account_address(self, wallet: str) -> str:
        """The associated token account of ``wallet`` for the mint: where a
        withdrawal to that wallet lands."""
        ...

    async def mint_supply(self) -> int:
        """The mint's supply on chain, in base units (0 before the mint exists)."""
        ...

    @property
    def token_account_owner(self) -> str:
        """The owner of every custody token account: a transfer from a token
        account it owns is the ledger's own movement, never a deposit."""
        ...

    async def ensure_genesis(self, treasury_id: UUID, initial_supply: int) -> None: ...

    async def sign_movements(
        self, movements: Sequence[ChainMovement], *, whole: bool = False, net: bool = False
    ) -> SignedSubmission:
        """Sign (not send) one transaction carrying the longest prefix of
        ``movements`` that fits (by its real serialized size; always at
        least the first) and, when a simulation refuses a movement of it,
        ends before that movement (or is that movement alone when it is
        the first: it then fails alone, costing the others nothing); its
        ``transfer_ids`` name that prefix. ``whole``:
        all of them, else ValueError and nothing signed. ``net``: the
        transfers of the prefix between the same two token accounts, in the
        same direction, as one transfer of their sum; the memo still names
        every movement."""
        ...

    @property
    def anchor_signer(self) -> str:
        """The address that co-signs every anchor and nothing else."""
        ...

    async def sign_anchor(self, memo: str) -> SignedSubmission:
        """Sign (not send) a transaction carrying ``memo``, co-signed by the
        anchor signer; ``transfer_ids`` is empty."""
        ...

    async def anchor_signatures(self, *, before: str | None = None, limit: int = 1000) -> list[str]:
        """Transactions the anchor signer signed, newest first (a page)."""
        ...

    async def fee_payer_signatures(
        self, *, payer: str | None = None, before: str | None = None, limit: int = 1000
    ) -> list[str]:
        """Transactions naming the fee payer (``payer``, base58: one the
        ledger had before a rotation; None: the current one), newest first
        (a page): it pays for every transaction the ledger sends while it is
        the fee payer, so this lists all of them, whatever the log still
        remembers; a stranger's transaction naming it (a lamport sent to it)
        is listed too, so only one whose ``ChainTransaction.fee_payer`` is
        that fee payer is ours."""
        ...

    @property
    def fee_payer_address(self) -> str:
        """The fee payer's public key, base58."""
        ...

    def fee_payer_of(self, transaction: bytes) -> str:
        """Who pays for the signed ``transaction`` (its wire bytes, as
        ``SignedSubmission.transaction``): its first signer, base58."""
        ...

    async def send(self, submission: SignedSubmission) -> None: ...

    async def signature_statuses(
        self, signatures: Sequence[str]
    ) -> dict[str, SignatureStatus | None]: ...

    async def block_height(self) -> int: ...

    async def blockhash_expiry_height(self) -> int | None:
        """The newest blockhash's last valid block height: no transaction
        signed before this call (by this process or one that died) can land
        once the chain's block height passes it. None when nothing sent
        earlier can land later (a chain that executes what it is sent before
        ``send`` returns, and dies with its sender)."""
        ...

    async def fee_payer_funds(self) -> FeePayerFunds:
        """The fee payer's balance and what one more transaction needs."""
        ...

    async def token_balance(self, account_id: UUID) -> int | None: ...

    async def custody_account_problem(self, account_id: UUID) -> str | None:
        """Why the custody token account of ``account_id`` is not, now, one
        the ledger's configured owner key controls (missing, another owner or
        mint, a delegate or a close authority); None when it is."""
        ...

    async def signatures_for_account(
        self, account_id: UUID, *, before: str | None = None, limit: int = 1000
    ) -> list[str]: ...

    async def transaction(self, signature: str) -> ChainTransaction | None: ...

    async def close(self) -> None: ...
