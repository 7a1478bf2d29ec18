"""Solana wallets connected to an account."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Response

from application import commands as c
from domain.wallet import validate_wallet_address
from interface.http.deps import (
    CAN_READ,
    Queries,
    Read,
    ReadOptions,
    WriteCommand,
    in_thread,
    planned,
)
from interface.http.json_body import JsonRoute
from interface.http.routers import keyed, refusals, replay_aware
from interface.http.schemas.requests import WalletRequest
from interface.http.schemas.responses import WalletChangedResponse, WalletsResponse
from interface.http.schemas.types import AddressText

router = APIRouter(prefix="/v1/accounts/{account_id}/wallets", tags=["wallets"], route_class=JsonRoute)

Address = Annotated[AddressText, Path(description="a base58 Solana public key")]


@router.post("", status_code=201, response_model=WalletChangedResponse,
             responses=refusals(404, 409, 423))
async def connect_wallet(account_id: UUID, body: WalletRequest, sent: WriteCommand,
                         queries: Queries, response: Response):
    """422 ``invalid_wallet_address`` also for an address the ledger controls:
    its keys (fee payer, custody owner, mint authority, custody key, anchor
    signer), the mint, and any account's deposit address."""
    command = keyed(body.command(account_id), sent.key, what="a wallet connection")
    address = validate_wallet_address(command.address)
    point = await planned(queries, ReadOptions())
    await in_thread(sent.ledger.refuse_ledger_address, address, account_id, point)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return WalletChangedResponse.of(outcome)


@router.delete("/{address}", response_model=WalletChangedResponse, responses=refusals(404, 423))
async def disconnect_wallet(account_id: UUID, address: Address, sent: WriteCommand,
                            response: Response):
    command = keyed(c.DisconnectWallet(account_id, address), sent.key, what="a wallet disconnection")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return WalletChangedResponse.of(outcome)


@router.get("", response_model=WalletsResponse, dependencies=[CAN_READ], responses=refusals(404))
async def list_wallets(account_id: UUID, queries: Queries, read: Read):
    point = await planned(queries, read)
    listing = await in_thread(queries.wallets, account_id, point=point)
    return WalletsResponse.of(account_id, listing)
