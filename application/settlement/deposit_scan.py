"""The deposit scan: DEAL users send into their accounts' deposit addresses.

An account's deposit address is its custody token account. The scan reads
each custody token account's signature history on chain (user accounts' and
system accounts'), newest first, down to the
last signature it finished with (its cursor, kept in the settlement store),
and takes the new ones oldest first. A history longer than one scan's page
bound is listed across several scans (a resume marker keeps where the
listing stopped), and nothing is taken until the cursor is reached, so the
cursor never moves past history not yet scanned. A transaction that has not reached the
configured commitment (DEALS_DEPOSIT_COMMITMENT, ``finalized`` by default)
stops the account's scan there, so nothing later is taken before it. In a
landed, successful transaction every SPL Token ``transfer`` or
``transfer_checked`` of the DEAL mint into the address, top-level or made by
a program inside one of its instructions (a CPI, read from the inner
instructions), from a token account the custody owner key does not own is
a deposit of its own, unless its source is one of the ledger's own custody
token accounts (any account the settlement store knows): the ledger's own
movements are settled by the settlement process, and one signed before an
owner rotation names the old owner, yet is no deposit, whoever owned its
source then. What the settler signed and sent is not even read, nor is a
transaction the ledger's fee payer paid for taken.

- into a user account's address, from a token account owned by a wallet
  connected to the account: credited (``CreditDeposit``: a ``deposit``
  movement from the external account, already settled by that transaction);
- from anyone else, refused by the ledger (a frozen account), or into a
  system account's address (users have none there): recorded as an
  ``unassigned_deposit`` finding, which an admin may assign or return.

Only then does the cursor move past it. The credit's id and the finding's
are derived from (signature, account, position of the instruction that made
the transfer; none for the transaction's first, the id deposits had before
positions were in it), so a crash between the two steps, a rescan from
nothing (a lost cursor) or two transfers read twice can only repeat what is
already recorded: nothing is ever credited twice. A credit made before
positions summed the transaction's top-level ``transfer_checked`` under the
first's id: a rescan that meets it takes those as taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from application import commands as c
from application.alerts import AlertKind, raise_alert
from application.errors import LedgerUnavailable
from application.outcomes import MovementRecorded
from application.retry import RetryPolicy, Sleep, retrying
from application.settlement import metrics
from application.settlement.chain_port import (
    ChainPort,
    ChainTransaction,
    ChainUnavailableError,
    SignatureStatus,
)
from application.settlement.fold import SettlementFold
from application.settlement.process import COMMITMENT_RANK, CommandSender, execute_internal
from domain.errors import LedgerError
from domain.reconciliation import UNASSIGNED_DEPOSIT
from domain.system import (
    CUSTODY_LESS_ACCOUNTS,
    DEPOSIT_FINDINGS_RUN_ID,
    SYSTEM_ACCOUNTS,
    deposit_finding_id,
    deposit_id,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEPOSIT_COMMITMENT_DEFAULT = "finalized"
SIGNATURES_PER_PAGE = 1000
FIRST_PAGE_SIGNATURES = 16
SIGNATURE_PAGES_PER_ACCOUNT_MAX = 100
"""A bound on one account's history listed per scan; the next scan goes on
paging down from where this one stopped (never past unscanned history)."""
STATUSES_PER_CALL = 256
OPEN_ALERT_NAMES_MAX = 100
"""Open deposits an alert looks at (and names, when new) after a scan."""
ACCOUNTS_PER_PAGE = 1000
_SYSTEM_IDS = frozenset(SYSTEM_ACCOUNTS.values())
_SYSTEM_RECEIVED = ("sent to a system account's custody address, where users have no deposit "
                    "address: assign it or return it")


@dataclass(frozen=True)
class DepositConfig:
    commitment: str = DEPOSIT_COMMITMENT_DEFAULT
    """A deposit is taken once its transaction reached this commitment."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    signatures_per_page: int = SIGNATURES_PER_PAGE
    pages_per_scan: int = SIGNATURE_PAGES_PER_ACCOUNT_MAX
    """The bound on one account's history listed per scan (pages of
    ``signatures_per_page``); the next scan goes on from where it stopped."""

    def __post_init__(self) -> None:
        if self.commitment not in COMMITMENT_RANK:
            raise ValueError(f"commitment must be one of {', '.join(COMMITMENT_RANK)}")
        if self.signatures_per_page < 1 or self.pages_per_scan < 1:
            raise ValueError("signatures_per_page and pages_per_scan must be at least 1")


@dataclass(frozen=True)
class Deposit:
    """One transfer a transaction made into one account's deposit address:
    ``amount`` in base units; ``owner`` None when the chain did not name
    the source's owner; ``position`` the instruction that made it, None for
    the transaction's first (see ``deposit_id``); ``summed`` whether a scan
    before positions took it (a top-level ``transfer_checked``: one credit
    summed them all under the first's id)."""

    account_id: UUID
    signature: str
    slot: int
    source: str
    owner: str | None
    amount: int
    position: str | None = None
    summed: bool = True


DepositHook = Callable[[Deposit], Awaitable[None] | None]


@dataclass
class DepositHooks:
    """Fault-injection points for tests (a hook that raises stops the scan
    exactly there, as a crash would)."""

    before_credit: DepositHook | None = None
    before_cursor: DepositHook | None = None
    """After the credit or the finding is recorded, before the cursor moves."""


@dataclass
class DepositScan:
    """What one scan did: accounts and new signatures looked at, deposits
    credited and deposits recorded as unassigned (repeats not counted)."""

    accounts: int = 0
    signatures: int = 0
    credited: int = 0
    unassigned: int = 0


class DepositScanner:
    def __init__(
        self, *, writer: CommandSender, fold: SettlementFold, chain: ChainPort,
        config: DepositConfig | None = None, hooks: DepositHooks | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.writer = writer
        self.fold = fold
        self.store = fold.store
        self.chain = chain
        self.config = config or DepositConfig()
        self.hooks = hooks or DepositHooks()
        self._sleep = sleep
        self._run_started = False
        self._custody_sources: frozenset[str] | None = None
        self._alerted: set[UUID] = set()
        """The open deposits the last alert (or scan) already knew."""

    async def scan(self) -> DepositScan:
        """Take every new deposit of every user account that has a deposit
        address on chain (one a settled movement created)."""
        self.fold.catch_up()
        self._custody_sources = None
        report = DepositScan()
        for account_id in self._accounts():
            report.accounts += 1
            await self._scan_account(account_id, report)
        self._alert_open()
        return report

    def _alert_open(self) -> None:
        """Alert ``unassigned_deposit`` when a deposit is open that was not
        at the last scan's alert: a new one, one a failed return reopened,
        or all of them once after a start. Open deposits are money in
        custody the ledger owes no one yet: an admin assigns or returns them."""
        self.fold.catch_up()
        open_now = self.store.open_findings(DEPOSIT_FINDINGS_RUN_ID, OPEN_ALERT_NAMES_MAX)
        ids = {row.finding_id for row in open_now}
        new = [row for row in open_now if row.finding_id not in self._alerted]
        self._alerted = ids
        if not new:
            return
        count = self.store.open_findings_count(DEPOSIT_FINDINGS_RUN_ID)
        raise_alert(
            AlertKind.UNASSIGNED_DEPOSIT,
            f"{count} unassigned deposit(s) open: assign or return them "
            "(GET /v1/reconciliations/deposits)",
            dedup_key=",".join(sorted(str(row.finding_id) for row in new)), open=count,
            findings=", ".join(str(row.finding_id) for row in new),
            accounts=", ".join(sorted({str(row.account_id) for row in new})),
        )

    # --- one account ---------------------------------------------------------

    async def _scan_account(self, account_id: UUID, report: DepositScan) -> None:
        marks = self.store.deposit_resume(account_id)
        signatures = await self._new_signatures(account_id, marks)
        if signatures is None:
            return  # the page bound stopped short of the cursor: the next scan goes on
        if await self._take_in_order(account_id, signatures, report) and marks:
            self.store.set_deposit_resume(account_id, marks[:-1])

    async def _take_in_order(self, account_id: UUID, signatures: list[str],
                             report: DepositScan) -> bool:
        """Take ``signatures`` (oldest first), moving the cursor past each;
        False when one not yet committed (or readable) stopped it there."""
        statuses = await self._statuses(signatures)
        ours = self.store.sent_signatures(signatures)  # a system account's are mostly these
        for signature in signatures:
            status = statuses.get(signature)
            if status is None or not self._committed(status):
                return False  # later ones wait for it: the cursor never passes it
            if status.error is None and signature not in ours:
                landed = await self._chain(
                    "getTransaction", partial(self.chain.transaction, signature))
                if landed is None:
                    return False  # listed, not yet readable at the adapter's commitment
                deposits = self._deposits(account_id, landed)
                if deposits:
                    await self._take_all(deposits, report)
                    await _hook(self.hooks.before_cursor, deposits[-1])
            report.signatures += 1
            self.store.set_deposit_cursor(account_id, signature)
        return True

    async def _new_signatures(self, account_id: UUID, marks: list[str]) -> list[str] | None:
        """Signatures newer than the cursor, oldest first: listed newest
        first from the top of the history, or from the newest-listed's
        oldest resume mark (``marks[-1]``), which then ends the list. None
        when the page bound stops the listing before the cursor (or the
        history's start): the oldest signature listed becomes a new mark and
        nothing is taken, since taking the newest would move the cursor past
        the unlisted ones below them for good. Each mark is dropped once
        everything up to it is taken; the next scan lists from the one
        above it (or the top), so a long history takes a scan per bound."""
        cursor = self.store.deposit_cursor(account_id)
        before = marks[-1] if marks else None
        found: list[str] = []
        for pages_listed in range(self.config.pages_per_scan):
            per_page = self._page_size(pages_listed)
            page = await self._chain("getSignaturesForAddress", partial(
                self.chain.signatures_for_account, account_id, before=before,
                limit=per_page))
            if cursor is not None and cursor in page:
                return (found + page[:page.index(cursor)])[::-1] + marks[-1:]
            found += page
            if len(page) < per_page:
                return found[::-1] + marks[-1:]
            before = page[-1]
        self.store.set_deposit_resume(account_id, [*marks, found[-1]])
        return None

    def _page_size(self, pages_listed: int) -> int:
        """Pages start small and double up to ``signatures_per_page``: the
        cursor is usually among the few newest signatures, and a full page
        of an active account's history on every scan (8,000 transactions
        read every 10 s for 8 busy accounts) grew the serving process's
        memory by about 100 KiB/s under the soak test."""
        return min(self.config.signatures_per_page, FIRST_PAGE_SIGNATURES << pages_listed)

    async def _statuses(self, signatures: list[str]) -> dict[str, SignatureStatus | None]:
        statuses: dict[str, SignatureStatus | None] = {}
        for start in range(0, len(signatures), STATUSES_PER_CALL):
            chunk = signatures[start:start + STATUSES_PER_CALL]
            statuses.update(await self._chain(
                "getSignatureStatuses", partial(self.chain.signature_statuses, chunk)))
        return statuses

    def _committed(self, status: SignatureStatus) -> bool:
        return COMMITMENT_RANK[status.confirmation] >= COMMITMENT_RANK[self.config.commitment]

    def _deposits(self, account_id: UUID, landed: ChainTransaction) -> list[Deposit]:
        """Each transfer of DEAL this transaction made into the account's
        deposit address (top-level or inside another program, ``transfer``
        or ``transfer_checked``) from a token account the ledger does not
        hold; none in a transaction the ledger's fee payer paid for (only
        the ledger makes it sign)."""
        if landed.fee_payer == self.chain.fee_payer_address:
            return []
        address = self.chain.token_account_address(account_id)
        transfers = [
            moved for moved in landed.token_transfers
            if moved.destination == address and moved.mint == self.chain.mint_address
            and moved.source_owner != self.chain.token_account_owner and moved.amount > 0
        ]
        transfers = [moved for moved in transfers if not self._is_custody(moved.source)]
        return [Deposit(
            account_id=account_id, signature=landed.signature, slot=landed.slot,
            source=moved.source, owner=moved.source_owner, amount=moved.amount,
            position=None if first else moved.position,
            summed=moved.inner is None and moved.checked,
        ) for first, moved in zip([True] + [False] * len(transfers), transfers, strict=False)]

    # --- recording -------------------------------------------------------------

    async def _take_all(self, deposits: list[Deposit], report: DepositScan) -> None:
        """Take each transfer as a deposit of its own. The first answered by
        an earlier credit of every ``summed`` transfer's sum was credited by
        a scan before positions were in ids, which summed them under the
        first's id: those are taken already."""
        first, *rest = deposits
        outcome = await self._take(first, report)
        summed = [deposit.amount for deposit in deposits if deposit.summed]
        if (outcome is not None and outcome.replayed and len(summed) > 1
                and outcome.amount == sum(summed) != first.amount):
            rest = [deposit for deposit in rest if not deposit.summed]
        for deposit in rest:
            await self._take(deposit, report)

    async def _take(self, deposit: Deposit, report: DepositScan) -> MovementRecorded | None:
        """Credit one deposit, or record it as unassigned (None): always when
        a system account received it (users have no deposit address there)."""
        await _hook(self.hooks.before_credit, deposit)
        if deposit.account_id in _SYSTEM_IDS:
            await self._record_unassigned(deposit, _SYSTEM_RECEIVED, report)
            return None
        command = c.CreditDeposit(
            deposit_id=deposit_id(deposit.signature, deposit.account_id, deposit.position),
            account_id=deposit.account_id, amount=deposit.amount, signature=deposit.signature,
            slot=deposit.slot, source=deposit.source, owner=deposit.owner,
            position=deposit.position,
        )
        try:
            outcome: MovementRecorded = await self._execute(command)
        except LedgerUnavailable:
            raise
        except LedgerError as refusal:
            await self._record_unassigned(deposit, refusal.message, report)
            return None
        if not outcome.replayed:
            report.credited += 1
            metrics.DEPOSITS_CREDITED.inc()
            logger.info("deposit %s credited to %s", deposit.signature, deposit.account_id)
        return outcome

    async def _record_unassigned(self, deposit: Deposit, why: str, report: DepositScan) -> None:
        if not self._run_started:
            await self._execute(c.StartReconciliation(DEPOSIT_FINDINGS_RUN_ID))
            self._run_started = True
        signature, account_id, position = deposit.signature, deposit.account_id, deposit.position
        spec = c.FindingSpec(
            finding_id=deposit_finding_id(signature, account_id, position),
            transfer_id=deposit_id(signature, account_id, position),
            kind=UNASSIGNED_DEPOSIT, account_id=deposit.account_id,
            signature=deposit.signature, actual=deposit.amount,
            detail=f"not credited: {why}", source=deposit.source,
            source_owner=deposit.owner, slot=deposit.slot,
        )
        step = await self._execute(c.RecordFindings(DEPOSIT_FINDINGS_RUN_ID, (spec,)))
        if step.findings_recorded:
            report.unassigned += 1
            metrics.DEPOSITS_UNASSIGNED.inc()
            logger.warning("deposit %s into %s not credited: %s", deposit.signature,
                           deposit.account_id, why)

    # --- helpers ---------------------------------------------------------------

    def _is_custody(self, source: str) -> bool:
        """Whether ``source`` is one of the ledger's custody token accounts:
        only a custody owner key, current or rotated away, ever signed a
        transfer out of one, so it is the ledger's own movement. The set is
        derived once a scan, and only when a transfer needs it."""
        if self._custody_sources is None:
            self._custody_sources = frozenset(
                self.chain.token_account_address(account) for account in self._ledger_accounts())
        return source in self._custody_sources

    def _accounts(self) -> Iterator[UUID]:
        """Accounts with a custody token account on chain: every account a
        settled movement touched (the settlement store's balances), system
        ones too (what is sent to them is a finding, never a credit)."""
        return (account for account in self._ledger_accounts()
                if account not in CUSTODY_LESS_ACCOUNTS)

    def _ledger_accounts(self) -> Iterator[UUID]:
        """Every account with a custody token account (system ones too)."""
        after = ""
        while True:
            page = self.store.balances_page(after, ACCOUNTS_PER_PAGE)
            yield from (account for account, _ in page)
            if len(page) < ACCOUNTS_PER_PAGE:
                return
            after = page[-1][0].hex

    async def _execute(self, command: c.Command) -> Any:
        return await execute_internal(self.writer, command, self.config.retry, self._sleep)

    async def _chain(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(call, retry_on=(ChainUnavailableError,), policy=self.config.retry,
                              what=operation, sleep=self._sleep)


async def _hook(hook: DepositHook | None, deposit: Deposit) -> None:
    if hook is None:
        return
    result = hook(deposit)
    if asyncio.iscoroutine(result):
        await result
