"""The address base key alone cannot take tokens: a custody token account
someone created at a ledger account's seed address before the ledger did
(another owner, another mint, a delegate, a close authority) stops
settlement, alerting, and no token is sent to it (``custody_accounts``).

Account ids are chosen by clients, so the address is known in advance; the
rig's one custody key holds every power, so each rogue account here is made
by that key playing the address base (or the owner key acting outside the
ledger), with a stranger X where the attack needs one."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from uuid import UUID, uuid4

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.token.instructions import approve
from spl.token.models import ApproveParams, AuthorityType

from application import commands as c
from application.alerts import AlertKind
from application.settlement.chain_port import CustodyAccountUnsafeError
from application.settlement.fold import SettlementFold
from application.settlement.worker import SettlementWorker
from domain.system import TREASURY_ID
from domain.transfer import SETTLED, SETTLEMENT_QUEUED
from interface.chain import base
from interface.chain import transactions as tx
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rotation import set_authority_instruction
from interface.wiring.settler import lease_for
from tests.settlement.conftest import DEAL, SettlementRig
from tests.support.alerts import CollectedAlerts

pytestmark = pytest.mark.anyio

SQUAT_LAMPORTS = 890_880  # a token account's rent-exempt minimum, as the reviewer sent


def _precreate(rig: SettlementRig, account_id: UUID, owner: Pubkey,
               mint: Pubkey | None = None) -> Pubkey:
    """The address base alone creates the account's token account at its
    seed address, initialized with ``owner`` (and ``mint``)."""
    k = rig.custody.pubkey
    roles = tx.Authorities(fee_payer=k, owner=owner, mint_authority=k, address_base=k)
    instructions = tx.create_token_account_instructions(
        roles, account_id, rig.embedded.rent_lamports(), mint or tx.mint_address(k))
    _landed(rig.embedded._sign_and_process(rig.custody, instructions))
    return tx.token_account_address(k, account_id)


def _as(rig: SettlementRig, signer: Keypair, instructions: list[Instruction]) -> None:
    rig.embedded.fund(signer.pubkey(), 10**9)
    blockhash, _ = rig.embedded.latest_blockhash()
    message = Message.new_with_blockhash(instructions, signer.pubkey(), blockhash)
    _landed(rig.embedded.process(Transaction([signer], message, blockhash)))


def _landed(outcome) -> None:
    assert outcome.landed is not None, outcome


def _rogue_mint(rig: SettlementRig, authority: Pubkey) -> Pubkey:
    """A mint of DEAL's decimals that is not the ledger's."""
    k = rig.custody.pubkey
    address = Pubkey.create_with_seed(k, "rogue-mint", tx.TOKEN_PROGRAM_ID)
    create = tx._create_seeded_account(
        tx.Authorities.single(k), address, "rogue-mint", 10**7, tx.MINT_ACCOUNT_LEN)
    data = struct.pack("<BB", 20, 8) + bytes(authority) + b"\x00"  # InitializeMint2
    initialize = Instruction(tx.TOKEN_PROGRAM_ID, data, [AccountMeta(address, False, True)])
    _landed(rig.embedded._sign_and_process(rig.custody, [create, initialize]))
    return address


def wrong_owner(rig: SettlementRig, account_id: UUID, x: Keypair) -> None:
    _precreate(rig, account_id, x.pubkey())


def wrong_mint(rig: SettlementRig, account_id: UUID, x: Keypair) -> None:
    _precreate(rig, account_id, rig.custody.pubkey, _rogue_mint(rig, x.pubkey()))


def delegate(rig: SettlementRig, account_id: UUID, x: Keypair) -> None:
    """The right owner and mint, but X may spend from it (the owner key
    approved X outside the ledger)."""
    address = _precreate(rig, account_id, rig.custody.pubkey)
    k = rig.custody.pubkey
    _landed(rig.embedded._sign_and_process(rig.custody, [approve(ApproveParams(
        program_id=tx.TOKEN_PROGRAM_ID, source=address, delegate=x.pubkey(), owner=k,
        amount=10**18))]))


def close_authority(rig: SettlementRig, account_id: UUID, x: Keypair) -> None:
    """X made itself the close authority, then handed the owner key over."""
    address = _precreate(rig, account_id, x.pubkey())
    _as(rig, x, [
        set_authority_instruction(address, AuthorityType.CLOSE_ACCOUNT, x.pubkey(), x.pubkey()),
        set_authority_instruction(address, AuthorityType.ACCOUNT_OWNER, x.pubkey(),
                                  rig.custody.pubkey),
    ])


ROGUES: dict[str, tuple[Callable[[SettlementRig, UUID, Keypair], None], str]] = {
    "wrong_owner": (wrong_owner, "its owner is"),
    "wrong_mint": (wrong_mint, "its mint is"),
    "delegate": (delegate, "it has a delegate"),
    "close_authority": (close_authority, "it has a close authority"),
}


@pytest.mark.parametrize("kind", ROGUES)
async def test_a_precreated_custody_account_stops_settlement_and_gets_nothing(
    chain_rig: SettlementRig, raised: CollectedAlerts, kind: str
) -> None:
    rig, (make, why) = chain_rig, ROGUES[kind]
    account_id, x = uuid4(), Keypair()  # a client-chosen id, known before its first movement
    make(rig, account_id, x)
    rig.execute(c.OpenAccount(account_id))
    funding = uuid4()
    rig.execute(c.TransferFunds(funding, TREASURY_ID, account_id, 5 * DEAL, "funding"))

    with pytest.raises(CustodyAccountUnsafeError) as stopped:
        await rig.settle()
    address = str(rig.address(account_id))
    assert stopped.value.account_id == account_id and stopped.value.address == address
    assert why in str(stopped.value) and address in str(stopped.value)
    state = tx.decode_token_account(bytes(rig.embedded.get_account(rig.address(account_id)).data))
    assert state.amount == 0  # no token reached it
    assert rig.transfer(funding).settlement_status == SETTLEMENT_QUEUED  # not failed: it waits, stopped
    assert rig.ledger.balance(account_id) == 5 * DEAL
    (alert,) = raised.of(AlertKind.CUSTODY_ACCOUNT_UNSAFE)
    assert alert.fields["address"] == address and alert.fields["account_id"] == str(account_id)

    with pytest.raises(CustodyAccountUnsafeError):  # still stopped on the next step
        await rig.settle()
    assert rig.transfer(funding).settlement_status == SETTLEMENT_QUEUED


async def test_the_ledgers_own_accounts_are_checked_once_and_settle(
    chain_rig: SettlementRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check costs one read per account, once (the read that saw it
    exist before): the settler's own accounts pass it, and movements
    between accounts it has seen check nothing again."""
    rig = chain_rig
    checked: list[bytes] = []
    real = base.custody_account_problem

    def counted(program: Pubkey, data: bytes, **roles: Pubkey) -> str | None:
        checked.append(data)
        return real(program, data, **roles)

    monkeypatch.setattr(base, "custody_account_problem", counted)
    payer, payee = rig.open_account(funded=10 * DEAL), rig.open_account()
    await rig.settle()  # payer created (the treasury was checked at genesis's rewards)
    rig.execute(c.TransferFunds(uuid4(), payer, payee, DEAL))
    await rig.settle()  # payer checked; payee created
    assert len(checked) == 1
    for _ in range(3):
        rig.execute(c.TransferFunds(uuid4(), payer, payee, DEAL))
        rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, payer, DEAL))
        await rig.settle()
    assert len(checked) == 2  # payee, once
    await rig.assert_chain_matches_ledger()


async def test_ready_names_the_unsafe_account(sqlite_rig: SettlementRig) -> None:
    """A settler run as a process runs it stops, and says which account
    (``/ready``'s settlement.last_error); it sent nothing to it."""
    rig = sqlite_rig
    await rig.settle()  # genesis
    account_id = uuid4()
    wrong_owner(rig, account_id, Keypair())
    rig.execute(c.OpenAccount(account_id))
    rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, account_id, DEAL, "funding"))
    await rig._close_chain()  # the worker opens the embedded chain itself
    worker = SettlementWorker(
        writer=rig.ledger.writer, fold=SettlementFold(rig.ledger.app, rig.store),
        lease=lambda: lease_for(rig.ledger.app.recorder),
        open_chain=lambda: LiteSvmChain(EmbeddedSolana(rig.chain_dir), rig.custody),
        chain_is_exclusive=True, config=rig.config, idle_interval_s=0.02,
    )
    try:
        worker.start()
        deadline = time.monotonic() + 60
        while worker.last_failure is None:
            assert time.monotonic() < deadline, "the settler never stopped"
            worker.wake()
            time.sleep(0.01)
        assert not worker.settling
    finally:
        worker.stop()
    assert str(account_id) in worker.last_failure
    assert str(rig.address(account_id)) in worker.last_failure
    assert "not safe to send to" in worker.last_failure
    rig.chain = rig._open_chain()
    state = tx.decode_token_account(bytes(rig.embedded.get_account(rig.address(account_id)).data))
    assert state.amount == 0


@pytest.mark.parametrize("lamports", [SQUAT_LAMPORTS, 3_000_000], ids=["below", "above"])
async def test_lamports_sent_to_a_seed_address_become_part_of_its_rent(
    chain_rig: SettlementRig, raised: CollectedAlerts, lamports: int
) -> None:
    """Anyone, with no key, can send lamports to an account's seed address
    before its token account exists. That is no token account (owned by the
    System program, no data) and no reason to stop settlement (before, the
    check raised ``CustodyAccountUnsafeError`` and nothing settled), nor to
    fail the account's movements (``create_account_with_seed`` refuses an
    address holding lamports): the settler tops them up to the rent, if
    they are short of it, and allocates the address for the token program,
    so the account is ours and every movement settles."""
    rig = chain_rig
    payer, payee = rig.open_account(funded=10 * DEAL), rig.open_account()
    await rig.settle()
    squatted = uuid4()
    address = rig.address(squatted)
    stranger = Keypair()  # holds no ledger key
    _as(rig, stranger, [transfer(TransferParams(
        from_pubkey=stranger.pubkey(), to_pubkey=address, lamports=lamports))])
    rig.execute(c.OpenAccount(squatted))
    funding, before, after = uuid4(), uuid4(), uuid4()
    rig.execute(c.TransferFunds(funding, TREASURY_ID, squatted, DEAL, "funding"))
    rig.execute(c.TransferFunds(before, payer, payee, DEAL))
    await rig.settle()
    rig.execute(c.TransferFunds(after, payee, payer, DEAL // 2))
    await rig.settle()

    for transfer_id in (funding, before, after):
        assert rig.transfer(transfer_id).settlement_status == SETTLED
    assert rig.store.backlog() == 0 and rig.ledger.balance(squatted) == DEAL
    assert raised.of(AlertKind.CUSTODY_ACCOUNT_UNSAFE) == []
    made = rig.embedded.get_account(address)
    assert made.owner == tx.TOKEN_PROGRAM_ID
    assert made.lamports == max(lamports, rig.embedded.rent_lamports().token_account)
    state = tx.decode_token_account(bytes(made.data))
    assert (state.mint, state.owner, state.amount) == (
        tx.mint_address(rig.custody.pubkey), rig.custody.pubkey, DEAL)
    assert state.delegate is None and state.close_authority is None
    rig.accounts.append(squatted)
    await rig.assert_chain_matches_ledger()
