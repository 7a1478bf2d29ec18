"""Each operation of the client as data: method, path, body, how to read
the answer, and whether it is a query (sends the read-your-writes
position) or a command (carries the id a retry repeats).

Shared by the sync and async clients, and free of I/O: the ids are drawn
here, once per call, so every attempt of a call sends the same id.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID, uuid4

from interface.client import models as m
from interface.client.amounts import AmountIn, amount_text, optional_amount_text
from interface.client.errors import TransactionFailedError, refusal
from interface.client.models import Page

T = TypeVar("T")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    query: bool = False
    """A read: sends ``min_position`` (and ``consistency`` when set)."""
    command_id: UUID | None = None
    """The id every attempt repeats (named when no answer came back)."""


def _reader(model: type[T]) -> Callable[[Any], T]:
    return lambda data: m.parse(model, data)


def _page_reader(model: type[ItemT]) -> Callable[[Any], Page[ItemT]]:
    def read(data: Any) -> Page[ItemT]:
        items = tuple(m.parse(model, item) for item in data["items"])
        return Page(items, data.get("next_cursor"), bool(data["has_more"]),
                    int(data["position"]))

    return read


def _id(given: UUID | str | None) -> UUID:
    return uuid4() if given is None else UUID(str(given))


def _command(path: str, model: type[T], body: dict[str, Any], id_field: str | None,
             method: str = "POST") -> Call[T]:
    command_id = body[id_field] if id_field else None
    wire = {key: str(value) if isinstance(value, UUID) else value
            for key, value in body.items() if value is not None}
    return Call(method, path, _reader(model), body=wire, command_id=command_id)


def open_account(account_id: UUID | str | None) -> Call[m.Account]:
    return _command("/v1/accounts", m.Account, {"account_id": _id(account_id)}, "account_id")


@dataclass(frozen=True)
class References:
    """The caller's own references on a movement, stored with it and shown
    by every read of it: ``metadata``, a small flat map of strings, and
    ``external_ref``, which ``find_transfers`` looks movements up by. Left
    out of the body when None; part of the request a retry repeats, so the
    same id with other references is an idempotency conflict."""

    metadata: dict[str, str] | None = None
    external_ref: str | None = None

    def body(self) -> dict[str, Any]:
        return {"metadata": self.metadata, "external_ref": self.external_ref}


NO_REFERENCES = References()


def transfer(source: UUID | str, destination: UUID | str, amount: AmountIn, reason: str,
             transfer_id: UUID | str | None, refs: References = NO_REFERENCES
             ) -> Call[m.Movement]:
    return _command("/v1/transfers", m.Movement, {
        "transfer_id": _id(transfer_id), "from": UUID(str(source)),
        "to": UUID(str(destination)), "amount": amount_text(amount), "reason": reason,
        **refs.body(),
    }, "transfer_id")


@dataclass(frozen=True)
class BatchTransfer:
    """One transfer of ``transfer_batch``: as ``transfer`` takes it (the id
    drawn when not given, once, so a retried batch repeats it)."""

    from_account: UUID | str
    to_account: UUID | str
    amount: AmountIn
    reason: str = ""
    transfer_id: UUID | str | None = None
    metadata: dict[str, str] | None = None
    external_ref: str | None = None

    def body(self) -> dict[str, Any]:
        refs = References(self.metadata, self.external_ref)
        call = transfer(self.from_account, self.to_account, self.amount, self.reason,
                        self.transfer_id, refs)
        return call.body or {}


def transfer_batch(items: tuple[BatchTransfer, ...], atomic: bool) -> Call[m.BatchResult]:
    """Each item's id is drawn here, so every attempt sends the same ids and
    a retried batch answers the applied items ``ok`` without applying them
    again (docs/api.md)."""
    def read(data: Any) -> m.BatchResult:
        return m.BatchResult(tuple(_batch_item(item) for item in data["results"]),
                             int(data["position"]))

    return Call("POST", "/v1/transfers/batch", read,
                body={"transfers": [item.body() for item in items], "atomic": atomic})


def _batch_item(item: Any) -> m.BatchItemResult:
    refused = item.get("error")
    return m.BatchItemResult(UUID(item["transfer_id"]), item["status"],
                             None if refused is None else refusal(refused))


def reverse(transfer_id: UUID | str, reason: str, reversal_id: UUID | str | None,
            refs: References = NO_REFERENCES) -> Call[m.Movement]:
    return _command(f"/v1/transfers/{UUID(str(transfer_id))}/reverse", m.Movement, {
        "reversal_id": _id(reversal_id), "reason": reason, **refs.body(),
    }, "reversal_id")


def transfer_from(spender: UUID | str, source: UUID | str, destination: UUID | str,
                  amount: AmountIn, reason: str, transfer_id: UUID | str | None,
                  refs: References = NO_REFERENCES) -> Call[m.Movement]:
    return _command("/v1/transfers/from", m.Movement, {
        "transfer_id": _id(transfer_id), "spender": UUID(str(spender)),
        "from": UUID(str(source)), "to": UUID(str(destination)),
        "amount": amount_text(amount), "reason": reason, **refs.body(),
    }, "transfer_id")


def charge_fee(account_id: UUID | str, service_type: str, charge_id: UUID | str | None,
               refs: References = NO_REFERENCES) -> Call[m.FeeCharge]:
    return _command("/v1/fees", m.FeeCharge, {
        "charge_id": _id(charge_id), "account_id": UUID(str(account_id)),
        "service_type": service_type, **refs.body(),
    }, "charge_id")


def withdraw(account_id: UUID | str, amount: AmountIn, address: str,
             withdrawal_id: UUID | str | None, refs: References = NO_REFERENCES
             ) -> Call[m.Withdrawal]:
    return _command("/v1/withdrawals", m.Withdrawal, {
        "withdrawal_id": _id(withdrawal_id), "account_id": UUID(str(account_id)),
        "amount": amount_text(amount), "address": address, **refs.body(),
    }, "withdrawal_id")


def distribute_reward(account_id: UUID | str, amount: AmountIn, reward_type: str,
                      reward_id: UUID | str | None, refs: References = NO_REFERENCES
                      ) -> Call[m.Reward]:
    return _command("/v1/rewards", m.Reward, {
        "reward_id": _id(reward_id), "account_id": UUID(str(account_id)),
        "reward_type": reward_type, "amount": amount_text(amount), **refs.body(),
    }, "reward_id")


def mint(destination: UUID | str, amount: AmountIn, reason: str,
         transfer_id: UUID | str | None, refs: References = NO_REFERENCES) -> Call[m.Movement]:
    return _command("/v1/mint", m.Movement, {
        "transfer_id": _id(transfer_id), "to": UUID(str(destination)),
        "amount": amount_text(amount), "reason": reason, **refs.body(),
    }, "transfer_id")


def burn(source: UUID | str, amount: AmountIn, reason: str,
         transfer_id: UUID | str | None, refs: References = NO_REFERENCES) -> Call[m.Movement]:
    return _command("/v1/burn", m.Movement, {
        "transfer_id": _id(transfer_id), "from": UUID(str(source)),
        "amount": amount_text(amount), "reason": reason, **refs.body(),
    }, "transfer_id")


def approve(owner: UUID | str, spender: UUID | str, amount: AmountIn) -> Call[m.Allowance]:
    """Sets the allowance (never adds); a repeat sets the same state again."""
    return _command(f"/v1/allowances/{UUID(str(owner))}/{UUID(str(spender))}", m.Allowance,
                    {"amount": amount_text(amount)}, None, method="PUT")


def place_hold(account_id: UUID | str, amount: AmountIn | None, service_type: str | None,
               expires_in_s: int | None, hold_id: UUID | str | None,
               refs: References = NO_REFERENCES) -> Call[m.Hold]:
    return _command("/v1/holds", m.Hold, {
        "hold_id": _id(hold_id), "account_id": UUID(str(account_id)),
        "amount": optional_amount_text(amount), "service_type": service_type,
        "expires_in_s": expires_in_s, **refs.body(),
    }, "hold_id")


def capture(hold_id: UUID | str, amount: AmountIn | None) -> Call[m.HoldCapture]:
    hold = UUID(str(hold_id))
    call = _command(f"/v1/holds/{hold}/capture", m.HoldCapture,
                    {"amount": optional_amount_text(amount)}, None)
    return Call(call.method, call.path, call.parse, body=call.body, command_id=hold)


def void(hold_id: UUID | str) -> Call[m.HoldRelease]:
    hold = UUID(str(hold_id))
    return Call("POST", f"/v1/holds/{hold}/void", _reader(m.HoldRelease), command_id=hold)


def connect_wallet(account_id: UUID | str, address: str) -> Call[m.WalletChange]:
    return _command(f"/v1/accounts/{UUID(str(account_id))}/wallets", m.WalletChange,
                    {"address": address}, None)


def disconnect_wallet(account_id: UUID | str, address: str) -> Call[m.WalletChange]:
    return Call("DELETE", f"/v1/accounts/{UUID(str(account_id))}/wallets/{address}",
                _reader(m.WalletChange))


def audit_replay(until_position: int | None) -> Call[m.ReplayReport]:
    body = {} if until_position is None else {"until_position": until_position}
    return Call("POST", "/v1/audit/replay", _reader(m.ReplayReport), body=body, query=True)


def reconcile(full: bool) -> Call[m.Reconciliation]:
    """A run is not a movement: a retried run is one more run, nothing doubles."""
    return Call("POST", "/v1/reconciliations", _reader(m.Reconciliation), body={"full": full})


def assign_deposit(finding_id: UUID | str, reason: str,
                   account_id: UUID | str | None = None) -> Call[m.Movement]:
    """Idempotent by the finding: a retry answers the credit again.
    ``account_id`` passes a system account's deposit on to that user
    account (docs/api.md, Deposits); None leaves the body without it."""
    return _finding_command(finding_id, "assign", reason,
                            None if account_id is None else UUID(str(account_id)))


def return_deposit(finding_id: UUID | str, reason: str) -> Call[m.Movement]:
    """Idempotent by the finding: a retry answers the withdrawal again."""
    return _finding_command(finding_id, "return", reason)


def _finding_command(finding_id: UUID | str, action: str, reason: str,
                     account_id: UUID | None = None) -> Call[m.Movement]:
    finding = UUID(str(finding_id))
    call = _command(f"/v1/reconciliations/findings/{finding}/{action}", m.Movement,
                    {"reason": reason or None, "account_id": account_id}, None)
    return replace(call, command_id=finding)


# Queries


def _query(path: str, parse: Callable[[Any], T], **params: Any) -> Call[T]:
    given = {key: value for key, value in params.items() if value is not None}
    return Call("GET", path, parse, params=given, query=True)


def get_balance(account_id: UUID | str, at: int | str | None) -> Call[m.Balance]:
    return _query(f"/v1/accounts/{UUID(str(account_id))}/balance", _reader(m.Balance), at=at)


def allowance(owner: UUID | str, spender: UUID | str) -> Call[m.Allowance]:
    return _query(f"/v1/allowances/{UUID(str(owner))}/{UUID(str(spender))}",
                  _reader(m.Allowance))


TimeIn = datetime | str | None
"""A time a listing filter takes: an aware datetime or RFC 3339 text."""


@dataclass(frozen=True)
class Listing:
    """How ``history``, ``transactions`` and ``find_transfers`` list:
    ``order`` asc (oldest first) or desc (newest first), ``since`` /
    ``until`` (both included; aware datetimes or RFC 3339 text), one
    movement kind and one ``reward_type``."""

    order: str = "asc"
    since: datetime | str | None = None
    until: datetime | str | None = None
    kind: str | None = None
    reward_type: str | None = None

    def params(self, kind_name: str) -> dict[str, Any]:
        return {"order": None if self.order == "asc" else self.order,
                "since": _time_text(self.since), "until": _time_text(self.until),
                kind_name: self.kind, "reward_type": self.reward_type}


def _time_text(moment: datetime | str | None) -> str | None:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("since and until must carry their offset (an aware datetime)")
        return moment.isoformat()
    return moment


def history_page(account_id: UUID | str, page_size: int, cursor: str | None,
                 listing: Listing = Listing()) -> Call[Page[m.HistoryEntry]]:
    return _query(f"/v1/accounts/{UUID(str(account_id))}/history",
                  _page_reader(m.HistoryEntry), limit=page_size, cursor=cursor,
                  **listing.params("kind"))


def transactions_page(account_id: UUID | str, page_size: int, cursor: str | None,
                      listing: Listing = Listing()) -> Call[Page[m.Transaction]]:
    return _query(f"/v1/accounts/{UUID(str(account_id))}/transactions",
                  _page_reader(m.Transaction), limit=page_size, cursor=cursor,
                  **listing.params("kind"))


def find_transfers_page(external_ref: str, page_size: int, cursor: str | None,
                        listing: Listing = Listing()) -> Call[Page[m.Transaction]]:
    return _query("/v1/transfers", _page_reader(m.Transaction), external_ref=external_ref,
                  limit=page_size, cursor=cursor, **listing.params("kind"))


def deposits_page(page_size: int, cursor: str | None) -> Call[Page[m.Finding]]:
    """Not a read-model query: the service reads the settlement store after
    catching it up with the whole log, so it takes no ``min_position``."""
    given = {key: value for key, value in {"limit": page_size, "cursor": cursor}.items()
             if value is not None}
    return Call("GET", "/v1/reconciliations/deposits", _page_reader(m.Finding), params=given)


def audit_events_page(after_position: int, aggregate_id: UUID | str | None, page_size: int
                      ) -> Call[Page[m.AuditEvent]]:
    """A page whose ``next_cursor`` is the ``after_position`` of the next
    (the listing goes on from a position, not a cursor)."""
    def read(data: Any) -> Page[m.AuditEvent]:
        after = data["next_after_position"]
        return Page(tuple(m.parse(m.AuditEvent, item) for item in data["items"]),
                    None if after is None else str(after), after is not None,
                    int(data["position"]))

    aggregate = None if aggregate_id is None else str(UUID(str(aggregate_id)))
    return _query("/v1/audit/events", read, after_position=after_position,
                  aggregate_id=aggregate, limit=page_size)


def get_account(account_id: UUID | str) -> Call[m.AccountDetails]:
    def read(data: Any) -> m.AccountDetails:
        wallets = tuple(m.parse(m.Wallet, item) for item in data["wallets"])
        return m.parse(m.AccountDetails, {**data, "wallets": wallets})

    return _query(f"/v1/accounts/{UUID(str(account_id))}", read)


def accounts_page(kind: str | None, status: str | None, page_size: int, cursor: str | None
                  ) -> Call[Page[m.AccountSummary]]:
    return _query("/v1/accounts", _page_reader(m.AccountSummary), kind=kind, status=status,
                  limit=page_size, cursor=cursor)


def price_rules(service_type: str) -> Call[m.ServicePricing]:
    def read(data: Any) -> m.ServicePricing:
        rules = tuple(m.parse(m.PriceRule, rule) for rule in data["rules"])
        return m.parse(m.ServicePricing, {**data, "rules": rules})

    return _query(f"/v1/pricing/{quote(service_type, safe='')}", read)


def deactivate_price_rule(service_type: str, position: int) -> Call[m.PriceRuleDeactivation]:
    path = f"/v1/pricing/{quote(service_type, safe='')}/rules/{int(position)}/deactivate"
    return Call("POST", path, _reader(m.PriceRuleDeactivation))


def get_transfer(transfer_id: UUID | str) -> Call[m.Transaction]:
    return _query(f"/v1/transfers/{UUID(str(transfer_id))}", _reader(m.Transaction))


def wallets(account_id: UUID | str) -> Call[tuple[m.Wallet, ...]]:
    return _query(f"/v1/accounts/{UUID(str(account_id))}/wallets",
                  lambda data: tuple(m.parse(m.Wallet, item) for item in data["wallets"]))


def system() -> Call[m.SystemInfo]:
    return _query("/v1/system", _reader(m.SystemInfo))


def events_page(after: int, types: tuple[str, ...] | None, page_size: int, wait_s: float
                ) -> Call[m.EventsPage]:
    """Not a read of the read models: no ``min_position`` (the events come from the log)."""
    def read(data: Any) -> m.EventsPage:
        items = tuple(m.parse(m.Event, item) for item in data["items"])
        return m.EventsPage(items, int(data["next_after"]), bool(data["has_more"]),
                            int(data["position"]))

    params = {"after": after, "limit": page_size, "types": ",".join(types) if types else None,
              "wait_s": wait_s or None}
    return Call("GET", "/v1/events", read,
                params={key: value for key, value in params.items() if value is not None})


# Webhook subscriptions (admin): not reads of the read models, so no
# min_position; a subscription is created once per webhook_id.


WEBHOOK_SECRET_BYTES = 24
"""As many random bytes as the service draws for a secret it generates
(interface/http/routers/webhooks.py: 24 to 64 accepted)."""


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret, ``whsec_`` and base64 of 24
    random bytes: the one the service would have generated."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()


def create_webhook(url: str, types: tuple[str, ...] | None, secret: str | None,
                   after: int | None, webhook_id: UUID | str | None) -> Call[m.Webhook]:
    """Without ``secret``, one drawn here, once per call: every attempt
    sends it, so an attempt whose answer was lost cannot leave a secret
    only the service knows, and the answer carries it (the service
    answers a given secret as null)."""
    drawn = new_webhook_secret() if secret is None else None
    call = _command("/v1/webhooks", m.Webhook, {
        "webhook_id": _id(webhook_id), "url": url,
        "types": None if types is None else list(types), "secret": secret or drawn,
        "after": after,
    }, "webhook_id")
    if drawn is None:
        return call
    return replace(call, parse=lambda data: replace(m.parse(m.Webhook, data), secret=drawn))


def without_secret(call: Call[m.Webhook]) -> Call[m.Webhook]:
    """``call`` with its drawn secret left out, for a repeat of a
    subscription made earlier (another call, another secret): the service
    then compares only ``url`` and ``types``, and answers the secret null."""
    body = {key: value for key, value in (call.body or {}).items() if key != "secret"}
    return replace(call, body=body, parse=_reader(m.Webhook))


def webhooks() -> Call[tuple[m.Webhook, ...]]:
    return Call("GET", "/v1/webhooks", _items_reader(m.Webhook))


def delete_webhook(webhook_id: UUID | str) -> Call[m.Webhook]:
    return Call("DELETE", f"/v1/webhooks/{UUID(str(webhook_id))}", _reader(m.Webhook))


def webhook_deliveries(webhook_id: UUID | str, limit: int
                       ) -> Call[tuple[m.WebhookDelivery, ...]]:
    return Call("GET", f"/v1/webhooks/{UUID(str(webhook_id))}/deliveries",
                _items_reader(m.WebhookDelivery), params={"limit": limit})


def replay_webhook(webhook_id: UUID | str, from_position: int) -> Call[m.Webhook]:
    return Call("POST", f"/v1/webhooks/{UUID(str(webhook_id))}/replay", _reader(m.Webhook),
                body={"from_position": from_position})


def _items_reader(model: type[ItemT]) -> Callable[[Any], tuple[ItemT, ...]]:
    return lambda data: tuple(m.parse(model, item) for item in data["items"])


# What the clients conclude from answers


def settled(transaction: m.Transaction) -> bool:
    """Whether the chain has decided the movement; a failure raised."""
    if transaction.status == "failed":
        raise TransactionFailedError(
            f"transfer {transaction.transfer_id} failed on chain", transaction=transaction)
    return transaction.status != "pending"


def wallet_state(listing: tuple[m.Wallet, ...], account_id: UUID | str, address: str,
                 status: str, position: int) -> m.WalletChange | None:
    """The change a retried connect or disconnect asked for, when the
    account's wallets show it already made (by the lost first attempt)."""
    account = UUID(str(account_id))
    for wallet in listing:
        if wallet.address == address and wallet.account_id == account and wallet.status == status:
            return m.WalletChange(account, address, status, position)
    return None
