"""The anchoring process: publishes the log's Merkle root on chain.

A role of the settler (it runs on the settler's loop, under the settlement
lease, so one anchorer is active at a time and the embedded chain has one
owner). Every ``every_events`` new events or ``every_s`` seconds, whichever
comes first, and only when something other than anchors was written since
the last one, it anchors the log up to its head (a whole-commit boundary:
a commit becomes visible whole):

1. If the latest anchor is not confirmed, resolve it: send the very bytes
   recorded (same signature), poll; confirmed at the commitment -> record
   ``ConfirmAnchor``. Landed failed, or unseen past its last valid block
   height (twice, as settlement counts) -> sign the same memo again and
   record it (``ResignAnchor``) before it is sent.
2. Else, when due: catch the tree up, sign the memo, record the anchor
   (write-ahead, ``RecordAnchor``), then send and resolve it.

A crash anywhere leaves either nothing recorded (the next step signs again)
or a recorded anchor (the next step resends or supersedes it); anchor ``n``
has one aggregate id, so two anchorers cannot both record it, and each step
is a compare-and-set on the transaction in force: no anchor is lost or
published twice. A refused send is not re-signed at once (that would write
to the log on every step while the fee payer is empty); it waits for its
blockhash to expire.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from application import commands as c
from application.eventlog.merkle_log import LogFrontier
from application.retry import RetryPolicy, Sleep, retrying
from application.settlement import metrics
from application.settlement.anchor_witness import LeafWitness
from application.settlement.chain_port import (
    ChainPort,
    ChainRejectedError,
    ChainUnavailableError,
    SignedSubmission,
)
from application.settlement.fee_payer import FeePayerWatch
from application.settlement.process import (
    COMMITMENT_RANK,
    EXPIRY_CONFIRMATIONS,
    CommandSender,
    Hook,
    execute_internal,
    run_hook,
    run_until_idle,
)
from application.write.event_store import LedgerApplication
from domain.anchor import NO_PREVIOUS_ROOT, Anchor, AnchorMemo, anchor_id
from domain.errors import SettlementConflict

logger = logging.getLogger(__name__)
T = TypeVar("T")

ANCHOR_EVERY_EVENTS_DEFAULT = 10_000
ANCHOR_EVERY_S_DEFAULT = 300.0


@dataclass(frozen=True)
class AnchorConfig:
    every_events: int = ANCHOR_EVERY_EVENTS_DEFAULT
    every_s: float = ANCHOR_EVERY_S_DEFAULT
    commitment: str = "confirmed"
    poll_interval_s: float = 0.4
    polls_per_step_max: int = 300
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.every_events < 1 or self.every_s <= 0:
            raise ValueError("anchor every_events >= 1 and every_s > 0")
        if self.commitment not in COMMITMENT_RANK:
            raise ValueError(f"commitment must be one of {', '.join(COMMITMENT_RANK)}")


@dataclass
class AnchorHooks:
    """Fault-injection points for tests (a hook that raises stops the step
    there, as a crash would)."""

    before_record: Hook | None = None
    before_send: Hook | None = None
    before_confirm: Hook | None = None


class AnchorProcess:
    def __init__(
        self, *, writer: CommandSender, app: LedgerApplication, chain: ChainPort,
        config: AnchorConfig | None = None, hooks: AnchorHooks | None = None,
        clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep,
        witness: LeafWitness | None = None, fee_payer: FeePayerWatch | None = None,
    ) -> None:
        self.writer = writer
        self.fee_payer = fee_payer
        """The settler's: nothing is signed while the fee payer cannot pay."""
        self.app = app
        self.chain = chain
        self.config = config or AnchorConfig()
        self.hooks = hooks or AnchorHooks()
        self.tree = LogFrontier(app.event_log)
        self.witness = witness
        """Keeps every leaf hashed, so the audit can name the first differing position."""
        if witness is not None:
            self.tree.on_leaf = witness.add
        self._clock = clock
        self._sleep = sleep
        self._since = clock()

    async def step(self) -> bool:
        """One unit of work; False when there was nothing to do."""
        self.tree.catch_up()
        if self.witness is not None:
            self.witness.flush()
        latest = self.latest()
        if latest is not None and not latest.confirmed:
            await self._resolve(latest)
            return True
        if not self.due(latest):
            return False
        await self._record_next(latest)
        return True

    async def run_until_idle(self, steps_max: int = 1000) -> int:
        """Step until nothing is due (tests, benchmarks, ``settle --once``)."""
        return await run_until_idle(self.step, steps_max, "anchoring")

    def latest(self) -> Anchor | None:
        """The last anchor the log records (the tree counts them)."""
        count = self.tree.anchors_recorded
        while self.app.load(anchor_id(count + 1)) is not None:
            count += 1  # recorded after the tree's last page was read
        found = self.app.load(anchor_id(count)) if count else None
        return found if isinstance(found, Anchor) else None

    def due(self, latest: Anchor | None) -> bool:
        anchored_position = latest.position if latest is not None else 0
        if self.tree.last_unanchored_kind_position <= anchored_position:
            return False  # nothing but anchor steps since the last anchor
        waiting = self.tree.size - (latest.tree_size if latest is not None else 0)
        return waiting >= self.config.every_events or (
            self._clock() - self._since >= self.config.every_s
        )

    # --- recording -------------------------------------------------------------------

    def _ledger_id(self) -> str:
        """Leaf 0's hash in hex (``docs/proofs.md``); due() only lets a
        non-empty log be anchored."""
        first = self.tree.first_leaf
        if first is None:
            raise RuntimeError("an empty log has no anchor")
        return first.hex()

    async def _record_next(self, latest: Anchor | None) -> None:
        tree = self.tree
        memo = AnchorMemo(
            ledger_id=self._ledger_id(),
            sequence=(latest.sequence + 1) if latest is not None else 1,
            position=tree.position, tree_size=tree.size, root=tree.root().hex(),
            previous_root=latest.root if latest is not None else NO_PREVIOUS_ROOT,
        )
        await self._require_fee_payer_funds()
        signed = await self._chain("sign", lambda: self.chain.sign_anchor(memo.text()))
        await run_hook(self.hooks.before_record, signed)
        try:
            await self._execute(c.RecordAnchor(
                sequence=memo.sequence, position=memo.position, tree_size=memo.tree_size,
                root=memo.root, previous_root=memo.previous_root, ledger_id=memo.ledger_id,
                signature=signed.signature,
                last_valid_block_height=signed.last_valid_block_height,
                transaction=base64.b64encode(signed.transaction).decode(),
            ))
        except SettlementConflict as conflict:
            logger.warning("anchor %d not recorded: %s", memo.sequence, conflict.message)
            return
        self._since = self._clock()
        recorded = self.app.load(anchor_id(memo.sequence))
        if isinstance(recorded, Anchor):
            await self._resolve(recorded)

    # --- resolving -------------------------------------------------------------------

    async def _resolve(self, anchor: Anchor) -> None:
        signed: SignedSubmission | None = _signed(anchor)
        unseen_past_expiry = 0
        for _ in range(self.config.polls_per_step_max):
            if signed is not None:
                await self._send(signed)
            await run_hook(self.hooks.before_confirm, signed)
            height = await self._chain("getBlockHeight", self.chain.block_height)
            statuses = await self._chain(
                "getSignatureStatuses", lambda: self.chain.signature_statuses([anchor.signature])
            )
            status = statuses.get(anchor.signature)
            if status is not None and status.error is not None:
                logger.error("anchor %d landed failed: %s", anchor.sequence, status.error)
                await self._resign(anchor)
                return
            if status is not None and _reaches(status.confirmation, self.config.commitment):
                await self._execute(c.ConfirmAnchor(anchor.sequence, anchor.signature, status.slot))
                metrics.ANCHORS.labels("confirmed").inc()
                self._since = self._clock()
                return
            if status is None and height > anchor.last_valid_block_height:
                unseen_past_expiry += 1
                if unseen_past_expiry >= EXPIRY_CONFIRMATIONS:
                    await self._resign(anchor)
                    return
                signed = None
            if status is not None:
                signed = None  # landed: wait for the commitment
            await self._sleep(self.config.poll_interval_s)
        logger.info("anchor %d still unresolved; next step goes on", anchor.sequence)

    async def _send(self, signed: SignedSubmission) -> None:
        await run_hook(self.hooks.before_send, signed)
        try:
            await self._chain("sendTransaction", lambda: self.chain.send(signed))
        except ChainRejectedError as rejected:
            logger.warning("anchor %s refused for now: %s", signed.signature, rejected.reason)
        except ChainUnavailableError as unavailable:
            logger.warning("anchor %s not sent: %s", signed.signature, unavailable)

    async def _resign(self, anchor: Anchor) -> None:
        await self._require_fee_payer_funds()
        signed = await self._chain("sign", lambda: self.chain.sign_anchor(anchor.memo))
        await run_hook(self.hooks.before_record, signed)
        try:
            await self._execute(c.ResignAnchor(
                anchor.sequence, anchor.signature, signed.signature,
                signed.last_valid_block_height, base64.b64encode(signed.transaction).decode(),
            ))
        except SettlementConflict as conflict:
            logger.warning("anchor %d not signed again: %s", anchor.sequence, conflict.message)
            return
        metrics.ANCHORS.labels("resigned").inc()

    # --- plumbing ----------------------------------------------------------------------

    async def _require_fee_payer_funds(self) -> None:
        """``FeePayerUnfundedError`` while the fee payer cannot pay for one more."""
        if self.fee_payer is not None:
            await self.fee_payer.transactions_affordable(1)

    async def _chain(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retrying(call, retry_on=(ChainUnavailableError,), policy=self.config.retry,
                              what=operation, sleep=self._sleep)

    async def _execute(self, command: c.Command) -> Any:
        return await execute_internal(self.writer, command, self.config.retry, self._sleep)


def _reaches(confirmation: str, commitment: str) -> bool:
    return COMMITMENT_RANK.get(confirmation, -1) >= COMMITMENT_RANK[commitment]


def _signed(anchor: Anchor) -> SignedSubmission:
    return SignedSubmission(
        signature=anchor.signature, last_valid_block_height=anchor.last_valid_block_height,
        transaction=base64.b64decode(anchor.transaction), transfer_ids=(),
    )
