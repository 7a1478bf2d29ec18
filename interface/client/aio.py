"""``AsyncLedgerClient``: ``LedgerClient`` (sync.py) for asyncio (or trio,
through anyio): the same methods, awaited, and ``history`` /
``transactions`` as async iterators. Both share calls.py and core.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar
from uuid import UUID

import anyio
import httpx
from tenacity import AsyncRetrying

from interface.client import calls
from interface.client import models as m
from interface.client.amounts import AmountIn
from interface.client.calls import TimeIn
from interface.client.core import USER_AGENT, Consistency, RetryPolicy, Session
from interface.client.errors import (
    IdempotencyConflictError,
    LedgerError,
    WalletAlreadyConnectedError,
    WalletNotFoundError,
)

T = TypeVar("T")
Id = UUID | str
Metadata = dict[str, str] | None
PAGE_SIZE = 100
SETTLED_WAIT_S = 60.0
SETTLED_POLL_S = 0.5


class AsyncLedgerClient:
    """A client of one ledger service, for one event loop.

    ``consistency="eventual"`` reads the read models as they are (faster);
    the client still reads its own writes (core.py). ``transport`` is
    httpx's, for tests and proxies."""

    def __init__(self, base_url: str, token: str, *, consistency: Consistency | None = None,
                 timeout_s: float = 30.0, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._session = Session(consistency, retry or RetryPolicy())
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT})

    async def __aenter__(self) -> AsyncLedgerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:  # never the token
        return f"AsyncLedgerClient({str(self._http.base_url)!r})"

    @property
    def position(self) -> int:
        """The highest log position seen; later reads reflect at least it."""
        return self._session.position

    async def _send(self, call: calls.Call[Any]) -> Any:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(**self._session.retry.options()):
                with attempt:
                    attempts += 1
                    response = await self._http.request(call.method, call.path, json=call.body,
                                                  params=self._session.params(call))
                    return self._session.answer(response)
        except httpx.TransportError as error:
            raise self._session.lost(call, error) from error
        except LedgerError as error:
            error.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity returns or raises")

    async def _run(self, call: calls.Call[T]) -> T:
        return call.parse(await self._send(call))

    # Commands

    async def open_account(self, account_id: Id | None = None) -> m.Account:
        return await self._run(calls.open_account(account_id))

    async def transfer(self, from_account: Id, to_account: Id, amount: AmountIn, reason: str = "",
                 *, transfer_id: Id | None = None, metadata: Metadata = None,
                 external_ref: str | None = None) -> m.Movement:
        """``metadata`` and ``external_ref`` here and on every movement: your
        own references, stored with it (calls.References)."""
        return await self._run(calls.transfer(from_account, to_account, amount, reason, transfer_id,
                                       calls.References(metadata, external_ref)))

    async def transfer_batch(self, transfers: Sequence[calls.BatchTransfer], *,
                       atomic: bool = False) -> m.BatchResult:
        """Up to 8,000 transfers in one request, each with its own outcome
        (``BatchResult.results``, in order); ``atomic``: all or none, an
        item's refusal raised for the whole batch (its ``item_index`` says
        which). A retry repeats every item's id, so nothing is applied twice."""
        return await self._run(calls.transfer_batch(tuple(transfers), atomic))

    async def reverse(self, transfer_id: Id, reason: str = "", *,
                reversal_id: Id | None = None, metadata: Metadata = None,
                external_ref: str | None = None) -> m.Movement:
        """Undo a transfer with a new movement (admin); the original is then
        ``reversed``. A repeat with the same ``reversal_id`` answers it again."""
        return await self._run(calls.reverse(transfer_id, reason, reversal_id,
                                          calls.References(metadata, external_ref)))

    async def deduct_service_fee(self, account_id: Id, service_type: str, *,
                           charge_id: Id | None = None, metadata: Metadata = None,
                           external_ref: str | None = None) -> m.FeeCharge:
        """The fee of ``service_type`` at the price in force now, to the treasury."""
        return await self._run(calls.charge_fee(account_id, service_type, charge_id,
                                             calls.References(metadata, external_ref)))

    async def withdraw(self, account_id: Id, amount: AmountIn, address: str, *,
                 withdrawal_id: Id | None = None, metadata: Metadata = None,
                 external_ref: str | None = None) -> m.Withdrawal:
        """Send ``amount`` to ``address``, a wallet connected to the account:
        debited now, on the wallet's associated token account once settled.
        Needs a key with ``ledger:withdraw`` (or ``admin``): ForbiddenError."""
        return await self._run(calls.withdraw(account_id, amount, address, withdrawal_id,
                                          calls.References(metadata, external_ref)))

    async def distribute_reward(self, account_id: Id, amount: AmountIn, reward_type: str, *,
                          reward_id: Id | None = None, metadata: Metadata = None,
                          external_ref: str | None = None) -> m.Reward:
        """Paid from the rewards account; ``reward_type`` is read back as
        the movement's ``reward_type``."""
        return await self._run(calls.distribute_reward(account_id, amount, reward_type, reward_id,
                                                    calls.References(metadata, external_ref)))

    async def mint(self, to_account: Id, amount: AmountIn, reason: str = "", *,
             transfer_id: Id | None = None, metadata: Metadata = None,
             external_ref: str | None = None) -> m.Movement:
        return await self._run(calls.mint(to_account, amount, reason, transfer_id,
                                       calls.References(metadata, external_ref)))

    async def burn(self, from_account: Id, amount: AmountIn, reason: str = "", *,
             transfer_id: Id | None = None, metadata: Metadata = None,
             external_ref: str | None = None) -> m.Movement:
        return await self._run(calls.burn(from_account, amount, reason, transfer_id,
                                       calls.References(metadata, external_ref)))

    async def approve(self, owner: Id, spender: Id, amount: AmountIn) -> m.Allowance:
        """Let ``spender`` move up to ``amount`` of the owner's (sets, never adds)."""
        return await self._run(calls.approve(owner, spender, amount))

    async def transfer_from(self, spender: Id, from_account: Id, to_account: Id, amount: AmountIn,
                      reason: str = "", *, transfer_id: Id | None = None,
                      metadata: Metadata = None, external_ref: str | None = None
                      ) -> m.Movement:
        return await self._run(calls.transfer_from(spender, from_account, to_account, amount, reason,
                                                transfer_id,
                                                calls.References(metadata, external_ref)))

    async def place_hold(self, account_id: Id, amount: AmountIn | None = None, *,
                   service_type: str | None = None, expires_in_s: int | None = None,
                   hold_id: Id | None = None, metadata: Metadata = None,
                   external_ref: str | None = None) -> m.Hold:
        """Reserve ``amount`` (or the price of ``service_type``) until captured or voided."""
        return await self._run(calls.place_hold(account_id, amount, service_type, expires_in_s,
                                             hold_id, calls.References(metadata, external_ref)))

    async def capture(self, hold_id: Id, amount: AmountIn | None = None) -> m.HoldCapture:
        return await self._run(calls.capture(hold_id, amount))

    async def void(self, hold_id: Id) -> m.HoldRelease:
        return await self._run(calls.void(hold_id))

    async def connect_wallet(self, account_id: Id, address: str) -> m.WalletChange:
        """A retry whose first attempt connected it answers the connection."""
        try:
            return await self._run(calls.connect_wallet(account_id, address))
        except WalletAlreadyConnectedError as error:
            return await self._already(error, account_id, address, "connected")

    async def disconnect_wallet(self, account_id: Id, address: str) -> m.WalletChange:
        """A retry whose first attempt disconnected it answers the disconnection."""
        try:
            return await self._run(calls.disconnect_wallet(account_id, address))
        except WalletNotFoundError as error:
            return await self._already(error, account_id, address, "disconnected")

    async def _already(self, error: LedgerError, account_id: Id, address: str,
                 status: str) -> m.WalletChange:
        if error.attempts > 1:  # the refusal may be the first attempt's own work
            listing = await self._run(calls.wallets(account_id))
            change = calls.wallet_state(listing, account_id, address, status, self.position)
            if change is not None:
                return change
        raise error

    # Queries

    async def get_balance(self, account_id: Id, *, at: int | str | None = None) -> m.Balance:
        """Now, or ``at`` a log position or an RFC 3339 time."""
        return await self._run(calls.get_balance(account_id, at))

    async def allowance(self, owner: Id, spender: Id) -> m.Allowance:
        return await self._run(calls.allowance(owner, spender))

    def history(self, account_id: Id, *, page_size: int = PAGE_SIZE, order: str = "asc",
                since: TimeIn = None, until: TimeIn = None,
                kind: str | None = None, type: str | None = None,  # noqa: A002
                reward_type: str | None = None) -> AsyncIterator[m.HistoryEntry]:
        """Every change of the account's balance, oldest first (``order="desc"``:
        newest first), page after page; ``since``/``until`` (both included)
        and ``kind`` (a movement kind; ``type``, its older name) narrow it."""
        listing = calls.Listing(order, since, until, kind or type, reward_type)
        return self._pages(
            lambda cursor: calls.history_page(account_id, page_size, cursor, listing))

    def transactions(self, account_id: Id, *, page_size: int = PAGE_SIZE, order: str = "asc",
                     since: TimeIn = None, until: TimeIn = None,
                     kind: str | None = None, reward_type: str | None = None) -> AsyncIterator[m.Transaction]:
        """Every movement of the account with its settlement, page after page,
        in ``order`` and narrowed like ``history``."""
        listing = calls.Listing(order, since, until, kind, reward_type)
        return self._pages(
            lambda cursor: calls.transactions_page(account_id, page_size, cursor, listing))

    def find_transfers(self, external_ref: str, *, page_size: int = PAGE_SIZE,
                       order: str = "asc", since: TimeIn = None, until: TimeIn = None,
                       kind: str | None = None, reward_type: str | None = None
                       ) -> AsyncIterator[m.Transaction]:
        """Every movement whose command carried ``external_ref`` (a
        reference need not be unique), oldest first, page after page;
        narrowed like ``transactions``."""
        listing = calls.Listing(order, since, until, kind, reward_type)
        return self._pages(
            lambda cursor: calls.find_transfers_page(external_ref, page_size, cursor, listing))

    def audit_events(self, *, after_position: int = 0, aggregate_id: Id | None = None,
                     page_size: int = PAGE_SIZE) -> AsyncIterator[m.AuditEvent]:
        """Every stored event after ``after_position`` (of one aggregate),
        as stored, with its amounts and times decoded beside (admin)."""
        return self._pages(lambda cursor: calls.audit_events_page(
            after_position if cursor is None else int(cursor), aggregate_id, page_size))

    async def history_page(self, account_id: Id, *, cursor: str | None = None,
                     page_size: int = PAGE_SIZE, order: str = "asc", since: TimeIn = None,
                     until: TimeIn = None, kind: str | None = None, type: str | None = None,  # noqa: A002
                     reward_type: str | None = None) -> m.Page[m.HistoryEntry]:
        """One page of ``history``, for a screen that pages on demand: pass
        the last page's ``next_cursor`` (with the same ``order`` and
        filters) for the next; ``has_more`` says whether there is one."""
        listing = calls.Listing(order, since, until, kind or type, reward_type)
        return await self._run(calls.history_page(account_id, page_size, cursor, listing))

    async def transactions_page(self, account_id: Id, *, cursor: str | None = None,
                          page_size: int = PAGE_SIZE, order: str = "asc",
                          since: TimeIn = None, until: TimeIn = None,
                          kind: str | None = None, reward_type: str | None = None) -> m.Page[m.Transaction]:
        """One page of ``transactions``, paged like ``history_page``."""
        listing = calls.Listing(order, since, until, kind, reward_type)
        return await self._run(calls.transactions_page(account_id, page_size, cursor, listing))

    async def _pages(self, page_call: Any) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            page = await self._run(page_call(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def events_page(self, after: int = 0, *, types: Sequence[str] | None = None,
                          page_size: int = PAGE_SIZE, wait_s: float = 0) -> m.EventsPage:
        """Business events after ``after`` (a page's ``next_after`` to go on);
        ``wait_s`` long-polls for the next one (keep it below the timeout)."""
        return await self._run(calls.events_page(after, tuple(types or ()), page_size, wait_s))

    async def events(self, after: int = 0, *, types: Sequence[str] | None = None,
                     page_size: int = PAGE_SIZE) -> AsyncIterator[m.Event]:
        """Every business event after ``after`` that the log holds now, page after page."""
        while True:
            page = await self.events_page(after, types=types, page_size=page_size)
            for event in page.items:
                yield event
            if not page.has_more:
                return
            after = page.next_after

    async def get_account(self, account_id: Id) -> m.AccountDetails:
        """One account: kind, status, balance summary, wallets, its token
        account on chain and the balance the last reconciliation read there."""
        return await self._run(calls.get_account(account_id))

    def list_accounts(self, *, kind: str | None = None, status: str | None = None,
                      page_size: int = PAGE_SIZE) -> AsyncIterator[m.AccountSummary]:
        """Every account (of ``kind``, with ``status`` active or frozen), in
        the order they were opened, page after page."""
        return self._pages(lambda cursor: calls.accounts_page(kind, status, page_size, cursor))

    async def price_rules(self, service_type: str) -> m.ServicePricing:
        """A service type's cost now and every rule it was given, each saying
        whether it can still decide a price."""
        return await self._run(calls.price_rules(service_type))

    async def deactivate_price_rule(self, service_type: str, position: int
                                    ) -> m.PriceRuleDeactivation:
        """Withdraw the rule set at log ``position``; a repeat (or a rule no
        longer active) answers the same without writing anything."""
        return await self._run(calls.deactivate_price_rule(service_type, position))

    async def get_transfer(self, transfer_id: Id) -> m.Transaction:
        return await self._run(calls.get_transfer(transfer_id))

    async def wait_for_settlement(self, transfer_id: Id, *, timeout_s: float = SETTLED_WAIT_S,
                            poll_s: float = SETTLED_POLL_S) -> m.Transaction:
        """The movement once the chain has decided it; ``TransactionFailedError``
        if it failed there, ``TimeoutError`` if still pending after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            transaction = await self.get_transfer(transfer_id)
            if calls.settled(transaction):
                return transaction
            if time.monotonic() > deadline:
                raise TimeoutError(f"transfer {transfer_id} still pending after {timeout_s} s")
            await anyio.sleep(poll_s)  # polling the service: there is nothing to wait on

    async def wallets(self, account_id: Id) -> tuple[m.Wallet, ...]:
        return await self._run(calls.wallets(account_id))

    async def system(self) -> m.SystemInfo:
        """The system accounts (treasury, rewards, issuance), the mint, the supply."""
        return await self._run(calls.system())

    async def create_webhook(self, url: str, *, types: Sequence[str] | None = None,
                       secret: str | None = None, after: int | None = None,
                       webhook_id: Id | None = None) -> m.Webhook:
        """Subscribe ``url`` to business events of ``types`` (default: all)
        after log position ``after`` (default: from now on), signed with
        ``secret`` (``whsec_`` + base64; default: one drawn here, answered in
        ``secret``). A repeat with the same ``webhook_id`` creates nothing
        more (admin); one without ``secret`` (so with another drawn) answers
        the subscription with ``secret`` None: to repeat a call whose every
        attempt went unanswered and still know the secret, give your own."""
        call = calls.create_webhook(url, None if types is None else tuple(types), secret,
                                    after, webhook_id)
        try:
            return await self._run(call)
        except IdempotencyConflictError:
            if secret is not None:
                raise
            return await self._run(calls.without_secret(call))

    async def webhooks(self) -> tuple[m.Webhook, ...]:
        """Every subscription, never its secret (admin)."""
        return await self._run(calls.webhooks())

    async def delete_webhook(self, webhook_id: Id) -> m.Webhook:
        """Stop delivering to the subscription and forget it (admin)."""
        return await self._run(calls.delete_webhook(webhook_id))

    async def webhook_deliveries(self, webhook_id: Id, *, limit: int = PAGE_SIZE
                           ) -> tuple[m.WebhookDelivery, ...]:
        """The latest delivery attempts, newest first (admin)."""
        return await self._run(calls.webhook_deliveries(webhook_id, limit))

    async def replay_webhook(self, webhook_id: Id, from_position: int) -> m.Webhook:
        """Deliver again every event at or after ``from_position`` (admin)."""
        return await self._run(calls.replay_webhook(webhook_id, from_position))

    async def audit_replay(self, *, until_position: int | None = None) -> m.ReplayReport:
        """Replay the log afresh and compare it with the read models (admin)."""
        return await self._run(calls.audit_replay(until_position))

    async def assign_deposit(self, finding_id: Id, *, reason: str = "",
                       account_id: Id | None = None) -> m.Movement:
        """Credit an unassigned deposit (a finding of ``deposits``) to the
        account that received it (admin); a repeat answers the credit. One a
        system account (treasury, rewards) received is passed on to the user
        account ``account_id`` names: the answer is that transfer."""
        return await self._run(calls.assign_deposit(finding_id, reason, account_id))

    async def return_deposit(self, finding_id: Id, *, reason: str = "") -> m.Movement:
        """Send an unassigned deposit back to its sender's wallet (admin):
        answers the withdrawal (``get_transfer`` follows it)."""
        return await self._run(calls.return_deposit(finding_id, reason))

    def deposits(self, *, page_size: int = PAGE_SIZE) -> AsyncIterator[m.Finding]:
        """Every deposit the settler did not credit, oldest first, page after
        page (admin); a resolved one names its movement in ``adjusted_by``."""
        return self._pages(lambda cursor: calls.deposits_page(page_size, cursor))

    async def deposits_page(self, *, cursor: str | None = None,
                      page_size: int = PAGE_SIZE) -> m.Page[m.Finding]:
        """One page of ``deposits``: pass the last page's ``next_cursor``."""
        return await self._run(calls.deposits_page(page_size, cursor))

    async def reconcile(self, *, full: bool = False) -> m.Reconciliation:
        """Run one reconciliation of the chain against the log now (admin)."""
        return await self._run(calls.reconcile(full))
