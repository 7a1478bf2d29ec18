"""The embedded chain's own promises: slots advance per landed transaction,
a blockhash is good for 150 blocks and never again (not even after a
restart), refused transactions leave no trace, and everything it holds
survives a restart."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from solders.account import Account
from solders.hash import Hash
from solders.message import Message
from solders.transaction import Transaction

from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey
from interface.chain.embedded import BLOCKHASH_VALIDITY_SLOTS, EmbeddedSolana

FUNDS = 10**12


@pytest.fixture
def chain(tmp_path: Path, custody: CustodyKey) -> EmbeddedSolana:
    embedded = EmbeddedSolana(tmp_path / "chain")
    embedded.fund(custody.pubkey, FUNDS)
    return embedded


def memo_transaction(custody: CustodyKey, blockhash: Hash) -> Transaction:
    """A cheap transaction that touches nothing but the fee payer."""
    memo = tx.memo_instruction(uuid4())
    return custody.sign_transaction(
        Message.new_with_blockhash([memo], custody.pubkey, blockhash), blockhash
    )


def test_each_landed_transaction_is_one_block(chain: EmbeddedSolana, custody: CustodyKey) -> None:
    start = chain.block_height()
    blockhash, last_valid = chain.latest_blockhash()
    assert last_valid == start + BLOCKHASH_VALIDITY_SLOTS

    outcome = chain.process(memo_transaction(custody, blockhash))

    assert outcome.landed is not None and outcome.landed.slot == start
    assert chain.block_height() == start + 1
    assert chain.latest_blockhash()[0] != blockhash


def test_a_blockhash_is_good_through_its_last_valid_height_only(
    chain: EmbeddedSolana, custody: CustodyKey
) -> None:
    blockhash, last_valid = chain.latest_blockhash()
    chain.advance_slots(last_valid - chain.block_height())
    assert chain.block_height() == last_valid
    assert chain.process(memo_transaction(custody, blockhash)).landed is not None

    late = memo_transaction(custody, blockhash)  # same blockhash, new memo: new signature
    outcome = chain.process(late)

    assert chain.block_height() > last_valid
    assert outcome.rejection is not None and outcome.rejection.error == "BlockhashNotFound"


def test_a_blockhash_from_before_a_restart_stays_expired(
    tmp_path: Path, custody: CustodyKey
) -> None:
    """LiteSVM's own blockhashes repeat in every fresh instance; ours must not."""
    chain = EmbeddedSolana(tmp_path / "chain")
    chain.fund(custody.pubkey, FUNDS)
    stale = memo_transaction(custody, chain.latest_blockhash()[0])
    chain.expire_blockhash()
    chain.close()

    reopened = EmbeddedSolana(tmp_path / "chain")
    outcome = reopened.process(stale)

    assert outcome.rejection is not None and outcome.rejection.error == "BlockhashNotFound"
    assert reopened.landed(outcome.signature) is None


def test_a_refused_transaction_changes_nothing(chain: EmbeddedSolana, custody: CustodyKey) -> None:
    height = chain.block_height()
    unknown_blockhash = Hash.new_unique()
    outcome = chain.process(memo_transaction(custody, unknown_blockhash))
    assert outcome.rejection is not None
    assert chain.block_height() == height
    assert chain.get_account(custody.pubkey).lamports == FUNDS  # type: ignore[union-attr]
    assert chain.signatures_for_address(custody.address) == []


def test_a_dropped_transaction_is_accepted_and_never_processed(
    chain: EmbeddedSolana, custody: CustodyKey
) -> None:
    blockhash, _ = chain.latest_blockhash()
    dropped = memo_transaction(custody, blockhash)
    chain.drop_next_transactions(1)

    assert chain.process(dropped).dropped
    assert chain.landed(str(dropped.signatures[0])) is None
    assert chain.process(dropped).landed is not None  # the fault was for one send only


def test_tampering_and_index_survive_a_restart(tmp_path: Path, custody: CustodyKey) -> None:
    chain = EmbeddedSolana(tmp_path / "chain")
    chain.fund(custody.pubkey, FUNDS)
    landed = chain.process(memo_transaction(custody, chain.latest_blockhash()[0])).landed
    assert landed is not None
    tampered = Account(1234, b"tampered", tx.TOKEN_PROGRAM_ID)
    tampered_address = tx.token_account_address(custody.pubkey, uuid4())
    chain.set_account(tampered_address, tampered)
    height, blockhash = chain.block_height(), chain.latest_blockhash()
    chain.close()

    reopened = EmbeddedSolana(tmp_path / "chain")

    assert reopened.block_height() == height
    assert reopened.latest_blockhash() == blockhash
    assert reopened.landed(landed.signature) == landed
    assert [t.signature for t in reopened.signatures_for_address(custody.address)] == [
        landed.signature
    ]
    assert reopened.get_account(custody.pubkey).lamports == FUNDS - landed.fee  # type: ignore[union-attr]
    assert reopened.get_account(tampered_address) == tampered


def test_history_pages_are_bounded(chain: EmbeddedSolana, custody: CustodyKey) -> None:
    with pytest.raises(ValueError):
        chain.signatures_for_address(custody.address, limit=1001)
    with pytest.raises(ValueError):
        chain.signatures_for_address(custody.address, limit=0)
    assert chain.signatures_for_address(custody.address, before=str(Hash.default())) == []
