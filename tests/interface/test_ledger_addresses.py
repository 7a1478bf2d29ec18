"""No account may connect an address the ledger controls as a wallet: each
key of ``CustodyKeys`` (the custody key, fee payer, custody owner, mint
authority, anchor signer), the mint, and the deposit address (custody token
account) of the account itself, of any other account and of the system
accounts. Through HTTP on both stores: 422 ``invalid_wallet_address``
naming what the address is, nothing written; and the list itself."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from domain.system import SYSTEM_ACCOUNTS, TREASURY_ID
from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey, CustodyKeys
from interface.wiring.ledger_addresses import DepositAddresses, LedgerAddresses, key_roles
from interface.wiring.settler import custody_keys
from tests.interface.helpers import assert_error, log_position, open_account
from tests.support.http import ThreadServer


def key_file(path: Path) -> Path:
    path.write_text(json.dumps(list(bytes(Keypair()))))
    path.chmod(0o600)
    return path


def split_keys() -> CustodyKeys:
    key = lambda: CustodyKey(Keypair())  # noqa: E731
    return CustodyKeys(key(), fee_payer=key(), owner=key(), mint_authority=key())


def on_curve_deposit_account(base: Pubkey, make_account) -> tuple[UUID, str]:
    """An account whose deposit address is on the curve (about one in two):
    one off it is refused by the address check alone."""
    for _ in range(64):
        account_id = make_account()
        address = tx.token_account_address(base, account_id)
        if address.is_on_curve():
            return account_id, str(address)
    raise AssertionError("no deposit address on the curve in 64 accounts")


# The list


def test_every_key_and_the_mint_are_named():
    keys, mint = split_keys(), str(Keypair().pubkey())
    addresses = LedgerAddresses(key_roles(keys, mint), DepositAddresses(keys.address_base))
    account = uuid4()
    named = {str(keys.address_base): "the custody key", str(keys.fee_payer): "the fee payer",
             str(keys.owner): "the custody owner", str(keys.mint_authority): "the mint authority",
             str(keys.anchor): "the anchor signer", mint: "the DEAL mint"}
    for address, role in named.items():
        what = addresses.what_is(address, account)
        assert what is not None and what.startswith(role), (address, what)
    assert addresses.what_is(str(Keypair().pubkey()), account) is None


def test_one_key_holding_every_power_is_named_by_all_of_them():
    keys = CustodyKeys(CustodyKey(Keypair()))
    what = key_roles(keys, "mint")[str(keys.address_base)]
    assert what == ("the custody key (the address base) and the fee payer and the custody owner "
                    "and the mint authority")


def test_deposit_addresses_of_the_account_of_others_and_of_the_system_are_named():
    keys = split_keys()
    deposits = DepositAddresses(keys.address_base)
    addresses = LedgerAddresses(key_roles(keys, "mint"), deposits)
    mine, other, later = uuid4(), uuid4(), uuid4()
    deposits.add([other])
    at = lambda account: str(tx.token_account_address(keys.address_base, account))  # noqa: E731
    assert str(mine) in (addresses.what_is(at(mine), mine) or "")
    assert str(other) in (addresses.what_is(at(other), mine) or "")
    for system_id in SYSTEM_ACCOUNTS.values():
        assert str(system_id) in (addresses.what_is(at(system_id), mine) or "")
    assert addresses.what_is(at(later), mine) is None  # not listed yet: refresh reads it


# Through HTTP, on both stores


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, make_settings, tmp_path):
    """Every power on a key of its own, and a mint of its own (on the curve),
    so each is refused for what it is."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    settings = make_settings(
        request.param, fee_payer_keypair=key_file(keys_dir / "fee-payer.json"),
        custody_owner_keypair=key_file(keys_dir / "owner.json"),
        mint_authority_keypair=key_file(keys_dir / "mint-authority.json"),
        solana_mint=str(Keypair().pubkey()))
    started = ThreadServer(settings).start()
    yield started, settings
    started.stop()


def refused_as(server: ThreadServer, admin, account: str, address: str, what: str) -> None:
    before = log_position(server)
    response = admin.post(f"/v1/accounts/{account}/wallets", json={"address": address})
    assert_error(response, 422, "invalid_wallet_address")
    message = response.json()["error"]["message"]
    assert address in message and what in message and "the ledger controls" in message, message
    assert log_position(server) == before


def test_the_ledgers_keys_and_mint_are_refused(server):
    served, settings = server
    keys = custody_keys(settings)
    with served.client() as admin:
        account = open_account(admin)
        for address, what in [
            (keys.fee_payer, "the fee payer"), (keys.owner, "the custody owner"),
            (keys.mint_authority, "the mint authority"), (keys.address_base, "the custody key"),
            (keys.anchor, "the anchor signer"), (settings.solana_mint, "the DEAL mint"),
        ]:
            refused_as(served, admin, account, str(address), what)
        stranger = str(Keypair().pubkey())
        assert admin.post(f"/v1/accounts/{account}/wallets",
                          json={"address": stranger}).status_code == 201


def test_deposit_addresses_are_refused(server):
    """The account's own, one of another account opened just before (the
    read models are read up to the request), and the treasury's."""
    served, settings = server
    base = custody_keys(settings).address_base
    with served.client() as admin:
        account = open_account(admin)
        own, own_address = on_curve_deposit_account(
            base, lambda: UUID(open_account(admin)))
        refused_as(served, admin, str(own), own_address, f"of account {own}")
        other, other_address = on_curve_deposit_account(
            base, lambda: UUID(open_account(admin)))
        refused_as(served, admin, account, other_address, f"of account {other}")
        treasury = tx.token_account_address(base, TREASURY_ID)
        if treasury.is_on_curve():
            refused_as(served, admin, account, str(treasury), f"of account {TREASURY_ID}")
