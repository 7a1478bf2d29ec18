"""Command handlers: each decides one command against a batch's aggregates.

A handler checks everything before it changes anything, adds new
aggregates to the session (the one named by the command's id as primary,
so its events come last and carry the command's position), and returns
an outcome. It never saves: the command writer commits whole batches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from application import commands as c
from application.handlers import (
    accounts,
    anchors,
    deposits,
    genesis,
    holds,
    movements,
    pricing,
    reconciliation_steps,
    settlement_steps,
    wallets,
    withdrawals,
)
from application.handlers.session import AggregateSession
from application.outcomes import Outcome

Handler = Callable[[Any, AggregateSession, datetime], Outcome]

HANDLERS: dict[type[c.Command], Handler] = {
    c.Genesis: genesis.run_genesis,
    c.OpenAccount: accounts.open_account,
    c.FreezeAccount: accounts.freeze_account,
    c.UnfreezeAccount: accounts.unfreeze_account,
    c.SetAllowance: accounts.set_allowance,
    c.TransferFunds: movements.transfer_funds,
    c.TransferBatch: movements.transfer_batch,
    c.TransferFrom: movements.transfer_from,
    c.ChargeFee: movements.charge_fee,
    c.DistributeReward: movements.distribute_reward,
    c.Mint: movements.mint,
    c.Burn: movements.burn,
    c.Withdraw: withdrawals.withdraw,
    c.ReverseTransfer: movements.reverse_transfer,
    c.PlaceHold: holds.place_hold,
    c.CaptureHold: holds.capture_hold,
    c.VoidHold: holds.void_hold,
    c.ExpireHold: holds.expire_hold,
    c.ConnectWallet: wallets.connect_wallet,
    c.DisconnectWallet: wallets.disconnect_wallet,
    c.SetPriceRule: pricing.set_price_rule,
    c.DeactivatePriceRule: pricing.deactivate_price_rule,
    c.RecordSubmission: settlement_steps.record_submission,
    c.MarkSettled: settlement_steps.mark_settled,
    c.MarkSettlementRejected: settlement_steps.mark_rejected,
    c.MarkSettlementFailed: settlement_steps.mark_failed,
    c.RecordGenesisSettlement: settlement_steps.record_genesis_settlement,
    c.RetryCompensation: settlement_steps.retry_compensation,
    c.RecordAnchor: anchors.record_anchor,
    c.ResignAnchor: anchors.resign_anchor,
    c.ConfirmAnchor: anchors.confirm_anchor,
    c.StartReconciliation: reconciliation_steps.start_reconciliation,
    c.RecordFindings: reconciliation_steps.record_findings,
    c.FinishReconciliation: reconciliation_steps.finish_reconciliation,
    c.AdjustForFinding: reconciliation_steps.adjust_for_finding,
    c.CreditDeposit: deposits.credit_deposit,
    c.AssignDeposit: deposits.assign_deposit,
    c.ReturnDeposit: deposits.return_deposit,
}


def decide(command: c.Command, session: AggregateSession, now: datetime) -> Outcome:
    return HANDLERS[type(command)](command, session, now)
