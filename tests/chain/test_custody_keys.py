"""Separate keys for separate powers: ``CustodyKeys`` says which key is fee
payer, token-account owner, mint (and freeze) authority and address base.
One key alone stands for every power, byte for byte as before; with a key
per power, genesis, movements and anchors land on both adapters, each power
held on chain by its own key, and signing refuses a signer no key holds."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount
from solders.transaction import Transaction

from application.settlement.chain_port import ChainMovement
from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey, CustodyKeyError, CustodyKeys
from tests.chain.conftest import INITIAL_SUPPLY, TREASURY_ID, ChainEnv
from tests.chain.test_custody import assert_no_secret

pytestmark = pytest.mark.anyio

DEAL = 10**8


class SplitKeys:
    """Four keypairs, one a power, and the ``CustodyKeys`` over them."""

    def __init__(self) -> None:
        self.base, self.payer, self.owner, self.minter = (Keypair() for _ in range(4))
        self.keys = CustodyKeys(CustodyKey(self.base), fee_payer=CustodyKey(self.payer),
                                owner=CustodyKey(self.owner),
                                mint_authority=CustodyKey(self.minter))


@pytest.fixture
def split() -> SplitKeys:
    return SplitKeys()


@pytest.fixture(params=["litesvm", "rpc"])
async def split_env(
    request: pytest.FixtureRequest, tmp_path: Path, split: SplitKeys
) -> AsyncIterator[ChainEnv]:
    chain_env = ChainEnv(request.param, tmp_path / "chain", split.keys)
    try:
        await chain_env.port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
        yield chain_env
    finally:
        await chain_env.close()


def test_one_key_holds_every_power_by_default() -> None:
    key = CustodyKey(Keypair())
    keys = CustodyKeys(key)
    assert keys.authorities == tx.Authorities.single(key.pubkey)
    assert keys.anchor == key.anchor_signer
    blockhash = Hash.new_unique()
    message = Message.new_with_blockhash(
        [tx.memo_instruction(uuid4())], key.pubkey, blockhash)
    assert bytes(keys.sign(message, blockhash)) == bytes(key.sign_transaction(message, blockhash))


def test_an_anchor_is_signed_as_before() -> None:
    key = CustodyKey(Keypair())
    blockhash = Hash.new_unique()
    signer = AccountMeta(key.anchor_signer, is_signer=True, is_writable=False)
    message = Message.new_with_blockhash(
        [Instruction(tx.MEMO_PROGRAM_ID, b"anchor", [signer])], key.pubkey, blockhash)
    assert bytes(CustodyKeys(key).sign(message, blockhash)) == bytes(
        key.sign_anchor_transaction(message, blockhash))


def test_a_signer_no_key_holds_is_refused_by_name(split: SplitKeys) -> None:
    stranger = Pubkey.new_unique()
    blockhash = Hash.new_unique()
    signer = AccountMeta(stranger, is_signer=True, is_writable=False)
    message = Message.new_with_blockhash(
        [Instruction(tx.MEMO_PROGRAM_ID, b"x", [signer])], split.keys.fee_payer, blockhash)
    with pytest.raises(CustodyKeyError, match=str(stranger)):
        split.keys.sign(message, blockhash)


def test_the_keys_show_public_keys_only_and_refuse_pickling(split: SplitKeys) -> None:
    for text in (repr(split.keys), str(split.keys)):
        for keypair in (split.base, split.payer, split.owner, split.minter):
            assert str(keypair.pubkey()) in text
            assert_no_secret(text, keypair)
    with pytest.raises(TypeError):
        pickle.dumps(split.keys)
    assert not [name for name in dir(split.keys) if "keypair" in name.lower()]


async def test_each_power_is_held_on_chain_by_its_own_key(
    split_env: ChainEnv, split: SplitKeys
) -> None:
    embedded, port = split_env.embedded, split_env.port
    mint = Mint.from_bytes(bytes(embedded.get_account(Pubkey.from_string(port.mint_address)).data))
    assert (mint.mint_authority, mint.freeze_authority) == (split.minter.pubkey(),) * 2
    assert port.mint_address == str(tx.mint_address(split.base.pubkey()))
    treasury = embedded.get_account(Pubkey.from_string(port.token_account_address(TREASURY_ID)))
    assert TokenAccount.from_bytes(bytes(treasury.data)).owner == split.owner.pubkey()
    assert port.token_account_address(TREASURY_ID) == str(
        tx.token_account_address(split.base.pubkey(), TREASURY_ID))


async def test_movements_and_anchors_settle_paid_by_the_fee_payer(
    split_env: ChainEnv, split: SplitKeys
) -> None:
    port, alice = split_env.port, uuid4()
    movements = [ChainMovement(uuid4(), TREASURY_ID, alice, 3 * DEAL),
                 ChainMovement(uuid4(), None, alice, 2 * DEAL),
                 ChainMovement(uuid4(), alice, None, DEAL)]
    for movement in movements:  # each kind: transfer (creating alice's account), mint, burn
        submission = await port.sign_movements([movement])
        await port.send(submission)
        assert Transaction.from_bytes(submission.transaction).message.account_keys[0] == (
            split.payer.pubkey())
    anchor = await port.sign_anchor("deal-anchor:test")
    await port.send(anchor)
    assert (await port.signature_statuses([anchor.signature]))[anchor.signature] is not None
    assert await port.token_balance(alice) == 4 * DEAL
    assert await port.token_balance(TREASURY_ID) == INITIAL_SUPPLY - 3 * DEAL
