"""The settlement process manager: mirrors every ledger movement on chain.

It follows the event log through ``SettlementFold`` (its own tracking
position, so it resumes where it stopped) and works in rounds of up to
``in_flight_max`` transactions on pairwise disjoint accounts, oldest
movements first; a movement is passed over (left for a later round) only
with every later movement on any of its accounts, which keeps each
account's on-chain history in the order of the ledger's: a balance on chain
never goes negative on the way.

One step:

1. If a submission is in flight (recorded, not resolved), resolve it: send
   the very bytes recorded (idempotent: same signature), then poll its
   status. Landed and confirmed at the configured commitment -> settled
   (with its slot). Refused by the chain -> if it carries several
   movements (rare: the chain adapter signs apart a movement its
   simulation refuses), each goes back to the queue to be signed alone (a rejected
   transaction is never sent again, so nothing moves twice); a movement that
   fails alone is failed and compensated by the ledger in the same save.
   Not found after its blockhash expired (block height past its last valid
   height) -> it can never land: sign the same movements again and record
   the new submission, superseding the old one, before sending it.
2. Else offer the oldest movements waiting (up to the most one
   transaction can carry) to the chain, which signs as many of them, in
   order, as fit its real size; record the submission (write-ahead: signature, last
   valid block height and the signed bytes, in one atomic save on the
   transfers), and only then send; then resolve it as above. While every
   transaction of a round is confirmed, the step goes on with the next
   round (up to ``rounds_per_step_max``), whose records carry the last
   round's confirmations in the same group commit.

A crash anywhere leaves either nothing recorded (the next step signs again)
or a recorded submission (the next step resends or supersedes it), so no
movement is settled twice or lost. Every record is a compare-and-set on the
transfer's submission in force, so even two settlers (a lost lease) cannot
both put a movement on chain.

Chain errors that are about the node (timeouts, RPC errors) are retried with
backoff and jitter, bounded per call; a refusal only fails a movement when
the chain names an instruction error, never for the fee payer's or the
node's troubles. Nothing new is signed while the fee payer cannot pay for
one more transaction (``fee_payer``: the step raises, settlement pauses,
what is in flight is still resolved).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from application import commands as c
from application.alerts import AlertKind, raise_alert
from application.authority import SETTLER, Authority
from application.errors import LedgerUnavailable
from application.outcomes import SettlementStep
from application.retry import RetryPolicy, Sleep, retrying
from application.settlement import metrics
from application.settlement.chain_lookup import ChainLookup
from application.settlement.chain_port import (
    ChainError,
    ChainMovement,
    ChainPort,
    ChainRejectedError,
    ChainUnavailableError,
    CustodyAccountUnsafeError,
    FeePayerRefusedError,
    SignatureStatus,
    SignedSubmission,
)
from application.settlement.fee_payer import (
    MIN_LAMPORTS_DEFAULT,
    FeePayerWatch,
    rotated_fee_payer_problem,
)
from application.settlement.fold import SettlementFold
from application.settlement.store import OWNER_ROTATION_META, Movement, Submission
from application.settlement.wallet_accounts import (
    CREATIONS_MAX_DEFAULT,
    created_wallet_accounts,
    failure_reason,
)
from domain.amounts import INITIAL_SUPPLY
from domain.errors import SettlementConflict
from domain.system import CUSTODY_LESS_ACCOUNTS, GENESIS_MINT_ID, ISSUANCE_ID, TREASURY_ID

logger = logging.getLogger(__name__)
T = TypeVar("T")

COMMITMENT_RANK = {"processed": 0, "confirmed": 1, "finalized": 2}
GENESIS_MEMO = f"deal-genesis:{TREASURY_ID}"
GENESIS_SEARCH_PAGES_MAX = 10_000
SIGNATURES_PER_PAGE_MAX = 1000
INSTRUCTION_ERROR_PREFIX = '{"InstructionError"'
SLOT_S = 0.4
"""A real cluster's block time, about: what a wait for blocks sleeps per block."""
BLOCKHASH_WAIT_S_MAX = 5.0
QUEUE_WINDOW_ROUNDS = 2
"""A round chooses among this many rounds' worth of the oldest movements
waiting, so movements it passes over (their accounts busy in the round)
leave room for later ones (``_next_batch``)."""
EXPIRY_CONFIRMATIONS = 2
"""Polls that must find a submission unknown past its last valid block
height before it is signed again: one lagging answer (a node behind a load
balancer that has not seen the transaction yet) must not cause a second
signature for movements that already landed."""


class SettlementError(Exception):
    """Settlement could not go on for now (logged; the step is retried)."""


async def run_until_idle(step: Callable[[], Awaitable[bool]], steps_max: int, what: str) -> int:
    """Await ``step`` until it finds nothing to do (it answers False); the
    steps done. Still busy after ``steps_max``: ``SettlementError`` naming
    ``what`` (a loop that never idles is a bug, or work without end)."""
    for done in range(steps_max):
        if not await step():
            return done
    raise SettlementError(f"{what} still busy after {steps_max} steps")


class CommandSender(Protocol):
    """The command writer as settlement uses it."""

    def send(self, command: c.Command, *, authority: Authority) -> Future: ...


async def execute_internal(
    writer: CommandSender, command: c.Command, policy: RetryPolicy, sleep: Sleep
) -> Any:
    """A settlement or reconciliation step, through the command writer (never
    around it), as the ledger itself; the store being briefly unavailable is
    retried, any other refusal is raised."""

    async def attempt() -> Any:
        # shielded: a cancelled settler leaves the command to finish on its
        # own (its outcome is in the log either way)
        sent = writer.send(command, authority=SETTLER)
        return await asyncio.shield(asyncio.wrap_future(sent))

    return await retrying(attempt, retry_on=(LedgerUnavailable,), policy=policy,
                          what=command.kind, sleep=sleep)


@dataclass(frozen=True)
class SettlementConfig:
    commitment: str = "confirmed"
    batch_movements: int | None = None
    """Movements offered to one transaction; None = as many as can ever fit
    (the chain packs as many of them as the transaction's real size allows)."""
    in_flight_max: int = 4
    """Transactions signed, recorded (one group commit), sent and confirmed
    together, on pairwise disjoint accounts so each account's history on
    chain keeps the ledger's order; 1: one at a time."""
    rounds_per_step_max: int = 8
    """Rounds one step may chain while every transaction of the last was
    confirmed: a round's confirmations are recorded in the same group
    commit as the next round's write-ahead records, and folded with them
    in one page (``_submit_rounds``)."""
    poll_interval_s: float = 0.4
    netting_window_s: float | None = None
    """None: netting off. Else transfers of one transaction between the same
    two token accounts settle as one transfer of their sum (``interface.
    chain.netting``), and the settler waits until the oldest waiting
    movement has waited this long (or a transaction's worth waits) before
    it signs, so that more can join."""
    polls_per_step_max: int = 300
    """Bound on one step's polling of a submission; the next step goes on."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    acknowledged: frozenset[str] = frozenset()
    """Landed signatures an operator resolved: the chain being ahead of the
    log by these stops nothing (``chain_lookup``)."""
    fee_payer_min_lamports: int = MIN_LAMPORTS_DEFAULT
    """Below this the fee payer's SOL alerts (``fee_payer``)."""
    wallet_account_creations_max: int = CREATIONS_MAX_DEFAULT
    """Wallets per ledger account whose associated token account a
    withdrawal creates, the fee payer paying (``wallet_accounts``)."""

    def __post_init__(self) -> None:
        if self.commitment not in COMMITMENT_RANK:
            raise ValueError(f"commitment must be one of {', '.join(COMMITMENT_RANK)}")
        if self.batch_movements is not None and self.batch_movements < 1:
            raise ValueError("batch_movements must be at least 1")
        if self.in_flight_max < 1:
            raise ValueError("in_flight_max must be at least 1")
        if self.wallet_account_creations_max < 0:
            raise ValueError("wallet_account_creations_max must be at least 0")
        if self.netting_window_s is not None and not 0 <= self.netting_window_s < math.inf:
            raise ValueError("netting_window_s must be a finite number of seconds >= 0")
        if self.rounds_per_step_max < 1:
            raise ValueError("rounds_per_step_max must be at least 1")
        if self.poll_interval_s < 0 or self.polls_per_step_max < 1:
            raise ValueError("poll_interval_s >= 0 and polls_per_step_max >= 1")


Hook = Callable[[SignedSubmission], Awaitable[None] | None]
"""A test's or a benchmark's call at a named point of a write-ahead step
(before recording, before sending, ...): it may crash there on purpose."""


async def run_hook(hook: Hook | None, signed: SignedSubmission | None) -> None:
    """Call ``hook`` with what was signed, awaiting it if it is a coroutine."""
    if hook is None or signed is None:
        return
    result = hook(signed)
    if asyncio.iscoroutine(result):
        await result


@dataclass
class SettlementHooks:
    """Fault-injection points for tests (a hook that raises stops the step
    exactly there, as a crash would)."""

    before_record: Hook | None = None
    before_send: Hook | None = None
    after_send: Hook | None = None
    before_confirm: Hook | None = None


def is_movement_error(reason: str) -> bool:
    """An instruction failed: the movement itself cannot happen (frozen
    account, insufficient funds...). Anything else (blockhash, fee payer,
    account in use) is the transaction's or the node's trouble."""
    return reason.startswith(INSTRUCTION_ERROR_PREFIX)


def chain_movement(movement: Movement, *, creates_wallet_account: bool = True) -> ChainMovement:
    """The issuance account is the mint's side: a movement from it is a
    ``mint_to``, one to it a ``burn``. A withdrawal goes to its wallet's
    associated token account (the external account has no token account),
    created by the transaction when ``creates_wallet_account``; a deposit
    return to the token account the deposit came from, created never."""
    returned_to = movement.token_account
    return ChainMovement(
        transfer_id=movement.transfer_id,
        source=None if movement.source == ISSUANCE_ID else movement.source,
        destination=None if movement.destination in CUSTODY_LESS_ACCOUNTS
        else movement.destination,
        amount=movement.amount,
        destination_wallet=movement.address if returned_to is None else None,
        creates_wallet_account=creates_wallet_account and returned_to is None,
        destination_token_account=returned_to,
    )


class SettlementProcess:
    def __init__(
        self,
        *,
        writer: CommandSender,
        fold: SettlementFold,
        chain: ChainPort,
        config: SettlementConfig | None = None,
        hooks: SettlementHooks | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        chain_wait: Sleep = asyncio.sleep,
    ) -> None:
        """``clock``: seconds, for the netting window (tests pass their own).
        ``chain_wait``: how ``run_until_idle`` lets seconds of the chain's
        blocks go by while the lookup waits for blockhash expiry (a test's
        chain, whose blocks stand still, moves on instead)."""
        self.writer = writer
        self.fold = fold
        self.store = fold.store
        self.chain = chain
        self.config = config or SettlementConfig()
        self.hooks = hooks or SettlementHooks()
        self._sleep = sleep
        # The chain's best case (16 movements between existing accounts, 23 netted) may
        # exceed what one settlement command names: a step offered more could
        # never be recorded, and the queue's head would stall for good.
        self.net = self.config.netting_window_s is not None
        chain_limit = (chain.netted_movements_per_transaction_max if self.net
                       else chain.movements_per_transaction_max)
        limit = min(chain_limit, c.SETTLEMENT_TRANSFERS_MAX)
        self.batch_movements = min(self.config.batch_movements or limit, limit)
        self.lookup = ChainLookup(fold=fold, chain=chain, chain_call=self._chain,
                                  execute=self._execute, acknowledged=self.config.acknowledged)
        self._clock = clock
        self._chain_wait = chain_wait
        self._oldest_seen: tuple[UUID, float] | None = None
        self._flushing = False
        self.fee_payer = FeePayerWatch(chain, store=self.store,
                                       alert_below_lamports=self.config.fee_payer_min_lamports)

    # --- lifecycle ---------------------------------------------------------------

    async def prepare(self) -> None:
        """The mint and the initial supply on chain (idempotent). Refused
        (``ChainError``) while an owner rotation is unfinished: the start-up
        check reads only the treasury, which a rotation moves last, so the
        old key would pass it and every movement out of an account already
        moved would fail on chain (OwnerMismatch) and be compensated. Refused
        too with a fee payer other than the one ``custody rotate fee-payer``
        last moved to (``fee_payer.rotated_fee_payer_problem``)."""
        if self.store.meta(OWNER_ROTATION_META):
            raise ChainError(
                "an owner rotation was interrupted: some custody token accounts are owned by "
                "the new key, some by the old; run `deals-ledger custody rotate owner "
                "--new-keypair FILE` again with the same new key to finish it")
        if problem := rotated_fee_payer_problem(self.store, self.chain.fee_payer_address):
            raise ChainError(problem)
        await self._chain("ensure_genesis", lambda: self.chain.ensure_genesis(
            TREASURY_ID, INITIAL_SUPPLY
        ))

    async def step(self) -> bool:
        """Do one unit of work; False when there was nothing to do."""
        self.fold.catch_up()
        if not await self.lookup.before_sending():  # what a restore made the log forget
            return False  # waiting for blockhash expiry: nothing may be sent yet
        in_flight = self.store.in_flight(limit=self.config.in_flight_max)
        if in_flight:
            await self._mark_settled(await self._resolve(in_flight))
            return True
        return await self._submit_rounds()

    async def run_until_idle(self, steps_max: int = 100_000) -> int:
        """Step until nothing is left (tests, benchmarks, ``settle --once``):
        the netting window is not waited out (what waits is netted now)."""
        self._flushing = True
        try:
            return await run_until_idle(self._step_or_wait, steps_max, "settlement")
        finally:
            self._flushing = False

    async def _step_or_wait(self) -> bool:
        """A step, or, while the lookup waits for blockhash expiry, a wait
        for about the blocks still to come (at most ``BLOCKHASH_WAIT_S_MAX``)."""
        if await self.step():
            return True
        wait = self.lookup.wait
        if wait is None or wait.passed or wait.until_height is None:
            return False
        blocks = wait.until_height - (wait.block_height or 0) + 1
        await self._chain_wait(min(BLOCKHASH_WAIT_S_MAX, blocks * SLOT_S))
        return True

    # --- choosing work -------------------------------------------------------------

    def _next_batch(self, waiting: list[Movement], used: set[UUID]) -> list[Movement]:
        """The oldest of ``waiting`` that may go in one more transaction of
        the round, as many as one transaction may carry. A movement touching
        an account in ``used`` (another transaction of the round writes it:
        they may land in any order) is passed over, and so is every later one
        touching an account a passed-over movement touches, so each
        account's movements still reach the chain in the ledger's order
        while the round fills with what does not depend on them. A movement
        that must settle alone (after a rejection), and the genesis mint, go
        on their own."""
        batch: list[Movement] = []
        blocked = set(used)
        for movement in waiting:
            accounts = _accounts(movement)
            alone = movement.alone or movement.transfer_id == GENESIS_MINT_ID
            if (alone and batch) or not blocked.isdisjoint(accounts):
                blocked |= accounts
                continue
            batch.append(movement)
            if alone or len(batch) == self.batch_movements:
                break
        return batch

    # --- submitting ----------------------------------------------------------------

    async def _submit_rounds(self) -> bool:
        """Rounds of ``_signed_round`` while each ends with every transaction
        confirmed, up to ``rounds_per_step_max``. A round's confirmations
        are recorded with the next round's write-ahead records (one group
        commit), and the fold after it applies both in one page: per round
        one commit through the writer and one fold page instead of two each.
        The next round only touches accounts whose movements have landed, so
        every account's history keeps the ledger's order; an outcome is
        still recorded only after its transaction landed, and every landed
        transaction was recorded before it was sent (``chain_lookup`` relies
        on both). A round ending otherwise (refused, expired, unresolved)
        ends the step: the next folds what it recorded before choosing."""
        confirmed: list[tuple[Submission, int]] = []
        progressed = False
        waiting: list[Movement] = []
        for rounds in range(self.config.rounds_per_step_max):
            if rounds and not await self.lookup.before_sending():
                break
            signed_all, moved, waiting = await self._signed_round(waiting)
            progressed = progressed or moved
            if not signed_all:
                break
            for signed in signed_all:
                await run_hook(self.hooks.before_record, signed)
            recorded = await self._record_round(signed_all, confirmed)
            confirmed = []
            kept = [_submission(signed)
                    for signed, was_kept in zip(signed_all, recorded, strict=True) if was_kept]
            if not kept:
                break
            self.fold.catch_up()  # what may land is in the store before it is sent
            confirmed = await self._resolve(kept)
            if len(confirmed) < len(kept):
                break
        await self._mark_settled(confirmed)
        return progressed

    async def _signed_round(
        self, waiting: list[Movement]
    ) -> tuple[list[SignedSubmission], bool, list[Movement]]:
        """Sign up to ``in_flight_max`` transactions on disjoint accounts;
        with whether the step progressed (a watched command settled, the
        genesis recorded: nothing to sign then) and what still waits of the
        movements it chose among. ``waiting``: what the step's last round
        left (the oldest waiting, in log order, less what it recorded),
        read again from the store when less than a round's worth. Nothing
        signed and no progress: nothing waits (or netting holds the queue)."""
        round_movements = self.batch_movements * self.config.in_flight_max
        if len(waiting) < round_movements:
            waiting = self.store.queued(round_movements * QUEUE_WINDOW_ROUNDS)
        if await self.lookup.settle_watched(waiting):
            return [], True, []  # a lost command sent again, settled by what landed
        if not waiting or self._netting_waits(waiting):
            await self.fee_payer.read_if_due()
            return [], False, []
        if waiting[0].transfer_id == GENESIS_MINT_ID:
            await self._settle_genesis()
            return [], True, []
        affordable = await self.fee_payer.transactions_affordable(self.config.in_flight_max)
        signed_all: list[SignedSubmission] = []
        used: set[UUID] = set()
        while waiting and len(signed_all) < affordable:
            batch = self._next_batch(waiting, used)
            if not batch or batch[0].transfer_id == GENESIS_MINT_ID:
                break
            signed = await self._sign_round_member(batch, first=not signed_all)
            if signed is None:
                break
            carried = set(signed.transfer_ids)  # a prefix of the batch: what fit
            used.update(account for movement in batch if movement.transfer_id in carried
                        for account in _accounts(movement))
            waiting = [movement for movement in waiting if movement.transfer_id not in carried]
            signed_all.append(signed)
        return signed_all, True, waiting

    async def _record_round(self, signed_all: list[SignedSubmission],
                            confirmed: list[tuple[Submission, int]]) -> list[bool]:
        """Record the round's submissions (write-ahead) and the previous
        round's confirmations together, so the writer commits them as one
        group; whether each submission was recorded."""
        outcomes = await asyncio.gather(
            *(self._record(signed, None) for signed in signed_all),
            *(self._settled(submission, slot) for submission, slot in confirmed))
        return [outcome is True for outcome in outcomes[:len(signed_all)]]

    def _netting_waits(self, waiting: list[Movement]) -> bool:
        """Netting with a window: hold the queue until its oldest movement
        has waited the window (by this settler's clock, from when it first
        saw it oldest) or a transaction's worth waits."""
        window = self.config.netting_window_s
        if not window or self._flushing or len(waiting) >= self.batch_movements:
            return False
        now = self._clock()
        head = waiting[0].transfer_id
        if self._oldest_seen is None or self._oldest_seen[0] != head:
            self._oldest_seen = (head, now)
        return now - self._oldest_seen[1] < window

    async def _sign_round_member(self, batch: list[Movement], *,
                                 first: bool) -> SignedSubmission | None:
        """The first transaction of a round must be signed (its failure is
        the step's); a later one that cannot be signed ends the round."""
        try:
            return await self._sign(batch, whole=False)
        except Exception as error:
            if first:
                raise
            logger.info("round ends before %s: %s", batch[0].transfer_id, error)
            return None

    async def _sign(self, batch: list[Movement], *, whole: bool,
                    net: bool | None = None) -> SignedSubmission:
        """The chain signs the longest prefix of ``batch`` that fits one
        transaction (``whole``: all of it, or a ValueError); netted as
        configured unless ``net`` says."""
        movements = self._chain_movements(batch)
        netted = self.net if net is None else net
        try:
            return await self._chain(
                "sign", lambda: self.chain.sign_movements(movements, whole=whole, net=netted))
        except CustodyAccountUnsafeError as unsafe:
            raise_alert(AlertKind.CUSTODY_ACCOUNT_UNSAFE,
                        "a custody token account is not safe to send to; settlement stopped",
                        dedup_key=unsafe.address, account_id=str(unsafe.account_id),
                        address=unsafe.address, problem=unsafe.problem)
            raise

    def _chain_movements(self, batch: list[Movement]) -> list[ChainMovement]:
        """A withdrawal creates its wallet's token account only as far as
        the fee payer pays for it (``wallet_accounts``)."""
        creating = created_wallet_accounts(
            self.store, batch, self.config.wallet_account_creations_max)
        return [chain_movement(movement,
                               creates_wallet_account=movement.transfer_id in creating)
                for movement in batch]

    async def _supersede(self, batch: list[Movement], supersedes: str) -> None:
        """Sign the movements of an expired submission again and record the
        replacement (resolved by the next step). It carries exactly those
        movements: they fit then, and the accounts they create can only
        have appeared since. Signed netted when netting was turned off
        since and only netting made them fit."""
        try:
            signed = await self._sign(batch, whole=True)
        except ValueError:
            if self.net:
                raise
            signed = await self._sign(batch, whole=True, net=True)
        await run_hook(self.hooks.before_record, signed)
        await self._record(signed, supersedes)

    async def _record(self, signed: SignedSubmission, supersedes: str | None) -> bool:
        command = c.RecordSubmission(
            signature=signed.signature,
            last_valid_block_height=signed.last_valid_block_height,
            transaction=base64.b64encode(signed.transaction).decode(),
            transfer_ids=signed.transfer_ids,
            supersedes=supersedes,
        )
        try:
            await self._execute(command)
        except SettlementConflict as conflict:
            logger.warning("submission %s not recorded: %s", signed.signature, conflict.message)
            return False
        return True

    # --- resolving -----------------------------------------------------------------

    async def _resolve(self, submissions: list[Submission]) -> list[tuple[Submission, int]]:
        """Send (again) and poll submissions in flight together, until each
        is settled, refused or expired, or the step's polls run out. Refusals
        and expiries are recorded here; the confirmed ones (with their slot)
        are returned for the caller to record (``_mark_settled``, or with the
        next round's records)."""
        pending = [_Pending(submission, _signed(submission)) for submission in submissions]
        confirmed: list[tuple[Submission, int]] = []
        for _ in range(self.config.polls_per_step_max):
            for item in list(pending):
                if item.signed is not None:
                    refused = await self._send(item.signed)
                    if refused is not None:
                        pending.remove(item)
                        await self._refused(item.submission, refused)
            if not pending:
                return confirmed
            for item in pending:
                await run_hook(self.hooks.before_confirm, item.signed)
            height = await self._chain("getBlockHeight", self.chain.block_height)
            statuses = await self._statuses([item.submission.signature for item in pending])
            for item in list(pending):
                outcome = self._poll_outcome(item, statuses.get(item.submission.signature), height)
                if outcome is not None:
                    pending.remove(item)
                    if outcome == "settled":
                        confirmed.append((item.submission, item.slot))
                    else:
                        await self._resolved(item, outcome)
            if not pending:
                return confirmed
            await self._sleep(self.config.poll_interval_s)
        for item in pending:
            logger.info("submission %s still unresolved; next step goes on",
                        item.submission.signature)
        return confirmed

    def _poll_outcome(self, item: _Pending, status: SignatureStatus | None,
                      height: int) -> str | None:
        """What one poll says of a submission: "settled", "refused",
        "expired", or None (keep polling)."""
        if status is not None and status.error is not None:
            item.error = status.error
            return "refused"
        if status is not None and self._confirmed(status):
            item.slot = status.slot
            return "settled"
        if status is None and height > item.submission.last_valid_block_height:
            item.unseen_past_expiry += 1
            if item.unseen_past_expiry >= EXPIRY_CONFIRMATIONS:
                return "expired"
            item.signed = None  # its blockhash is gone: sending again is pointless
        if status is not None:
            item.signed = None  # landed: wait for the commitment, nothing to resend
        return None

    async def _resolved(self, item: _Pending, outcome: str) -> None:
        if outcome == "refused":
            assert item.error is not None
            await self._refused(item.submission, item.error)
        else:
            await self._expired(item.submission)

    async def _send(self, signed: SignedSubmission) -> str | None:
        """Send (again); the chain's reason when it refuses the movements."""
        await run_hook(self.hooks.before_send, signed)
        try:
            await self._chain("sendTransaction", lambda: self.chain.send(signed))
        except ChainRejectedError as rejected:
            if is_movement_error(rejected.reason) and not isinstance(rejected, FeePayerRefusedError):
                return rejected.reason
            logger.warning("submission %s refused for now: %s", signed.signature, rejected.reason)
        except ChainUnavailableError as unavailable:
            logger.warning("submission %s not sent: %s", signed.signature, unavailable)
        else:
            await run_hook(self.hooks.after_send, signed)
        return None

    async def _statuses(self, signatures: list[str]) -> dict[str, SignatureStatus | None]:
        return await self._chain(
            "getSignatureStatuses", lambda: self.chain.signature_statuses(signatures)
        )

    def _confirmed(self, status: SignatureStatus) -> bool:
        rank = COMMITMENT_RANK.get(status.confirmation, -1)
        return rank >= COMMITMENT_RANK[self.config.commitment]

    async def _mark_settled(self, confirmed: list[tuple[Submission, int]]) -> None:
        """Record confirmed submissions as settled (one group commit)."""
        await asyncio.gather(*(self._settled(submission, slot) for submission, slot in confirmed))

    async def _settled(self, submission: Submission, slot: int) -> None:
        await self._execute(c.MarkSettled(submission.signature, slot, submission.transfer_ids))
        metrics.SETTLEMENT_SUBMISSIONS.labels("settled").inc()
        metrics.SETTLED_MOVEMENTS.inc(len(submission.transfer_ids))

    async def _refused(self, submission: Submission, error: str) -> None:
        if not is_movement_error(error):
            # landed failed for the transaction's own reasons (fee payer...):
            # dead, but the movements are not at fault; sign them again
            logger.error("submission %s landed failed: %s", submission.signature, error)
        if len(submission.transfer_ids) > 1 or not is_movement_error(error):
            await self._execute(c.MarkSettlementRejected(
                submission.signature, error, submission.transfer_ids
            ))
            metrics.SETTLEMENT_SUBMISSIONS.labels("rejected").inc()
            return
        error = failure_reason(self.store, submission.transfer_ids[0], error,
                               self.config.wallet_account_creations_max)
        outcome: SettlementStep = await self._execute(c.MarkSettlementFailed(
            submission.signature, error, submission.transfer_ids
        ))
        metrics.SETTLEMENT_SUBMISSIONS.labels("failed").inc()
        metrics.FAILED_MOVEMENTS.inc(len(submission.transfer_ids))
        logger.warning(
            "transfer %s failed on chain (%s); compensated by %s",
            ", ".join(map(str, submission.transfer_ids)), error,
            ", ".join(map(str, outcome.compensations)) or "nothing",
        )
        raise_alert(
            AlertKind.SETTLEMENT_FAILED, "a movement failed on chain",
            dedup_key=submission.signature, signature=submission.signature, error=error,
            transfer_ids=",".join(map(str, submission.transfer_ids)),
            compensations=",".join(map(str, outcome.compensations)),
            blocked_compensations=len(outcome.blocked),
        )
        for transfer_id, refusal in outcome.blocked:
            metrics.BLOCKED_COMPENSATIONS.inc()
            logger.error(
                "transfer %s failed on chain but its compensating reversal was refused: %s; "
                "the ledger counts a movement the chain never made until an operator "
                "resolves it (reconciliation reports it as uncompensated_failure)",
                transfer_id, refusal,
            )

    async def _expired(self, submission: Submission) -> None:
        """Its blockhash passed while it was unknown to the chain: it can
        never land. Sign the same movements again, superseding it."""
        await self.fee_payer.transactions_affordable(1)  # else paused: it stays in flight
        metrics.SETTLEMENT_SUBMISSIONS.labels("expired").inc()
        found = self.store.movements(submission.transfer_ids)
        batch = [found[transfer_id] for transfer_id in submission.transfer_ids]
        logger.info("submission %s expired unseen; signing again", submission.signature)
        await self._supersede(batch, submission.signature)

    # --- genesis ---------------------------------------------------------------------

    async def _settle_genesis(self) -> None:
        """The ledger's genesis mint is on chain through ``ensure_genesis``:
        record that transaction (found by its memo) as its settlement."""
        await self.prepare()
        genesis = await self._find_genesis()
        await self._execute(c.RecordGenesisSettlement(genesis.signature, genesis.slot))

    async def _find_genesis(self) -> SignatureStatus:
        before: str | None = None
        oldest: list[str] = []
        for _ in range(GENESIS_SEARCH_PAGES_MAX):
            page = await self._chain("getSignaturesForAddress", _signatures_call(
                self.chain, TREASURY_ID, before
            ))
            if not page:
                break
            oldest, before = page, page[-1]
            if len(page) < SIGNATURES_PER_PAGE_MAX:
                break
        for signature in reversed(oldest):
            landed = await self._chain("getTransaction", _transaction_call(self.chain, signature))
            if landed is not None and landed.error is None and GENESIS_MEMO in landed.memos:
                return SignatureStatus(signature, landed.slot, None, "finalized")
        raise SettlementError("the genesis transaction is not on the treasury's token account")

    # --- plumbing ----------------------------------------------------------------------

    async def _chain(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(
            call, retry_on=(ChainUnavailableError,), policy=self.config.retry, what=operation,
            sleep=self._sleep,
            on_retry=lambda _: metrics.CHAIN_RETRIES.labels(operation).inc(),
        )

    async def _execute(self, command: c.Command) -> Any:
        return await execute_internal(self.writer, command, self.config.retry, self._sleep)


def _signatures_call(
    chain: ChainPort, account: Any, before: str | None
) -> Callable[[], Awaitable[list[str]]]:
    return lambda: chain.signatures_for_account(account, before=before, limit=SIGNATURES_PER_PAGE_MAX)


def _transaction_call(chain: ChainPort, signature: str) -> Callable[[], Awaitable[Any]]:
    return lambda: chain.transaction(signature)


@dataclass
class _Pending:
    """A submission being resolved: what to resend (None: nothing, it landed
    or expired) and what its polls found."""

    submission: Submission
    signed: SignedSubmission | None
    unseen_past_expiry: int = 0
    slot: int = 0
    error: str | None = None


def _accounts(movement: Movement) -> set[UUID]:
    """The token accounts a movement writes (a withdrawal's wallet only
    receives, in any order; the issuance side is the mint,
    whose supply no order of mints and burns can take below zero)."""
    return {movement.source, movement.destination} - CUSTODY_LESS_ACCOUNTS


def _submission(signed: SignedSubmission) -> Submission:
    return Submission(
        signature=signed.signature, position=0,
        last_valid_block_height=signed.last_valid_block_height,
        transaction=signed.transaction, transfer_ids=signed.transfer_ids, status="in_flight",
        slot=None,
    )


def _signed(submission: Submission) -> SignedSubmission | None:
    """What to resend; None when the log kept no bytes (recorded before
    they were kept): then the submission can only be waited out."""
    if submission.transaction is None:
        return None
    return SignedSubmission(
        signature=submission.signature,
        last_valid_block_height=submission.last_valid_block_height,
        transaction=submission.transaction, transfer_ids=submission.transfer_ids,
    )

