"""The Wallet aggregate: a Solana address connected to one ledger account.

The aggregate id is derived from the address, so two processes connecting
the same address race for version 1 of the same aggregate and the event
store's version check lets exactly one win. It is a ledger id (``domain.ids``,
version 8), which no client may choose, so no client can take an address's
id first and keep it from ever connecting.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate
from solders.pubkey import Pubkey

from domain.account import Account
from domain.errors import (
    InvalidWalletAddress,
    WalletAlreadyConnected,
    WalletCoolingDown,
    WalletNotFound,
)
from domain.ids import ledger_id, legacy_ledger_id

_WALLET_NAMESPACE = UUID("6c0e4a62-1f0b-5c55-9d3e-7b4f0a8f2d11")
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ADDRESS_LENGTH_MAX = 44
"""A base58 encoding of 32 bytes has at most 44 characters."""


def wallet_id(address: str) -> UUID:
    """Where a wallet is connected from now on: an id no client may choose."""
    return ledger_id(_WALLET_NAMESPACE, address)


def legacy_wallet_id(address: str) -> UUID:
    """Where a wallet connected before version 8 was reserved lives. Any
    client could have taken this id first, so only a Wallet of the same
    address found there counts (``application.handlers.wallets``)."""
    return legacy_ledger_id(_WALLET_NAMESPACE, address)


def validate_wallet_address(address: object) -> str:
    """Return the address if it is a base58 ed25519 public key; else say why."""
    if not isinstance(address, str):
        raise InvalidWalletAddress("wallet address must be a string")
    if not address:
        raise InvalidWalletAddress("wallet address is empty")
    if len(address) > ADDRESS_LENGTH_MAX:
        raise InvalidWalletAddress(
            f"wallet address is {len(address)} characters; a base58 public key has at most "
            f"{ADDRESS_LENGTH_MAX}"
        )
    for position, char in enumerate(address):
        if char not in _BASE58_ALPHABET:
            raise InvalidWalletAddress(
                f"wallet address is not base58: {char!r} at position {position}"
            )
    size = _base58_decoded_size(address)
    if size != 32:
        raise InvalidWalletAddress(f"wallet address decodes to {size} bytes, not 32")
    key = Pubkey.from_string(address)
    if key == Pubkey.default():
        # 32 zero bytes decode to a curve point, but no one holds its key:
        # it is the System Program's id, and tokens sent to it are lost
        raise InvalidWalletAddress("wallet address is the all-zero key (the System Program)")
    if not key.is_on_curve():
        raise InvalidWalletAddress(
            "wallet address is off the ed25519 curve (a program-derived address has no "
            "private key, so it cannot be a user's wallet)"
        )
    return address


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _base58_decoded_size(address: str) -> int:
    value = 0
    for char in address:
        value = value * 58 + _BASE58_ALPHABET.index(char)
    leading_zeros = len(address) - len(address.lstrip("1"))
    return leading_zeros + (value.bit_length() + 7) // 8


class Wallet(Aggregate):
    class Connected(Aggregate.Created):
        address: str
        account_id: UUID

    class Disconnected(Aggregate.Event):
        account_id: UUID

        def apply(self, wallet: Wallet) -> None:
            wallet.account_id = None

    class Reconnected(Aggregate.Event):
        account_id: UUID

        def apply(self, wallet: Wallet) -> None:
            wallet.account_id = self.account_id
            wallet.reconnected_at = self.timestamp

    reconnected_at: datetime | None = None
    """When it was last connected again after a disconnect (None: never)."""

    def __init__(self, address: str, account_id: UUID) -> None:
        self.address = address
        self.account_id: UUID | None = account_id

    @property
    def connected_at(self) -> datetime:
        """When it was connected to its account: the cool-down runs from here."""
        return self.reconnected_at or self.created_on

    def check_cooled_down(self, now: datetime, cooldown_s: float) -> None:
        """A wallet connected moments ago may not be the account owner's (a
        stolen write key connects one as easily as a withdraw key sends to
        it), and tokens sent out cannot be called back: withdrawals to it
        wait ``cooldown_s`` from its last connection, time for the owner to
        see it (GET /v1/accounts/{id}, the events) and disconnect it.
        A connection time after ``now`` (a clock stepped back, another
        writer host's clock behind) counts as ``now``: the wait is never
        longer than the cool-down, and a cool-down of 0 never refuses."""
        if cooldown_s <= 0:
            return
        elapsed = max(timedelta(0), now - self.connected_at)
        remaining = timedelta(seconds=cooldown_s) - elapsed
        if remaining <= timedelta(0):
            return
        ready_at = now + remaining
        wait_s = max(1, math.ceil(remaining.total_seconds()))
        raise WalletCoolingDown(
            f"wallet {self.address} was connected at {_rfc3339(self.connected_at)}: a new "
            f"withdrawal address receives nothing for {cooldown_s:g} s, so it may receive from "
            f"{_rfc3339(ready_at)} on (retry in {wait_s} s)", wait_s)

    @classmethod
    def connect(cls, address: str, account: Account, now: datetime) -> Wallet:
        """Connecting is the account's act: a frozen account connects nothing."""
        address = validate_wallet_address(address)
        account.check_not_frozen()
        return cls._create(
            cls.Connected, id=wallet_id(address), address=address, account_id=account.id,
            timestamp=now,
        )

    @property
    def is_live(self) -> bool:
        return self.account_id is not None

    def reconnect(self, account: Account, now: datetime) -> None:
        account.check_not_frozen()
        if self.is_live:
            raise WalletAlreadyConnected(f"wallet {self.address} is already connected")
        self.trigger_event(self.Reconnected, account_id=account.id, timestamp=now)

    def disconnect(self, account: Account, now: datetime) -> None:
        """Freeze binds the owner here too: a frozen account's wallets stay
        as they are until it is unfrozen."""
        if self.account_id != account.id:
            raise WalletNotFound(f"wallet {self.address} is not connected to account {account.id}")
        account.check_not_frozen()
        self.trigger_event(self.Disconnected, account_id=account.id, timestamp=now)
