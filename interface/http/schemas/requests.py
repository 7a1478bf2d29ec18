"""What clients send (shared/API.md, "Commands"). Unknown fields are refused
(422 invalid_request) so a misspelt optional field never silently passes;
each request knows the one command it becomes."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from application import commands as c
from application.handlers.holds import HOLD_EXPIRY_S_MAX
from application.references import (
    EXTERNAL_REF_LENGTH_MAX,
    METADATA_KEYS_MAX,
    METADATA_VALUE_LENGTH_MAX,
    check_metadata,
)
from interface.http.schemas.types import (
    POSITION_MAX,
    AddressText,
    Amount,
    AmountOrZero,
    Reason,
    ServiceType,
    Timestamp,
)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class References(BaseModel):
    """The caller's own references on a movement (``application.references``
    checks their bounds and characters, as it checks ``reason``)."""

    metadata: dict[str, StrictStr] | None = Field(
        None, max_length=METADATA_KEYS_MAX,
        description=f"at most {METADATA_KEYS_MAX} keys (1-64 of A-Z a-z 0-9 _ . : -), "
                    f"each value a string of at most {METADATA_VALUE_LENGTH_MAX} characters")
    external_ref: str | None = Field(
        None, min_length=1, max_length=EXTERNAL_REF_LENGTH_MAX,
        description="your own reference; GET /v1/transfers?external_ref= finds the movement")

    def references(self) -> dict[str, Any]:
        """The command's keyword arguments: metadata as checked sorted pairs."""
        return {"metadata": check_metadata(self.metadata), "external_ref": self.external_ref}


class OpenAccountRequest(Request):
    account_id: UUID
    kind: Literal["user"] = "user"

    def command(self) -> c.OpenAccount:
        return c.OpenAccount(self.account_id, self.kind)


class TransferRequest(Request, References):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    transfer_id: UUID
    source: UUID = Field(alias="from")
    destination: UUID = Field(alias="to")
    amount: Amount
    reason: Reason = ""

    def command(self) -> c.TransferFunds:
        return c.TransferFunds(
            self.transfer_id, self.source, self.destination, self.amount, self.reason,
            **self.references(),
        )


class TransferBatchRequest(Request):
    transfers: list[TransferRequest] = Field(min_length=1, max_length=c.BATCH_ITEMS_MAX)
    atomic: StrictBool = False

    def command(self) -> c.TransferBatch:
        return c.TransferBatch(tuple(item.command() for item in self.transfers), self.atomic)


class TransferFromRequest(Request, References):
    transfer_id: UUID
    spender: UUID
    source: UUID = Field(alias="from")
    destination: UUID = Field(alias="to")
    amount: Amount
    reason: Reason = ""

    def command(self) -> c.TransferFrom:
        return c.TransferFrom(
            self.transfer_id, self.spender, self.source, self.destination, self.amount,
            self.reason, **self.references(),
        )


class ReverseRequest(Request, References):
    reversal_id: UUID
    reason: Reason = ""

    def command(self, transfer_id: UUID) -> c.ReverseTransfer:
        return c.ReverseTransfer(self.reversal_id, transfer_id, self.reason,
                                 **self.references())


class FeeRequest(Request, References):
    charge_id: UUID
    account_id: UUID
    service_type: ServiceType

    def command(self) -> c.ChargeFee:
        return c.ChargeFee(self.charge_id, self.account_id, self.service_type,
                           **self.references())


class WithdrawalRequest(Request, References):
    withdrawal_id: UUID
    account_id: UUID
    amount: Amount
    address: AddressText = Field(description="a wallet connected to the account: its "
                                             "associated token account receives the tokens")

    def command(self) -> c.Withdraw:
        return c.Withdraw(self.withdrawal_id, self.account_id, self.amount, self.address,
                          **self.references())


class HoldRequest(Request, References):
    hold_id: UUID
    account_id: UUID
    amount: Amount | None = Field(
        None, description="the amount to hold; without it, the price of service_type now"
    )
    service_type: ServiceType | None = None
    expires_in_s: StrictInt | None = Field(None, ge=1, le=HOLD_EXPIRY_S_MAX)

    def command(self) -> c.PlaceHold:
        return c.PlaceHold(
            self.hold_id, self.account_id, self.amount, self.service_type, self.expires_in_s,
            **self.references(),
        )


class CaptureRequest(Request):
    amount: Amount | None = Field(
        None, description="at most the held amount (the rest is released); default all of it"
    )

    def command(self, hold_id: UUID) -> c.CaptureHold:
        return c.CaptureHold(hold_id, self.amount)


class VoidRequest(Request):
    """Voiding takes nothing: a body, optional, may only be ``{}``, so a
    field meant for another command (``amount``) is refused, not ignored."""


class AllowanceRequest(Request):
    amount: AmountOrZero

    def command(self, owner: UUID, spender: UUID) -> c.SetAllowance:
        return c.SetAllowance(owner, spender, self.amount)


class RewardRequest(Request, References):
    reward_id: UUID
    account_id: UUID
    reward_type: str = Field(min_length=1, max_length=c.REASON_LENGTH_MAX)
    amount: Amount

    def command(self) -> c.DistributeReward:
        return c.DistributeReward(self.reward_id, self.account_id, self.reward_type, self.amount,
                                  **self.references())


class MintRequest(Request, References):
    transfer_id: UUID
    destination: UUID = Field(alias="to")
    amount: Amount
    reason: Reason = ""

    def command(self) -> c.Mint:
        return c.Mint(self.transfer_id, self.destination, self.amount, self.reason,
                      **self.references())


class BurnRequest(Request, References):
    transfer_id: UUID
    source: UUID = Field(alias="from")
    amount: Amount
    reason: Reason = ""

    def command(self) -> c.Burn:
        return c.Burn(self.transfer_id, self.source, self.amount, self.reason,
                      **self.references())


class WalletRequest(Request):
    address: AddressText

    def command(self, account_id: UUID) -> c.ConnectWallet:
        return c.ConnectWallet(account_id, self.address)


class PriceRuleRequest(Request):
    token_cost: Amount
    valid_from: Timestamp | None = None
    valid_to: Timestamp | None = None

    def command(self, service_type: str) -> c.SetPriceRule:
        return c.SetPriceRule(
            service_type, self.token_cost, self.valid_from, self.valid_to
        )


class AuditReplayRequest(Request):
    until_position: StrictInt | None = Field(None, ge=0, le=POSITION_MAX)
    until: Timestamp | None = None
