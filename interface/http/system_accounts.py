"""Only an admin key may debit the system accounts through generic commands.

The treasury holds the platform's revenue and the rewards pool its reward
budget; the issuance account is the other side of mint and burn (the domain
refuses it in anything else). A ``ledger:write`` key moves tokens between
users, charges fees into the treasury and pays rewards out of the pool
through ``/v1/rewards``; it must not move the system's own funds anywhere
else: not by a transfer, a batch item or a spender's transfer from a
system account, not by an allowance a system account grants, nor by a
hold or a fee that reserves or takes system funds. Those need ``admin``
(403 ``forbidden`` otherwise), as mint and burn do.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from fastapi import Request

from application import commands as c
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from interface.http.auth import Principal, Scope
from interface.http.errors import Forbidden

SYSTEM_ACCOUNTS = frozenset({TREASURY_ID, REWARDS_ID, ISSUANCE_ID})


def debited_accounts(command: c.Command) -> Iterator[UUID]:
    """The accounts whose funds a command moves, reserves or lets others move."""
    if isinstance(command, c.TransferFunds | c.TransferFrom):
        yield command.source
    elif isinstance(command, c.TransferBatch):
        for item in command.transfers:
            yield item.source
    elif isinstance(command, c.ChargeFee | c.PlaceHold):
        yield command.account_id
    elif isinstance(command, c.SetAllowance):
        yield command.owner


def check_system_debit(request: Request, command: c.Command) -> c.Command:
    """The command, once the caller may debit every account it debits."""
    principal: Principal = request.state.principal
    if principal.allows(Scope.ADMIN):
        return command
    for account in debited_accounts(command):
        if account in SYSTEM_ACCOUNTS:
            raise Forbidden(
                f"key {principal.name!r} lacks the 'admin' scope needed to debit system "
                f"account {account}"
            )
    return command
