"""Wallets: connect a Solana address to an account, disconnect it.

A wallet lives at its address's ledger id (``domain.wallet.wallet_id``);
one connected before those ids were reserved lives at the legacy id, and
is found there only if a Wallet of the same address holds it: whatever a
client may have put at a legacy id is passed over, never a reason to refuse.
"""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.handlers.session import AggregateSession
from application.outcomes import WalletChanged
from domain.errors import WalletNotFound
from domain.wallet import Wallet, legacy_wallet_id, validate_wallet_address, wallet_id


def connect_wallet(command: c.ConnectWallet, session: AggregateSession, now: datetime) -> WalletChanged:
    address = validate_wallet_address(command.address)
    account = session.account(command.account_id)
    wallet = find_wallet(session, address)
    if wallet is None:
        wallet = Wallet.connect(address, account, now)
        session.add(wallet, primary=True)
    else:
        wallet.reconnect(account, now)
        session.set_primary(wallet.id)
    return WalletChanged(account_id=command.account_id, address=address, connected=True,
                         answered_by=((wallet.id, wallet.version),))


def disconnect_wallet(
    command: c.DisconnectWallet, session: AggregateSession, now: datetime
) -> WalletChanged:
    address = validate_wallet_address(command.address)
    account = session.account(command.account_id)
    wallet = find_wallet(session, address)
    if wallet is None:
        raise WalletNotFound(f"wallet {address} is not connected to account {command.account_id}")
    wallet.disconnect(account, now)
    session.set_primary(wallet.id)
    return WalletChanged(account_id=command.account_id, address=address, connected=False,
                         answered_by=((wallet.id, wallet.version),))


def find_wallet(session: AggregateSession, address: str) -> Wallet | None:
    """The Wallet of ``address``, connected or not; None when never connected."""
    legacy = session.get(legacy_wallet_id(address))
    if isinstance(legacy, Wallet) and legacy.address == address:
        return legacy
    return session.get_typed(wallet_id(address), Wallet)


def connected_wallet(session: AggregateSession, address: str) -> Wallet | None:
    """The wallet at ``address`` if it is connected to an account now."""
    wallet = find_wallet(session, address)
    return wallet if wallet is not None and wallet.is_live else None
