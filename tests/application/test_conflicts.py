"""An idempotency conflict names what differs, in the API's words, and never
what was stored. One case per command kind that can conflict, on SQLite and
PostgreSQL; every refusal writes nothing."""

from __future__ import annotations

from contextlib import contextmanager
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair

from application import commands as c
from domain.amounts import UNITS_PER_DEAL
from domain.errors import IdempotencyConflict, LedgerError

DEAL = UNITS_PER_DEAL
SECRET = "first request's private reason"


@contextmanager
def conflict(ledger, *fragments: str):
    """The command is refused as an idempotency conflict whose message holds
    every fragment and none of the first request's values; nothing is
    written."""
    before = ledger.app.event_log.head()
    with pytest.raises(IdempotencyConflict) as refused:
        yield
    message = refused.value.message
    for fragment in fragments:
        assert fragment in message, message
    assert SECRET not in message and str(7 * DEAL) not in message, message
    assert ledger.app.event_log.head() == before


@pytest.fixture
def accounts(ledger) -> tuple[UUID, UUID, UUID]:
    return ledger.open_account(100 * DEAL), ledger.open_account(100 * DEAL), ledger.open_account()


def test_a_transfer_names_each_field_that_differs(ledger, accounts):
    source, other, destination = accounts
    first = c.TransferFunds(uuid4(), source, destination, 7 * DEAL, SECRET)
    ledger.execute(first)
    tid = first.transfer_id
    with conflict(ledger, f"transfer_id {tid} was first used with a different 'amount'; retry"):
        ledger.execute(c.TransferFunds(tid, source, destination, DEAL, SECRET))
    with conflict(ledger, "a different 'from' and 'to';"):
        ledger.execute(c.TransferFunds(tid, other, source, 7 * DEAL, SECRET))
    with conflict(ledger, "a different 'amount' and 'reason';"):
        ledger.execute(c.TransferFunds(tid, source, destination, DEAL, "another"))


def test_a_batch_item_names_its_field(ledger, accounts):
    source, _, destination = accounts
    first = c.TransferFunds(uuid4(), source, destination, 7 * DEAL, SECRET)
    ledger.execute(first)
    changed = c.TransferFunds(first.transfer_id, source, destination, 7 * DEAL, "another")
    answer = ledger.execute(c.TransferBatch((changed,)))
    (item,) = answer.results
    assert isinstance(item.error, IdempotencyConflict)
    assert "a different 'reason'" in item.error.message and SECRET not in item.error.message
    with pytest.raises(LedgerError) as aborted:
        ledger.execute(c.TransferBatch((changed,), atomic=True))
    assert aborted.value.code == "idempotency_conflict"
    assert "item 0 failed: transfer_id" in aborted.value.message


def test_a_spenders_transfer_names_the_spender(ledger, accounts):
    owner, spender, destination = accounts
    ledger.execute(c.SetAllowance(owner, spender, 50 * DEAL))
    first = c.TransferFrom(uuid4(), spender, owner, destination, 7 * DEAL, SECRET)
    ledger.execute(first)
    with conflict(ledger, "a different 'spender';"):
        ledger.execute(c.TransferFrom(first.transfer_id, destination, owner, destination,
                                      7 * DEAL, SECRET))
    with conflict(ledger, "was first used for a spender's transfer, not a transfer"):
        ledger.execute(c.TransferFunds(first.transfer_id, owner, destination, 7 * DEAL, SECRET))


def test_a_fee_names_its_service_type_and_account(ledger, accounts):
    payer, other, _ = accounts
    charge_id = uuid4()
    ledger.execute(c.ChargeFee(charge_id, payer, "search"))
    with conflict(ledger, f"charge_id {charge_id} was first used with a different "
                          "'service_type';"):
        ledger.execute(c.ChargeFee(charge_id, payer, "goal"))
    with conflict(ledger, "a different 'account_id';"):
        ledger.execute(c.ChargeFee(charge_id, other, "search"))


def test_a_reward_names_its_amount_and_type(ledger, accounts):
    _, _, user = accounts
    reward_id = uuid4()
    ledger.execute(c.DistributeReward(reward_id, user, SECRET, 7 * DEAL))
    with conflict(ledger, f"reward_id {reward_id} was first used with a different "
                          "'reward_type' and 'amount';"):
        ledger.execute(c.DistributeReward(reward_id, user, "referral", DEAL))


def test_a_mint_and_a_burn_name_their_account(ledger, accounts):
    user, other, _ = accounts
    mint, burn = c.Mint(uuid4(), user, 7 * DEAL, SECRET), c.Burn(uuid4(), user, 7 * DEAL, SECRET)
    ledger.execute(mint)
    ledger.execute(burn)
    with conflict(ledger, "a different 'to';"):
        ledger.execute(c.Mint(mint.transfer_id, other, 7 * DEAL, SECRET))
    with conflict(ledger, "a different 'from';"):
        ledger.execute(c.Burn(burn.transfer_id, other, 7 * DEAL, SECRET))
    with conflict(ledger, "was first used for a mint, not a burn"):
        ledger.execute(c.Burn(mint.transfer_id, user, 7 * DEAL, SECRET))


def test_a_withdrawal_names_its_account_amount_and_address(ledger, accounts):
    user, other, _ = accounts
    address, another = str(Keypair().pubkey()), str(Keypair().pubkey())
    for wallet in (address, another):
        ledger.execute(c.ConnectWallet(user, wallet))
    ledger.execute(c.ConnectWallet(other, str(Keypair().pubkey())))
    withdrawal = c.Withdraw(uuid4(), user, 7 * DEAL, address)
    ledger.execute(withdrawal)
    wid = withdrawal.withdrawal_id
    with conflict(ledger, f"withdrawal_id {wid} was first used with a different 'address';"):
        ledger.execute(c.Withdraw(wid, user, 7 * DEAL, another))
    with conflict(ledger, "a different 'account_id' and 'amount';"):
        ledger.execute(c.Withdraw(wid, other, DEAL, address))
    with conflict(ledger, "was first used for a withdrawal, not a burn"):
        ledger.execute(c.Burn(wid, user, 7 * DEAL))


def test_a_reversal_names_the_transfer_it_reverses(ledger, accounts):
    source, _, destination = accounts
    original = c.TransferFunds(uuid4(), source, destination, 7 * DEAL)
    another = c.TransferFunds(uuid4(), source, destination, DEAL)
    ledger.execute(original)
    ledger.execute(another)
    ledger.settle(original.transfer_id)
    reversal_id = uuid4()
    ledger.execute(c.ReverseTransfer(reversal_id, original.transfer_id, SECRET))
    with conflict(ledger, f"reversal_id {reversal_id} was first used with a different "
                          "'transfer_id' and 'reason';"):
        ledger.execute(c.ReverseTransfer(reversal_id, another.transfer_id, "another"))


def test_a_hold_names_its_amount_expiry_and_service_type(ledger, accounts):
    payer, _, _ = accounts
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, payer, amount=7 * DEAL, service_type="search",
                               expires_in_s=60))
    with conflict(ledger, f"hold_id {hold_id} was first used with a different 'amount';"):
        ledger.execute(c.PlaceHold(hold_id, payer, amount=DEAL, service_type="search",
                                   expires_in_s=60))
    with conflict(ledger, "a different 'service_type' and 'expires_in_s';"):
        ledger.execute(c.PlaceHold(hold_id, payer, amount=7 * DEAL, service_type="goal",
                                   expires_in_s=61))
    with conflict(ledger, "was first used for a hold, not a fee"):
        ledger.execute(c.ChargeFee(hold_id, payer, "search"))


def test_a_reference_names_itself_and_never_shows_the_stored_one(ledger, accounts):
    """metadata and external_ref differ given or not (the fingerprint counts
    them when given); the stored values stay out of the message."""
    payer, _, destination = accounts
    refs = {"metadata": (("order", SECRET),), "external_ref": f"ref {SECRET}"}
    fee = c.ChargeFee(uuid4(), payer, "search", **refs)
    ledger.execute(fee)
    with conflict(ledger, f"charge_id {fee.charge_id} was first used with a different "
                          "'metadata';"):
        ledger.execute(c.ChargeFee(fee.charge_id, payer, "search", (("order", "other"),),
                                   refs["external_ref"]))
    with conflict(ledger, "a different 'external_ref';"):
        ledger.execute(c.ChargeFee(fee.charge_id, payer, "search", refs["metadata"]))
    with conflict(ledger, "a different 'service_type' and 'metadata';"):
        ledger.execute(c.ChargeFee(fee.charge_id, payer, "goal", None, refs["external_ref"]))
    plain = c.TransferFunds(uuid4(), payer, destination, DEAL)
    ledger.execute(plain)
    with conflict(ledger, "a different 'metadata' and 'external_ref';"):
        ledger.execute(c.TransferFunds(plain.transfer_id, payer, destination, DEAL, **refs))


def test_a_hold_priced_then_retried_with_its_amount_spelled_out_is_still_a_conflict(
    ledger, accounts
):
    """The Transfer records the amount, not whether it was given or priced:
    the refusal cannot name the field, so it says the request differs."""
    payer, _, _ = accounts
    hold_id = uuid4()
    placed = ledger.execute(c.PlaceHold(hold_id, payer, service_type="search"))
    with conflict(ledger, f"hold_id {hold_id} was first used with a different request;"):
        ledger.execute(c.PlaceHold(hold_id, payer, amount=placed.amount, service_type="search"))


def test_an_id_held_by_another_kind_of_aggregate_names_that_kind(ledger, accounts):
    source, _, destination = accounts
    transfer = c.TransferFunds(uuid4(), source, destination, DEAL)
    ledger.execute(transfer)
    with conflict(ledger, f"account_id {transfer.transfer_id} is already used by a transfer; "
                          "use a new account_id"):
        ledger.execute(c.OpenAccount(transfer.transfer_id))
    with conflict(ledger, f"reward_id {source} is already used by an account"):
        ledger.execute(c.DistributeReward(source, destination, "referral", DEAL))
    with conflict(ledger, f"charge_id {transfer.transfer_id} was first used for a transfer, "
                          "not a fee"):
        ledger.execute(c.ChargeFee(transfer.transfer_id, source, "search"))
    with conflict(ledger, f"hold_id {source} is already used by an account"):
        ledger.execute(c.PlaceHold(source, source, amount=DEAL))


COVERED_ABOVE = (c.TransferFunds, c.TransferFrom, c.ChargeFee, c.DistributeReward, c.Mint,
                 c.Burn, c.ReverseTransfer, c.PlaceHold, c.Withdraw)
"""Commands whose reused id names the differing fields, each with a case above."""
ANSWERED_OTHERWISE = {
    c.OpenAccount: "account_exists names the kind that differs (API.md)",
    c.CaptureHold: "a second capture or void answers hold_not_pending (API.md)",
    c.VoidHold: "a second capture or void answers hold_not_pending (API.md)",
    c.AdjustForFinding: "tests/settlement/test_reconciliation.py",
    c.CreditDeposit: "its id is derived from the deposit's signature and account: a repeat "
                     "answers the credit, whoever made it (tests/settlement/test_deposits.py)",
    c.AssignDeposit: "once per finding; a repeat answers the credit, another reason is "
                     "idempotency_conflict (tests/settlement/test_deposits.py)",
    c.ReturnDeposit: "once per finding; a repeat answers the return's withdrawal, another "
                     "reason is idempotency_conflict (tests/settlement/test_deposit_returns.py)",
}


def test_every_command_with_an_id_says_what_a_reused_id_answers():
    """A newcomer's command with an id either declares ``recorded()`` and
    gets a case above, or says here how a reused id is answered."""
    from tests.support.registries import import_every_module, qualified, subclasses

    import_every_module()
    with_id = [cls for cls in subclasses(c.Command) if cls.id_field is not None]
    unsaid = [qualified(cls) for cls in with_id
              if cls not in COVERED_ABOVE and cls not in ANSWERED_OTHERWISE]
    assert not unsaid, f"commands with an id and no conflict case: {unsaid}"
    no_record = [qualified(cls) for cls in COVERED_ABOVE if "recorded" not in vars(cls)]
    assert not no_record, f"commands that do not say how their Transfer records them: {no_record}"
