"""Wallets: connect a Solana address to an account, disconnect it."""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.handlers.session import AggregateSession
from application.outcomes import WalletChanged
from domain.errors import WalletNotFound
from domain.wallet import Wallet, validate_wallet_address, wallet_id


def connect_wallet(command: c.ConnectWallet, session: AggregateSession, now: datetime) -> WalletChanged:
    address = validate_wallet_address(command.address)
    account = session.account(command.account_id)
    wallet = session.get_typed(wallet_id(address), Wallet)
    if wallet is None:
        session.add(Wallet.connect(address, account, now), primary=True)
    else:
        wallet.reconnect(account, now)
        session.set_primary(wallet.id)
    return WalletChanged(account_id=command.account_id, address=address, connected=True)


def disconnect_wallet(
    command: c.DisconnectWallet, session: AggregateSession, now: datetime
) -> WalletChanged:
    address = validate_wallet_address(command.address)
    account = session.account(command.account_id)
    wallet = session.get_typed(wallet_id(address), Wallet)
    if wallet is None:
        raise WalletNotFound(f"wallet {address} is not connected to account {command.account_id}")
    wallet.disconnect(account, now)
    session.set_primary(wallet.id)
    return WalletChanged(account_id=command.account_id, address=address, connected=False)
