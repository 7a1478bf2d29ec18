"""Restores and failovers never pay twice: before it sends, the settler asks
the chain what the log may have forgotten.

The write-ahead record (``process``) keeps a movement from moving twice as
long as the log keeps every record it made. A restored backup, or a
PostgreSQL failover to a replica that had not received the last commits,
takes records back: a movement that landed after the backup is ``queued``
again in the log (or in flight as a submission long expired), and signing
it again would execute it twice. So before the first send after a start,
and after any gap the settler cannot account for, this module reads the fee
payer's signature history (it pays for every transaction the ledger sends;
the history also lists any stranger's transaction that merely names it, a
lamport sent to it with a ``deal:<id>`` memo, so only the transactions it
paid for count, here and when acknowledged), and that of every earlier or
later fee payer the restored log or the chain links it to (a fee-payer
rotation between the backup and the restore: ``ChainLookup._unrecorded``),
newest first, down to the newest signature whose landing the log has
recorded (settled, failed or rejected:
an outcome is recorded only after its transaction landed, and anything
that landed before it was recorded before that, so a log that kept the one
kept the others). Each successful transaction in between whose memo names
movements (``deal:<id>,...``) and that the log does not know as in flight:

- its movements the log has waiting (queued, or in flight as another
  signature, which never landed) are recorded as settled by it, through the
  ordinary steps: ``RecordSubmission`` (no bytes: nothing to send) then
  ``MarkSettled`` with its slot;
- a movement the log does not know (recorded after the backup), that
  the log says settled by another signature, failed or awaits a capture,
  or that the log has waiting with another body than what landed moved
  (another source, destination, withdrawal wallet or amount: a client
  sent a lost command again differently; ``legs``), means the chain is
  ahead of the log: an alert names them and settlement
  stops (``ChainAheadOfLog``, shown by ``/ready``), nothing is sent, until
  an operator acknowledges each such signature (``DEALS_SETTLEMENT_
  ACKNOWLEDGED``, docs/operations.md) after reconciling what it moved.

Only what has landed can be seen, and a transaction sent before the loss
(whose record the restored log lost) may land until its blockhash expires
(150 blocks, about a minute on a real cluster), by then sent by anyone who
kept it: a leader, a forwarding node, the settler that died. So before the
lookup, the settler reads the last valid block height of the newest
blockhash (``ChainPort.blockhash_expiry_height``: every transaction signed
until now, by anyone, expires by then) and sends nothing, resends nothing
and looks nothing up until the chain's block height passes it
(``BlockhashWait``, shown by ``/ready``, logged and a gauge); the lookup
then sees every transaction of the lost timeline that can ever land. The
embedded chain needs no wait (None): it executes a transaction before
``send`` returns and lives and dies with its settler's process.

"A gap the settler cannot account for": the settlement store's position
(committed with the log on PostgreSQL, folded from it on SQLite) is lower
than one this settler saw (the store was restored or failed over under
it), or the store was folded again from the log since this settler looked
(found of a timeline the log lost, by any process's fold). A start is a
gap: every new ``SettlementProcess`` (a process start, a lease taken over, a
settler starting again after a failure) looks before it sends.

Before each lookup the store is checked against the log's timeline
(``_align_store``): a store past the log's head, or folded from another
event at its position than the log holds (the log restored alone and
written to before the lookup, as during the blockhash wait, which takes
commands), is folded again from the log with the deposit scan's cursors,
so the lookup walks the log's own record of what landed (a kept store
would vouch for landings the log lost) and lost deposits are found again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from application import commands as c
from application.alerts import AlertKind, raise_alert
from application.settlement import metrics
from application.settlement.chain_port import (
    FEE_PAYER_ROTATION_MEMO,
    ChainPort,
    ChainTransaction,
)
from application.settlement.fold import SettlementFold
from application.settlement.legs import decidable, disagreement
from application.settlement.store import (
    FAILED,
    QUEUED,
    REJECTED,
    SETTLED,
    SUBMITTED,
    Movement,
    Submission,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

SIGNATURES_PER_PAGE = 1000
HISTORY_PAGES_MAX = 100_000
LANDED_OUTCOMES = frozenset({SETTLED, FAILED, REJECTED})
"""Submission statuses recorded only after their transaction was seen on
chain (``rejected``: landed failed; a preflight refusal never lands, so it
is never in the history)."""
NAMED_IN_MESSAGE_MAX = 5
UNDECIDABLE = ("what it moved for each cannot be told: it carries one transfer for several "
               "movements (netted) or mints or burns, and names movements the log lost")
"""Why a waiting movement is not settled by such a transaction unless an
operator acknowledged it (then it is taken on the acknowledgement)."""

ChainCall = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
Execute = Callable[[c.Command], Awaitable[Any]]


class ChainAheadOfLog(Exception):
    """Landed transactions of this ledger name movements the log cannot
    account for; settlement sends nothing until an operator resolves it.
    ``ahead``: those transactions, oldest first."""

    def __init__(self, message: str, ahead: tuple[Unaccounted, ...]) -> None:
        super().__init__(message)
        self.ahead = ahead


@dataclass(frozen=True)
class Unaccounted:
    """A landed transaction of ours and the movements in its memo the log
    cannot account for, each with why."""

    signature: str
    slot: int
    problems: tuple[tuple[UUID, str], ...]

    def describe(self) -> str:
        named = ", ".join(f"{transfer_id} {why}" for transfer_id, why in self.problems)
        return f"{self.signature} (slot {self.slot}: {named})"


@dataclass(frozen=True)
class BlockhashWait:
    """Settlement sends nothing until the chain's block height passes
    ``until_height`` (None: the chain needs no wait); ``block_height``: the
    last read (None before the first)."""

    until_height: int | None
    block_height: int | None

    @property
    def passed(self) -> bool:
        return (self.until_height is None or self.block_height is not None
                and self.block_height > self.until_height)

    @property
    def waiting(self) -> bool:
        return not self.passed


class ChainLookup:
    """What the chain holds that the log does not, looked up when due."""

    def __init__(self, *, fold: SettlementFold, chain: ChainPort, chain_call: ChainCall,
                 execute: Execute, acknowledged: frozenset[str] = frozenset()) -> None:
        self.fold = fold
        self.store = fold.store
        self.chain = chain
        self._chain_call = chain_call
        self._execute = execute
        self.acknowledged = acknowledged
        """Signatures an operator has resolved: never a reason to stop (what
        the log has waiting of them is still settled by them)."""
        self._looked = False
        self._due = False
        """A lookup is due (a start or a gap), not done yet."""
        self.wait: BlockhashWait | None = None
        """The blockhash expiry the due lookup waits for (``/ready``)."""
        self._seen_position = 0
        self._seen_rebuilds: int | None = None
        """The store's count of lost-timeline rebuilds when this settler
        looked (``STORE_REBUILDS_META``): another means a gap."""
        self._payers: set[str] = set()
        """Every fee payer of the ledger the last lookup found linked to the
        current one (``_unrecorded``): what they paid for is ours."""
        self._watched: dict[UUID, ChainTransaction] = {}
        """The movements acknowledged transactions carried: should the log
        come to have one waiting (a client sending a lost command again
        under its id), it is recorded as settled by that transaction."""

    async def before_sending(self) -> bool:
        """Look the chain up when a gap makes it due (the first call is
        one), once every earlier blockhash expired; False while waiting for
        that (nothing may be sent), ``ChainAheadOfLog`` while the chain is
        ahead of the log."""
        position, rebuilds = self.store.position_and_rebuilds()
        why = self._gap(position, rebuilds)
        self._seen_position = max(self._seen_position, position)
        if why is not None:
            logger.info("settlement looks the chain up before sending: %s", why)
            self._due, self.wait = True, None
        if not self._due:
            await self._settle_watched()
            return True
        if not await self._blockhashes_expired():
            return False
        self._align_store()
        await self.look_up()
        self._looked, self._due = True, False
        self._seen_position, self._seen_rebuilds = self.store.position_and_rebuilds()
        return True

    async def _blockhashes_expired(self) -> bool:
        """Whether the chain passed the expiry height read when the lookup
        became due (read then; the first read of a wait logs it)."""
        if self.wait is None:
            until = await self._chain_call("getLatestBlockhash",
                                           self.chain.blockhash_expiry_height)
            self.wait = BlockhashWait(until, None)
            if until is None:
                return True
            metrics.BLOCKHASH_WAITS.inc()
            metrics.BLOCKHASH_WAIT_HEIGHT.set(until)
        if self.wait.until_height is None or self.wait.passed:
            return True
        height = await self._chain_call("getBlockHeight", self.chain.block_height)
        first = self.wait.block_height is None
        self.wait = BlockhashWait(self.wait.until_height, height)
        if self.wait.passed:
            metrics.BLOCKHASH_WAIT_HEIGHT.set(0)
            logger.info("every earlier blockhash expired (block height %d > %d): settlement "
                        "looks the chain up", height, self.wait.until_height)
            return True
        if first:
            logger.warning("settlement waits for blockhash expiry: nothing is sent until block "
                           "height passes %d (now %d), so that any transaction sent before "
                           "this start has landed, for the lookup to see, or never will",
                           self.wait.until_height, height)
        return False

    def _gap(self, position: int, rebuilds: int) -> str | None:
        if self._due:
            return None
        if not self._looked:
            return "a start"
        if position < self._seen_position:
            metrics.SETTLEMENT_GAPS.inc()
            return (f"the settlement store went back from log position {self._seen_position} "
                    f"to {position} (a restore or a failover)")
        if rebuilds != self._seen_rebuilds:
            metrics.SETTLEMENT_GAPS.inc()
            return "the settlement store was folded again from the log (of a lost timeline)"
        return None

    def _align_store(self) -> None:
        """Re-read the store's position, which checks the store against the
        log's timeline: one past the log's head or folded from another event
        at its position is folded again from the log, deposit cursors
        included (``SettlementFold.tracked_position`` says why that is
        safe: this lookup then checks it against the chain); then catch up."""
        self.fold.forget_position()
        self.fold.catch_up()

    async def look_up(self) -> list[Unaccounted]:
        """Record what landed unrecorded; raise if the chain is ahead."""
        unrecorded = await self._unrecorded()
        await self._look_up_acknowledged()
        ahead: list[Unaccounted] = []
        for landed in unrecorded:
            if not self._ours(landed):
                continue  # not a movement of ours, or it moved nothing
            problems = await self._record_landed(landed, acknowledged=False) or ()
            if problems:
                ahead.append(Unaccounted(landed.signature, landed.slot, problems))
        self.fold.catch_up()
        if ahead:
            self._stop(ahead)
        return ahead

    async def _look_up_acknowledged(self) -> None:
        """Each acknowledged transaction settles what the log has waiting
        of it, and is watched from now on; it stops nothing."""
        self._watched = {}
        for signature in sorted(self.acknowledged):
            landed = await self._chain_call(
                "getTransaction", _transaction_call(self.chain, signature))
            if landed is None or not self._ours(landed):
                if landed is not None:
                    logger.warning("acknowledged %s was not paid by a fee payer of this "
                                   "ledger or failed: it settles nothing", signature)
                continue
            await self._record_landed(landed, acknowledged=True)
            self._watched.update(dict.fromkeys(landed.memo_transfer_ids, landed))

    def _ours(self, landed: ChainTransaction | None) -> bool:
        """A successful movement transaction a fee payer of the ledger paid
        (the current one, or one the lookup found linked to it,
        ``_unrecorded``): anyone can name a fee payer and write
        ``deal:<id>`` in a memo, and such a transaction must neither settle
        a movement that never moved nor stop settlement."""
        return (landed is not None and landed.error is None and bool(landed.memo_transfer_ids)
                and (landed.fee_payer == self.chain.fee_payer_address
                     or landed.fee_payer in self._payers))

    async def _settle_watched(self) -> None:
        """A watched movement the log has waiting is settled, never sent."""
        if self._watched:
            await self.settle_watched(self.store.movements(list(self._watched)).values())

    async def settle_watched(self, movements: Iterable[Movement]) -> bool:
        """Settle by their acknowledged transactions those of ``movements``
        (about to be signed) that are watched and waiting; True if any were.
        Asked again of what the settler is about to sign: a client's retry
        may be committed after ``before_sending`` looked (the writer commits
        settlement rows with the log), and must not be sent all the same."""
        by_landed: dict[str, ChainTransaction] = {}
        for movement in movements:
            landed = self._watched.get(movement.transfer_id)
            if landed is not None and movement.status in (QUEUED, SUBMITTED):
                by_landed[landed.signature] = landed
        settled = False
        for landed in by_landed.values():
            settled = await self._record_landed(landed, acknowledged=True) is not None or settled
        if settled:
            self.fold.catch_up()
        return settled

    async def _unrecorded(self) -> list[ChainTransaction]:
        """The landed transactions of every fee payer the ledger had that
        the log does not know (``_unrecorded_signatures``), oldest first.
        The current fee payer's history is read, and that of the one that
        paid the newest landing the log recorded (``_logged_payer``); a
        fee-payer rotation's link (``FEE_PAYER_ROTATION_MEMO``, signed by
        the old and the new fee payer) among what it lists names another
        fee payer of the
        ledger, whose history is read the same way, and so on: a log
        restored from before a rotation (or a key file restored from before
        it) knows no signature of the other fee payer, so its link is
        always among them, and whatever either paid for is seen. A log that
        knows the current fee payer's newest landings lists no link (older
        than them) and reads one history, as before any rotation."""
        to_read = list(dict.fromkeys([self.chain.fee_payer_address, *self._logged_payer()]))
        self._payers = set(to_read)
        found: dict[str, ChainTransaction] = {}
        while to_read:
            payer = to_read.pop()
            for signature in await self._unrecorded_signatures(payer):
                landed = found.get(signature) or await self._chain_call(
                    "getTransaction", _transaction_call(self.chain, signature))
                if landed is None:
                    continue
                found[signature] = landed
                linked = set(_linked_payers(landed, payer)) - self._payers
                self._payers |= linked
                to_read += sorted(linked)
        return sorted(found.values(), key=lambda landed: landed.slot)

    def _logged_payer(self) -> tuple[str, ...]:
        """The fee payer of the newest landing the log recorded of a
        transaction the settler signed: the ledger's, whether or not it is
        the current one (a rotation since the backup that left no link: one
        made before rotations landed links, or the setting pointed at a new
        key without the command)."""
        newest = self.store.newest_landed_sent()
        if newest is None or newest.transaction is None:
            return ()
        return (self.chain.fee_payer_of(newest.transaction),)

    async def _unrecorded_signatures(self, payer: str) -> list[str]:
        """``payer``'s signatures newer than the newest one whose landing
        the settler recorded (``_vouches_for_older``) that the log does not
        know at all (one it knows is in flight, resolved by the ordinary
        step, or has its outcome) and no operator acknowledged; oldest
        first."""
        found: list[str] = []
        before: str | None = None
        for _ in range(HISTORY_PAGES_MAX):
            page: list[str] = await self._chain_call(
                "getSignaturesForAddress", _page_call(self.chain, payer, before))
            known = self.store.submissions(page)
            for signature in page:
                submission = known.get(signature)
                if submission is not None and _vouches_for_older(submission):
                    return found[::-1]
                if submission is None and signature not in self.acknowledged:
                    found.append(signature)
            if len(page) < SIGNATURES_PER_PAGE:
                break
            before = page[-1]
        return found[::-1]

    async def _record_landed(self, landed: ChainTransaction, *, acknowledged: bool
                             ) -> tuple[tuple[UUID, str], ...] | None:
        """Settle by ``landed`` what the log still waits to send; the
        movements it cannot account for, with why. One the log has waiting
        that ``landed`` did not move as the log says (another source,
        destination, wallet or amount: ``legs.disagreement``; a client sent
        a lost command again with another body) is never recorded settled
        by it: unless an operator ``acknowledged`` it, the chain is ahead
        of the log (it is named); acknowledged, it is sent as a new movement
        (None: settled nothing)."""
        movements = self.store.movements(landed.memo_transfer_ids)
        waiting: dict[str | None, list[UUID]] = {}
        problems: list[tuple[UUID, str]] = []
        for transfer_id in landed.memo_transfer_ids:
            movement = movements.get(transfer_id)
            why = _unaccountable(movement, landed.signature)
            if why is not None:
                problems.append((transfer_id, why))
            elif movement is not None and movement.status in (QUEUED, SUBMITTED):
                waiting.setdefault(movement.signature, []).append(transfer_id)
        if waiting:
            named = [movements[t] for t in landed.memo_transfer_ids if t in movements]
            all_named = len(named) == len(landed.memo_transfer_ids)
            why = disagreement(landed, named, self.chain, all_named=all_named)
            if why is None and not acknowledged and not decidable(landed, all_named=all_named):
                why = UNDECIDABLE
            if why is not None and acknowledged:
                self._disown(landed, waiting, why)
                return None
            if why is not None:
                return (*problems, *((transfer_id, f"is in the log with another body ({why})")
                                     for ids in waiting.values() for transfer_id in ids))
            await self._settle(landed, waiting)
        return tuple(problems)

    def _disown(self, landed: ChainTransaction, waiting: dict[str | None, list[UUID]],
                why: str) -> None:
        """The log's movements under the ids ``landed`` names are not what
        it moved (a client sent a lost command again with another body):
        they are signed as new movements, and ``landed`` stays what
        reconciliation finds it (a balance finding an admin adjusts)."""
        disowned = [transfer_id for ids in waiting.values() for transfer_id in ids]
        for transfer_id in disowned:
            self._watched.pop(transfer_id, None)
        metrics.LANDED_DISAGREES.inc(len(disowned))
        logger.warning("%s names %s but %s: not recorded as their settlement; they are sent "
                       "as new movements", landed.signature, ", ".join(map(str, disowned)), why)

    async def _settle(self, landed: ChainTransaction,
                      waiting: dict[str | None, list[UUID]]) -> None:
        """Record ``landed`` as their submission (superseding the one in
        force, which never landed) and its landing, as the process would."""
        height = await self._chain_call("getBlockHeight", self.chain.block_height)
        for supersedes, transfer_ids in waiting.items():
            await self._execute(c.RecordSubmission(
                signature=landed.signature, last_valid_block_height=height, transaction=None,
                transfer_ids=tuple(transfer_ids), supersedes=supersedes))
        settled = tuple(transfer_id for ids in waiting.values() for transfer_id in ids)
        await self._execute(c.MarkSettled(landed.signature, landed.slot, settled))
        metrics.FOUND_ON_CHAIN.inc(len(settled))
        logger.warning("found on chain, not in the log: %s settled %s (slot %d); recorded, "
                       "not sent again", landed.signature,
                       ", ".join(map(str, settled)), landed.slot)

    def _stop(self, ahead: list[Unaccounted]) -> None:
        named = "; ".join(item.describe() for item in ahead[:NAMED_IN_MESSAGE_MAX])
        more = len(ahead) - NAMED_IN_MESSAGE_MAX
        if more > 0:
            named += f"; and {more} more"
        signatures = ",".join(item.signature for item in ahead)
        raise_alert(
            AlertKind.CHAIN_AHEAD_OF_LOG,
            "landed transactions of this ledger name movements the log cannot account for; "
            "settlement stopped", dedup_key=signatures, signatures=signatures, detail=named,
        )
        raise ChainAheadOfLog(
            f"the chain is ahead of the log: {len(ahead)} landed transaction(s) of this "
            f"ledger's fee payer: {named}; nothing is sent until an operator reconciles them "
            "and lists their signatures in DEALS_SETTLEMENT_ACKNOWLEDGED "
            "(docs/operations.md, Restores and failovers)", tuple(ahead),
        )


def _vouches_for_older(submission: Submission) -> bool:
    """A submission the settler recorded (its bytes kept) and then saw land:
    the log that kept its outcome kept every record older than its landing.
    One recorded from the chain (no bytes: found by this lookup, or the
    genesis mint) vouches for nothing older, nor does one still in flight."""
    return submission.status in LANDED_OUTCOMES and submission.transaction is not None


def _unaccountable(movement: Movement | None, signature: str) -> str | None:
    """Why the log cannot account for ``movement`` having landed in
    ``signature``; None when it can (settled by it) or may (waiting)."""
    if movement is None:
        return "unknown to the log"
    if movement.status == SETTLED and movement.signature != signature:
        return f"settled in the log by {movement.signature}"
    if movement.status in (QUEUED, SUBMITTED, SETTLED):
        return None
    return f"{movement.status} in the log"


def _linked_payers(landed: ChainTransaction, payer: str) -> tuple[str, ...]:
    """The other fee payers a rotation's link names, when ``landed`` is one
    that ``payer`` (a fee payer of the ledger) signed: only the ledger
    makes its keys sign, so every signer of it is the ledger's; a
    stranger's copy of the memo lacks that signature and names nobody."""
    if (landed.error is not None or FEE_PAYER_ROTATION_MEMO not in landed.memos
            or payer not in landed.signers):
        return ()
    return tuple(signer for signer in landed.signers if signer != payer)


def _page_call(chain: ChainPort, payer: str, before: str | None
               ) -> Callable[[], Awaitable[list[str]]]:
    return lambda: chain.fee_payer_signatures(payer=payer, before=before,
                                              limit=SIGNATURES_PER_PAGE)


def _transaction_call(chain: ChainPort, signature: str
                      ) -> Callable[[], Awaitable[ChainTransaction | None]]:
    return lambda: chain.transaction(signature)
