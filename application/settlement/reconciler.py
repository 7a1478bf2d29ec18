"""Reconciliation: the chain checked against the log, nothing corrected.

A run compares, per ledger account, the token account's balance on chain
with the account's balance of SETTLED movements (queued, failed and
compensating movements never moved on chain, so they do not count), and
looks at every transaction on those token accounts: each must be a
submission the log knows, carrying memos naming exactly its transfers, and
must have done what the log says (settled ones succeeded; expired or
rejected ones never succeeded), or a ``custody rotate`` transaction, known
by what it does (``_custody_rotation``) rather than by a record: the
command writes nothing to the log, and a restore would lose a record kept in
the settlement store. It also asks the chain for every settlement
of the log, lists failed movements whose compensation was refused, and
checks the external account: on chain, the tokens outside custody are the
mint's supply less every custody token account (``_check_external``).

Where the data comes from: the settlement store (``application.
settlement_store``), the settlement process's own fold of the log. It is
the one place that knows which movements are settled (the read models know
posted balances), it is paged by account id, and its tracking position is
the settler's, so the two views can be judged together: an account whose
chain balance disagrees with its page's settled balance is read again with
the chain read bracketed by the store (``balance_reading``), so what a
settler records, lands or settles meanwhile is never taken for a finding. Everything is read in
pages (accounts, signatures, settlements), so 100,000 accounts never sit in
memory at once; signature history already verified is skipped next time
(per-account watermarks), unless ``full``.

Each finding is recorded in the log (``Finding`` aggregates, through the
command writer), appears in the report and moves a metric. An admin
resolves a balance finding with ``adjust_for_finding``: a movement against
the issuance account that references it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID, uuid4

from application import commands as c
from application.alerts import AlertKind, raise_alert
from application.authority import Authority
from application.errors import SettlementUnavailable
from application.outcomes import MovementRecorded
from application.retry import RetryPolicy, Sleep, retrying
from application.settlement import metrics
from application.settlement.balance_reading import (
    CHANGES_MAX,
    BalanceReading,
    explained_differences,
)
from application.settlement.chain_port import ChainPort, ChainTransaction, ChainUnavailableError
from application.settlement.fold import SettlementFold
from application.settlement.legs import expected_deltas
from application.settlement.process import GENESIS_MEMO, CommandSender, execute_internal
from application.settlement.store import (
    FAILED,
    IN_FLIGHT,
    REJECTED,
    SETTLED,
    SETTLEMENT_STEPS,
    SUPERSEDED,
    VERIFIED_SETTLED_POSITION,
    FindingRow,
    Movement,
    SettlementStore,
    Submission,
)
from domain.amounts import format_amount
from domain.errors import FindingNotAdjustable, FindingNotFound
from domain.ids import ledger_id
from domain.reconciliation import (
    AMOUNT_MISMATCH,
    BALANCE_MISMATCH,
    DEAD_SUBMISSION_LANDED,
    EXTERNAL_MISMATCH,
    MEMO_MISMATCH,
    MISSING_ON_CHAIN,
    SIGNATURE_KINDS,
    UNASSIGNED_DEPOSIT,
    UNCOMPENSATED_FAILURE,
    UNKNOWN_SIGNATURE,
)
from domain.system import (
    DEPOSIT_FINDINGS_RUN_ID,
    EXTERNAL_ID,
    GENESIS_MINT_ID,
    ISSUANCE_ID,
    derived_id,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

SIGNATURES_PER_PAGE_MAX = 1000
SIGNATURE_PAGES_PER_ACCOUNT_MAX = 100_000
SETTLEMENTS_PER_PAGE_MAX = 256
STABLE_READS_MAX = 5
READ_BACKOFF_S = 0.05
SEEN_SIGNATURES_MAX = 100_000
REPORT_FINDINGS_MAX = 1000
_FINDINGS = derived_id("findings", UUID(int=0))
"""Namespace of finding ids: derived from the run and what they are about,
so a retried RecordFindings records each finding once."""


@dataclass(frozen=True)
class ReconciliationConfig:
    accounts_page: int = 500
    findings_per_run_max: int = 10_000
    """Findings recorded one by one; past this a run only counts them."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class ReconciliationReport:
    reconciliation_id: UUID
    started_at: str
    finished_at: str | None
    checked_accounts: int
    checked_signatures: int
    mismatches: list[FindingRow]
    unmatched_signatures: list[FindingRow]
    findings_total: int
    mismatch_count: int
    unmatched_count: int
    truncated: bool

    @property
    def clean(self) -> bool:
        return self.findings_total == 0


class _Findings:
    """Findings of one run: deduplicated, recorded in the log in chunks,
    bounded in number; counted by what the report calls them."""

    def __init__(self, run_id: UUID, record: Callable[[c.Command], Awaitable[Any]],
                 limit: int) -> None:
        self.run_id = run_id
        self._record = record
        self._limit = limit
        self._buffer: list[c.FindingSpec] = []
        self._ids: set[UUID] = set()
        self.mismatches = 0
        self.unmatched = 0

    @property
    def total(self) -> int:
        return self.mismatches + self.unmatched

    async def add(self, kind: str, *, account_id: UUID | None = None,
                  signature: str | None = None, transfer_id: UUID | None = None,
                  expected: int | None = None, actual: int | None = None,
                  detail: str = "") -> UUID:
        """Record a finding (once per run); answers its id."""
        about = f"{kind}:{account_id}:{signature}:{transfer_id}"
        finding_id = ledger_id(_FINDINGS, f"{self.run_id}:{about}")
        if finding_id in self._ids:
            return finding_id
        if kind in SIGNATURE_KINDS:
            self.unmatched += 1
        else:
            self.mismatches += 1
        metrics.RECONCILIATION_FINDINGS.labels(kind).inc()
        logger.warning("reconciliation %s: %s %s %s %s", self.run_id, kind,
                       account_id or "", signature or "", detail)
        if len(self._ids) >= self._limit:
            return finding_id
        self._ids.add(finding_id)
        self._buffer.append(c.FindingSpec(
            finding_id=finding_id, kind=kind, account_id=account_id, signature=signature,
            transfer_id=transfer_id, expected=expected, actual=actual, detail=detail,
        ))
        if len(self._buffer) >= c.FINDINGS_PER_COMMAND_MAX:
            await self.flush()
        return finding_id

    async def flush(self) -> None:
        if self._buffer:
            await self._record(c.RecordFindings(self.run_id, tuple(self._buffer)))
            self._buffer = []


class Reconciler:
    def __init__(
        self,
        *,
        writer: CommandSender,
        fold: SettlementFold,
        chain: ChainPort,
        config: ReconciliationConfig | None = None,
        sleep: Sleep = asyncio.sleep,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """``progress`` is told how many accounts are checked, after each page
        (the CLI's progress bar)."""
        self.progress = progress
        self.writer = writer
        self.fold = fold
        self.store: SettlementStore = fold.store
        self.chain = chain
        self.config = config or ReconciliationConfig()
        self._sleep = sleep
        self._seen: set[str] = set()
        self._custody_off = 0
        """The run's custody balance findings' differences (chain less
        ledger), summed: what they leave outside custody (``_check_external``)."""
        self._uncredited = 0
        """What of those differences is deposits the ledger has not credited
        yet (``_uncredited_deposits``)."""

    async def run(self, *, full: bool = False) -> ReconciliationReport:
        """One reconciliation now; its report. ``full`` re-checks the whole
        signature history instead of what is new since the last run."""
        self._seen = set()
        run_id = uuid4()
        await self._execute(c.StartReconciliation(run_id))
        findings = _Findings(run_id, self._execute, self.config.findings_per_run_max)
        self._custody_off = self._uncredited = 0
        accounts, signatures = await self._check_accounts(findings, full)
        await self._check_external(findings)
        clean_settlements = await self._check_settlements(findings, full)
        await self._check_uncompensated(findings)
        await findings.flush()
        await self._execute(c.FinishReconciliation(
            run_id, checked_accounts=accounts, checked_signatures=signatures,
            mismatches=findings.mismatches, unmatched_signatures=findings.unmatched,
            findings_total=findings.total,
        ))
        if clean_settlements is not None:
            self.store.set_meta(VERIFIED_SETTLED_POSITION, clean_settlements)
        self.fold.catch_up()
        report = report_for(self.store, run_id)
        _observe(report)
        if findings.total:
            raise_alert(
                AlertKind.RECONCILIATION_FINDING, "reconciliation found differences",
                dedup_key=str(run_id), run_id=str(run_id), mismatches=findings.mismatches,
                unmatched_signatures=findings.unmatched, findings=findings.total,
            )
        return report

    # --- balances and signatures, a page of accounts at a time ---------------------

    async def _check_accounts(self, findings: _Findings, full: bool) -> tuple[int, int]:
        checked_accounts = checked_signatures = 0
        after = ""
        while True:
            self.fold.catch_up()
            page = self.store.balances_page(after, self.config.accounts_page)
            if not page:
                return checked_accounts, checked_signatures
            readings = await self._check_balances([account for account, _ in page], findings)
            self.store.set_chain_balances(findings.run_id, _now_text(), readings)
            marks: list[tuple[UUID, str]] = []
            for account, _ in page:
                count, mark = await self._check_signatures(account, findings, full)
                checked_signatures += count
                if mark is not None:
                    marks.append((account, mark))
            await findings.flush()  # recorded before the watermarks move past them
            self.store.set_watermarks(marks)
            checked_accounts += len(page)
            if self.progress is not None:
                self.progress(checked_accounts)
            after = page[-1][0].hex

    async def _check_balances(self, accounts: list[UUID], findings: _Findings
                              ) -> list[tuple[UUID, int]]:
        """The page is read once; an account that disagrees is read again on
        its own, the chain read bracketed by the store (``balance_reading``),
        so a settler at work, however busy, makes no finding. Answers what
        was read on chain for each account (the last reading of it)."""
        settled = self.store.balances(accounts)
        in_flight = self._in_flight_changes()
        readings: list[tuple[UUID, int]] = []
        for account in accounts:
            actual, reading = await self._read(account, settled, in_flight)
            readings.append((account, actual))
            if reading is None:
                continue
            self._custody_off += reading.actual - reading.expected
            finding_id = await findings.add(
                BALANCE_MISMATCH, account_id=account, expected=reading.expected,
                actual=reading.actual,
                detail=f"token account {self.chain.token_account_address(account)} holds "
                       f"{format_amount(reading.actual)} DEAL, the ledger's settled balance is "
                       f"{format_amount(reading.expected)} DEAL",
            )
            waiting_for = await self._unscanned_deposits(account)
            if waiting_for is not None:
                self.store.hold_adjustment(finding_id, account, waiting_for)
            self._uncredited += self._uncredited_deposits(account, reading,
                                                          held=waiting_for is not None)
        return readings

    def _uncredited_deposits(self, account: UUID, reading: BalanceReading, *,
                             held: bool) -> int:
        """What of a custody balance finding is deposits the ledger has not
        credited yet: in custody on chain, external in the ledger, and
        reported by their own findings, so the external check leaves them
        out (``_check_external``). All of a finding held for the deposit
        scan (its difference may be deposits the scan has not taken), else
        the account's open ``unassigned_deposit`` findings."""
        if held:
            return reading.actual - reading.expected
        return sum(row.actual or 0 for row in self.store.unresolved_findings(
            DEPOSIT_FINDINGS_RUN_ID, account) if row.kind == UNASSIGNED_DEPOSIT)

    async def _read(self, account: UUID, settled: dict[UUID, int],
                    in_flight: dict[UUID, set[int]]) -> tuple[int, BalanceReading | None]:
        """The account's balance on chain, and the decided reading when it
        disagrees with the ledger beyond what settlement in flight explains
        (None: it agrees)."""
        actual = await self._balance(account)
        if _agrees(settled.get(account, 0), actual, in_flight.get(account, ())):
            return actual, None
        reading = await self._bracketed_reading(account)
        return reading.actual, None if reading.agrees else reading

    async def _check_external(self, findings: _Findings) -> None:
        """Tokens outside custody on chain (the mint's supply less every
        custody token account) against the external account's settled
        balance. The supply is read as the issuance account's balance
        (minus the supply), judged as a balance is, so settlement in flight
        or settled during a read explains the same differences as for a
        custody account and lag makes no finding. The chain then holds
        outside custody the external balance less what the supply and the
        custody accounts' findings are off and what the ledger's settled
        balances sum to (zero, unless a row was altered). The ledger
        expects there the external balance less the deposits it has not
        credited yet (not scanned, or unassigned): their own findings
        report them, once. The external
        balance is negative when more DEAL came in than left (DEAL minted
        outside the ledger): a signed number like any other here."""
        self.fold.catch_up()
        _, supply = await self._read(ISSUANCE_ID, self.store.balances([ISSUANCE_ID]),
                                     self._in_flight_changes())
        supply_off = 0 if supply is None else supply.actual - supply.expected
        difference = -(supply_off + self._custody_off + self.store.balances_total())
        if difference + self._uncredited == 0:
            return
        external = self.store.balances([EXTERNAL_ID]).get(EXTERNAL_ID, 0)
        uncredited = ("" if not self._uncredited else
                      f", {format_amount(self._uncredited)} DEAL of it deposited and not "
                      "credited yet")
        supply_text = ("the supply agrees with the ledger's issuance" if supply is None else
                       f"the supply is {format_amount(-supply.actual)} DEAL, the ledger's "
                       f"issuance {format_amount(-supply.expected)} DEAL")
        await findings.add(
            EXTERNAL_MISMATCH, account_id=EXTERNAL_ID, expected=external - self._uncredited,
            actual=external + difference,
            detail=f"the mint's supply less the custody token accounts' balances leaves "
                   f"{format_amount(external + difference)} DEAL outside custody, the ledger's "
                   f"external balance is {format_amount(external)} DEAL{uncredited} "
                   f"({supply_text}; the custody balance findings sum to "
                   f"{_signed_amount(self._custody_off)} DEAL)",
        )

    async def _unscanned_deposits(self, account: UUID) -> str | None:
        """Read after the balance: the newest signature on the account's
        deposit address when a transaction the deposit scan has not taken
        yet (one not at its commitment yet, or the scan not run since) may
        be a deposit, else None. The balance read includes such a deposit,
        so adjusting the difference now and crediting the deposit later
        would credit it twice: the finding waits for the scan
        (``adjust_for_finding``). What the settler sent is no deposit (a
        deposit's signature, credited, may carry another transfer not
        credited yet); a transaction not readable yet, or a history past one
        page, is taken to be one."""
        cursor = self.store.deposit_cursor(account)
        page = await self._chain("getSignaturesForAddress", lambda: self.chain.signatures_for_account(
            account, limit=SIGNATURES_PER_PAGE_MAX))
        if cursor is not None and cursor in page:
            unscanned = page[:page.index(cursor)]
        elif len(page) >= SIGNATURES_PER_PAGE_MAX:
            return page[0]
        else:
            unscanned = page
        known = self.store.sent_signatures(unscanned)
        for signature in unscanned:
            if signature in known:
                continue
            landed = await self._chain("getTransaction",
                                       partial(self.chain.transaction, signature))
            if landed is None or self._may_deposit(account, landed):
                return page[0]
        return None

    def _may_deposit(self, account: UUID, landed: ChainTransaction) -> bool:
        """Whether the deposit scan may take ``landed`` as a deposit into the
        account: DEAL moved into its address from a token account the
        current custody owner does not own (the scan's own test is narrower:
        erring wide only makes a finding wait for the scan)."""
        address = self.chain.token_account_address(account)
        return any(
            moved.destination == address and moved.mint == self.chain.mint_address
            and moved.source_owner != self.chain.token_account_owner and moved.amount > 0
            for moved in landed.token_transfers)

    async def _bracketed_reading(self, account: UUID) -> BalanceReading:
        """A decided reading of the account (``balance_reading``). Undecided
        ones (too much settled during the chain read) are tried again, backing
        off; after a few, the run stops unavailable rather than guess: a false
        finding could be adjusted, moving money that never moved."""
        for attempt in range(STABLE_READS_MAX):
            self.fold.catch_up()
            before = self.store.position()
            actual = await self._balance(account)
            reading = await self._reading_after(account, before, actual)
            if reading is not None and reading.decided:
                return reading
            await self._sleep(READ_BACKOFF_S * 2**attempt)
        raise SettlementUnavailable(
            f"settlement kept moving while account {account} was read; reconcile again later"
        )

    async def _reading_after(
        self, account: UUID, before: int, actual: int
    ) -> BalanceReading | None:
        """The store's side of a reading, once no settlement step was folded
        while it was read (None when none stood still, or too many settled)."""
        for _ in range(STABLE_READS_MAX):
            steps = self._steps()
            expected = self.store.balances([account]).get(account, 0)
            in_flight = self.store.in_flight(CHANGES_MAX + 1)
            settled = self.store.settled_after(before, SETTLEMENTS_PER_PAGE_MAX)
            genesis = self._genesis_in_flight()
            if self.store.meta(SETTLEMENT_STEPS) != steps:
                await self._sleep(0)
                continue
            if len(in_flight) > CHANGES_MAX or len(settled) >= SETTLEMENTS_PER_PAGE_MAX:
                return None
            landing = self._account_changes(in_flight, account)
            if genesis is not None and _change(genesis, account):
                landing.append(_change(genesis, account))
            explained = explained_differences(landing, self._account_changes(settled, account))
            return BalanceReading(expected, actual, explained)
        return None

    def _account_changes(self, submissions: list[Submission], account: UUID) -> list[int]:
        """What each submission moves on the account (those that move it)."""
        moved = self.store.movements([t for s in submissions for t in s.transfer_ids])
        changes = []
        for submission in submissions:
            change = 0
            for transfer_id in submission.transfer_ids:
                movement = moved.get(transfer_id)
                if movement is not None:
                    change += _change(movement, account)
            if change:
                changes.append(change)
        return changes

    def _steps(self) -> int:
        self.fold.catch_up()
        return self.store.meta(SETTLEMENT_STEPS)

    def _in_flight_changes(self) -> dict[UUID, set[int]]:
        changes: dict[UUID, set[int]] = {}
        for submission in self.store.in_flight():
            movements = self.store.movements(submission.transfer_ids).values()
            total: dict[UUID, int] = {}
            for movement in movements:
                total[movement.source] = total.get(movement.source, 0) - movement.amount
                total[movement.destination] = total.get(movement.destination, 0) + movement.amount
            for account, change in total.items():
                changes.setdefault(account, set()).add(change)
        genesis = self._genesis_in_flight()
        if genesis is not None:
            changes.setdefault(genesis.destination, set()).add(genesis.amount)
            changes.setdefault(genesis.source, set()).add(-genesis.amount)
        return changes

    def _genesis_in_flight(self) -> Movement | None:
        """The genesis mint while it is not recorded settled: the settler
        puts it on chain (``prepare``) before it records it (found by its
        memo), so it is the one movement that may have landed with no
        submission recorded."""
        genesis = self.store.movement(GENESIS_MINT_ID)
        return None if genesis is None or genesis.status == SETTLED else genesis

    async def _balance(self, account: UUID) -> int:
        """The account's balance on chain; the issuance account's is minus
        the mint's supply (the ledger's issuance balance is minus what it
        issued)."""
        if account == ISSUANCE_ID:
            return -await self._chain("getAccountInfo", self.chain.mint_supply)
        balance = await self._chain("getTokenAccountBalance",
                                    lambda: self.chain.token_balance(account))
        return 0 if balance is None else balance

    async def _check_signatures(
        self, account: UUID, findings: _Findings, full: bool
    ) -> tuple[int, str | None]:
        """Every signature on the account's token account newer than its
        watermark; the new watermark (None: leave it where it is)."""
        mark = None if full else self.store.watermark(account)
        before: str | None = None
        newest: str | None = None
        checked, skipped_in_flight = 0, False
        for _ in range(SIGNATURE_PAGES_PER_ACCOUNT_MAX):
            page = await self._chain("getSignaturesForAddress", _signatures(
                self.chain, account, before
            ))
            if not page:
                break
            newest = newest or page[0]
            reached = mark is not None and mark in page
            todo = page[: page.index(mark)] if reached and mark is not None else page
            known = self.store.submissions(todo)
            for signature in todo:
                checked += 1
                skipped_in_flight |= await self._check_signature(
                    account, signature, known.get(signature), findings
                )
            if reached or len(page) < SIGNATURES_PER_PAGE_MAX:
                break
            before = page[-1]
        return checked, None if skipped_in_flight else newest

    async def _check_signature(
        self, account: UUID, signature: str, submission: Submission | None, findings: _Findings
    ) -> bool:
        """Check one transaction; True when it is in flight (not judged yet)."""
        if submission is not None and submission.status == IN_FLIGHT:
            return True
        if signature in self._seen:
            return False  # seen on the other account of the same transaction
        if len(self._seen) < SEEN_SIGNATURES_MAX:
            self._seen.add(signature)
        landed = await self._chain("getTransaction", lambda: self.chain.transaction(signature))
        if landed is None:
            return False  # listed but not yet readable at this commitment
        if submission is None and GENESIS_MEMO in landed.memos:
            if self._genesis_in_flight():
                return True  # the genesis mint, landed before its settlement is recorded
            submission = self.store.submission(signature)  # recorded since the page was read
        if submission is None and await self._custody_rotation(account, landed):
            return False
        if submission is None:
            await findings.add(
                UNKNOWN_SIGNATURE, account_id=account, signature=signature,
                detail=f"not submitted by the ledger; {_describe(landed)}",
            )
        elif submission.status == SETTLED:
            await self._check_settled(account, submission, landed, findings)
        elif submission.status in (SUPERSEDED, REJECTED, FAILED) and landed.error is None:
            await findings.add(
                DEAD_SUBMISSION_LANDED, account_id=account, signature=signature,
                transfer_id=submission.transfer_ids[0],
                detail=f"the log records it {submission.status}, yet it succeeded on chain; "
                       f"{_describe(landed)}",
            )
        return False

    async def _custody_rotation(self, account: UUID, landed: ChainTransaction) -> bool:
        """A transaction of ``custody rotate`` (no submission of the log
        records it), told structurally rather than by a memo anyone could
        write: it succeeded, SPL Token SetAuthority instructions are all it
        holds, and one of them changed this custody token account's
        authority, which only the account's owner of the time (the
        ledger's own key) can sign. No token can move in it. And the account
        is, now, the configured owner key's (``custody_account_problem``):
        the same structure signed by a leaked owner key that handed the
        account to someone else is no rotation of ours, and stays an
        ``unknown_signature`` (found by a reviewer). One read, only for such
        transactions."""
        if (landed.error is not None or landed.token_transfers
                or self.chain.token_account_address(account) not in landed.authority_changes):
            return False
        problem = await self._chain("getAccountInfo",
                                    partial(self.chain.custody_account_problem, account))
        return problem is None

    async def _check_settled(
        self, account: UUID, submission: Submission, landed: ChainTransaction,
        findings: _Findings,
    ) -> None:
        if submission.transfer_ids == (GENESIS_MINT_ID,):
            memo_ok = GENESIS_MEMO in landed.memos
        else:
            memo_ok = (sorted(landed.memo_transfer_ids) == sorted(submission.transfer_ids)
                       or self._is_deposit(submission))
        if landed.error is not None:
            await findings.add(
                MISSING_ON_CHAIN, account_id=account, signature=submission.signature,
                transfer_id=submission.transfer_ids[0],
                detail=f"settled in the log but failed on chain: {landed.error}",
            )
        elif not memo_ok:
            await findings.add(
                MEMO_MISMATCH, account_id=account, signature=submission.signature,
                transfer_id=submission.transfer_ids[0],
                detail=f"the log settled {_ids(submission.transfer_ids)} with it; "
                       f"its memos name {_ids(landed.memo_transfer_ids) or 'nothing'}",
            )
        elif submission.transfer_ids != (GENESIS_MINT_ID,):
            await self._check_deltas(account, submission, landed, findings)

    async def _check_deltas(
        self, account: UUID, submission: Submission, landed: ChainTransaction,
        findings: _Findings,
    ) -> None:
        """Each custody token account the named movements touch changed by
        their sum, no more, no less: the proof that a netted transfer (or a
        packed transaction) carried exactly what the memo names. A deposit's
        transaction may also carry transfers no credit names, each an open
        ``unassigned_deposit`` (a stranger's beside a connected wallet's):
        in custody on chain, external in the ledger and reported by their
        own findings, so the account is expected to change by them too."""
        uncredited: dict[str, int] = {}
        if self._is_deposit(submission):
            now = self.store.with_open_findings(submission.signature, DEPOSIT_FINDINGS_RUN_ID)
            if now is None:
                return  # its credits taken out since (a refused return): unknown next run
            submission, open_deposits = now
            uncredited = self._deposit_deltas(open_deposits)
        for address, change in sorted(self._expected_deltas(submission).items()):
            actual, left_out = landed.token_deltas.get(address, 0), uncredited.get(address, 0)
            if actual != change + left_out:
                await findings.add(
                    AMOUNT_MISMATCH, account_id=account, signature=submission.signature,
                    transfer_id=submission.transfer_ids[0], expected=change + left_out,
                    actual=actual,
                    detail=f"token account {address} changed by {_signed_amount(actual)} "
                           f"DEAL; the movements named, {_ids(submission.transfer_ids)}, "
                           f"sum to {_signed_amount(change)} DEAL"
                           + (f", and {format_amount(left_out)} DEAL of it was deposited and "
                              "not credited yet" if left_out else ""),
                )
                return

    def _deposit_deltas(self, open_deposits: list[FindingRow]) -> dict[str, int]:
        """Custody token account address -> what the open unassigned
        deposits put into it."""
        deltas: dict[str, int] = {}
        for row in open_deposits:
            if row.kind == UNASSIGNED_DEPOSIT and row.account_id is not None:
                address = self.chain.token_account_address(row.account_id)
                deltas[address] = deltas.get(address, 0) + (row.actual or 0)
        return deltas

    def _expected_deltas(self, submission: Submission) -> dict[str, int]:
        """Token account address -> the sum of the named movements' changes
        (``legs``: custody token accounts, withdrawals' wallets, returns'
        own token accounts; the
        issuance and external sides have none, the mint's supply shows
        those)."""
        return expected_deltas(self.store.movements(submission.transfer_ids).values(), self.chain)

    def _is_deposit(self, submission: Submission) -> bool:
        """A deposit is settled by the depositor's own transaction, which
        carries no memo of ours (``application.settlement.deposit_scan``)."""
        movements = self.store.movements(submission.transfer_ids)
        return bool(movements) and all(
            movement.source == EXTERNAL_ID for movement in movements.values())

    # --- the log's settlements, all found on chain? -------------------------------

    async def _check_settlements(self, findings: _Findings, full: bool) -> int | None:
        """Returns the position all settlements up to which were found (to
        start from next time), or None when something was missing."""
        after = 0 if full else self.store.meta(VERIFIED_SETTLED_POSITION)
        missing = False
        while True:
            page = self.store.settled_after(after, SETTLEMENTS_PER_PAGE_MAX)
            if not page:
                return None if missing else after
            statuses = await self._chain("getSignatureStatuses", _statuses(self.chain, page))
            for submission in page:
                status = statuses.get(submission.signature)
                if status is None or status.error is not None:
                    missing = True
                    await findings.add(
                        MISSING_ON_CHAIN, signature=submission.signature,
                        transfer_id=submission.transfer_ids[0],
                        detail=f"settled in the log at slot {submission.slot} as "
                               f"{_ids(submission.transfer_ids)}; the chain "
                               + ("does not know it" if status is None
                                  else f"has it failed: {status.error}"),
                    )
            after = page[-1].outcome_position or after

    async def _check_uncompensated(self, findings: _Findings) -> None:
        after = 0
        while True:
            page = self.store.uncompensated_after(after, 1000)
            if not page:
                return
            for movement, error in page:
                await findings.add(
                    UNCOMPENSATED_FAILURE, account_id=movement.destination,
                    transfer_id=movement.transfer_id, signature=movement.signature,
                    expected=None, actual=None,
                    detail=f"failed on chain; its compensating reversal was refused: {error}",
                )
            after = page[-1][0].position

    # --- plumbing -----------------------------------------------------------------------

    async def _chain(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(
            call, retry_on=(ChainUnavailableError,), policy=self.config.retry,
            what=f"reconciliation {operation}", sleep=self._sleep,
        )

    async def _execute(self, command: c.Command) -> Any:
        return await execute_internal(self.writer, command, self.config.retry, self._sleep)


# --- reports and adjustments (no chain needed) ----------------------------------------


def report_for(store: SettlementStore, run_id: UUID) -> ReconciliationReport:
    run = store.run(run_id)
    if run is None:
        raise FindingNotFound(f"reconciliation {run_id} is not in the settlement store")
    listed = store.findings(run_id, REPORT_FINDINGS_MAX)
    return ReconciliationReport(
        reconciliation_id=run.run_id, started_at=run.started_at, finished_at=run.finished_at,
        checked_accounts=run.checked_accounts, checked_signatures=run.checked_signatures,
        mismatches=[f for f in listed if f.kind not in SIGNATURE_KINDS],
        unmatched_signatures=[f for f in listed if f.kind in SIGNATURE_KINDS],
        findings_total=run.findings_total, mismatch_count=run.mismatches,
        unmatched_count=run.unmatched_signatures, truncated=run.findings_total > len(listed),
    )


def latest_reconciliation(fold: SettlementFold) -> ReconciliationReport | None:
    """The report of the latest finished run, or None before the first."""
    fold.catch_up()
    run = fold.store.latest_run()
    return None if run is None else report_for(fold.store, run.run_id)


def adjust_for_finding(
    fold: SettlementFold, writer: Any, finding_id: UUID, authority: Authority, reason: str = ""
) -> MovementRecorded:
    """Admin: post the movement that resolves a finding. For a balance
    mismatch, a mint or burn against issuance that references it; refused
    when the account's settled balance moved since the finding (a later run
    would find something else, and the same difference must not be adjusted
    twice through two runs' findings). For an uncompensated failure, the
    compensating reversal, posted now if the ledger accepts it."""
    fold.catch_up()
    finding = fold.store.finding(finding_id)
    if finding is None:
        raise FindingNotFound(f"finding {finding_id} does not exist")
    if finding.kind == UNCOMPENSATED_FAILURE and finding.transfer_id is not None:
        compensated: MovementRecorded = writer.execute(
            c.RetryCompensation(finding.transfer_id), authority=authority
        )
        fold.catch_up()
        return compensated
    if finding.adjusted_by is None and finding.kind == BALANCE_MISMATCH:
        assert finding.account_id is not None
        current = fold.store.balances([finding.account_id]).get(finding.account_id, 0)
        if current != finding.expected:
            raise FindingNotAdjustable(
                f"finding {finding_id} is stale: the settled balance is {current} now, it "
                f"was {finding.expected}; run a new reconciliation"
            )
        _refuse_while_deposits_unscanned(fold, finding_id, finding.account_id)
        _refuse_while_deposits_unassigned(fold, finding_id, finding.account_id)
    outcome: MovementRecorded = writer.execute(
        c.AdjustForFinding(finding_id, reason), authority=authority
    )
    fold.catch_up()
    return outcome


def _refuse_while_deposits_unscanned(fold: SettlementFold, finding_id: UUID,
                                     account_id: UUID) -> None:
    """The reading held a transaction the deposit scan had not taken yet
    that may be a deposit (``hold_adjustment``): adjusting now and crediting
    (or assigning) it later would credit the same tokens twice. Once the
    scan took it, the deposit was credited (the finding is stale), is an
    unassigned deposit (refused below), or was none (adjustable)."""
    waiting_for = fold.store.adjustment_hold(finding_id)
    if waiting_for is not None:
        raise FindingNotAdjustable(
            f"finding {finding_id} cannot be adjusted yet: account {account_id}'s deposit "
            f"address holds transactions the deposit scan has not taken (up to {waiting_for}), "
            "possibly deposits it would credit a second time; retry after the deposit scan "
            "(DEALS_DEPOSIT_COMMITMENT), then run a new reconciliation if it is stale")


def _refuse_while_deposits_unassigned(fold: SettlementFold, finding_id: UUID,
                                      account_id: UUID) -> None:
    """A deposit not credited yet is part of the account's token balance on
    chain, so a balance mismatch's mint would credit it a second time once
    the deposit is assigned: the deposit is resolved first (then a new
    reconciliation shows what is left)."""
    waiting = fold.store.unresolved_findings(DEPOSIT_FINDINGS_RUN_ID, account_id)
    if waiting:
        raise FindingNotAdjustable(
            f"finding {finding_id} cannot be adjusted while account {account_id} has "
            f"unassigned deposits ({', '.join(str(row.finding_id) for row in waiting)}): "
            "assign them first, then run a new reconciliation")


def _now_text() -> str:
    """Now, as RFC 3339 UTC with ``Z`` (how every answer writes a time)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _observe(report: ReconciliationReport) -> None:
    metrics.RECONCILIATION_MISMATCHES.set(report.mismatch_count)
    metrics.RECONCILIATION_UNMATCHED.set(report.unmatched_count)
    metrics.RECONCILIATION_CHECKED_ACCOUNTS.set(report.checked_accounts)
    metrics.RECONCILIATION_FINISHED.set(time.time())


def _signatures(
    chain: ChainPort, account: UUID, before: str | None
) -> Callable[[], Awaitable[list[str]]]:
    return lambda: chain.signatures_for_account(account, before=before, limit=SIGNATURES_PER_PAGE_MAX)


def _change(movement: Movement, account: UUID) -> int:
    """What a movement does to an account's balance."""
    return ((movement.amount if movement.destination == account else 0)
            - (movement.amount if movement.source == account else 0))


def _signed_amount(units: int) -> str:
    return ("+" if units > 0 else "") + format_amount(units)


def _agrees(expected: int, actual: int, in_flight: set[int] | tuple[()]) -> bool:
    """The chain shows the settled balance, or that plus what the submission
    in flight moves (it landed and is not recorded settled yet)."""
    return actual == expected or actual - expected in in_flight


def _statuses(chain: ChainPort, page: list[Submission]) -> Callable[[], Awaitable[Any]]:
    signatures = [submission.signature for submission in page]
    return lambda: chain.signature_statuses(signatures)


def _ids(transfer_ids: tuple[UUID, ...]) -> str:
    return ", ".join(str(transfer_id) for transfer_id in transfer_ids)


def _describe(landed: ChainTransaction) -> str:
    moved = ", ".join(f"{address} {change:+d}" for address, change in
                      sorted(landed.token_deltas.items())) or "no token moved"
    memos = "; ".join(landed.memos) or "no memo"
    status = "succeeded" if landed.error is None else f"failed ({landed.error})"
    return f"slot {landed.slot}, {status}, {moved}, memos: {memos}"[:400]

