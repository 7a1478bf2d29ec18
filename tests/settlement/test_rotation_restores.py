"""A custody key rotated between a backup and its restore (or a PostgreSQL
failover) pays nothing twice (issue 18): a transfer, a withdrawal and a mint
queued at the backup settle, a power is rotated (``interface.chain.rotation``
as ``deals-ledger custody rotate`` runs it), the store is restored and the
settler restarted with the new key: the restart's chain lookup finds the
movements the old key's transactions executed and records them, sending
nothing again. The fee payer's rotation is the one that matters to the
lookup (it reads fee payers' histories): its link on chain leads from the
new fee payer's history to the old one's, and back, should the key file be
restored with the store."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from application import commands as c
from application.settlement.chain_port import FEE_PAYER_ROTATION_MEMO
from domain.system import TREASURY_ID
from domain.transfer import SETTLED, SETTLEMENT_QUEUED
from interface.chain import transactions as tx
from interface.chain.base import SeededTokenChain
from interface.chain.custody import CustodyKey, CustodyKeys
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rotation import link_fee_payers, rotate_mint_authority, rotate_owner
from interface.chain.rpc_adapter import RpcChain
from tests.settlement.conftest import DEAL, SettlementRig
from tests.settlement.test_restores import StoreSnapshot, _restart
from tests.settlement.test_withdrawals import connected, wallet_balance
from tests.support.stores import StoreConfig, sqlite_store

pytestmark = pytest.mark.anyio

NEW_FEE_PAYER_LAMPORTS = 10 * 10**9


async def _rotate(rig: SettlementRig, role: str, *, link: bool = True) -> CustodyKeys:
    """Rotate ``role`` on chain to a new key, as the command does (``link``
    False: a fee payer changed by pointing the setting at a new key, no
    command run); the keys the settler holds from then on."""
    new = CustodyKey(Keypair())
    chain = rig.chain
    assert isinstance(chain, SeededTokenChain)
    if role == "fee-payer":
        rig.embedded.fund(new.pubkey, NEW_FEE_PAYER_LAMPORTS)
        if link:
            await link_fee_payers(chain, new)
        return CustodyKeys(rig.custody, fee_payer=new)
    if role == "owner":
        report = await rotate_owner(chain, new.pubkey, rig.accounts, TREASURY_ID)
        assert report.moved > 1
        return CustodyKeys(rig.custody, owner=new)
    await rotate_mint_authority(chain, new.pubkey)
    return CustodyKeys(rig.custody, mint_authority=new)


async def _settled_then_rotated(rig: SettlementRig, rotation: str) -> CustodyKeys:
    """What the backup had queued settles, and ``rotation`` happens."""
    if rotation == "fee-payer twice":  # a fee payer the restored log never saw paid them
        rig = await _holding(rig, await _rotate(rig, "fee-payer"))
        await rig.settle()
        return await _rotate(rig, "fee-payer")
    await rig.settle()
    if rotation == "fee-payer without its link":
        return await _rotate(rig, "fee-payer", link=False)
    return await _rotate(rig, rotation)


async def _holding(rig: SettlementRig, keys: CustodyKeys) -> SettlementRig:
    """The settler holding ``keys`` (the rotation installed the new key)."""
    if rig.chain_kind == "rpc":
        assert rig.server is not None
        await rig.chain.close()  # its client only (the embedded one closes the chain)
        rig.chain = RpcChain(rig.server.url, keys, timeout_s=rig.rpc_timeout_s,
                             transport_retries_max=0)
    else:
        rig.chain = LiteSvmChain(rig.embedded, keys)
    rig.process = rig._new_process()
    return rig


async def _queued_at_backup(rig: SettlementRig) -> tuple[list[UUID], str]:
    """A transfer of 7, a withdrawal of 4 and a mint of 3 queued, then the
    store is backed up (``rig`` is stopped and started again for it)."""
    payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
    account, wallet = connected(rig, 10 * DEAL)
    await rig.settle()
    moved = [uuid4(), uuid4(), uuid4()]
    rig.execute(c.TransferFunds(moved[0], payer, payee, 7 * DEAL))
    rig.execute(c.Withdraw(moved[1], account, 4 * DEAL, wallet))
    rig.execute(c.Mint(moved[2], payee, 3 * DEAL))
    return moved, wallet


async def _executed_once(rig: SettlementRig, moved: list[UUID], wallet: str) -> None:
    await rig.assert_each_settled_once(moved)
    await rig.assert_chain_matches_ledger()
    assert wallet_balance(rig, wallet) == 4 * DEAL


ROTATIONS = ["fee-payer", "fee-payer without its link", "fee-payer twice", "owner",
             "mint-authority"]


@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("chain_kind", ["litesvm", "rpc"])
async def test_a_rotation_between_the_backup_and_its_restore_pays_nothing_twice(
    store: StoreConfig, tmp_path: Path, chain_kind: str, rotation: str,
) -> None:
    rig = SettlementRig(store, tmp_path, chain_kind=chain_kind)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        moved, wallet = await _queued_at_backup(rig)
        rig = await _restart(rig, while_stopped=snapshot.take)
        keys = await _settled_then_rotated(rig, rotation)
        rig = await _holding(await _restart(rig, while_stopped=snapshot.restore), keys)
        assert {rig.transfer(t).settlement_status for t in moved} == {SETTLEMENT_QUEUED}

        await rig.settle()

        await _executed_once(rig, moved, wallet)
        after = [uuid4(), uuid4()]  # and the new key settles what comes next
        rig.execute(c.TransferFunds(after[0], TREASURY_ID, rig.accounts[-1], DEAL))
        rig.execute(c.Mint(after[1], rig.accounts[-1], DEAL))
        await rig.settle()
        await rig.assert_each_settled_once(after)
    finally:
        await rig.close()


@pytest.mark.parametrize("chain_kind", ["litesvm", "rpc"])
async def test_a_fee_payer_key_restored_with_the_store_finds_what_its_successor_paid(
    store: StoreConfig, tmp_path: Path, chain_kind: str,
) -> None:
    """The backup held the old fee payer's key file too (a whole data dir
    restored): the rotation's link, in the old fee payer's history, leads
    the lookup to what the new one paid for after the backup."""
    rig = SettlementRig(store, tmp_path, chain_kind=chain_kind)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        moved, wallet = await _queued_at_backup(rig)
        rig = await _restart(rig, while_stopped=snapshot.take)
        rig = await _holding(rig, await _rotate(rig, "fee-payer"))
        await rig.settle()  # with the new fee payer, after the backup
        rig = await _restart(rig, while_stopped=snapshot.restore)  # the old key again

        await rig.settle()

        await _executed_once(rig, moved, wallet)
    finally:
        await rig.close()


def _stranger_pays(rig: SettlementRig, stranger: Keypair, memo: str) -> str:
    """A transaction ``stranger`` pays and signs alone, carrying ``memo``
    and a lamport to the ledger's fee payer (so it is in its history)."""
    blockhash, _ = rig.embedded.latest_blockhash()
    tip = transfer(TransferParams(
        from_pubkey=stranger.pubkey(), to_pubkey=rig.custody.pubkey, lamports=1))
    text = Instruction(tx.MEMO_PROGRAM_ID, memo.encode(), [])
    message = Message.new_with_blockhash([tip, text], stranger.pubkey(), blockhash)
    outcome = rig.embedded.process(Transaction([stranger], message, blockhash))
    assert outcome.landed is not None and outcome.landed.error is None
    return outcome.landed.signature


async def test_a_strangers_rotation_memo_links_no_fee_payer(tmp_path: Path) -> None:
    """Anyone can write the rotation's memo in a transaction naming the fee
    payer: without the fee payer's signature it links nobody, so the
    stranger's ``deal:<id>`` transaction neither settles the movement it
    names (sent and executed once) nor stops settlement."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path)
    try:
        payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
        await rig.settle()
        waiting = uuid4()
        rig.execute(c.TransferFunds(waiting, payer, payee, 7 * DEAL))
        stranger = Keypair()
        rig.embedded.fund(stranger.pubkey(), 10**9)
        forged = {_stranger_pays(rig, stranger, FEE_PAYER_ROTATION_MEMO),
                  _stranger_pays(rig, stranger, f"{tx.MEMO_PREFIX}{waiting}")}
        rig = await _restart(rig)

        await rig.settle()

        assert rig.transfer(waiting).settlement_status == SETTLED
        assert rig.transfer(waiting).signature not in forged
        await rig.assert_each_settled_once([waiting])
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()
