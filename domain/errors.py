"""Every way a ledger command can be refused, under one root.

Each error names the rule it protects and carries a stable ``code`` (the
codes of the HTTP contract); the interface maps codes to status codes in one
place. Messages are for people and never carry secrets.
"""

from __future__ import annotations

from typing import ClassVar


class LedgerError(Exception):
    """Root of all refusals. A refused command writes nothing."""

    code: ClassVar[str] = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(LedgerError):
    """A request field is missing, malformed or out of its bounds."""

    code = "invalid_request"


class InvalidAmount(LedgerError):
    """An amount is not an exact positive decimal within the single-amount limit."""

    code = "invalid_amount"


class InvalidWalletAddress(LedgerError):
    """A wallet address is not a base58 ed25519 public key."""

    code = "invalid_wallet_address"


class UnknownServiceType(LedgerError):
    """A fee or hold names a service type the price schedule does not know."""

    code = "unknown_service_type"


class SameAccount(LedgerError):
    """A movement names one account as both its source and destination."""

    code = "same_account"


class AccountNotFound(LedgerError):
    """A command names an account that was never opened."""

    code = "account_not_found"


class TransferNotFound(LedgerError):
    """A command names a transfer that was never recorded."""

    code = "transfer_not_found"


class HoldNotFound(LedgerError):
    """A capture or void names a hold that was never placed."""

    code = "hold_not_found"


class WalletNotFound(LedgerError):
    """A disconnect names an address that is not live on that account."""

    code = "wallet_not_found"


class PriceRuleNotFound(LedgerError):
    """No price rule of that service type was set at that log position."""

    code = "price_rule_not_found"


class IdempotencyConflict(LedgerError):
    """A command id was already used for a different request."""

    code = "idempotency_conflict"


class AccountExists(LedgerError):
    """An account id was already opened with different attributes."""

    code = "account_exists"


class WalletAlreadyConnected(LedgerError):
    """A wallet address is already live on an account."""

    code = "wallet_already_connected"


class WalletCoolingDown(LedgerError):
    """A withdrawal to a wallet connected too recently to receive one: the
    cool-down of new withdrawal addresses. ``retry_after_s``: how long until
    it may (also the answer's Retry-After)."""

    code = "wallet_cooling_down"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class HoldNotPending(LedgerError):
    """A capture or void of a hold that was captured, voided or has expired."""

    code = "hold_not_pending"


class TransferNotReversible(LedgerError):
    """A reversal of a hold, a reversal, or a transfer already reversed."""

    code = "transfer_not_reversible"


class TransferNotSettled(LedgerError):
    """A reversal of a movement still pending settlement on chain: refused
    until it settles, since the original may yet fail there, and a reversal
    that settled would move other tokens back (retry once it settles)."""

    code = "transfer_not_settled"


class InsufficientBalance(LedgerError):
    """The available balance (posted minus held) is below the amount."""

    code = "insufficient_balance"


class AllowanceExceeded(LedgerError):
    """A spender moves more than the owner allowed it."""

    code = "allowance_exceeded"


class SupplyLimitExceeded(LedgerError):
    """A mint would take circulating supply past its ceiling."""

    code = "supply_limit_exceeded"


class AccountFrozen(LedgerError):
    """A frozen account can neither send nor receive."""

    code = "account_frozen"


class SettlementConflict(LedgerError):
    """A settlement step names a submission that is not the one in force for
    the movement (another settler replaced it, or it already has an outcome),
    or a movement that does not settle on chain."""

    code = "settlement_conflict"


class FindingNotFound(LedgerError):
    """An adjustment names a reconciliation finding that was never recorded."""

    code = "finding_not_found"


class FindingNotAdjustable(LedgerError):
    """An adjustment names a finding that is not a balance difference, one
    already adjusted, or one made stale by later settlements."""

    code = "finding_not_adjustable"
