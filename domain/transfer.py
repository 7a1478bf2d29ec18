"""The Transfer aggregate: one movement, named by the caller's id.

The id is the idempotency key: the first request recorded under it is kept
with its fingerprint and outcome, so a retry can be answered exactly as the
first time without re-deciding anything.

A hold is a two-phase transfer (as in TigerBeetle): recorded ``pending``
from the account to the treasury, then captured (fully or partly), voided or
expired. Only posted amounts are mirrored on chain; the settlement lifecycle
(queued -> submitted -> settled | failed, and reversed) is driven by the
settlement process.

Settlement decisions are compare-and-set on the transfer's current
submission: a submission is recorded only over the one it supersedes (an
expired one) or over none, and an outcome only for the submission in force.
So two settlers, or one that restarted with a stale view, can never record
two live submissions of one movement: the chain could land both.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.account import Account
from domain.errors import (
    HoldNotPending,
    SettlementConflict,
    TransferNotReversible,
    TransferNotSettled,
)
from domain.movements import DEPOSIT, REVERSAL, WITHDRAWAL

# A movement's phase (stored in its events): posted at once, or a hold that
# is pending until captured, voided or expired. "pending" means a hold's
# phase and nothing else inside the ledger.
POSTED = "posted"
PENDING = "pending"
CAPTURED = "captured"
VOIDED = "voided"
EXPIRED = "expired"

# Where a movement is in its settlement on chain (the aggregate's state,
# never stored in an event): a pending hold is awaiting_capture (only what
# is captured moves); a movement is queued for a submission, submitted
# (signed and recorded, not yet resolved), settled (confirmed on chain) or
# failed; one that never goes on chain (a compensation, a voided or expired
# hold) is not_required.
SETTLEMENT_AWAITING_CAPTURE = "awaiting_capture"
SETTLEMENT_QUEUED = "queued"
SETTLEMENT_SUBMITTED = "submitted"
SETTLED = "settled"
SETTLEMENT_FAILED = "failed"
SETTLEMENT_NOT_REQUIRED = "not_required"
REVERSED = "reversed"

CLIENT_STATUS_BY_STATE = {
    PENDING: "pending",
    SETTLEMENT_QUEUED: "pending",
    SETTLEMENT_SUBMITTED: "pending",
    SETTLED: "settled",
    SETTLEMENT_NOT_REQUIRED: "settled",
    VOIDED: "settled",
    EXPIRED: "settled",
    SETTLEMENT_FAILED: "failed",
    REVERSED: "reversed",
}
"""The one table from a movement's precise state to the status clients see
(shared/API.md: pending, settled, failed, reversed). The API's words are
coarser than the ledger's: to a client, "settled" means final with nothing
left to happen on chain (confirmed there, never needing it, or a hold that
was voided or expired), and "pending" means not final yet. The read models
and the HTTP answers take it from here; no other module maps."""


CLIENT_STATUSES = tuple(dict.fromkeys(CLIENT_STATUS_BY_STATE.values()))
"""The four statuses of the API, in the order of the lifecycle."""


def first_settlement_status(settles_on_chain: bool, phase: str) -> str:
    if not settles_on_chain:
        return SETTLEMENT_NOT_REQUIRED
    return SETTLEMENT_QUEUED if phase == POSTED else SETTLEMENT_AWAITING_CAPTURE


def settlement_when_hold_closes(phase: str, settlement: str) -> str:
    """A captured hold's amount is queued for the chain; a voided or expired
    hold never moved anything, so it needs no settlement."""
    if phase != CAPTURED:
        return SETTLEMENT_NOT_REQUIRED
    return SETTLEMENT_QUEUED if settlement == SETTLEMENT_AWAITING_CAPTURE else settlement


def movement_state(*, reversed_: bool, phase: str, settlement: str) -> str:
    """The precise state of a movement: reversed, an open hold (pending), a
    closed hold (voided, expired), else its settlement on chain."""
    if reversed_:
        return REVERSED
    if phase in (PENDING, VOIDED, EXPIRED):
        return phase
    return settlement


def client_status(*, reversed_: bool, phase: str, settlement: str) -> str:
    """What clients are told of a movement (``CLIENT_STATUS_BY_STATE``)."""
    return CLIENT_STATUS_BY_STATE[movement_state(reversed_=reversed_, phase=phase, settlement=settlement)]


class Transfer(Aggregate):
    class Recorded(Aggregate.Created):
        kind: str
        source: UUID
        destination: UUID
        amount: int
        reason: str
        fingerprint: str
        phase: str
        source_balance_after: int
        destination_balance_after: int
        expires_at: datetime | None
        spender: UUID | None
        reverses: UUID | None
        settles_on_chain: bool
        adjusts: UUID | None = None
        """The reconciliation finding this movement adjusts the ledger for
        (its effect is already on chain). Absent from earlier events."""
        available_after: int | None = None
        """A hold's account's available balance right after placing it: what
        the placing command answered, kept so a repeat answers it again.
        Absent from earlier events and from movements that are not holds."""
        reward_type: str | None = None
        """What a reward was paid for, as its own field (it is also the
        reward's ``reason``, as before). Absent from earlier events and from
        movements that are not rewards: readers derive it from ``reason``."""
        metadata: dict[str, str] | None = None
        """The caller's own small map of strings. Absent from earlier events."""
        external_ref: str | None = None
        """The caller's own reference for the movement. Absent from earlier events."""
        address: str | None = None
        """A withdrawal's destination: the connected wallet whose associated
        token account receives the tokens on chain. Absent from every other
        movement and from earlier events."""
        returns_finding: UUID | None = None
        """A return's unassigned_deposit finding (the withdrawal sends that
        deposit back): a return the chain refuses reopens it. Absent from
        every other movement and from earlier events."""
        token_account: str | None = None
        """A return's destination on chain: the token account the deposit
        came from (the finding's ``source``), paid into as it is, never
        created, so a stranger's deposit costs the fee payer no rent.
        Absent from every other movement and from returns recorded before
        (those go to ``address``'s associated token account, created by no
        one)."""

    class Captured(Aggregate.Event):
        amount: int
        fingerprint: str
        source_balance_after: int
        destination_balance_after: int

        def apply(self, transfer: Transfer) -> None:
            transfer.phase = CAPTURED
            transfer.posted_amount = self.amount
            transfer.outcome_fingerprint = self.fingerprint
            transfer.source_balance_after = self.source_balance_after
            transfer.destination_balance_after = self.destination_balance_after
            transfer.settlement_status = settlement_when_hold_closes(
                CAPTURED, transfer.settlement_status)
            transfer.closed_by(self.originator_version)

    class Voided(Aggregate.Event):
        def apply(self, transfer: Transfer) -> None:
            transfer.phase = VOIDED
            transfer.settlement_status = settlement_when_hold_closes(
                VOIDED, transfer.settlement_status)
            transfer.closed_by(self.originator_version)

    class Expired(Aggregate.Event):
        def apply(self, transfer: Transfer) -> None:
            transfer.phase = EXPIRED
            transfer.settlement_status = settlement_when_hold_closes(
                EXPIRED, transfer.settlement_status)
            transfer.closed_by(self.originator_version)

    class Reversed(Aggregate.Event):
        reversal_id: UUID

        def apply(self, transfer: Transfer) -> None:
            transfer.reversed_by = self.reversal_id

    class ReversalUndone(Aggregate.Event):
        """The reversal of this movement failed on chain and was compensated:
        the compensation gave the movement its effect back, so it is no
        longer reversed (and may be reversed again)."""

        reversal_id: UUID

        def apply(self, transfer: Transfer) -> None:
            transfer.reversed_by = None

    class SettlementSubmitted(Aggregate.Event):
        signature: str
        last_valid_block_height: int
        transaction: str | None = None
        """The signed transaction (base64), recorded before it is sent, so a
        restart resends the very same bytes. Absent from earlier events."""
        supersedes: str | None = None
        """The expired submission this one replaces, if any."""

        def apply(self, transfer: Transfer) -> None:
            transfer.settlement_status = SETTLEMENT_SUBMITTED
            transfer.signature = self.signature
            transfer.last_valid_block_height = self.last_valid_block_height

    class SettlementRejected(Aggregate.Event):
        """The chain refused the submission as a whole (one of several
        movements in it failed): it never landed and is never sent again.
        The movement waits to be signed again, alone this time."""

        signature: str
        error: str

        def apply(self, transfer: Transfer) -> None:
            transfer.settlement_status = SETTLEMENT_QUEUED
            transfer.signature = None
            transfer.last_valid_block_height = None
            transfer.settles_alone = True

    class Settled(Aggregate.Event):
        signature: str
        slot: int

        def apply(self, transfer: Transfer) -> None:
            transfer.settlement_status = SETTLED
            transfer.signature = self.signature
            transfer.slot = self.slot

    class SettlementFailed(Aggregate.Event):
        signature: str | None
        error: str

        def apply(self, transfer: Transfer) -> None:
            transfer.settlement_status = SETTLEMENT_FAILED
            transfer.settlement_error = self.error

    class CompensationBlocked(Aggregate.Event):
        """The compensating reversal of a failed settlement was refused by
        the ledger (e.g. the destination had already spent the amount): the
        ledger and the chain disagree until an operator resolves it."""

        reversal_id: UUID
        error: str

        def apply(self, transfer: Transfer) -> None:
            transfer.compensation_blocked = self.error

    def __init__(
        self,
        kind: str,
        source: UUID,
        destination: UUID,
        amount: int,
        reason: str,
        fingerprint: str,
        phase: str,
        source_balance_after: int,
        destination_balance_after: int,
        expires_at: datetime | None,
        spender: UUID | None,
        reverses: UUID | None,
        settles_on_chain: bool,
        adjusts: UUID | None = None,
        available_after: int | None = None,
        reward_type: str | None = None,
        metadata: dict[str, str] | None = None,
        external_ref: str | None = None,
        address: str | None = None,
        returns_finding: UUID | None = None,
        token_account: str | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        self.destination = destination
        self.amount = amount
        self.reason = reason
        self.fingerprint = fingerprint
        self.outcome_fingerprint = fingerprint
        self.phase = phase
        self.posted_amount = amount if phase == POSTED else 0
        self.source_balance_after = source_balance_after
        self.destination_balance_after = destination_balance_after
        self.expires_at = expires_at
        self.spender = spender
        self.reverses = reverses
        self.reversed_by: UUID | None = None
        self.settlement_status = first_settlement_status(settles_on_chain, phase)
        self.signature: str | None = None
        self.last_valid_block_height: int | None = None
        self.slot: int | None = None
        self.settlement_error: str | None = None
        self.settles_alone = False
        self.compensation_blocked: str | None = None
        self.adjusts = adjusts
        self.available_after = available_after
        self.reward_type = reward_type
        self.metadata = metadata
        self.external_ref = external_ref
        self.address = address
        self.returns_finding = returns_finding
        self.token_account = token_account
        self.recorded_state = self.state
        """The state its recording command answered with (the first answer)."""
        self.closed_version: int | None = None
        """The version of the event that captured, voided or expired a hold."""
        self.closed_state: str | None = None
        """The state right after that event: what the capture answered."""

    @classmethod
    def record(
        cls,
        transfer_id: UUID,
        *,
        kind: str,
        source: UUID,
        destination: UUID,
        amount: int,
        reason: str,
        fingerprint: str,
        source_balance_after: int,
        destination_balance_after: int,
        now: datetime,
        phase: str = POSTED,
        expires_at: datetime | None = None,
        spender: UUID | None = None,
        reverses: UUID | None = None,
        settles_on_chain: bool = True,
        adjusts: UUID | None = None,
        available_after: int | None = None,
        reward_type: str | None = None,
        references: dict[str, object] | None = None,
        address: str | None = None,
        returns_finding: UUID | None = None,
        token_account: str | None = None,
    ) -> Transfer:
        """Optional fields are written only when set, so the events of every
        other movement keep the shape earlier versions stored."""
        extra: dict[str, object] = dict(references or {})
        if adjusts is not None:
            extra["adjusts"] = adjusts
        if available_after is not None:
            extra["available_after"] = available_after
        if reward_type is not None:
            extra["reward_type"] = reward_type
        if address is not None:
            extra["address"] = address
        if returns_finding is not None:
            extra["returns_finding"] = returns_finding
        if token_account is not None:
            extra["token_account"] = token_account
        return cls._create(
            cls.Recorded, id=transfer_id, kind=kind, source=source, destination=destination,
            amount=amount, reason=reason, fingerprint=fingerprint, phase=phase,
            source_balance_after=source_balance_after,
            destination_balance_after=destination_balance_after, expires_at=expires_at,
            spender=spender, reverses=reverses, settles_on_chain=settles_on_chain,
            timestamp=now, **extra,
        )

    def closed_by(self, version: int) -> None:
        """A hold's closing event was applied: remember what its command answered."""
        self.closed_version = version
        self.closed_state = self.state

    @property
    def recorded_status(self) -> str:
        """The status its recording command answered, whatever happened since."""
        return CLIENT_STATUS_BY_STATE[self.recorded_state]

    @property
    def closed_status(self) -> str | None:
        """The status the capture (void, expiry) answered, if the hold closed."""
        return None if self.closed_state is None else CLIENT_STATUS_BY_STATE[self.closed_state]

    @property
    def is_hold(self) -> bool:
        return self.phase != POSTED

    @property
    def state(self) -> str:
        """The precise state (``movement_state``)."""
        return movement_state(
            reversed_=self.reversed_by is not None, phase=self.phase,
            settlement=self.settlement_status,
        )

    @property
    def status(self) -> str:
        """The status clients see (``CLIENT_STATUS_BY_STATE``)."""
        return CLIENT_STATUS_BY_STATE[self.state]

    @property
    def expires_in_s(self) -> int | None:
        """A hold's lifetime as it was asked: seconds from placing to expiry."""
        if self.expires_at is None:
            return None
        return int((self.expires_at - self.created_on).total_seconds())

    def is_expired_at(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def check_hold_pending(self, now: datetime) -> None:
        if self.phase != PENDING:
            raise HoldNotPending(f"hold {self.id} is {self.phase}, not pending")
        if self.is_expired_at(now):
            raise HoldNotPending(f"hold {self.id} expired at {self.expires_at:%Y-%m-%dT%H:%M:%SZ}")

    def capture(
        self, amount: int, fingerprint: str, source_balance_after: int,
        destination_balance_after: int, now: datetime,
    ) -> None:
        self.check_hold_pending(now)
        self.trigger_event(
            self.Captured, amount=amount, fingerprint=fingerprint,
            source_balance_after=source_balance_after,
            destination_balance_after=destination_balance_after, timestamp=now,
        )

    def void(self, now: datetime) -> None:
        self.check_hold_pending(now)
        self.trigger_event(self.Voided, timestamp=now)

    def expire(self, now: datetime) -> None:
        if self.phase != PENDING or not self.is_expired_at(now):
            raise HoldNotPending(f"hold {self.id} is {self.phase} and not due to expire")
        self.trigger_event(self.Expired, timestamp=now)

    def check_reversible(self, *, compensation: bool = False) -> None:
        """``compensation``: the reversal of a failed settlement, which never
        goes on chain; the only reversal of a withdrawal or a deposit (their
        tokens crossed custody's edge on chain, where no ledger movement can
        bring them back), and of a reversal (one that failed on chain: its
        compensation re-applies the original's effect, ``undo_reversal``)."""
        if self.is_hold and self.phase != CAPTURED:
            raise TransferNotReversible(f"hold {self.id} is {self.phase}; only a capture reverses")
        if self.kind == REVERSAL and not compensation:
            raise TransferNotReversible("a reversal cannot itself be reversed")
        if self.kind in (WITHDRAWAL, DEPOSIT) and not compensation:
            raise TransferNotReversible(
                f"a {self.kind} cannot be reversed: its tokens crossed custody's edge on chain "
                "(a failed withdrawal is given back by the settler)")
        if self.reversed_by is not None:
            raise TransferNotReversible(f"transfer {self.id} was already reversed")
        if not compensation:
            self.check_settled()

    def check_settled(self) -> None:
        """An admin reversal goes on chain, so it needs its original there
        first: reversing a movement still pending settlement would, if the
        original then failed, move other tokens back (the field's answer is
        a void, and a hold has one). A failed movement moved nothing to
        reverse; the settler compensates it."""
        if self.settlement_status == SETTLEMENT_FAILED:
            raise TransferNotReversible(
                f"transfer {self.id} failed on chain: nothing moved to reverse")
        if self.settlement_status in (SETTLEMENT_QUEUED, SETTLEMENT_SUBMITTED):
            raise TransferNotSettled(
                f"transfer {self.id} is still pending settlement on chain; "
                "retry the reversal once it settles")

    def mark_reversed(self, reversal_id: UUID, now: datetime, *, compensation: bool = False) -> None:
        self.check_reversible(compensation=compensation)
        self.trigger_event(self.Reversed, reversal_id=reversal_id, timestamp=now)

    def check_reversal_undoable(self, reversal_id: UUID) -> None:
        if self.reversed_by != reversal_id:
            raise SettlementConflict(f"transfer {self.id} is not reversed by {reversal_id}")

    def undo_reversal(self, reversal_id: UUID, now: datetime) -> None:
        """Its reversal failed on chain and was compensated: the movement
        stands again, as it does on chain."""
        self.check_reversal_undoable(reversal_id)
        self.trigger_event(self.ReversalUndone, reversal_id=reversal_id, timestamp=now)

    # Settlement: each decision checks the submission in force first.

    def is_submitted_as(self, signature: str) -> bool:
        return self.settlement_status == SETTLEMENT_SUBMITTED and self.signature == signature

    def check_submittable(self, supersedes: str | None) -> None:
        """A first submission needs a movement waiting for one; a
        replacement needs the submission it replaces to be the one in force."""
        if self.settlement_status == SETTLEMENT_NOT_REQUIRED:
            raise SettlementConflict(f"transfer {self.id} does not settle on chain")
        if self.is_hold and self.phase != CAPTURED:
            raise SettlementConflict(f"hold {self.id} is {self.phase}; only a capture settles")
        if supersedes is None and self.settlement_status != SETTLEMENT_QUEUED:
            raise SettlementConflict(
                f"transfer {self.id} is {self.settlement_status}, not waiting for a submission"
            )
        if supersedes is not None and not self.is_submitted_as(supersedes):
            raise SettlementConflict(
                f"transfer {self.id} is not in flight as {supersedes}; another submission "
                "replaced it or it has an outcome"
            )

    def submit_settlement(
        self, signature: str, last_valid_block_height: int, now: datetime, *,
        transaction: str | None = None, supersedes: str | None = None,
    ) -> None:
        self.check_submittable(supersedes)
        self.trigger_event(
            self.SettlementSubmitted, signature=signature,
            last_valid_block_height=last_valid_block_height, transaction=transaction,
            supersedes=supersedes, timestamp=now,
        )

    def check_outcome_for(self, signature: str) -> None:
        if not self.is_submitted_as(signature):
            raise SettlementConflict(
                f"transfer {self.id} is {self.settlement_status} and not in flight as {signature}"
            )

    def settle(self, signature: str, slot: int, now: datetime) -> None:
        self.check_outcome_for(signature)
        self.trigger_event(self.Settled, signature=signature, slot=slot, timestamp=now)

    def settle_without_submission(self, signature: str, slot: int, now: datetime) -> None:
        """For a movement put on chain by other means (the genesis mint,
        done by the chain's own genesis), so never submitted by the ledger."""
        if self.settlement_status != SETTLEMENT_QUEUED:
            raise SettlementConflict(f"transfer {self.id} is {self.settlement_status}, not queued")
        self.trigger_event(self.Settled, signature=signature, slot=slot, timestamp=now)

    def reject_settlement(self, signature: str, error: str, now: datetime) -> None:
        self.check_outcome_for(signature)
        self.trigger_event(self.SettlementRejected, signature=signature, error=error, timestamp=now)

    def fail_settlement(self, signature: str | None, error: str, now: datetime) -> None:
        if signature is not None:
            self.check_outcome_for(signature)
        self.trigger_event(self.SettlementFailed, signature=signature, error=error, timestamp=now)

    def block_compensation(self, reversal_id: UUID, error: str, now: datetime) -> None:
        if self.settlement_status != SETTLEMENT_FAILED:
            raise SettlementConflict(f"transfer {self.id} did not fail to settle")
        self.trigger_event(
            self.CompensationBlocked, reversal_id=reversal_id, error=error, timestamp=now
        )


def record_expiry(hold: Transfer, account: Account, now: datetime) -> None:
    """Record a hold's expiry on both sides: the hold is expired and its
    account no longer reserves the amount. The sweeper does it for a hold
    nothing else touched; a command that spends from the account does it
    first, since from its expiry on the hold reserves nothing."""
    hold.expire(now)
    account.release_hold(hold.id, EXPIRED, now)
