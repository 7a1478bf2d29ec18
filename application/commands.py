"""The ledger's commands, as plain values the interface builds at the edge.

Each command names its idempotency key (``command_id``) and knows its
fingerprint: a digest of what was asked, stored with the first outcome so a
retry can be told apart from a different request reusing the id.

Each command also declares whose funds it debits (``debits``), so the rule
that only an admin may debit the system accounts (``application.authority``)
is checked once, for every command, instead of by routes that must remember;
and a movement command declares how its Transfer records the request
(``recorded``), so a different request under its id is told which field
differs (``application.conflicts``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from domain.errors import InvalidRequest
from domain.movements import (
    BURN,
    DEPOSIT,
    FEE,
    MINT,
    REVERSAL,
    REWARD,
    TRANSFER,
    WITHDRAWAL,
    movement_noun,
)
from domain.system import EXTERNAL_ID, ISSUANCE_ID, REWARDS_ID, TREASURY_ID

REASON_LENGTH_MAX = 500
BATCH_ITEMS_MAX = 8000
HOLD_EXPIRY_S_DEFAULT = 900
"""A hold's lifetime when the request leaves ``expires_in_s`` out."""
REFERENCE_FIELDS = ("metadata", "external_ref")
"""A movement command's optional caller references (``application.references``)."""


def check_reason(reason: object, *, name: str = "reason") -> str:
    """Free text is stored as given, but bounded and free of control
    characters, so it cannot forge log lines or break a terminal, and of
    lone UTF-16 surrogates, which are not text and cannot be stored."""
    if not isinstance(reason, str):
        raise InvalidRequest(f"{name} must be a string")
    if len(reason) > REASON_LENGTH_MAX:
        raise InvalidRequest(f"{name} is longer than {REASON_LENGTH_MAX} characters")
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in reason):
        raise InvalidRequest(f"{name} must not contain control characters")
    if any(char in _BIDI_CONTROLS for char in reason):
        raise InvalidRequest(f"{name} must not contain bidirectional control characters")
    if any(0xD800 <= ord(char) <= 0xDFFF for char in reason):
        raise InvalidRequest(f"{name} must not contain a lone UTF-16 surrogate")
    return reason


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _canonical(value: object) -> object:
    """Metadata as sorted pairs however it was given (a map or pairs)."""
    if isinstance(value, Mapping):
        value = value.items()
    if isinstance(value, str) or not isinstance(value, Iterable):
        return value
    return tuple(sorted(tuple(pair) for pair in value))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(command_type: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(command_type)
    if names is None:
        names = _FIELD_NAMES[command_type] = tuple(f.name for f in fields(command_type))
    return names


@dataclass(frozen=True)
class Debits:
    """Whose funds a command moves, reserves or lets others move: what the
    rule on the system accounts (``application.authority``) asks of it."""

    accounts: frozenset[UUID] = frozenset()
    by_design: frozenset[UUID] = frozenset()
    """System accounts among ``accounts`` that the command is made to debit
    (a reward is paid out of the pool): sending it is permission enough."""
    unknown: bool = False
    """Only the ledger's state names them (a reversal debits whatever the
    original credited): the rule takes the command to debit any account."""

    @classmethod
    def of(cls, *accounts: UUID) -> Debits:
        return cls(frozenset(accounts))

    @classmethod
    def union(cls, parts: Iterable[Debits]) -> Debits:
        listed = tuple(parts)
        return cls(
            frozenset[UUID]().union(*(part.accounts for part in listed)),
            frozenset[UUID]().union(*(part.by_design for part in listed)),
            any(part.unknown for part in listed),
        )


NO_DEBITS = Debits()
UNKNOWN_DEBITS = Debits(unknown=True)


@dataclass(frozen=True)
class Recorded:
    """What a movement's Transfer records of the request that made it, so an
    idempotency conflict can name the request fields that differ without
    showing what was stored (``application.conflicts``)."""

    movement: str
    """What the command makes, in words ("a fee", "a hold")."""
    fields: Mapping[str, tuple[str, object]]
    """Each request field, by its API name: the Transfer attribute that
    records it, and this request's value (None: not given, so derived)."""


@dataclass(frozen=True)
class Command:
    """Base of all commands. ``kind`` names it in fingerprints and metrics."""

    kind: ClassVar[str] = "command"
    id_field: ClassVar[str | None] = None
    """The request field holding the command's id (its idempotency key);
    the API calls it by the same name."""

    @property
    def command_id(self) -> UUID | None:
        return None if self.id_field is None else getattr(self, self.id_field)

    given_only: ClassVar[tuple[str, ...]] = ()
    """Fields added after the command was first stored: fingerprinted only
    when given, so a request without them fingerprints as it did before
    (the stored outcomes of earlier versions still answer its repeats)."""

    implied: ClassVar[Mapping[str, object]] = {}
    """Fields whose documented default a request may write out or leave
    out (None) to the same effect: fingerprinted as left out, so either
    form repeats as a replay of the other, and of commands stored before."""

    def fingerprint(self) -> str:
        """The caller's references count only when given, so a request
        without them fingerprints as it did before they existed (the
        stored outcomes of earlier versions still answer its repeats)."""
        names = _field_names(type(self))
        optional = (*REFERENCE_FIELDS, *self.given_only)
        asked = [str(self._as_asked(name)) for name in names if name not in optional]
        given = [f"{name}={_canonical(getattr(self, name))!r}" for name in optional
                 if name in names and getattr(self, name)]
        text = "|".join([self.kind, *asked, *given])
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def _as_asked(self, name: str) -> object:
        value = getattr(self, name)
        if name in self.implied and value == self.implied[name]:
            return None
        return value

    def recorded(self) -> Recorded | None:
        """A movement command's request as its Transfer records it; None
        for a command that records no movement."""
        return None

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """The ids its sender chose for what it creates, by request field:
        none may be one of the ledger's own (``domain.ids``). By default the
        command's id; a command whose id names something that already exists
        (a hold to capture) chooses nothing."""
        command_id = self.command_id
        if command_id is None or self.id_field is None:
            return ()
        return ((self.id_field, command_id),)

    def debits(self) -> Debits:
        """Every command declares its own (a test names one that does not).
        Until it does, it is taken to debit any account: denied to all but
        an admin."""
        return UNKNOWN_DEBITS


@dataclass(frozen=True)
class OpenAccount(Command):
    kind: ClassVar[str] = "open_account"
    id_field: ClassVar[str] = "account_id"
    account_id: UUID
    account_kind: str = "user"

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class FreezeAccount(Command):
    kind: ClassVar[str] = "freeze_account"
    account_id: UUID

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class UnfreezeAccount(Command):
    kind: ClassVar[str] = "unfreeze_account"
    account_id: UUID

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class TransferFunds(Command):
    kind: ClassVar[str] = "transfer"
    id_field: ClassVar[str] = "transfer_id"
    transfer_id: UUID
    source: UUID
    destination: UUID
    amount: int
    reason: str = ""
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None


    def recorded(self) -> Recorded:
        return Recorded(movement_noun(TRANSFER), {
            "from": ("source", self.source), "to": ("destination", self.destination),
            "amount": ("amount", self.amount), "reason": ("reason", self.reason),
        })

    def debits(self) -> Debits:
        return Debits.of(self.source)


@dataclass(frozen=True)
class TransferBatch(Command):
    """Many transfers in one request: ``atomic`` applies all or none,
    otherwise each item succeeds or fails on its own."""

    kind: ClassVar[str] = "transfer_batch"
    transfers: tuple[TransferFunds, ...]
    atomic: bool = False

    def __post_init__(self) -> None:
        if not self.transfers:
            raise InvalidRequest("a batch needs at least one transfer")
        if len(self.transfers) > BATCH_ITEMS_MAX:
            raise InvalidRequest(f"a batch holds at most {BATCH_ITEMS_MAX} transfers")

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        return tuple(
            (f"transfers[{index}].transfer_id", item.transfer_id)
            for index, item in enumerate(self.transfers)
        )

    def debits(self) -> Debits:
        return Debits.union(item.debits() for item in self.transfers)


@dataclass(frozen=True)
class TransferFrom(Command):
    """A spender (an agent) moves an owner's tokens within its allowance."""

    kind: ClassVar[str] = "transfer_from"
    id_field: ClassVar[str] = "transfer_id"
    transfer_id: UUID
    spender: UUID
    source: UUID
    destination: UUID
    amount: int
    reason: str = ""
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(TRANSFER, by_spender=True), {
            "spender": ("spender", self.spender), "from": ("source", self.source),
            "to": ("destination", self.destination), "amount": ("amount", self.amount),
            "reason": ("reason", self.reason),
        })

    def debits(self) -> Debits:
        """The owner's funds, moved by the spender."""
        return Debits.of(self.source)


@dataclass(frozen=True)
class SetAllowance(Command):
    kind: ClassVar[str] = "set_allowance"
    owner: UUID
    spender: UUID
    amount: int

    def debits(self) -> Debits:
        """The owner's funds, which the spender may then move."""
        return Debits.of(self.owner)


@dataclass(frozen=True)
class ChargeFee(Command):
    kind: ClassVar[str] = "charge_fee"
    id_field: ClassVar[str] = "charge_id"
    charge_id: UUID
    account_id: UUID
    service_type: str
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None


    def recorded(self) -> Recorded:
        return Recorded(movement_noun(FEE), {
            "account_id": ("source", self.account_id),
            "service_type": ("reason", self.service_type),
        })

    def debits(self) -> Debits:
        return Debits.of(self.account_id)


@dataclass(frozen=True)
class DistributeReward(Command):
    kind: ClassVar[str] = "distribute_reward"
    id_field: ClassVar[str] = "reward_id"
    reward_id: UUID
    account_id: UUID
    reward_type: str
    amount: int
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(REWARD), {
            "account_id": ("destination", self.account_id),
            "reward_type": ("reason", self.reward_type), "amount": ("amount", self.amount),
        })

    def debits(self) -> Debits:
        """Paid out of the rewards pool: what the command is for."""
        return Debits(frozenset({REWARDS_ID}), by_design=frozenset({REWARDS_ID}))


@dataclass(frozen=True)
class Withdraw(Command):
    """Tokens leave custody for a wallet connected to the account: debited
    at once (to the external account), then moved on chain to the wallet's
    associated token account by the settler."""

    kind: ClassVar[str] = "withdraw"
    id_field: ClassVar[str] = "withdrawal_id"
    withdrawal_id: UUID
    account_id: UUID
    amount: int
    address: str
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(WITHDRAWAL), {
            "account_id": ("source", self.account_id), "amount": ("amount", self.amount),
            "address": ("address", self.address),
        })

    def debits(self) -> Debits:
        return Debits.of(self.account_id)


@dataclass(frozen=True)
class Mint(Command):
    kind: ClassVar[str] = "mint"
    id_field: ClassVar[str] = "transfer_id"
    transfer_id: UUID
    destination: UUID
    amount: int
    reason: str = ""
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(MINT), {
            "to": ("destination", self.destination), "amount": ("amount", self.amount),
            "reason": ("reason", self.reason),
        })

    def debits(self) -> Debits:
        return Debits.of(ISSUANCE_ID)


@dataclass(frozen=True)
class Burn(Command):
    kind: ClassVar[str] = "burn"
    id_field: ClassVar[str] = "transfer_id"
    transfer_id: UUID
    source: UUID
    amount: int
    reason: str = ""
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(BURN), {
            "from": ("source", self.source), "amount": ("amount", self.amount),
            "reason": ("reason", self.reason),
        })

    def debits(self) -> Debits:
        return Debits.of(self.source)


@dataclass(frozen=True)
class ReverseTransfer(Command):
    kind: ClassVar[str] = "reverse_transfer"
    id_field: ClassVar[str] = "reversal_id"
    reversal_id: UUID
    transfer_id: UUID
    reason: str = ""
    settles_on_chain: bool = True
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(REVERSAL), {
            "transfer_id": ("reverses", self.transfer_id), "reason": ("reason", self.reason),
        })

    def debits(self) -> Debits:
        """Whatever the original credited: only the ledger's state says."""
        return UNKNOWN_DEBITS


@dataclass(frozen=True)
class PlaceHold(Command):
    """Reserve funds for a service: ``amount`` given, or the price of
    ``service_type`` now. The hold expires ``expires_in_s`` after placing."""

    kind: ClassVar[str] = "place_hold"
    id_field: ClassVar[str] = "hold_id"
    hold_id: UUID
    account_id: UUID
    amount: int | None = None
    service_type: str | None = None
    expires_in_s: int | None = None
    metadata: tuple[tuple[str, str], ...] | None = None
    external_ref: str | None = None
    implied: ClassVar[Mapping[str, object]] = {"expires_in_s": HOLD_EXPIRY_S_DEFAULT}

    def recorded(self) -> Recorded:
        expires_in_s = HOLD_EXPIRY_S_DEFAULT if self.expires_in_s is None else self.expires_in_s
        return Recorded(movement_noun(FEE, hold=True), {
            "account_id": ("source", self.account_id), "amount": ("amount", self.amount),
            "service_type": ("reason", self.service_type),
            "expires_in_s": ("expires_in_s", expires_in_s),
        })

    def debits(self) -> Debits:
        return Debits.of(self.account_id)


@dataclass(frozen=True)
class CaptureHold(Command):
    kind: ClassVar[str] = "capture_hold"
    id_field: ClassVar[str] = "hold_id"
    hold_id: UUID
    amount: int | None = None

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """Its id names a hold that exists; it creates nothing under it."""
        return ()

    def debits(self) -> Debits:
        """The funds were reserved, and the rule applied, when the hold was placed."""
        return NO_DEBITS


@dataclass(frozen=True)
class VoidHold(Command):
    kind: ClassVar[str] = "void_hold"
    id_field: ClassVar[str] = "hold_id"
    hold_id: UUID

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """Its id names a hold that exists; it creates nothing under it."""
        return ()

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class ExpireHold(Command):
    kind: ClassVar[str] = "expire_hold"
    hold_id: UUID

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class ConnectWallet(Command):
    kind: ClassVar[str] = "connect_wallet"
    account_id: UUID
    address: str

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class DisconnectWallet(Command):
    kind: ClassVar[str] = "disconnect_wallet"
    account_id: UUID
    address: str

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class SetPriceRule(Command):
    kind: ClassVar[str] = "set_price_rule"
    service_type: str
    token_cost: int
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class DeactivatePriceRule(Command):
    """Withdraw the rule set at log ``position`` (the schedule's event
    ``rule_version``, resolved by the caller from the log). A repeat, or a
    rule no longer active, changes nothing and answers as a replay, as a
    repeated PUT of the same price does."""

    kind: ClassVar[str] = "deactivate_price_rule"
    service_type: str
    position: int
    rule_version: int

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class Genesis(Command):
    """Create the system accounts and the price schedule, mint the initial
    supply to the treasury and fund the rewards pool. Safe to repeat."""

    kind: ClassVar[str] = "genesis"

    def debits(self) -> Debits:
        """The initial mint, and the rewards pool funded from the treasury."""
        return Debits.of(ISSUANCE_ID, TREASURY_ID)


# Settlement: the settlement process records every step in the log.

SETTLEMENT_TRANSFERS_MAX = 32
"""At least what one netted transaction names (24: one transfer and a memo
of 37 bytes an id, interface.chain.netting); a packed one carries 17."""
SIGNATURE_LENGTH_MAX = 100
TRANSACTION_BASE64_LENGTH_MAX = 2048  # a Solana packet is 1232 bytes
CHAIN_ERROR_LENGTH_MAX = 400


def check_transfer_ids(transfer_ids: tuple[UUID, ...]) -> None:
    if not 1 <= len(transfer_ids) <= SETTLEMENT_TRANSFERS_MAX:
        raise InvalidRequest(f"a settlement names 1 to {SETTLEMENT_TRANSFERS_MAX} transfers")
    if len(set(transfer_ids)) != len(transfer_ids):
        raise InvalidRequest("a settlement names each transfer once")


def check_signature(signature: object) -> str:
    if not isinstance(signature, str) or not 0 < len(signature) <= SIGNATURE_LENGTH_MAX:
        raise InvalidRequest("signature must be a base58 transaction signature")
    return signature


def chain_error_text(error: str) -> str:
    """A chain error as stored: bounded, and free of control characters."""
    printable = "".join(char if 32 <= ord(char) < 127 else "?" for char in error)
    return printable[:CHAIN_ERROR_LENGTH_MAX]


@dataclass(frozen=True)
class RecordSubmission(Command):
    """Write-ahead: the signed transaction that will carry these movements,
    recorded before it is sent. ``supersedes`` names the expired submission
    it replaces (None for a movement's first, or after a rejection).
    ``transaction`` is None for a transaction found landed on chain that
    the log had lost (``application.settlement.chain_lookup``): nothing to
    send, its outcome is recorded next."""

    kind: ClassVar[str] = "record_submission"
    signature: str
    last_valid_block_height: int
    transaction: str | None  # base64
    transfer_ids: tuple[UUID, ...]
    supersedes: str | None = None

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class MarkSettled(Command):
    kind: ClassVar[str] = "mark_settled"
    signature: str
    slot: int
    transfer_ids: tuple[UUID, ...]

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class MarkSettlementRejected(Command):
    """A submission of several movements was refused as a whole: each
    movement goes back to waiting, to be signed again alone."""

    kind: ClassVar[str] = "mark_settlement_rejected"
    signature: str
    error: str
    transfer_ids: tuple[UUID, ...]

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class MarkSettlementFailed(Command):
    """The chain refused these movements for good: each is marked failed
    and compensated by a reversal that does not settle on chain (the chain
    never moved), in the same atomic save."""

    kind: ClassVar[str] = "mark_settlement_failed"
    signature: str
    error: str
    transfer_ids: tuple[UUID, ...]

    def debits(self) -> Debits:
        """Its compensating reversals debit whatever the failed movements credited."""
        return UNKNOWN_DEBITS


@dataclass(frozen=True)
class RecordGenesisSettlement(Command):
    """The genesis mint is put on chain by the chain's own genesis, not by a
    submission: record the transaction that did it."""

    kind: ClassVar[str] = "record_genesis_settlement"
    signature: str
    slot: int

    def debits(self) -> Debits:
        return NO_DEBITS


# Anchors: the log's Merkle root on chain, recorded before it is sent.


@dataclass(frozen=True)
class RecordAnchor(Command):
    """Write-ahead: anchor ``sequence`` and the signed transaction carrying
    its memo, recorded before it is sent. Only after the previous anchor is
    confirmed, and only as its successor (``previous_root``), so one anchor
    is in flight at a time and the anchors form a chain."""

    kind: ClassVar[str] = "record_anchor"
    sequence: int
    position: int
    tree_size: int
    root: str
    previous_root: str
    ledger_id: str
    signature: str
    last_valid_block_height: int
    transaction: str  # base64

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class ResignAnchor(Command):
    """The anchor's transaction expired unseen (or landed failed): the same
    memo signed again, superseding it."""

    kind: ClassVar[str] = "resign_anchor"
    sequence: int
    supersedes: str
    signature: str
    last_valid_block_height: int
    transaction: str

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class ConfirmAnchor(Command):
    kind: ClassVar[str] = "confirm_anchor"
    sequence: int
    signature: str
    slot: int

    def debits(self) -> Debits:
        return NO_DEBITS


# Reconciliation: runs and findings are recorded; nothing is corrected.

FINDINGS_PER_COMMAND_MAX = 500


@dataclass(frozen=True)
class FindingSpec:
    finding_id: UUID
    kind: str
    account_id: UUID | None = None
    signature: str | None = None
    transfer_id: UUID | None = None
    expected: int | None = None
    actual: int | None = None
    detail: str = ""
    source: str | None = None
    source_owner: str | None = None
    slot: int | None = None


@dataclass(frozen=True)
class StartReconciliation(Command):
    kind: ClassVar[str] = "start_reconciliation"
    reconciliation_id: UUID

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class RecordFindings(Command):
    kind: ClassVar[str] = "record_findings"
    reconciliation_id: UUID
    findings: tuple[FindingSpec, ...]

    def __post_init__(self) -> None:
        if len(self.findings) > FINDINGS_PER_COMMAND_MAX:
            raise InvalidRequest(f"at most {FINDINGS_PER_COMMAND_MAX} findings per command")

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class FinishReconciliation(Command):
    kind: ClassVar[str] = "finish_reconciliation"
    reconciliation_id: UUID
    checked_accounts: int
    checked_signatures: int
    mismatches: int
    unmatched_signatures: int
    findings_total: int

    def debits(self) -> Debits:
        return NO_DEBITS


@dataclass(frozen=True)
class AdjustForFinding(Command):
    """Admin: post the movement that makes the ledger agree with the chain
    for one balance finding: a mint (the chain holds more) or a burn (less)
    against the issuance account, already true on chain so never settled.
    Its transfer id is derived from the finding, so it happens once."""

    kind: ClassVar[str] = "adjust_for_finding"
    id_field: ClassVar[str] = "finding_id"
    finding_id: UUID
    reason: str = ""

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(MINT, adjustment=True), {
            "reason": ("reason", self.reason or None),  # none given: a default is stored
        })

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """Its id names a finding that exists; it creates nothing under it."""
        return ()

    def debits(self) -> Debits:
        """A mint or a burn of the finding's account: the finding says which."""
        return UNKNOWN_DEBITS


@dataclass(frozen=True)
class CreditDeposit(Command):
    """The deposit scan: credit ``amount`` that transaction ``signature``
    (landed in ``slot``, at the configured commitment) moved from token
    account ``source``, owned by ``owner``, into the account's deposit
    address. Credited only when ``owner`` is a wallet connected to the
    account; already settled (its own transaction is the settlement). Its
    id is derived from (signature, account, position), so it happens once:
    ``position`` names the instruction that made the transfer (``"3"``, or
    ``"3.0"`` inside instruction 3), None for the transaction's first
    (the id deposits had before positions were in it)."""

    kind: ClassVar[str] = "credit_deposit"
    id_field: ClassVar[str] = "deposit_id"
    given_only: ClassVar[tuple[str, ...]] = ("position",)
    deposit_id: UUID
    account_id: UUID
    amount: int
    signature: str
    slot: int
    source: str
    owner: str | None
    position: str | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(DEPOSIT), {
            "account_id": ("destination", self.account_id), "amount": ("amount", self.amount),
        })

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """A ledger id, derived from the deposit's signature."""
        return ()

    def debits(self) -> Debits:
        """Tokens outside custody: only the ledger (or an admin) credits them in."""
        return Debits.of(EXTERNAL_ID)


@dataclass(frozen=True)
class AssignDeposit(Command):
    """Admin: credit an unassigned deposit (a finding) to the account whose
    deposit address received it, as if a connected wallet had sent it: the
    same derived id as the scan's credit, so it can happen once in all.
    ``account_id``: for a deposit a system account received, the user
    account it is meant for (the system account is credited, then pays it
    on with a transfer the settler moves on chain); for a user account's,
    that account or None."""

    kind: ClassVar[str] = "assign_deposit"
    id_field: ClassVar[str] = "finding_id"
    given_only: ClassVar[tuple[str, ...]] = ("account_id",)
    finding_id: UUID
    reason: str = ""
    account_id: UUID | None = None

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(DEPOSIT), {
            "reason": ("reason", self.reason or None),  # none given: a default is stored
        })

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """Its id names a finding that exists; it creates nothing under it."""
        return ()

    def debits(self) -> Debits:
        """The external account; with ``account_id``, also the system
        account the finding names (which pays it on)."""
        return Debits.of(EXTERNAL_ID) if self.account_id is None else UNKNOWN_DEBITS


@dataclass(frozen=True)
class ReturnDeposit(Command):
    """Admin: send an unassigned deposit (a finding) back to the wallet that
    owns the token account it came from. In one command the deposit is
    credited (the same derived id as the scan's credit or an assignment, so
    a deposit is resolved once, either way) and a withdrawal of the same
    amount to that wallet is debited at once, which the settler moves on
    chain like any withdrawal (failed and compensated like one)."""

    kind: ClassVar[str] = "return_deposit"
    id_field: ClassVar[str] = "finding_id"
    finding_id: UUID
    reason: str = ""

    def recorded(self) -> Recorded:
        return Recorded(movement_noun(WITHDRAWAL), {
            "reason": ("reason", self.reason or None),  # none given: a default is stored
        })

    def chosen_ids(self) -> tuple[tuple[str, UUID], ...]:
        """Its id names a finding that exists; it creates nothing under it."""
        return ()

    def debits(self) -> Debits:
        """The external account (the credit) and the deposit's account (the
        withdrawal), which only the finding names."""
        return UNKNOWN_DEBITS


@dataclass(frozen=True)
class RetryCompensation(Command):
    """Admin: post the compensating reversal of a failed settlement that the
    ledger refused earlier (e.g. once the destination holds the amount
    again). Refused with the ledger's reason if it still cannot be posted."""

    kind: ClassVar[str] = "retry_compensation"
    transfer_id: UUID

    def debits(self) -> Debits:
        """The compensating reversal: see ReverseTransfer."""
        return UNKNOWN_DEBITS
