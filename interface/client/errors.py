"""The ledger's refusals as exceptions a caller can catch by rule.

One root, ``LedgerError``; under it one class per error code the service
answers (docs/api.md, "Error codes"), grouped by what a caller does about
them (``NotFoundError``, ``ConflictError``, ``ValidationError``...). A
test checks that every code of the service's status table has its class
here, so a new code cannot be forgotten. Two classes have no service code:
``TransactionFailedError`` (a recorded movement failed on chain) and
``LedgerConnectionError`` (no answer came back after every attempt).

This module imports nothing of the service: the client stands alone.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Every refusal of the ledger, and every failure to reach it."""

    code = "ledger_error"
    status: int | None = None
    attempts = 1
    """How many times the client sent the request before this answer."""

    def __init__(self, message: str, *, status: int | None = None,
                 request_id: str | None = None, item_index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.request_id = request_id
        self.item_index = item_index

    def __str__(self) -> str:
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class LedgerConnectionError(LedgerError):
    """No answer came back after every attempt (connection refused or cut,
    timeout). A command may or may not have been applied: send it again
    with the same id (``command_id``) and the ledger applies it at most once."""

    code = "connection_error"

    def __init__(self, message: str, *, command_id: Any = None) -> None:
        super().__init__(message)
        self.command_id = command_id


class TransactionFailedError(LedgerError):
    """A recorded movement failed on chain (its settlement status is
    ``failed``); ``transaction`` is the movement as the ledger shows it."""

    code = "transaction_failed"

    def __init__(self, message: str, *, transaction: Any = None) -> None:
        super().__init__(message)
        self.transaction = transaction


class UnexpectedAnswerError(LedgerError):
    """An answer not in the API's error shape, or with a code this client
    does not know (a proxy's page, a newer service): ``code`` is the
    service's code when there was one."""

    code = "unexpected_answer"


# By status: what a caller does about it.


class BadRequestError(LedgerError):
    """The request itself is malformed (not JSON, wrong types, too large)."""

    code, status = "bad_request", 400


class UnauthorizedError(LedgerError):
    """No token, or one the ledger does not know."""

    code, status = "unauthorized", 401


class ForbiddenError(LedgerError):
    """The key lacks the route's scope (or admin, to debit a system account)."""

    code, status = "forbidden", 403


class PaymentRequiredError(LedgerError):
    """Not enough to move: the debit was refused and nothing moved."""

    status = 402


class InsufficientBalanceError(PaymentRequiredError):
    """The available balance (balance less holds) does not cover the debit."""

    code = "insufficient_balance"


class AllowanceExceededError(PaymentRequiredError):
    """The spender's allowance does not cover the amount."""

    code = "allowance_exceeded"


class NotFoundError(LedgerError):
    """Nothing with that id (or route)."""

    status = 404


class RouteNotFoundError(NotFoundError):
    """No such route: the client and the service disagree on the API."""

    code = "not_found"


class AccountNotFoundError(NotFoundError):
    """No account with that id (at that position)."""

    code = "account_not_found"


class TransferNotFoundError(NotFoundError):
    """No movement with that id."""

    code = "transfer_not_found"


class HoldNotFoundError(NotFoundError):
    """No hold with that id."""

    code = "hold_not_found"


class WalletNotFoundError(NotFoundError):
    """No wallet connected to that account at that address."""

    code = "wallet_not_found"


class EventNotFoundError(NotFoundError):
    """No event at that position."""

    code = "event_not_found"


class PriceRuleNotFoundError(NotFoundError):
    """No price rule of that service type was set at that log position."""

    code = "price_rule_not_found"


class FindingNotFoundError(NotFoundError):
    """No reconciliation finding with that id."""

    code = "finding_not_found"


class ReconciliationNotFoundError(NotFoundError):
    """No reconciliation has finished yet."""

    code = "reconciliation_not_found"


class MethodNotAllowedError(LedgerError):
    """The route does not take that method."""

    code, status = "method_not_allowed", 405


class RequestTimeoutError(LedgerError):
    """The request's head or body did not reach the service in time."""

    code, status = "request_timeout", 408


class ConflictError(LedgerError):
    """The ledger's state forbids the command; nothing was applied."""

    status = 409


class IdempotencyConflictError(ConflictError):
    """The id was first used with a different request (the message names the field)."""

    code = "idempotency_conflict"


class AccountExistsError(ConflictError):
    """An account with that id exists with other attributes."""

    code = "account_exists"


class WalletAlreadyConnectedError(ConflictError):
    """The address is connected (to this or another account)."""

    code = "wallet_already_connected"


class WalletCoolingDownError(ConflictError):
    """The wallet was connected too recently to receive a withdrawal; the
    message (and Retry-After) says when it may."""

    code = "wallet_cooling_down"


class HoldNotPendingError(ConflictError):
    """The hold was captured, voided or has expired."""

    code = "hold_not_pending"


class TransferNotReversibleError(ConflictError):
    """The movement cannot be reversed (already reversed, or of a kind that is not)."""

    code = "transfer_not_reversible"


class TransferNotSettledError(ConflictError):
    """The movement is still pending settlement on chain: retry the reversal once it settles."""

    code = "transfer_not_settled"


class SettlementConflictError(ConflictError):
    """A settlement step conflicts with the recorded state."""

    code = "settlement_conflict"


class FindingNotAdjustableError(ConflictError):
    """The reconciliation finding cannot be adjusted."""

    code = "finding_not_adjustable"


class NotAnchoredError(ConflictError):
    """No confirmed anchor covers what the proof asks for yet."""

    code = "not_anchored"


class UnsupportedMediaTypeError(LedgerError):
    """A body not declared ``application/json``."""

    code, status = "unsupported_media_type", 415


class ValidationError(LedgerError):
    """A field or a rule refused the request (422); the message names it."""

    status = 422


class InvalidRequestError(ValidationError):
    """A field is missing, of the wrong type, out of range, or refused by a rule."""

    code = "invalid_request"


class InvalidAmountError(ValidationError):
    """Not an exact decimal with at most 8 places, not positive, or over the limit."""

    code = "invalid_amount"


class InvalidWalletAddressError(ValidationError):
    """Not a valid Solana address (base58, 32 bytes)."""

    code = "invalid_wallet_address"


class UnknownServiceTypeError(ValidationError):
    """A fee for a service type the price schedule does not know."""

    code = "unknown_service_type"


class SameAccountError(ValidationError):
    """A movement from an account to itself."""

    code = "same_account"


class SupplyLimitExceededError(ValidationError):
    """The mint would take the supply past its cap."""

    code = "supply_limit_exceeded"


class PositionPastHeadError(ValidationError):
    """A position past the log's head (the message names the head)."""

    code = "position_past_head"


class AccountFrozenError(LedgerError):
    """A party to the command is frozen: it can neither send nor receive."""

    code, status = "account_frozen", 423


class RateLimitedError(LedgerError):
    """The key sent too many requests; ``retry_after_s`` says when to retry."""

    code, status = "rate_limited", 429
    retry_after_s: float | None = None


class InternalServerError(LedgerError):
    """A bug in the service: the command was not applied; quote ``request_id``."""

    code, status = "internal_error", 500


class UnavailableError(LedgerError):
    """The store or the read models could not answer in time; nothing was
    applied. The client retries it with the same id before raising."""

    code, status = "unavailable", 503
    retry_after_s: float | None = None


class StoreDamagedError(LedgerError):
    """A stored row the command needs cannot be read; nothing was applied,
    and retrying will not help (an operator runs the audit)."""

    code, status = "store_damaged", 503


def _codes() -> dict[str, type[LedgerError]]:
    found: dict[str, type[LedgerError]] = {}
    to_visit: list[type[LedgerError]] = [LedgerError]
    while to_visit:
        cls = to_visit.pop()
        to_visit.extend(cls.__subclasses__())
        if "code" in vars(cls) and cls.status is not None:
            found[cls.code] = cls
    return found


ERRORS_BY_CODE: dict[str, type[LedgerError]] = _codes()
"""Each service error code and its class."""


def error_from(status: int, body: Any, retry_after: str | None = None) -> LedgerError:
    """The exception for a refused request's answer (``{"error": {"code",
    "message", "request_id"?, "item_index"?}}``)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or not isinstance(detail.get("code"), str):
        return UnexpectedAnswerError(f"HTTP {status} without the API's error body", status=status)
    error = refusal(detail, status)
    if isinstance(error, RateLimitedError | UnavailableError):
        error.retry_after_s = _seconds(retry_after)
    return error


def refusal(detail: dict[str, Any], status: int | None = None) -> LedgerError:
    """The exception an error object (``{"code", "message", ...}``) names;
    without ``status`` (a batch item's error has none of its own), the
    status its class stands for."""
    code, message = detail["code"], str(detail.get("message", ""))
    cls = ERRORS_BY_CODE.get(code, UnexpectedAnswerError)
    error = cls(message, status=status, request_id=detail.get("request_id"),
                item_index=detail.get("item_index"))
    if cls is UnexpectedAnswerError:
        error.code = code
    return error


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:  # an HTTP date: the bounded backoff applies instead
        return None
