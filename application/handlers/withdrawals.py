"""Withdrawals: tokens leave custody for a wallet connected to the account.

The account is debited at once, like a transfer (and refused like one:
insufficient, frozen), to the external account, the tokens outside custody.
The settler then moves them on chain from the account's custody token
account to the wallet's associated token account; a withdrawal the chain
refuses is compensated back to the account as any failed settlement is.
"""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.handlers.movements import record_movement, replay
from application.handlers.session import AggregateSession
from application.handlers.wallets import find_wallet
from application.outcomes import MovementRecorded
from domain.amounts import check_amount
from domain.errors import WalletNotFound
from domain.movements import WITHDRAWAL
from domain.system import EXTERNAL_ID
from domain.wallet import validate_wallet_address


def withdraw(command: c.Withdraw, session: AggregateSession, now: datetime) -> MovementRecorded:
    """Refused with ``wallet_not_found`` unless ``address`` is a wallet
    connected (live) to the account now, and ``wallet_cooling_down`` while
    it was connected less than the rules' cool-down ago; a repeat answers
    its first answer even if the wallet was disconnected since."""
    existing = session.existing_transfer(command.withdrawal_id, command.id_field)
    if existing is not None:
        return replay(existing, command, session)
    address = validate_wallet_address(command.address)
    amount = check_amount(command.amount)
    session.account(command.account_id)  # an unknown account is account_not_found first
    wallet = find_wallet(session, address)
    if wallet is None or wallet.account_id != command.account_id:
        raise WalletNotFound(
            f"wallet {address} is not connected to account {command.account_id}")
    wallet.check_cooled_down(now, session.rules.wallet_cooldown_s)
    return record_movement(
        session, command, transfer_id=command.withdrawal_id, kind=WITHDRAWAL,
        source_id=command.account_id, destination_id=EXTERNAL_ID, amount=amount,
        reason=f"withdrawal to {address}", now=now, address=address,
    )
