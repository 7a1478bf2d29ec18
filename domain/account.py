"""The Account aggregate: posted balance, held amount, status and allowances.

An account decides whether it may send or receive; a movement between two
accounts is arranged by ``domain.movements``. Every decision is checked
completely before the first event is triggered, so a refused command leaves
the aggregate untouched (the command writer relies on this to keep a group
commit batch clean).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.amounts import SUPPLY_MAX, deal_text, format_amount
from domain.errors import (
    AccountFrozen,
    AllowanceExceeded,
    HoldNotFound,
    InsufficientBalance,
    InvalidAmount,
    InvalidRequest,
    SupplyLimitExceeded,
)

USER = "user"
TREASURY = "treasury"
REWARDS = "rewards"
ISSUANCE = "issuance"
EXTERNAL = "external"
"""The tokens outside custody: the other side of withdrawals and deposits.
It has no custody token account; on chain its balance is the mint's supply
less the custody token accounts."""
ACCOUNT_KINDS = (USER, TREASURY, REWARDS, ISSUANCE, EXTERNAL)
MAY_GO_NEGATIVE = frozenset({ISSUANCE, EXTERNAL})
"""Kinds whose balance may go below zero: issuance (minus the supply), and
external when DEAL the ledger never let out is deposited (``check_can_send``)."""


class Account(Aggregate):
    """A double-entry account. ``available = balance - held`` never goes below
    zero, except for the issuance account, whose negative balance is the
    circulating supply."""

    class Opened(Aggregate.Created):
        kind: str

    class Posted(Aggregate.Event):
        """A change of the posted balance by a movement (base of both legs)."""

        transfer_id: UUID
        amount: int
        kind: str
        reason: str
        balance_after: int

    class Debited(Posted):
        def apply(self, account: Account) -> None:
            account.balance -= self.amount

    class Credited(Posted):
        def apply(self, account: Account) -> None:
            account.balance += self.amount

    class HoldPlaced(Aggregate.Event):
        hold_id: UUID
        amount: int
        expires_at: datetime | None = None
        """When the hold stops reserving its amount (its Transfer says the
        same). Absent from earlier events: such a hold reserves until the
        sweeper records its expiry."""

        def apply(self, account: Account) -> None:
            account.holds[self.hold_id.hex] = self.amount
            account.held += self.amount
            if self.expires_at is not None:
                account.hold_expiries[self.hold_id.hex] = self.expires_at

    class HoldReleased(Aggregate.Event):
        hold_id: UUID
        amount: int
        cause: str  # "voided" | "expired"

        def apply(self, account: Account) -> None:
            account.held -= account.holds.pop(self.hold_id.hex)
            account.hold_expiries.pop(self.hold_id.hex, None)

    class HoldCaptured(Aggregate.Event):
        """The captured part is debited; the rest of the hold is released."""

        hold_id: UUID
        transfer_id: UUID
        amount: int
        released: int
        kind: str
        reason: str
        balance_after: int

        def apply(self, account: Account) -> None:
            account.held -= account.holds.pop(self.hold_id.hex)
            account.hold_expiries.pop(self.hold_id.hex, None)
            account.balance -= self.amount

    class Frozen(Aggregate.Event):
        def apply(self, account: Account) -> None:
            account.frozen = True
            account._status_version = self.originator_version

    class Unfrozen(Aggregate.Event):
        def apply(self, account: Account) -> None:
            account.frozen = False
            account._status_version = self.originator_version

    class AllowanceSet(Aggregate.Event):
        spender: UUID
        amount: int

        def apply(self, account: Account) -> None:
            _put_allowance(account.allowances, self.spender, self.amount)
            account._allowance_changed(self.spender, self.originator_version)

    class AllowanceSpent(Aggregate.Event):
        spender: UUID
        transfer_id: UUID
        amount: int

        def apply(self, account: Account) -> None:
            remaining = account.allowance_for(self.spender) - self.amount
            _put_allowance(account.allowances, self.spender, remaining)
            account._allowance_changed(self.spender, self.originator_version)

    def __init__(self, kind: str) -> None:
        if kind not in ACCOUNT_KINDS:
            raise InvalidRequest(f"unknown account kind {kind!r}")
        self.kind = kind
        self.balance = 0
        self.held = 0
        self.frozen = False
        self.holds: dict[str, int] = {}
        self.hold_expiries: dict[str, datetime] = {}
        self.allowances: dict[str, int] = {}
        self._status_version = 1
        self._allowance_versions: dict[str, int] = {}

    # Which event made the state a repeated command finds (its first answer's
    # position). Kept since this release: an account restored from a snapshot
    # taken before it lacks them, and the version is then unknown (None).

    def status_version(self) -> int | None:
        """The version of the event that froze or unfroze the account last
        (1, its opening, when that never happened)."""
        version = self.__dict__.get("_status_version")
        return version if isinstance(version, int) else None

    def allowance_version(self, spender: UUID) -> int | None:
        """The version of the event that last changed what ``spender`` may
        move (set or spent; 1 when it never changed)."""
        versions = self.__dict__.get("_allowance_versions")
        return versions.get(spender.hex, 1) if isinstance(versions, dict) else None

    def _allowance_changed(self, spender: UUID, version: int) -> None:
        versions = self.__dict__.get("_allowance_versions")
        if isinstance(versions, dict):  # else unknown before, so left unknown
            versions[spender.hex] = version

    class_version = 2
    """Version 2 keeps ``hold_expiries``; a snapshot of version 1 has none."""

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["hold_expiries"] = {}

    @classmethod
    def open(cls, account_id: UUID, kind: str, now: datetime) -> Account:
        return cls._create(cls.Opened, id=account_id, kind=kind, timestamp=now)

    @property
    def available(self) -> int:
        """Balance less every hold not yet recorded as released."""
        return self.balance - self.held

    def available_at(self, now: datetime) -> int:
        """What a decision at ``now`` may spend: a hold past its expiry
        reserves nothing any more, whether or not the sweeper has recorded
        it yet (the deciding command records it, ``expired_holds``)."""
        return self.available + sum(self.holds[key] for key in self._expired_keys(now))

    def expired_holds(self, now: datetime) -> list[UUID]:
        """The holds still on record whose expiry is at or before ``now``."""
        return [UUID(key) for key in self._expired_keys(now)]

    def holds_without_expiry(self) -> list[UUID]:
        """Holds placed before ``HoldPlaced`` carried the expiry."""
        return [UUID(key) for key in self.holds if key not in self.hold_expiries]

    def learn_hold_expiry(self, hold_id: UUID, expires_at: datetime) -> None:
        """What the hold's own record (its Transfer) says of an earlier hold's
        expiry. Knowledge, not a change: nothing happened, so no event; a
        replay without it learns it again the same way."""
        if hold_id.hex in self.holds:
            self.hold_expiries[hold_id.hex] = expires_at

    def _expired_keys(self, now: datetime) -> list[str]:
        return [key for key, expires_at in self.hold_expiries.items() if expires_at <= now]

    @property
    def is_issuance(self) -> bool:
        return self.kind == ISSUANCE

    def allowance_for(self, spender: UUID) -> int:
        return self.allowances.get(spender.hex, 0)

    # Checks: each raises the rule's error and changes nothing.

    def check_can_send(self, amount: int, now: datetime) -> None:
        self.check_not_frozen()
        if self.is_issuance:
            if self.balance - amount < -SUPPLY_MAX:
                raise SupplyLimitExceeded(
                    f"minting {format_amount(amount)} DEAL would take the circulating supply "
                    f"past its limit of {deal_text(SUPPLY_MAX)} DEAL"
                )
            return
        if self.kind == EXTERNAL:
            # Its balance is what left custody less what came back. It goes
            # below zero only if DEAL the ledger never let out comes in (a
            # mint behind its back): the tokens are in custody all the same,
            # so the depositor is credited and reconciliation's supply check
            # names the difference.
            return
        available = self.available_at(now)
        if amount > available:
            raise InsufficientBalance(
                f"available balance {format_amount(available)} DEAL is below "
                f"{format_amount(amount)} DEAL"
            )

    def check_can_receive(self) -> None:
        self.check_not_frozen()

    def check_allowance(self, spender: UUID, amount: int) -> None:
        allowed = self.allowance_for(spender)
        if amount > allowed:
            raise AllowanceExceeded(
                f"spender may move {format_amount(allowed)} DEAL, not {format_amount(amount)} DEAL"
            )

    # Decisions: each checks fully, then triggers.

    def debit(
        self, transfer_id: UUID, amount: int, kind: str, reason: str, now: datetime
    ) -> None:
        self.check_can_send(amount, now)
        self._check_expired_released(amount)
        self.trigger_event(
            self.Debited, transfer_id=transfer_id, amount=amount, kind=kind, reason=reason,
            balance_after=self.balance - amount, timestamp=now,
        )

    def credit(
        self, transfer_id: UUID, amount: int, kind: str, reason: str, now: datetime
    ) -> None:
        self.check_can_receive()
        self.trigger_event(
            self.Credited, transfer_id=transfer_id, amount=amount, kind=kind, reason=reason,
            balance_after=self.balance + amount, timestamp=now,
        )

    def check_can_hold(self, amount: int, now: datetime) -> None:
        if self.is_issuance:
            raise InvalidRequest("the issuance account cannot hold funds")
        self.check_can_send(amount, now)

    def place_hold(
        self, hold_id: UUID, amount: int, now: datetime, expires_at: datetime | None = None
    ) -> None:
        self.check_can_hold(amount, now)
        self._check_expired_released(amount)
        self.trigger_event(
            self.HoldPlaced, hold_id=hold_id, amount=amount, expires_at=expires_at, timestamp=now
        )

    def capture_hold(
        self, hold_id: UUID, amount: int, kind: str, reason: str, now: datetime
    ) -> None:
        held = self._held_for(hold_id)
        self.check_not_frozen()
        if amount > held:
            raise InvalidAmount(
                f"capture of {format_amount(amount)} DEAL exceeds the "
                f"{format_amount(held)} DEAL held"
            )
        self.trigger_event(
            self.HoldCaptured, hold_id=hold_id, transfer_id=hold_id, amount=amount,
            released=held - amount, kind=kind, reason=reason,
            balance_after=self.balance - amount, timestamp=now,
        )

    def release_hold(self, hold_id: UUID, cause: str, now: datetime) -> None:
        held = self._held_for(hold_id)
        self.trigger_event(
            self.HoldReleased, hold_id=hold_id, amount=held, cause=cause, timestamp=now
        )

    def freeze(self, now: datetime) -> bool:
        """Returns False (and writes nothing) when already frozen."""
        self._check_freezable()
        if self.frozen:
            return False
        self.trigger_event(self.Frozen, timestamp=now)
        return True

    def unfreeze(self, now: datetime) -> bool:
        self._check_freezable()
        if not self.frozen:
            return False
        self.trigger_event(self.Unfrozen, timestamp=now)
        return True

    def void_hold(self, hold_id: UUID, now: datetime) -> None:
        """A void is the hold owner's act, so a frozen owner cannot void;
        expiry (``release_hold`` with cause "expired") is time's, not a party's."""
        self.check_not_frozen()
        self.release_hold(hold_id, "voided", now)

    def set_allowance(self, spender: Account, amount: int, now: datetime) -> bool:
        """Sets (never adds) what ``spender`` may move; False when unchanged.

        Freeze binds both parties: a frozen owner grants nothing and a frozen
        spender is given nothing more. Lowering what a frozen spender may move
        is allowed: it only takes power away from the frozen account."""
        if spender.id == self.id:
            raise InvalidRequest("an account cannot be its own spender")
        self.check_not_frozen()
        current = self.allowance_for(spender.id)
        if amount > current:
            spender.check_not_frozen()
        if current == amount:
            return False
        self.trigger_event(self.AllowanceSet, spender=spender.id, amount=amount, timestamp=now)
        return True

    def spend_allowance(
        self, spender: Account, transfer_id: UUID, amount: int, now: datetime
    ) -> None:
        spender.check_not_frozen()
        self.check_allowance(spender.id, amount)
        self.trigger_event(
            self.AllowanceSpent, spender=spender.id, transfer_id=transfer_id, amount=amount,
            timestamp=now,
        )

    def _check_expired_released(self, amount: int) -> None:
        """Spending what an expired hold reserved is allowed once its release
        is recorded first (in the same commit, ``expired_holds``), so the
        stored ``available`` never goes below zero. A path that spends
        without recording it is a bug: refused, never an overdraft."""
        if amount > self.available and self.kind not in MAY_GO_NEGATIVE:
            raise RuntimeError(  # a bug, not a refusal: the writer answers internal_error
                f"account {self.id} must record its expired holds' release before it spends"
            )

    def _held_for(self, hold_id: UUID) -> int:
        try:
            return self.holds[hold_id.hex]
        except KeyError:
            raise HoldNotFound(f"hold {hold_id} is not held on this account") from None

    def check_not_frozen(self) -> None:
        if self.frozen:
            raise AccountFrozen(f"account {self.id} is frozen")

    def _check_freezable(self) -> None:
        if self.kind != USER:
            raise InvalidRequest(f"the {self.kind} account cannot be frozen")


def _put_allowance(allowances: dict[str, int], spender: UUID, amount: int) -> None:
    if amount:
        allowances[spender.hex] = amount
    else:
        allowances.pop(spender.hex, None)
