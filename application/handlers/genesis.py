"""Genesis: the system accounts, the price schedule, the initial supply in
the treasury and the rewards pool. Every step is skipped when already done,
so genesis can run at every start."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from application import commands as c
from application.handlers.session import AggregateSession
from application.outcomes import GenesisDone
from domain.account import Account
from domain.amounts import INITIAL_SUPPLY
from domain.movements import MINT, TRANSFER, move
from domain.pricing import PriceSchedule
from domain.system import (
    GENESIS_MINT_ID,
    GENESIS_REWARDS_FUNDING_ID,
    ISSUANCE_ID,
    PRICE_SCHEDULE_ID,
    REWARDS_FUNDING,
    REWARDS_ID,
    SYSTEM_ACCOUNTS,
    TREASURY_ID,
)
from domain.transfer import Transfer


def run_genesis(command: c.Genesis, session: AggregateSession, now: datetime) -> GenesisDone:
    for kind, account_id in SYSTEM_ACCOUNTS.items():
        if session.get(account_id) is None:
            session.add(Account.open(account_id, kind, now))
    if session.get(PRICE_SCHEDULE_ID) is None:
        session.add(PriceSchedule._create(PriceSchedule.Started, id=PRICE_SCHEDULE_ID, timestamp=now))
    _genesis_movement(
        session, GENESIS_MINT_ID, ISSUANCE_ID, TREASURY_ID, INITIAL_SUPPLY, MINT,
        "genesis: initial supply", now,
    )
    _genesis_movement(
        session, GENESIS_REWARDS_FUNDING_ID, TREASURY_ID, REWARDS_ID, REWARDS_FUNDING, TRANSFER,
        "genesis: rewards pool", now,
    )
    session.set_primary(GENESIS_REWARDS_FUNDING_ID)
    return GenesisDone(
        treasury_id=TREASURY_ID, rewards_id=REWARDS_ID, issuance_id=ISSUANCE_ID,
        supply=INITIAL_SUPPLY,
    )


def _genesis_movement(
    session: AggregateSession, transfer_id: UUID, source_id: UUID, destination_id: UUID,
    amount: int, kind: str, reason: str, now: datetime,
) -> None:
    if session.get(transfer_id) is not None:
        return
    source, destination = session.account(source_id), session.account(destination_id)
    posting = move(
        source, destination, transfer_id=transfer_id, amount=amount, kind=kind, reason=reason,
        now=now,
    )
    session.add(Transfer.record(
        transfer_id, kind=kind, source=source_id, destination=destination_id, amount=amount,
        reason=reason, fingerprint="genesis", source_balance_after=posting.source_balance_after,
        destination_balance_after=posting.destination_balance_after, now=now,
    ))
