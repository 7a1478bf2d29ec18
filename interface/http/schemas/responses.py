"""What the API answers. Amounts are exact decimal strings, the shortest
form (``format_amount``: "0.1", "1000"); times are RFC 3339 UTC. Each
response builds itself from one outcome or view with ``of``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from application import outcomes as o
from application.settlement.anchor_audit import AnchorAudit
from application.settlement.store import ChainBalance
from domain.account import ACCOUNT_KINDS
from domain.amounts import format_amount
from domain.movements import MOVEMENT_KINDS
from domain.rfc3339 import parse_time
from domain.transfer import CLIENT_STATUSES
from interface.http.errors import STATUS_BY_CODE
from interface.http.schemas.types import AmountText, SignedAmountText
from projections import queries as q


class Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


ErrorCode = StrEnum(  # type: ignore[misc]  # members from the table, not literals
    "ErrorCode", {code: code for code in sorted(STATUS_BY_CODE)})
"""Every error code the service answers, from the one status table: an
enum in the OpenAPI document, so a generated client can name each one."""


class ItemError(BaseModel):
    code: ErrorCode = Field(examples=["insufficient_balance"])
    message: str


class ErrorDetail(ItemError):
    item_index: int | None = Field(
        None, description="for a refused atomic batch: the index of the item that failed"
    )
    request_id: str | None = Field(
        None, description="the request's X-Request-ID (the client's, or one the service made)"
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail


class AccountResponse(Response):
    account_id: UUID
    kind: str
    position: int

    @classmethod
    def of(cls, outcome: o.AccountOpened) -> AccountResponse:
        return cls(account_id=outcome.account_id, kind=outcome.kind, position=_pos(outcome))


class AccountStatusResponse(Response):
    account_id: UUID
    frozen: bool
    position: int

    @classmethod
    def of(cls, outcome: o.AccountStatusChanged) -> AccountStatusResponse:
        return cls(account_id=outcome.account_id, frozen=outcome.frozen, position=_pos(outcome))


class MovementResponse(Response):
    transfer_id: UUID
    kind: str = Field(description=f"one of: {', '.join(MOVEMENT_KINDS)}")
    status: str = Field(description=f"one of: {', '.join(CLIENT_STATUSES)} (README: status)")
    amount: AmountText
    source: UUID = Field(alias="from")
    destination: UUID = Field(alias="to")
    from_balance: SignedAmountText
    to_balance: SignedAmountText
    position: int

    @classmethod
    def of(cls, outcome: o.MovementRecorded) -> MovementResponse:
        return cls(
            transfer_id=outcome.transfer_id, kind=outcome.kind, status=outcome.status,
            amount=format_amount(outcome.amount), source=outcome.source,
            destination=outcome.destination,
            from_balance=format_amount(outcome.source_balance),
            to_balance=format_amount(outcome.destination_balance), position=_pos(outcome),
        )


class BatchItemResponse(Response):
    transfer_id: UUID
    status: Literal["ok", "error"]
    error: ItemError | None = None


class BatchResponse(Response):
    results: list[BatchItemResponse]
    position: int

    @classmethod
    def of(cls, outcome: o.BatchRecorded) -> BatchResponse:
        return cls(results=[_batch_item(item) for item in outcome.results], position=_pos(outcome))


def _batch_item(item: o.BatchItemResult) -> BatchItemResponse:
    if item.error is not None:
        return BatchItemResponse(
            transfer_id=item.transfer_id, status="error",
            error=ItemError(code=item.error.code, message=item.error.message),
        )
    return BatchItemResponse(transfer_id=item.transfer_id, status="ok")


class FeeResponse(Response):
    charge_id: UUID
    account_id: UUID
    fee: AmountText
    balance: SignedAmountText
    status: str
    position: int

    @classmethod
    def of(cls, outcome: o.MovementRecorded) -> FeeResponse:
        return cls(
            charge_id=outcome.transfer_id, account_id=outcome.source,
            fee=format_amount(outcome.amount), balance=format_amount(outcome.source_balance),
            status=outcome.status, position=_pos(outcome),
        )


class WithdrawalResponse(Response):
    withdrawal_id: UUID
    account_id: UUID
    address: str = Field(description="the connected wallet the tokens go to on chain")
    amount: AmountText
    balance: SignedAmountText = Field(description="the account's balance right after it")
    status: str = Field(description="pending until the tokens are on the wallet's associated "
                                    "token account (settled); failed if the chain refused it")
    position: int

    @classmethod
    def of(cls, outcome: o.MovementRecorded, address: str) -> WithdrawalResponse:
        return cls(
            withdrawal_id=outcome.transfer_id, account_id=outcome.source, address=address,
            amount=format_amount(outcome.amount), balance=format_amount(outcome.source_balance),
            status=outcome.status, position=_pos(outcome),
        )


class RewardResponse(Response):
    reward_id: UUID
    account_id: UUID
    amount: AmountText
    balance: SignedAmountText
    status: str
    position: int

    @classmethod
    def of(cls, outcome: o.MovementRecorded) -> RewardResponse:
        return cls(
            reward_id=outcome.transfer_id, account_id=outcome.destination,
            amount=format_amount(outcome.amount),
            balance=format_amount(outcome.destination_balance), status=outcome.status,
            position=_pos(outcome),
        )


class HoldResponse(Response):
    hold_id: UUID
    account_id: UUID
    status: Literal["pending"] = "pending"
    amount: AmountText
    service_type: str | None
    expires_at: datetime
    available: SignedAmountText
    position: int

    @classmethod
    def of(cls, outcome: o.HoldPlaced) -> HoldResponse:
        return cls(
            hold_id=outcome.hold_id, account_id=outcome.account_id,
            amount=format_amount(outcome.amount), service_type=outcome.service_type,
            expires_at=outcome.expires_at, available=format_amount(outcome.available),
            position=_pos(outcome),
        )


class HoldCapturedResponse(Response):
    hold_id: UUID
    account_id: UUID
    status: Literal["captured"] = "captured"
    amount: AmountText = Field(description="the amount captured (posted to the treasury)")
    balance: SignedAmountText
    position: int

    @classmethod
    def of(cls, outcome: o.MovementRecorded) -> HoldCapturedResponse:
        return cls(
            hold_id=outcome.transfer_id, account_id=outcome.source,
            amount=format_amount(outcome.amount),
            balance=format_amount(outcome.source_balance), position=_pos(outcome),
        )


class HoldReleasedResponse(Response):
    hold_id: UUID
    account_id: UUID
    status: str = Field(description="voided (or expired, when expiry came first)")
    amount: AmountText = Field(description="the amount that was held")
    position: int

    @classmethod
    def of(cls, outcome: o.HoldReleased) -> HoldReleasedResponse:
        return cls(
            hold_id=outcome.hold_id, account_id=outcome.account_id, status=outcome.cause,
            amount=format_amount(outcome.amount), position=_pos(outcome),
        )


class AllowanceResponse(Response):
    owner: UUID
    spender: UUID
    amount: AmountText = Field(description="what the spender may still move")
    position: int | None = Field(None, description="PUT: the command's log position; GET: the "
                                                   "log's head when the request arrived (read "
                                                   "from the owner's account at or after it)")

    @classmethod
    def of(cls, outcome: o.AllowanceSet) -> AllowanceResponse:
        return cls(owner=outcome.owner, spender=outcome.spender,
                   amount=format_amount(outcome.amount), position=_pos(outcome))


class WalletChangedResponse(Response):
    account_id: UUID
    address: str
    status: Literal["connected", "disconnected"]
    position: int

    @classmethod
    def of(cls, outcome: o.WalletChanged) -> WalletChangedResponse:
        return cls(
            account_id=outcome.account_id, address=outcome.address,
            status="connected" if outcome.connected else "disconnected", position=_pos(outcome),
        )


class PriceRuleResponse(Response):
    service_type: str
    token_cost: AmountText
    valid_from: datetime | None
    valid_to: datetime | None
    position: int

    @classmethod
    def of(cls, outcome: o.PriceRuleSet) -> PriceRuleResponse:
        return cls(
            service_type=outcome.service_type, token_cost=format_amount(outcome.token_cost),
            valid_from=outcome.valid_from, valid_to=outcome.valid_to, position=_pos(outcome),
        )


class PriceRuleDeactivatedResponse(Response):
    service_type: str
    rule_position: int = Field(description="the log position of the event that set the rule")
    is_active: bool = Field(description="always false: the rule decides no price any more")
    position: int = Field(description="the log position this answer reflects (the "
                                      "deactivation's commit; on a repeat, the schedule's "
                                      "latest change)")

    @classmethod
    def of(cls, outcome: o.PriceRuleDeactivated) -> PriceRuleDeactivatedResponse:
        return cls(service_type=outcome.service_type, rule_position=outcome.rule_position,
                   is_active=False, position=_pos(outcome))


# Queries


class BalanceResponse(Response):
    account_id: UUID
    balance: SignedAmountText
    held: AmountText
    available: SignedAmountText
    position: int = Field(description="the log position whose state this answer reflects (for "
                                      "`at=<position>`: that position rounded down to a whole "
                                      "commit; for `at=<time>`: the account's last change then)")

    @classmethod
    def of(cls, view: q.BalanceView) -> BalanceResponse:
        return cls(
            account_id=view.account_id, balance=format_amount(view.balance),
            held=format_amount(view.held), available=format_amount(view.available),
            position=view.position,
        )


class HistoryItem(Response):
    transfer_id: UUID
    change: SignedAmountText
    balance_before: SignedAmountText
    balance_after: SignedAmountText
    type: str
    reason: str
    created_at: datetime
    position: int
    requested_by: str | None = Field(
        None, description="who asked for the movement: the API key's name, or a system actor "
                          "(`system:settler` for a compensation, ...); null before it was recorded")
    request_id: str | None = Field(
        None, description="the X-Request-ID of the request that asked; null for the ledger's "
                          "own steps")
    metadata: dict[str, str] | None = Field(
        None, description="the movement's metadata as sent with its command; null if none")
    external_ref: str | None = Field(
        None, description="the movement's external_ref as sent with its command; null if none")
    reward_type: str | None = Field(
        None, description="a reward's type; null for other movements")


class HistoryPage(Response):
    items: list[HistoryItem]
    next_cursor: str | None
    has_more: bool = Field(description="another page follows (next_cursor asks for it)")
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, page: q.Page[q.HistoryEntry]) -> HistoryPage:
        return cls(items=[_history_item(entry) for entry in page.items],
                   next_cursor=page.next_cursor, has_more=page.has_more,
                   position=page.position)


def _history_item(entry: q.HistoryEntry) -> HistoryItem:
    return HistoryItem(
        transfer_id=entry.transfer_id, change=format_amount(entry.change),
        balance_before=format_amount(entry.balance_before),
        balance_after=format_amount(entry.balance_after), type=entry.type,
        reason=entry.reason, created_at=entry.created_at, position=entry.position,
        requested_by=entry.requested_by, request_id=entry.request_id,
        metadata=entry.metadata, external_ref=entry.external_ref, reward_type=entry.reward_type,
    )


class TransactionResponse(Response):
    transfer_id: UUID
    kind: str
    source: UUID = Field(alias="from")
    destination: UUID = Field(alias="to")
    amount: AmountText
    reason: str
    status: str = Field(description="pending, settled, failed or reversed")
    signature: str | None
    slot: int | None
    created_at: datetime
    updated_at: datetime
    position: int
    hold_status: str | None = Field(
        None, description="for holds: pending, captured, voided or expired"
    )
    expires_at: datetime | None = None
    reversed_by: UUID | None = None
    reverses: UUID | None = None
    as_of_position: int | None = Field(
        None, description="GET /v1/transfers/{id}: the log position whose state this answer "
                          "reflects (`position` is the movement's own); null in lists, whose "
                          "page carries it")
    requested_by: str | None = Field(
        None, description="who asked for the movement: the API key's name, or a system actor "
                          "(`system:settler` for a compensation, ...); null before it was recorded")
    request_id: str | None = Field(
        None, description="the X-Request-ID of the request that asked; null for the ledger's "
                          "own steps")
    metadata: dict[str, str] | None = Field(
        None, description="the caller's metadata as sent with the command; null if none")
    external_ref: str | None = Field(
        None, description="the caller's external_ref as sent with the command; null if none")
    reward_type: str | None = Field(None, description="a reward's type; null for other movements")

    @classmethod
    def of(cls, view: q.TransactionView) -> TransactionResponse:
        return cls(
            transfer_id=view.transfer_id, kind=view.kind, source=view.source,
            destination=view.destination, amount=format_amount(view.amount),
            reason=view.reason, status=view.status, signature=view.signature, slot=view.slot,
            created_at=view.created_at, updated_at=view.updated_at, position=view.position,
            hold_status=view.hold_status, expires_at=view.expires_at,
            reversed_by=view.reversed_by, reverses=view.reverses,
            as_of_position=view.as_of_position, requested_by=view.requested_by,
            request_id=view.request_id, metadata=view.metadata, external_ref=view.external_ref,
            reward_type=view.reward_type,
        )


class TransactionPage(Response):
    items: list[TransactionResponse]
    next_cursor: str | None
    has_more: bool = Field(description="another page follows (next_cursor asks for it)")
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, page: q.Page[q.TransactionView]) -> TransactionPage:
        return cls(items=[TransactionResponse.of(view) for view in page.items],
                   next_cursor=page.next_cursor, has_more=page.has_more,
                   position=page.position)


class WalletResponse(Response):
    address: str
    account_id: UUID
    status: str = Field(description="connected or disconnected")
    connected_at: datetime
    disconnected_at: datetime | None


class WalletsResponse(Response):
    account_id: UUID
    wallets: list[WalletResponse]
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, account_id: UUID, listing: q.Listing[q.WalletView]) -> WalletsResponse:
        return cls(account_id=account_id, position=listing.position,
                   wallets=[_wallet(view) for view in listing.items])


def _wallet(view: q.WalletView) -> WalletResponse:
    return WalletResponse(address=view.address, account_id=view.account_id, status=view.status,
                          connected_at=view.connected_at, disconnected_at=view.disconnected_at)


class AccountItem(Response):
    account_id: UUID
    kind: str = Field(description=f"one of: {', '.join(ACCOUNT_KINDS)}")
    status: str = Field(description="active or frozen (a frozen account neither sends nor "
                                    "receives)")
    created_at: datetime
    balance: SignedAmountText
    held: AmountText
    available: SignedAmountText

    @classmethod
    def fields_of(cls, view: q.AccountView) -> dict[str, Any]:
        return {
            "account_id": view.account_id, "kind": view.kind, "status": view.status,
            "created_at": view.created_at, "balance": format_amount(view.balance),
            "held": format_amount(view.held), "available": format_amount(view.available),
        }


class AccountDetailResponse(AccountItem):
    wallets: list[WalletResponse]
    token_account: str = Field(description="the account's DEAL token account on Solana")
    deposit_address: str = Field(description=(
        "where a wallet connected to this account deposits DEAL (transfer_checked from a "
        "token account it owns): the account's token account, credited once the deposit's "
        "transaction is final (docs/api.md, Deposits)"))
    chain_balance: SignedAmountText | None = Field(
        description="the token account's balance when the last reconciliation read it; null "
                    "before one has")
    chain_balance_read_at: datetime | None = Field(
        description="when that reconciliation read it")
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, listing: q.Listing[q.AccountView], token_account: str,
           chain: ChainBalance | None) -> AccountDetailResponse:
        view = listing.items[0]
        return cls(
            **AccountItem.fields_of(view), wallets=[_wallet(w) for w in view.wallets],
            token_account=token_account, deposit_address=token_account,
            chain_balance=None if chain is None else format_amount(chain.balance),
            chain_balance_read_at=None if chain is None else parse_time(chain.read_at),
            position=listing.position,
        )


class AccountsPage(Response):
    items: list[AccountItem]
    next_cursor: str | None
    has_more: bool = Field(description="another page follows (next_cursor asks for it)")
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, page: q.Page[q.AccountView]) -> AccountsPage:
        return cls(items=[AccountItem(**AccountItem.fields_of(view)) for view in page.items],
                   next_cursor=page.next_cursor, has_more=page.has_more,
                   position=page.position)


class PriceRuleItem(Response):
    token_cost: AmountText
    valid_from: datetime | None
    valid_to: datetime | None
    set_at: datetime
    requested_by: str | None = Field(
        None, description="who set the rule: the API key's name; null before it was recorded")
    request_id: str | None = Field(
        None, description="the X-Request-ID of the request that set it")
    position: int = Field(description="the log position that set the rule")
    is_active: bool = Field(
        description="the rule can still decide a price: not past its valid_to, not "
                    "replaced by a later rule without an end, and not deactivated")
    deactivated_at: datetime | None = Field(
        None, description="when an admin deactivated it (POST .../rules/{position}/deactivate)")
    deactivated_by: str | None = Field(
        None, description="who deactivated it: the API key's name")
    deactivation_request_id: str | None = Field(
        None, description="the X-Request-ID of the request that deactivated it")


class ServicePrice(Response):
    service_type: str
    token_cost: AmountText = Field(description="the cost in force now")
    default_cost: AmountText
    rules: list[PriceRuleItem]


class PricingResponse(Response):
    services: list[ServicePrice]
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, listing: q.Listing[q.ServicePriceView]) -> PricingResponse:
        return cls(position=listing.position,
                   services=[_service_price(view) for view in listing.items])


class ServicePricingResponse(ServicePrice):
    position: int = Field(description="the log position whose state this answer reflects")

    @classmethod
    def of(cls, listing: q.Listing[q.ServicePriceView]) -> ServicePricingResponse:
        return cls(**_service_price(listing.items[0]).model_dump(), position=listing.position)


def _service_price(view: q.ServicePriceView) -> ServicePrice:
    return ServicePrice(
        service_type=view.service_type, token_cost=format_amount(view.token_cost_now),
        default_cost=format_amount(view.default_cost),
        rules=[PriceRuleItem(token_cost=format_amount(rule.token_cost),
                             valid_from=rule.valid_from, valid_to=rule.valid_to,
                             set_at=rule.set_at, requested_by=rule.requested_by,
                             request_id=rule.request_id, position=rule.position,
                             is_active=rule.is_active, deactivated_at=rule.deactivated_at,
                             deactivated_by=rule.deactivated_by,
                             deactivation_request_id=rule.deactivation_request_id)
                for rule in view.rules],
    )


class SystemAccounts(Response):
    treasury: UUID
    rewards: UUID
    issuance: UUID
    external: UUID = Field(description="the tokens outside custody: the other side of "
                                       "withdrawals and deposits")


class SystemResponse(Response):
    accounts: SystemAccounts
    mint: str | None = Field(
        description="the DEAL mint's address; null while no chain adapter is configured"
    )
    decimals: int
    supply: AmountText = Field(description="circulating supply")
    position: int = Field(description="the log's head when the request arrived: the supply "
                                      "is read from the write side at or after it")


class MismatchItem(Response):
    model: str
    key: str
    expected: str
    actual: str


class AnchorFindingItem(Response):
    kind: str = Field(description="contradicted, truncated, foreign_ledger, unknown_to_log "
                                  "or missing_on_chain")
    sequence: int
    signature: str | None
    detail: str
    after_position: int | None = Field(
        description="the first difference lies after this position...")
    at_or_before_position: int | None = Field(description="...and at or before this one")
    first_differing_position: int | None = Field(
        None, description="exactly where, when the anchored leaves the settler keeps outside "
                          "the database still have this anchor's root; null otherwise")


class AnchorAuditItem(Response):
    checked: bool = Field(description="false when the chain could not be reached (`note` says "
                                      "why); the replay's other checks still ran")
    anchors_checked: int
    findings: list[AnchorFindingItem]
    note: str | None = None

    @classmethod
    def of(cls, audit: AnchorAudit) -> AnchorAuditItem:
        return cls(checked=True, anchors_checked=audit.anchors_checked,
                   findings=[AnchorFindingItem(**asdict(f)) for f in audit.findings])

    @classmethod
    def unchecked(cls, why: str) -> AnchorAuditItem:
        return cls(checked=False, anchors_checked=0, findings=[], note=why)


class ReplayResponse(Response):
    events_replayed: int
    accounts: int
    supply_ok: bool
    supply: SignedAmountText
    last_position: int
    mismatches: list[MismatchItem]
    first_tampered_position: int | None
    position: int = Field(description="the whole-commit state the replay reflects: "
                                      "`until_position` rounded down to the last commit that "
                                      "ends at or before it")
    anchors: AnchorAuditItem | None = Field(
        default=None, description="the stored log against every anchor on chain "
                                  "(docs/proofs.md); null for a replay up to a position or time")

    @classmethod
    def of(cls, report: q.ReplayReport, anchors: AnchorAuditItem | None = None
           ) -> ReplayResponse:
        return cls(
            anchors=anchors,
            events_replayed=report.events_replayed, accounts=report.accounts,
            supply_ok=report.supply_ok, supply=format_amount(report.supply),
            last_position=report.last_position,
            mismatches=[MismatchItem(model=m.model, key=m.key, expected=m.expected,
                                     actual=m.actual) for m in report.mismatches],
            first_tampered_position=report.first_tampered_position, position=report.position,
        )


class RawEventItem(Response):
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: dict[str, Any]
    timestamp: datetime | None = Field(description="null only for a row that cannot be decoded")
    decode_error: str | None = Field(
        None, description="set when the stored row cannot be decoded (state is then empty)")
    requested_by: str | None = Field(
        None, description="who asked for the command that wrote it: the API key's name, or a "
                          "system actor (`system:settler`, `system:sweeper`, `system:genesis`, "
                          "`operator:cli`); null for events written before it was recorded")
    request_id: str | None = Field(
        None, description="the X-Request-ID of the request that asked; null for the ledger's "
                          "own steps and older events")
    decoded: dict[str, str | None] = Field(
        default_factory=dict,
        description="beside state (which is exactly as stored, amounts in base units): each "
                    "amount field of state as a decimal string of DEAL and each time in "
                    "RFC 3339 with Z; empty for a row that cannot be decoded")


class EventsResponse(Response):
    items: list[RawEventItem]
    next_after_position: int | None = Field(
        description="pass as after_position for the next page (it ends a commit); null at the end"
    )
    after_position: int = Field(description="the after_position asked, rounded down to the last "
                                            "commit that ends at or before it")
    position: int = Field(description="the log's head when the request arrived; no event past "
                                      "it is listed")

    @classmethod
    def of(cls, page: q.EventsPage) -> EventsResponse:
        items = [RawEventItem(position=e.position, aggregate_id=e.aggregate_id, version=e.version,
                              topic=e.topic, state=e.state, timestamp=e.timestamp,
                              decode_error=e.decode_error, requested_by=e.requested_by,
                              request_id=e.request_id, decoded=e.decoded)
                 for e in page.items]
        return cls(items=items, next_after_position=page.next_after_position,
                   after_position=page.after_position, position=page.position)


class HealthResponse(Response):
    status: Literal["ok"] = "ok"


class FeePayerState(Response):
    lamports: int = Field(description="the fee payer's SOL balance in lamports, as the settler "
                                      "last read it (deals_ledger_fee_payer_lamports)")
    needed_lamports: int = Field(
        description="the least that pays for one more transaction: its fees, the rent of the "
                    "token accounts it creates, and the fee payer's own rent-exempt minimum")
    alert_below_lamports: int = Field(
        description="the fee_payer_low alert's threshold (DEALS_FEE_PAYER_MIN_LAMPORTS)")
    low: bool = Field(description="lamports below alert_below_lamports")
    paused: bool = Field(description="lamports below needed_lamports: settlement signs nothing "
                                     "new until the fee payer is funded (last_error says so)")
    read_at: datetime = Field(description="when the settler read it")


class BlockhashWaitState(Response):
    until_block_height: int = Field(
        description="the last valid block height of the newest blockhash when the settler "
                    "started (or found a gap in its store): it sends nothing until the chain's "
                    "block height passes it (deals_ledger_settlement_blockhash_wait_height)")
    block_height: int | None = Field(
        description="the chain's block height as the settler last read it (null: not yet)")


class SettlementState(Response):
    runs_here: bool = Field(description="this process settles (DEALS_SETTLEMENT)")
    active_here: bool = Field(description="this process holds the settlement lease and settles "
                                          "(false while a chain outage pauses it)")
    settler_active: bool | None = Field(
        description="a settler of some process holds the lease and settles (false while the "
                    "only settler is paused by an outage; null: the store did not say)")
    backlog: int | None = Field(
        description="movements waiting for the chain or in flight, of the log positions the "
                    "settlement fold has read (a paused settler still reads them)")
    lag_events: int | None = Field(
        description="log positions the settlement fold has not read yet, whose movements "
                    "the backlog does not count yet (deals_ledger_settlement_lag_events)")
    last_error: str | None = Field(
        description="why the last settlement step here failed (endpoint and cause, no "
                    "secrets); null once a step succeeds")
    fee_payer: FeePayerState | None = Field(
        None, description="the fee payer's SOL as a settler (of any process) last recorded it; "
                          "null: never read, or the store did not say")
    blockhash_wait: BlockhashWaitState | None = Field(
        None, description="this process's settler waits, after its start or a gap in its "
                          "store and before its lookup and first send, for every earlier "
                          "blockhash to expire (a transaction sent before a restore or a "
                          "failover lands by then or never); null: it does not wait")


class ReadyResponse(Response):
    status: Literal["ready"] = "ready"
    store_position: int
    read_model_position: int | None = Field(
        description="how far the read models are; null while none is configured"
    )
    settlement: SettlementState | None = Field(
        None, description="settlement's state: a chain outage does not make the API unready, "
                          "so it is reported here, not by the status")


def _pos(outcome: o.Outcome) -> int:
    return outcome.position if outcome.position is not None else 0

