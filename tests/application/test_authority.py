"""Only an admin debits the system accounts, whatever the command.

Each command declares whose funds it debits; the command writer refuses a
command whose sender may not debit them, before it is queued. These tests
hold one case per command kind (a test fails when a kind has none) and the
rule's default: a command that declares nothing is denied to all but an
admin.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from application.authority import INTERNAL, Authority, SystemDebitNeedsAdmin, check_debits
from domain.errors import LedgerError
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from tests.support.registries import import_every_module, qualified, subclasses

WRITER = Authority("key 'writer'", admin=False)
ADMIN = Authority("key 'admin'", admin=True)
USER, OTHER = uuid4(), uuid4()


def transfer(source, destination=USER) -> c.TransferFunds:
    return c.TransferFunds(uuid4(), source, destination, 1)


REFUSED_TO_A_WRITE_KEY: dict[str, c.Command] = {
    "transfer from the treasury": transfer(TREASURY_ID),
    "transfer from the rewards pool": transfer(REWARDS_ID),
    "transfer from the issuance account": transfer(ISSUANCE_ID),
    "batch with one item from a system account": c.TransferBatch(
        (transfer(USER, OTHER), transfer(TREASURY_ID))),
    "spender's transfer from the treasury": c.TransferFrom(uuid4(), USER, TREASURY_ID, OTHER, 1),
    "allowance the rewards pool grants": c.SetAllowance(REWARDS_ID, USER, 1),
    "fee charged to the rewards pool": c.ChargeFee(uuid4(), REWARDS_ID, "search"),
    "hold on the treasury": c.PlaceHold(uuid4(), TREASURY_ID, amount=1),
    "mint (out of the issuance account)": c.Mint(uuid4(), USER, 1),
    "burn from the treasury": c.Burn(uuid4(), TREASURY_ID, 1),
    "reversal (debits whatever the original credited)": c.ReverseTransfer(uuid4(), uuid4()),
    "genesis": c.Genesis(),
    "failed settlement (posts compensating reversals)": c.MarkSettlementFailed(
        "signature", "error", (uuid4(),)),
    "adjustment for a finding (a mint or a burn)": c.AdjustForFinding(uuid4()),
    "retried compensation (a reversal)": c.RetryCompensation(uuid4()),
    "deposit credit (out of the external account)": c.CreditDeposit(
        uuid4(), USER, 1, "signature", 1, "source", "owner"),
    "deposit assignment (out of the external account)": c.AssignDeposit(uuid4()),
    "deposit return (out of the external account and the deposit's)": c.ReturnDeposit(uuid4()),
}

ALLOWED_TO_A_WRITE_KEY: dict[str, c.Command] = {
    "open an account": c.OpenAccount(USER),
    "freeze (the route asks for admin)": c.FreezeAccount(USER),
    "unfreeze (the route asks for admin)": c.UnfreezeAccount(USER),
    "transfer between users": transfer(USER, OTHER),
    "transfer into the treasury": transfer(USER, TREASURY_ID),
    "batch between users": c.TransferBatch((transfer(USER, OTHER), transfer(OTHER, USER))),
    "spender's transfer from a user": c.TransferFrom(uuid4(), OTHER, USER, TREASURY_ID, 1),
    "allowance a user grants the treasury": c.SetAllowance(USER, TREASURY_ID, 1),
    "fee into the treasury": c.ChargeFee(uuid4(), USER, "search"),
    "reward out of the pool": c.DistributeReward(uuid4(), USER, "referral", 1),
    "burn from a user (the route asks for admin)": c.Burn(uuid4(), USER, 1),
    "withdrawal from a user (to the external account)": c.Withdraw(uuid4(), USER, 1, "address"),
    "hold on a user": c.PlaceHold(uuid4(), USER, service_type="search"),
    "capture (the rule applied when the hold was placed)": c.CaptureHold(uuid4()),
    "void": c.VoidHold(uuid4()),
    "expire": c.ExpireHold(uuid4()),
    "connect a wallet": c.ConnectWallet(USER, "address"),
    "disconnect a wallet": c.DisconnectWallet(USER, "address"),
    "price rule (the route asks for admin)": c.SetPriceRule("search", 1),
    "price rule deactivation (the route asks for admin)": c.DeactivatePriceRule("search", 2, 2),
    "submission": c.RecordSubmission("signature", 1, "tx", (uuid4(),)),
    "settled": c.MarkSettled("signature", 1, (uuid4(),)),
    "rejected": c.MarkSettlementRejected("signature", "error", (uuid4(),)),
    "genesis settlement": c.RecordGenesisSettlement("signature", 1),
    "anchor recorded": c.RecordAnchor(1, 1, 1, "0" * 64, "0" * 64, "0" * 64, "signature", 1, "tx"),
    "anchor signed again": c.ResignAnchor(1, "old", "signature", 1, "tx"),
    "anchor confirmed": c.ConfirmAnchor(1, "signature", 1),
    "reconciliation started": c.StartReconciliation(uuid4()),
    "findings": c.RecordFindings(uuid4(), ()),
    "reconciliation finished": c.FinishReconciliation(uuid4(), 0, 0, 0, 0, 0),
}


def command_classes() -> list[type[c.Command]]:
    import_every_module()
    return list(subclasses(c.Command))


def test_every_command_declares_what_it_debits():
    undeclared = [qualified(cls) for cls in command_classes() if cls.debits is c.Command.debits]
    assert not undeclared, (
        f"commands that do not declare debits() (denied to all but an admin): {undeclared}"
    )


def test_every_command_kind_has_a_case_here():
    cased = {type(command) for command in
             [*REFUSED_TO_A_WRITE_KEY.values(), *ALLOWED_TO_A_WRITE_KEY.values()]}
    missing = [qualified(cls) for cls in command_classes() if cls not in cased]
    assert not missing, f"command kinds with no case in test_authority.py: {missing}"


@pytest.mark.parametrize("case", sorted(REFUSED_TO_A_WRITE_KEY))
def test_a_write_key_may_not_send(case):
    command = REFUSED_TO_A_WRITE_KEY[case]
    with pytest.raises(SystemDebitNeedsAdmin) as refused:
        check_debits(command, WRITER)
    assert refused.value.code == "forbidden"
    assert "key 'writer'" in refused.value.message
    check_debits(command, ADMIN)
    check_debits(command, INTERNAL)


@pytest.mark.parametrize("case", sorted(ALLOWED_TO_A_WRITE_KEY))
def test_a_write_key_may_send(case):
    check_debits(ALLOWED_TO_A_WRITE_KEY[case], WRITER)


def test_a_command_that_declares_nothing_is_denied_to_all_but_an_admin():
    assert c.Command().debits() == c.UNKNOWN_DEBITS
    with pytest.raises(SystemDebitNeedsAdmin):
        check_debits(c.Command(), WRITER)
    check_debits(c.Command(), ADMIN)


def test_the_refusal_names_the_system_account():
    with pytest.raises(SystemDebitNeedsAdmin) as refused:
        check_debits(transfer(REWARDS_ID), WRITER)
    assert f"the rewards account {REWARDS_ID}" in refused.value.message


def test_the_writer_refuses_before_the_command_waits_and_writes_nothing(ledger):
    source, destination = ledger.open_account(10), ledger.open_account()
    before = ledger.app.event_log.head()
    batch = c.TransferBatch((transfer(source, destination), transfer(TREASURY_ID, destination)))
    with pytest.raises(SystemDebitNeedsAdmin):
        ledger.writer.send(batch, authority=WRITER)
    assert ledger.writer.waiting == 0
    assert ledger.app.event_log.head() == before
    ledger.writer.execute(c.TransferBatch((transfer(source, destination),)), authority=WRITER)
    assert ledger.balance(destination) == 1


def test_a_command_that_debits_what_it_did_not_declare_is_refused_as_a_bug(ledger, monkeypatch):
    """A declaration is checked against the events: a command declaring no
    debits that moves the treasury's funds is refused for every sender."""
    destination = ledger.open_account()
    before = ledger.app.event_log.head()
    monkeypatch.setattr(c.TransferFunds, "debits", lambda self: c.NO_DEBITS)
    sneaky = transfer(TREASURY_ID, destination)
    check_debits(sneaky, WRITER)  # the declaration alone would let a write key send it
    for sender in (WRITER, ADMIN, INTERNAL):
        with pytest.raises(LedgerError, match="debits an account it does not declare") as refused:
            ledger.writer.execute(transfer(TREASURY_ID, destination), authority=sender)
        assert refused.value.code == "internal_error"
    assert ledger.app.event_log.head() == before
    assert ledger.balance(destination) == 0
