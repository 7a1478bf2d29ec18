"""A Python client of the DEAL ledger, in the platform's token-service
words (docs/client.md): ``LedgerClient`` (sync) and ``AsyncLedgerClient``,
built on httpx. Amounts are ``Decimal`` in and out, ids are drawn when not
given, a lost answer is retried with the same id, and reads reflect the
client's own writes. Refusals are typed exceptions under ``LedgerError``.

It imports nothing of the service, so a calling service needs only this
package, httpx and tenacity.
"""

from interface.client.aio import AsyncLedgerClient
from interface.client.calls import BatchTransfer
from interface.client.core import RetryPolicy
from interface.client.errors import *  # noqa: F403 - every refusal, by name
from interface.client.errors import ERRORS_BY_CODE, LedgerError
from interface.client.models import (
    Account,
    Allowance,
    AuditEvent,
    Balance,
    BatchItemResult,
    BatchResult,
    FeeCharge,
    HistoryEntry,
    Hold,
    HoldCapture,
    HoldRelease,
    Movement,
    Page,
    Reconciliation,
    ReplayReport,
    Reward,
    SystemInfo,
    Transaction,
    Wallet,
    WalletChange,
    Webhook,
    WebhookDelivery,
)
from interface.client.sync import LedgerClient

__all__ = [
    "ERRORS_BY_CODE", "Account", "Allowance", "AsyncLedgerClient", "AuditEvent", "Balance", "BatchItemResult",
    "BatchResult", "BatchTransfer", "FeeCharge",
    "HistoryEntry", "Hold", "HoldCapture", "HoldRelease", "LedgerClient", "LedgerError",
    "Movement", "Page", "Reconciliation", "ReplayReport", "RetryPolicy", "Reward", "SystemInfo",
    "Transaction", "Wallet", "WalletChange", "Webhook", "WebhookDelivery",
]
