"""The composition root: builds and runs what one ledger process needs.

Everything that touches settings, stores and threads is wired here, so the
HTTP app, the CLI and the tests build a ledger the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from application import commands as c
from application.authority import GENESIS, Authority
from application.errors import LedgerUnavailable, StoreDamaged
from application.eventlog.damaged_rows import first_undecodable_position
from application.eventlog.decoder import EventDecoder
from application.eventlog.price_rules import price_rule_version
from application.handlers.rules import Rules
from application.ops.hold_expiry import HoldExpirySweeper
from application.outcomes import MovementRecorded
from application.settlement import metrics as settlement_metrics
from application.settlement.anchor_audit import AnchorAudit
from application.settlement.fee_payer import recorded_state as fee_payer_state
from application.settlement.fold import SettlementFold
from application.settlement.reconciler import ReconciliationReport, adjust_for_finding
from application.settlement.store import ChainBalance, FindingRow
from application.settlement.worker import SettlementWorker
from application.write.aggregate_cache import AggregateCache
from application.write.processor import CommandProcessor
from application.write.writer import CommandWriter
from domain.system import DEPOSIT_FINDINGS_RUN_ID, ISSUANCE_ID
from interface.webhooks.wiring import build_deliverer
from interface.wiring.alerting import Alerting, alert_refused_page
from interface.wiring.data_dir import secure_settings_data_dir
from interface.wiring.ledger_addresses import ledger_addresses
from interface.wiring.seal_keys import open_ledger
from interface.wiring.settings import Settings
from interface.wiring.settler import (
    anchor_signer,
    build_settlement_worker,
    custody_address,
    mint_address,
    settlement_fold,
    token_account_address,
)
from interface.wiring.store_health import StoreHealth, reconnect_pools_every_second
from projections.cursors import DEPOSIT_FINDINGS, decode_cursor, encode_cursor
from projections.proofs import LogProofs
from projections.queries import Page, PositionPastHead, ReadPoint
from projections.runtime import ReadSide, lost_timeline_policy
from projections.system_balance_metrics import SYSTEM_BALANCES

logger = logging.getLogger(__name__)
T = TypeVar("T")


class LedgerService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        secure_settings_data_dir(settings)
        reconnect_pools_every_second()
        self.app = open_ledger(settings)
        self.processor = CommandProcessor(
            self.app, cache=AggregateCache(settings.cached_aggregates_max),
            rules=Rules(wallet_cooldown_s=settings.withdrawal_wallet_cooldown_s),
        )
        self.writer = CommandWriter(self.processor, batch_commands_max=settings.batch_commands_max)
        self.read_side = ReadSide(
            self.app, settings.eventsourcing_env(), redis_url=settings.redis_url,
            redis_prefix=settings.redis_prefix,
            on_lost_timeline=lost_timeline_policy(settings.rebuild_restored_read_models),
        )
        self.queries = self.read_side.queries
        self.read_side.projector.on_refused = alert_refused_page
        self.writer.add_observer(self.read_side.on_batch)
        self.hold_expiry = HoldExpirySweeper(self.writer, self.queries.due_holds)
        self.settlement_fold: SettlementFold = settlement_fold(self.app)
        self.settlement: SettlementWorker = build_settlement_worker(
            settings, self.app, self.writer, self.settlement_fold
        )
        self.settlement_liveness = self.settlement.liveness()
        """Read by /metrics when scraped, whether this process settles or not."""
        self.mint_address: str | None = mint_address(settings)
        """The DEAL mint on chain (derived from the custody key, no I/O)."""
        self.custody_address = custody_address(settings)
        """Token account addresses derive from it (``on_chain``)."""
        self.ledger_addresses = ledger_addresses(settings)
        """Keys and token accounts of the ledger's own, refused as wallets."""
        self.proofs = LogProofs(self.app.event_log, EventDecoder(self.app.mapper),
                                anchor_signer(settings))
        """Inclusion and consistency proofs up to anchored roots (docs/proofs.md)."""
        self.store_health = StoreHealth(self.read_side.store.conninfo)
        """Answers "is PostgreSQL down?" without waiting on the pool."""
        self.alerting = Alerting(settings, self.store_position, self.queries.position)
        self.writer.add_observer(self.alerting.suspicious.on_batch)
        self.webhooks = build_deliverer(settings, self.app.recorder, self.read_side.events)
        """Webhook subscriptions and their delivery (on the lock's holder only)."""

    def start(
        self, *, projections: bool | None = None, settlement: bool | None = None
    ) -> LedgerService:
        """Start the writer, make sure genesis has run (it is idempotent),
        then the background work: the projector (``projections=False``, or
        DEALS_PROJECTIONS=off, when only separate ``deals-ledger project``
        workers should project), the
        hold-expiry sweeper and the settler (``settlement=False``, or
        DEALS_SETTLEMENT=off, when only ``deals-ledger settle`` workers
        should settle)."""
        self.writer.start()
        self._genesis()
        self.store_health.start()
        if self.settings.projections_enabled if projections is None else projections:
            self.read_side.start()
        self.read_side.follow()
        self.hold_expiry.start()
        if self.settings.settlement_enabled if settlement is None else settlement:
            self.settlement.start()
            self.writer.add_observer(self.settlement.wake)
        self.alerting.start()
        if self.settings.webhooks_enabled:
            self.webhooks.start()
        settlement_metrics.LIVENESS.watch(self.settlement_liveness)
        SYSTEM_BALANCES.watch(self.queries)
        return self

    def _genesis(self) -> None:
        """Genesis, or a start refused naming the undecodable row it needs
        (its log position, as the audit reports it): the process does not
        serve a ledger whose own movements it cannot read."""
        try:
            self.writer.execute(c.Genesis(), authority=GENESIS)
        except StoreDamaged as damaged:
            position = damaged.position
            if position is None:  # the refusal could not tell it: scan the log
                position = first_undecodable_position(self.app, damaged.aggregate_id)
            raise StoreDamaged(
                f"cannot start: undecodable event at position {position} "
                f"(aggregate {damaged.aggregate_id}); run the audit, deals-ledger replay, "
                "which lists every damaged row") from damaged

    def stop(self) -> None:
        """Stop the background work, answer every waiting command, then close
        the stores."""
        settlement_metrics.LIVENESS.forget(self.settlement_liveness)
        SYSTEM_BALANCES.forget(self.queries)
        self.alerting.stop()
        self.webhooks.stop()
        self.store_health.stop()
        self.settlement.stop()
        self.hold_expiry.stop()
        self.read_side.stop()
        self.writer.stop()
        self.read_side.close()
        self.settlement_fold.store.close()
        self.webhooks.store.close()
        self.app.close()

    def projection_stalled_at(self) -> int | None:
        """The position this process's projector stopped at (an event it
        cannot apply), or None: /ready answers 503 naming it."""
        return self.read_side.projector.stalled_at

    def __enter__(self) -> LedgerService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def execute(self, command: c.Command, authority: Authority) -> Any:
        """Send to the group-commit writer, as ``authority``, and await the
        outcome without blocking the event loop. The wait is shielded: a
        cancelled caller (client gone, shutdown) leaves the command to finish
        or not on its own, exactly like a lost network answer, and a retry
        with the same id gets the first outcome."""
        self.refuse_if_store_down()
        future = self.writer.send(command, authority=authority)
        return await asyncio.shield(asyncio.wrap_future(future))

    # Reads the write side answers itself: cheap, strongly consistent, and
    # kept by no read model (an allowance is state of the owner's account).

    def refuse_ledger_address(self, address: str, account_id: UUID, point: ReadPoint) -> None:
        """422 ``invalid_wallet_address`` when ``address`` is a key or a token
        account of the ledger's own (``interface.wiring.ledger_addresses``);
        the read models must have reached ``point`` (every account opened
        before the request)."""
        self.ledger_addresses.deposits.refresh(self.queries, point)
        self.ledger_addresses.refuse(address, account_id)

    def allowance(self, owner: UUID, spender: UUID) -> int:
        return self._read(lambda: self.app.account(owner).allowance_for(spender))

    def price_rule_version(self, service_type: str, position: int) -> int:
        """The schedule's version that set the rule at log ``position``
        (PriceRuleNotFound: none of ``service_type`` was set there)."""
        decoder = EventDecoder(self.app.mapper)
        return self._read(lambda: price_rule_version(
            self.app.event_log, decoder, service_type, position))

    def supply(self) -> int:
        """Circulating supply: the issuance account's negative balance."""
        return self._read(lambda: -self.app.account(ISSUANCE_ID).balance)

    def read_at_head(self, read: Callable[[], T], min_position: int | None = None
                     ) -> tuple[T, int]:
        """``read()`` of the write side and the log's head read just before
        it, the position the answer reflects at least (these reads are
        strongly consistent whatever ``consistency`` asks). A
        ``min_position`` past the head is refused (``PositionPastHead``)."""
        head = self.store_position()
        if min_position is not None and min_position > head:
            raise PositionPastHead("min_position", min_position, head)
        return read(), head

    def settlement_state(self) -> dict[str, Any]:
        """Settlement as ``/ready`` reports it: whether this process settles,
        whether a settler settles anywhere, how much waits and how far the
        settlement fold is behind the log and the fee payer's SOL (read from
        the store, as /metrics does; None when it does not answer), and the
        last failure here."""
        state: dict[str, Any] = {
            "runs_here": self.settings.settlement_enabled,
            "active_here": self.settlement.settling,
            "last_error": self.settlement.last_failure,
            "blockhash_wait": self.settlement.blockhash_wait,
        }
        for name, read in (("settler_active", self.settlement_liveness.settler_active),
                           ("backlog", self.settlement_liveness.backlog),
                           ("lag_events", self.settlement_liveness.lag_events),
                           ("fee_payer", self._fee_payer_state)):
            try:
                state[name] = read()
            except Exception:  # the store down: /ready says so by its status already
                state[name] = None
        return state

    def _fee_payer_state(self) -> dict[str, Any] | None:
        return fee_payer_state(self.settlement_fold.store)

    def store_position(self) -> int:
        """The log's last position; raises LedgerUnavailable when the store is down."""
        return self._read(self.app.event_log.head)

    def _read(self, read: Callable[[], T]) -> T:
        """A read of the write side that fails fast when the store is down:
        the position query has no retry loop, while the library's aggregate
        reads retry for many seconds before giving up."""
        self.refuse_if_store_down()
        try:
            self.app.event_log.head()
            return read()
        except PersistenceError as error:
            raise LedgerUnavailable(
                f"the event store is unavailable ({type(error).__name__}); retry"
            ) from None

    def refuse_if_store_down(self) -> None:
        """503 at once, nothing sent, while the last probe found the
        store unreachable."""
        if self.store_health.down:
            raise LedgerUnavailable("the event store is unreachable; nothing was applied, retry")

    def describe(self) -> dict[str, Any]:
        """Where this service keeps its data, for the operator (no secrets)."""
        store = "postgresql" if self.settings.uses_postgres else str(
            self.settings.data_dir / "events.sqlite"
        )
        return {"store": store, "redis": bool(self.settings.redis_url)}

    # Reconciliation, for the HTTP API and the CLI (blocking calls).

    def run_reconciliation(
        self, *, full: bool = False, progress: Callable[[int], None] | None = None
    ) -> ReconciliationReport:
        return self.settlement.run_reconciliation(full=full, progress=progress)

    def audit_anchors(self) -> AnchorAudit:
        """The stored log against every anchor on chain (docs/proofs.md)."""
        return self.settlement.audit_anchors()

    def latest_reconciliation(self) -> ReconciliationReport | None:
        return self.settlement.latest_reconciliation()

    def on_chain(self, account_id: UUID) -> tuple[str, ChainBalance | None]:
        """The account's token account address and its balance on chain when
        the last reconciliation read it (None before one has)."""
        return (token_account_address(self.custody_address, account_id),
                self.settlement_fold.store.chain_balance(account_id))

    def deposit_findings(self, limit: int, cursor: str | None = None) -> Page[FindingRow]:
        """Deposits no connected wallet made, oldest first (resolved ones
        name their credit in ``adjusted_by``), a keyset page on the log
        position at which each was recorded, as the history pages."""
        after = decode_cursor(cursor, DEPOSIT_FINDINGS, DEPOSIT_FINDINGS_RUN_ID)
        self.settlement_fold.catch_up()
        rows = self.settlement_fold.store.findings(DEPOSIT_FINDINGS_RUN_ID, limit + 1, after=after)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_cursor(DEPOSIT_FINDINGS, DEPOSIT_FINDINGS_RUN_ID,
                                         items[-1].position) if more else None)

    def adjust_for_finding(
        self, finding_id: UUID, authority: Authority, reason: str = ""
    ) -> MovementRecorded:
        return adjust_for_finding(self.settlement_fold, self.writer, finding_id, authority, reason)
