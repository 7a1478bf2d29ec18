"""Freeze binds every party: every account that takes part in a command is
checked, by the domain, whichever role it plays.

``PARTIES`` has one row per command kind of the handler registry (a kind
without a row fails ``test_every_command_kind_says_who_takes_part``): either
a scene that sets the command up against fresh accounts and names each
party, or the reason no account of it can be frozen. For every party of
every scene the account is frozen, the command must be refused
``account_frozen`` with the log unmoved, and once unfrozen the same command
must go through (so the freeze, and nothing else, refused it).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

from solders.keypair import Keypair

from application import commands as c
from application.handlers import HANDLERS
from application.outcomes import HoldReleased
from domain.amounts import UNITS_PER_DEAL
from domain.errors import LedgerError
from domain.reconciliation import BALANCE_MISMATCH, UNASSIGNED_DEPOSIT
from domain.system import DEPOSIT_FINDINGS_RUN_ID, deposit_finding_id, deposit_id
from tests.support.ledgers import LedgerHarness

TX = base64.b64encode(b"signed transaction bytes").decode()


@dataclass(frozen=True)
class Scene:
    command: c.Command
    parties: dict[str, UUID]


def _funded(ledger: LedgerHarness) -> UUID:
    return ledger.open_account(funded=100 * UNITS_PER_DEAL)


def _moved(ledger: LedgerHarness) -> tuple[UUID, UUID, UUID]:
    """A transfer of 10 from a funded account to a new one."""
    sender, receiver = _funded(ledger), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, sender, receiver, 10))
    return transfer_id, sender, receiver


def _held(ledger: LedgerHarness) -> tuple[UUID, UUID]:
    owner, hold_id = _funded(ledger), uuid4()
    ledger.execute(c.PlaceHold(hold_id, owner, amount=10))
    return hold_id, owner


def transfer(ledger: LedgerHarness) -> Scene:
    sender, receiver = _funded(ledger), ledger.open_account()
    return Scene(c.TransferFunds(uuid4(), sender, receiver, 10),
                 {"sender": sender, "receiver": receiver})


def batch(ledger: LedgerHarness) -> Scene:
    sender, receiver = _funded(ledger), ledger.open_account()
    item = c.TransferFunds(uuid4(), sender, receiver, 10)
    return Scene(c.TransferBatch((item,), atomic=True), {"sender": sender, "receiver": receiver})


def transfer_from(ledger: LedgerHarness) -> Scene:
    owner, spender, receiver = _funded(ledger), ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, spender, 50))
    return Scene(c.TransferFrom(uuid4(), spender, owner, receiver, 10),
                 {"owner": owner, "spender": spender, "receiver": receiver})


def approve(ledger: LedgerHarness) -> Scene:
    owner, spender = _funded(ledger), ledger.open_account()
    return Scene(c.SetAllowance(owner, spender, 10), {"owner": owner, "spender": spender})


def fee(ledger: LedgerHarness) -> Scene:
    payer = _funded(ledger)
    return Scene(c.ChargeFee(uuid4(), payer, "search"), {"fee payer": payer})


def reward(ledger: LedgerHarness) -> Scene:
    receiver = ledger.open_account()
    return Scene(c.DistributeReward(uuid4(), receiver, "referral", 1),
                 {"reward receiver": receiver})


def mint(ledger: LedgerHarness) -> Scene:
    receiver = ledger.open_account()
    return Scene(c.Mint(uuid4(), receiver, 1), {"receiver": receiver})


def burn(ledger: LedgerHarness) -> Scene:
    holder = _funded(ledger)
    return Scene(c.Burn(uuid4(), holder, 1), {"holder": holder})


def withdraw(ledger: LedgerHarness) -> Scene:
    """The external account, a system account, cannot be frozen."""
    holder, address = _funded(ledger), str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(holder, address))
    return Scene(c.Withdraw(uuid4(), holder, 1, address), {"holder": holder})


def reverse(ledger: LedgerHarness) -> Scene:
    transfer_id, sender, receiver = _moved(ledger)
    ledger.settle(transfer_id)
    return Scene(c.ReverseTransfer(uuid4(), transfer_id),
                 {"original sender": sender, "original receiver": receiver})


def place_hold(ledger: LedgerHarness) -> Scene:
    owner = _funded(ledger)
    return Scene(c.PlaceHold(uuid4(), owner, amount=10), {"hold owner": owner})


def capture(ledger: LedgerHarness) -> Scene:
    hold_id, owner = _held(ledger)
    return Scene(c.CaptureHold(hold_id), {"hold owner": owner})


def void(ledger: LedgerHarness) -> Scene:
    hold_id, owner = _held(ledger)
    return Scene(c.VoidHold(hold_id), {"hold owner": owner})


def connect(ledger: LedgerHarness) -> Scene:
    account = ledger.open_account()
    return Scene(c.ConnectWallet(account, str(Keypair().pubkey())), {"account": account})


def disconnect(ledger: LedgerHarness) -> Scene:
    account, address = ledger.open_account(), str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(account, address))
    return Scene(c.DisconnectWallet(account, address), {"account": account})


def retry_compensation(ledger: LedgerHarness) -> Scene:
    """A failed settlement whose compensation was refused (the receiver had
    spent the amount), then made possible again (the receiver refunded)."""
    transfer_id, sender, receiver = _moved(ledger)
    ledger.execute(c.TransferFunds(uuid4(), receiver, ledger.open_account(), 10))
    signature = f"sig-{uuid4().hex}"
    ledger.execute(c.RecordSubmission(signature, 300, TX, (transfer_id,)))
    failed = ledger.execute(c.MarkSettlementFailed(signature, "refused", (transfer_id,)))
    assert failed.blocked, "the scene needs a blocked compensation"
    ledger.execute(c.Mint(uuid4(), receiver, 10))
    return Scene(c.RetryCompensation(transfer_id),
                 {"original sender": sender, "original receiver": receiver})


def adjust(ledger: LedgerHarness) -> Scene:
    account, run, finding = ledger.open_account(), uuid4(), uuid4()
    ledger.execute(c.StartReconciliation(run))
    ledger.execute(c.RecordFindings(run, (c.FindingSpec(
        finding, BALANCE_MISMATCH, account_id=account, expected=0, actual=5),)))
    return Scene(c.AdjustForFinding(finding), {"the finding's account": account})


def credit_deposit(ledger: LedgerHarness) -> Scene:
    account, owner = ledger.open_account(), str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(account, owner))
    signature = f"deposit-{uuid4()}"
    return Scene(c.CreditDeposit(deposit_id(signature, account), account, 5, signature, 1,
                                 "source", owner), {"the depositing wallet's account": account})


def assign_deposit(ledger: LedgerHarness) -> Scene:
    account, signature = ledger.open_account(), f"deposit-{uuid4()}"
    finding = deposit_finding_id(signature, account)
    ledger.execute(c.StartReconciliation(DEPOSIT_FINDINGS_RUN_ID))
    ledger.execute(c.RecordFindings(DEPOSIT_FINDINGS_RUN_ID, (c.FindingSpec(
        finding, UNASSIGNED_DEPOSIT, account_id=account, signature=signature, actual=5,
        source="source", source_owner="owner", slot=1),)))
    return Scene(c.AssignDeposit(finding), {"the deposit address's account": account})


def return_deposit(ledger: LedgerHarness) -> Scene:
    account, signature = ledger.open_account(), f"deposit-{uuid4()}"
    finding = deposit_finding_id(signature, account)
    ledger.execute(c.StartReconciliation(DEPOSIT_FINDINGS_RUN_ID))
    ledger.execute(c.RecordFindings(DEPOSIT_FINDINGS_RUN_ID, (c.FindingSpec(
        finding, UNASSIGNED_DEPOSIT, account_id=account, signature=signature, actual=5,
        source="source", source_owner=str(Keypair().pubkey()), slot=1),)))
    return Scene(c.ReturnDeposit(finding), {"the deposit address's account": account})


NOTHING_MOVES = "records what the chain did; nothing moves in the ledger"
NO_ACCOUNT = "names no account"

PARTIES: dict[type[c.Command], Callable[[LedgerHarness], Scene] | str] = {
    c.TransferFunds: transfer,
    c.TransferBatch: batch,
    c.TransferFrom: transfer_from,
    c.SetAllowance: approve,
    c.ChargeFee: fee,
    c.DistributeReward: reward,
    c.Mint: mint,
    c.Burn: burn,
    c.Withdraw: withdraw,
    c.ReverseTransfer: reverse,
    c.PlaceHold: place_hold,
    c.CaptureHold: capture,
    c.VoidHold: void,
    c.ConnectWallet: connect,
    c.DisconnectWallet: disconnect,
    c.RetryCompensation: retry_compensation,
    c.AdjustForFinding: adjust,
    c.CreditDeposit: credit_deposit,
    c.AssignDeposit: assign_deposit,
    c.ReturnDeposit: return_deposit,
    c.OpenAccount: "creates the one account it names: nothing to freeze yet",
    c.FreezeAccount: "the freeze itself",
    c.UnfreezeAccount: "the way out of a freeze",
    c.ExpireHold: "time releases an expired hold, no party acts "
                  "(test_a_frozen_owners_hold_still_expires)",
    c.Genesis: "only the system accounts take part, and they cannot be frozen",
    c.SetPriceRule: NO_ACCOUNT,
    c.DeactivatePriceRule: NO_ACCOUNT,
    c.RecordSubmission: NOTHING_MOVES,
    c.MarkSettled: NOTHING_MOVES,
    c.MarkSettlementRejected: NOTHING_MOVES,
    c.RecordGenesisSettlement: NOTHING_MOVES,
    c.MarkSettlementFailed: "records what the chain did; its compensating reversal obeys "
                            "the freeze and is recorded as blocked "
                            "(test_a_frozen_party_blocks_the_compensation_not_the_failure)",
    c.RecordAnchor: NO_ACCOUNT,
    c.ResignAnchor: NO_ACCOUNT,
    c.ConfirmAnchor: NO_ACCOUNT,
    c.StartReconciliation: NO_ACCOUNT,
    c.RecordFindings: NO_ACCOUNT,
    c.FinishReconciliation: NO_ACCOUNT,
}


def test_every_command_kind_says_who_takes_part():
    missing = sorted(cls.__name__ for cls in HANDLERS if cls not in PARTIES)
    assert not missing, f"add these command kinds to PARTIES in {__name__}: {missing}"


def test_a_frozen_party_refuses_every_command_it_takes_part_in(ledger: LedgerHarness):
    failures: list[str] = []
    for command_class, entry in PARTIES.items():
        if isinstance(entry, str):
            continue
        for party in entry(ledger).parties:
            failures += _frozen_party_refuses(ledger, entry, command_class.__name__, party)
    assert not failures, "\n".join(failures)


def _frozen_party_refuses(
    ledger: LedgerHarness, build: Callable[[LedgerHarness], Scene], name: str, party: str,
) -> list[str]:
    scene = build(ledger)
    ledger.execute(c.FreezeAccount(scene.parties[party]))
    head = ledger.app.event_log.head()
    where = f"{name} with the {party} frozen"
    failures = []
    try:
        ledger.execute(scene.command)
        failures.append(f"{where}: accepted")
    except LedgerError as refusal:
        if refusal.code != "account_frozen":
            failures.append(f"{where}: {refusal.code} ({refusal.message}), not account_frozen")
    if ledger.app.event_log.head() != head:
        failures.append(f"{where}: the refusal wrote events")
    ledger.execute(c.UnfreezeAccount(scene.parties[party]))
    try:
        ledger.execute(scene.command)
    except LedgerError as refusal:
        failures.append(f"{where}: refused once unfrozen too: {refusal.code}")
    return failures


def test_a_frozen_spender_may_still_lose_its_allowance(ledger: LedgerHarness):
    owner, spender = _funded(ledger), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, spender, 50))
    ledger.execute(c.FreezeAccount(spender))
    assert ledger.execute(c.SetAllowance(owner, spender, 0)).amount == 0
    assert ledger.app.account(owner).allowance_for(spender) == 0


def test_a_frozen_owners_hold_still_expires(ledger: LedgerHarness):
    hold_id, owner = _held(ledger)
    ledger.execute(c.FreezeAccount(owner))
    ledger.clock.advance(901)  # type: ignore[attr-defined]
    released = ledger.execute(c.ExpireHold(hold_id))
    assert isinstance(released, HoldReleased) and released.cause == "expired"
    assert ledger.app.account(owner).held == 0


def test_a_frozen_party_blocks_the_compensation_not_the_failure(ledger: LedgerHarness):
    transfer_id, _, receiver = _moved(ledger)
    ledger.execute(c.RecordSubmission("sig-frozen", 300, TX, (transfer_id,)))
    ledger.execute(c.FreezeAccount(receiver))
    failed = ledger.execute(c.MarkSettlementFailed("sig-frozen", "refused", (transfer_id,)))
    assert [reason for _, reason in failed.blocked] == [f"account {receiver} is frozen"]
    assert ledger.app.transfer(transfer_id).settlement_status == "failed"
