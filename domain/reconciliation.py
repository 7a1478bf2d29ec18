"""Reconciliation of the chain against the ledger: runs and their findings.

A run (``Reconciliation``) is started, records what it found, and finishes
with its counts. Each difference is a ``Finding`` of its own (its id is
derived from the run and what it is about, so recording it twice records it
once), so an operator can name one finding when posting the adjusting
movement that resolves it. Nothing here changes a balance: an adjustment is
an ordinary movement that references the finding.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import FindingNotAdjustable
from domain.system import deposit_attempt_id, deposit_id

BALANCE_MISMATCH = "balance_mismatch"
"""A token account's balance differs from the ledger's settled balance."""
UNKNOWN_SIGNATURE = "unknown_signature"
"""A transaction on a token account that the ledger never submitted."""
MEMO_MISMATCH = "memo_mismatch"
"""A submitted transaction whose memos name other transfers than the log."""
MISSING_ON_CHAIN = "missing_on_chain"
"""A settlement in the log whose transaction the chain does not know."""
DEAD_SUBMISSION_LANDED = "dead_submission_landed"
"""A submission the log gave up on (expired or rejected) landed anyway."""
UNCOMPENSATED_FAILURE = "uncompensated_failure"
"""A movement failed on chain and its compensating reversal was refused."""
AMOUNT_MISMATCH = "amount_mismatch"
"""A settled transaction changed a token account by other than the sum of
the movements its memo names (one netted transfer carries several)."""
UNASSIGNED_DEPOSIT = "unassigned_deposit"
"""DEAL sent into a deposit address from a token account that no wallet
connected to the account owns: not credited until an admin assigns it."""

EXTERNAL_MISMATCH = "external_mismatch"
"""The tokens outside custody on chain (the mint's supply less every custody
token account's balance) differ from the external account's settled
balance: DEAL minted or burned behind the ledger's back, or custody
balances off (each also a ``balance_mismatch``)."""

FINDING_KINDS = (
    BALANCE_MISMATCH, UNKNOWN_SIGNATURE, MEMO_MISMATCH, MISSING_ON_CHAIN,
    DEAD_SUBMISSION_LANDED, UNCOMPENSATED_FAILURE, AMOUNT_MISMATCH, UNASSIGNED_DEPOSIT,
    EXTERNAL_MISMATCH,
)
SIGNATURE_KINDS = (UNKNOWN_SIGNATURE, MEMO_MISMATCH, AMOUNT_MISMATCH)
"""Findings the report lists as unmatched signatures; the rest are mismatches."""


class Reconciliation(Aggregate):
    class Started(Aggregate.Created):
        pass

    class Finished(Aggregate.Event):
        checked_accounts: int
        checked_signatures: int
        mismatches: int
        unmatched_signatures: int
        findings_total: int

        def apply(self, run: Reconciliation) -> None:
            run.finished = True

    def __init__(self) -> None:
        self.finished = False

    @classmethod
    def start(cls, reconciliation_id: UUID, now: datetime) -> Reconciliation:
        return cls._create(cls.Started, id=reconciliation_id, timestamp=now)

    def finish(
        self, *, checked_accounts: int, checked_signatures: int, mismatches: int,
        unmatched_signatures: int, findings_total: int, now: datetime,
    ) -> None:
        self.trigger_event(
            self.Finished, checked_accounts=checked_accounts,
            checked_signatures=checked_signatures, mismatches=mismatches,
            unmatched_signatures=unmatched_signatures, findings_total=findings_total,
            timestamp=now,
        )


class Finding(Aggregate):
    class Recorded(Aggregate.Created):
        reconciliation_id: UUID
        kind: str
        account_id: UUID | None
        signature: str | None
        transfer_id: UUID | None
        expected: int | None
        actual: int | None
        detail: str
        source: str | None = None
        """An unassigned deposit's source token account (where a return
        goes). Absent from earlier events and other kinds."""
        source_owner: str | None = None
        """That token account's owner, as the chain reported it."""
        slot: int | None = None
        """The slot the deposit's transaction landed in."""

    class Adjusted(Aggregate.Event):
        transfer_id: UUID
        change: int

        def apply(self, finding: Finding) -> None:
            finding.adjusted_by = self.transfer_id

    class Reopened(Aggregate.Event):
        """The return that resolved an unassigned deposit failed on chain and
        was compensated (its credit too): the deposit is unassigned again."""

        transfer_id: UUID
        """The compensated return."""

        def apply(self, finding: Finding) -> None:
            finding.adjusted_by = None
            finding.reopened += 1

    def __init__(
        self, reconciliation_id: UUID, kind: str, account_id: UUID | None,
        signature: str | None, transfer_id: UUID | None, expected: int | None,
        actual: int | None, detail: str, source: str | None = None,
        source_owner: str | None = None, slot: int | None = None,
    ) -> None:
        self.reconciliation_id = reconciliation_id
        self.kind = kind
        self.account_id = account_id
        self.signature = signature
        self.transfer_id = transfer_id
        self.expected = expected
        self.actual = actual
        self.detail = detail
        self.source = source
        self.source_owner = source_owner
        self.slot = slot
        self.adjusted_by: UUID | None = None
        self.reopened = 0
        """How many times a compensated return reopened it."""

    def adjustment(self) -> tuple[UUID, int]:
        """The account and the signed change that makes the ledger's settled
        balance equal the chain's (positive: the chain holds more)."""
        if self.kind != BALANCE_MISMATCH or self.account_id is None:
            raise FindingNotAdjustable(
                f"finding {self.id} is a {self.kind}; only a balance_mismatch is adjusted "
                "(its balance effect shows as a balance_mismatch of the accounts it touched)"
            )
        if self.adjusted_by is not None:
            raise FindingNotAdjustable(f"finding {self.id} was adjusted by {self.adjusted_by}")
        assert self.expected is not None and self.actual is not None
        return self.account_id, self.actual - self.expected

    def unassigned_deposit(self) -> tuple[UUID, int, str, int]:
        """The deposit an admin may assign: its account, amount, signature
        and slot; refused for any other finding or one already resolved."""
        if self.kind != UNASSIGNED_DEPOSIT or self.account_id is None:
            raise FindingNotAdjustable(
                f"finding {self.id} is a {self.kind}; only an unassigned_deposit is assigned")
        if self.adjusted_by is not None:
            raise FindingNotAdjustable(f"finding {self.id} was resolved by {self.adjusted_by}")
        assert self.actual is not None and self.signature is not None and self.slot is not None
        return self.account_id, self.actual, self.signature, self.slot

    def credit_id(self) -> UUID:
        """The id the deposit's credit takes now: a new one after each
        reopening, so a second assignment or return is a movement of its own.
        The first is the ``transfer_id`` the scan recorded (its position in
        the transaction is in it); a finding recorded before positions has
        none and takes the position-less id, as its credit did then."""
        assert self.signature is not None and self.account_id is not None
        first = self.transfer_id or deposit_id(self.signature, self.account_id)
        return deposit_attempt_id(first, self.reopened)

    def mark_adjusted(self, transfer_id: UUID, change: int, now: datetime) -> None:
        self.trigger_event(self.Adjusted, transfer_id=transfer_id, change=change, timestamp=now)

    def reopen(self, transfer_id: UUID, now: datetime) -> None:
        """Only the return that resolves it reopens it."""
        if self.kind != UNASSIGNED_DEPOSIT or self.adjusted_by != transfer_id:
            raise FindingNotAdjustable(
                f"finding {self.id} is not resolved by {transfer_id}; not reopened")
        self.trigger_event(self.Reopened, transfer_id=transfer_id, timestamp=now)


def record_finding(
    finding_id: UUID, reconciliation_id: UUID, kind: str, now: datetime, *,
    account_id: UUID | None = None, signature: str | None = None,
    transfer_id: UUID | None = None, expected: int | None = None, actual: int | None = None,
    detail: str = "", source: str | None = None, source_owner: str | None = None,
    slot: int | None = None,
) -> Finding:
    if kind not in FINDING_KINDS:
        raise ValueError(f"unknown finding kind {kind!r}")
    return Finding._create(
        Finding.Recorded, id=finding_id, reconciliation_id=reconciliation_id, kind=kind,
        account_id=account_id, signature=signature, transfer_id=transfer_id,
        expected=expected, actual=actual, detail=detail, timestamp=now,
        source=source, source_owner=source_owner, slot=slot,
    )

