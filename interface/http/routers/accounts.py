"""Accounts: open, freeze, unfreeze; one account, every account; balance,
history and transactions."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from application import commands as c
from domain.errors import InvalidRequest
from interface.http.deps import (
    CAN_READ,
    AdminCommand,
    Ledger,
    Queries,
    Read,
    WriteCommand,
    in_thread,
    planned,
)
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, REPLAYED_STATE, keyed, refusals, replay_aware
from interface.http.schemas.listing import Cursor, Limit, Listing, MovementKind
from interface.http.schemas.requests import OpenAccountRequest
from interface.http.schemas.responses import (
    AccountDetailResponse,
    AccountResponse,
    AccountsPage,
    AccountStatusResponse,
    BalanceResponse,
    HistoryPage,
    TransactionPage,
)
from interface.http.schemas.types import PointInTime, parse_point_in_time
from projections.queries import PAGE_SIZE_DEFAULT, AccountFilter

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=JsonRoute)

KindFilter = Annotated[Literal["user", "treasury", "rewards", "issuance", "external"] | None,
                       Query(description="only accounts of this kind")]
StatusFilter = Annotated[Literal["active", "frozen"] | None,
                         Query(description="only active or only frozen accounts")]


@router.post("", status_code=201, response_model=AccountResponse,
             responses={200: REPLAYED, **refusals(409)})
async def open_account(body: OpenAccountRequest, sent: WriteCommand,
                       response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return AccountResponse.of(outcome)


@router.post("/{account_id}/freeze", response_model=AccountStatusResponse,
             responses={200: REPLAYED_STATE, **refusals(404)})
async def freeze_account(account_id: UUID, sent: AdminCommand, response: Response):
    command = keyed(c.FreezeAccount(account_id), sent.key, what="a freeze")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return AccountStatusResponse.of(outcome)


@router.post("/{account_id}/unfreeze", response_model=AccountStatusResponse,
             responses={200: REPLAYED_STATE, **refusals(404)})
async def unfreeze_account(account_id: UUID, sent: AdminCommand,
                           response: Response):
    command = keyed(c.UnfreezeAccount(account_id), sent.key, what="an unfreeze")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return AccountStatusResponse.of(outcome)


@router.get("", response_model=AccountsPage, dependencies=[CAN_READ])
async def list_accounts(queries: Queries, read: Read, kind: KindFilter = None,
                        status: StatusFilter = None, limit: Limit = PAGE_SIZE_DEFAULT,
                        cursor: Cursor = None):
    """Every account in the order they were opened, a page at a time."""
    point = await planned(queries, read)
    page = await in_thread(queries.accounts, AccountFilter(kind, status), limit=limit,
                           cursor=cursor, point=point)
    return AccountsPage.of(page)


@router.get("/{account_id}", response_model=AccountDetailResponse, dependencies=[CAN_READ],
            responses=refusals(404))
async def get_account(account_id: UUID, queries: Queries, ledger: Ledger, read: Read):
    """One account: kind, status, balance summary, wallets, and its token
    account on chain with the balance the last reconciliation read there."""
    point = await planned(queries, read)
    listing = await in_thread(queries.account, account_id, point=point)
    token_account, chain = await in_thread(ledger.on_chain, account_id)
    return AccountDetailResponse.of(listing, token_account, chain)


@router.get("/{account_id}/balance", response_model=BalanceResponse, dependencies=[CAN_READ],
            responses=refusals(404))
async def get_balance(account_id: UUID, queries: Queries, read: Read, at: PointInTime = None):
    at_position, at_time = parse_point_in_time(at)
    if at_time is not None:  # a time names the last whole commit at or before it
        at_position = await in_thread(queries.position_at, at_time)
    point = await planned(queries, read, at_position=at_position)
    view = await in_thread(queries.balance, account_id, at_position=at_position, point=point)
    return BalanceResponse.of(view)


@router.get("/{account_id}/history", response_model=HistoryPage, dependencies=[CAN_READ],
            responses=refusals(404))
async def get_history(account_id: UUID, queries: Queries, read: Read, pages: Listing,
                      limit: Limit = PAGE_SIZE_DEFAULT, cursor: Cursor = None,
                      kind: MovementKind = None,
                      type: MovementKind = None):  # noqa: A002 - the older name of kind
    """The account's balance changes, oldest first (``order=desc``: newest
    first), optionally in a time range and of one movement kind: ``kind``,
    as transactions name it; ``type``, its older name here, still taken."""
    if kind is not None and type is not None and kind != type:
        raise InvalidRequest("kind and type: the same filter (type is its older name); "
                             "give one")
    point = await planned(queries, read)
    page = await in_thread(queries.history, account_id, limit=limit, cursor=cursor,
                           point=point, listing=pages.filter(kind or type))
    return HistoryPage.of(page)


@router.get("/{account_id}/transactions", response_model=TransactionPage,
            dependencies=[CAN_READ], responses=refusals(404))
async def get_transactions(account_id: UUID, queries: Queries, read: Read, pages: Listing,
                           limit: Limit = PAGE_SIZE_DEFAULT, cursor: Cursor = None,
                           kind: MovementKind = None):
    """The account's movements (either side) with their settlement, oldest
    first (``order=desc``: newest first), optionally filtered."""
    point = await planned(queries, read)
    page = await in_thread(queries.transactions, account_id, limit=limit, cursor=cursor,
                           point=point, listing=pages.filter(kind))
    return TransactionPage.of(page)
