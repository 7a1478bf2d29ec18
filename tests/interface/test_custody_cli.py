"""``deals-ledger custody rotate`` as an operator runs it, on the embedded
chain of a real data dir: refused while a settler holds the lease; a
rotation moves the power on chain, installs the new key (0600) in the data
dir, and a second run moves nothing; settlement goes on with the new key
while the old one can no longer move tokens; a key given by setting is only
named, and until it is set the settler refuses, saying which key the chain
expects."""

from __future__ import annotations

import argparse
import json
import stat
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application import commands as c
from application.settlement.chain_port import FEE_PAYER_ROTATION_MEMO
from interface.chain import rotation
from interface.chain import transactions as tx
from interface.chain.custody import ROLE_KEY_FILE_NAMES, load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.cli import exit_codes
from interface.cli.custody_rotation import run_custody
from interface.wiring.settler import EMBEDDED_CHAIN_DIR, lease_for
from tests.interface.cli_support import REPO, cli, cli_env

DEAL = 10**8


def key_file(path: Path) -> tuple[Path, Pubkey]:
    keypair = Keypair()
    path.write_text(json.dumps(list(bytes(keypair))))
    path.chmod(0o600)
    return path, keypair.pubkey()


def run(store, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interface.cli", *args], cwd=REPO,
                          env={**cli_env(store), **env}, capture_output=True, text=True,
                          timeout=120)


def settle_once(store, **env: str) -> dict:
    settled = run(store, "settle", "--once", "--json", **env)
    assert settled.returncode == exit_codes.OK, settled.stderr
    return json.loads(settled.stdout)


def test_the_owner_rotates_and_settlement_goes_on_with_the_new_key(
    service_ledger, store, tmp_path
):
    data_dir = store.settings.data_dir
    ledger = service_ledger
    alice = ledger.open_account(funded=5 * DEAL)
    settle_once(store)
    new_file, new = key_file(tmp_path / "new-owner.json")

    lease = lease_for(ledger.app.recorder)
    assert lease.try_acquire()
    try:
        refused = cli(store, "custody", "rotate", "owner", "--new-keypair", str(new_file))
    finally:
        lease.release()
    assert refused.returncode == exit_codes.FAILURE and "settlement lease" in refused.stderr

    rotated = cli(store, "custody", "rotate", "owner", "--new-keypair", str(new_file), "--json")
    assert rotated.returncode == exit_codes.OK, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["new"] == str(new) and report["moved"] >= 2 and report["signatures"]
    installed = data_dir / ROLE_KEY_FILE_NAMES["owner"]
    assert installed.read_bytes() == new_file.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    again = json.loads(cli(store, "custody", "rotate", "owner", "--new-keypair", str(new_file),
                           "--json").stdout)
    assert (again["moved"], again["already"]) == (0, report["moved"])

    bob = ledger.open_account(funded=3 * DEAL)
    assert settle_once(store)["waiting"] == 0
    chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
    try:
        base = load_custody_keypair(None, data_dir)
        bob_account = chain.get_account(tx.token_account_address(base.pubkey, bob))
        assert bob_account is not None
        state = tx.decode_token_account(bytes(bob_account.data))
        assert (state.owner, int(state.amount)) == (new, 3 * DEAL)
        stolen = chain.transfer_directly(  # the old key (the custody key) signs a transfer
            base, tx.token_account_address(base.pubkey, alice),
            tx.token_account_address(base.pubkey, bob), 1)
        assert stolen.landed is None and stolen.rejection is not None
    finally:
        chain.close()


def test_a_fee_payer_rotation_lands_the_link_from_the_new_fee_payer_to_the_old(
    service_ledger, store, tmp_path
):
    """The link a restore's chain lookup follows from one fee payer's
    history to the other's (``FEE_PAYER_ROTATION_MEMO``): the old fee payer
    pays, the new one signs too."""
    service_ledger.open_account(funded=5 * DEAL)
    settle_once(store)
    new_file, new = key_file(tmp_path / "new-fee-payer.json")

    rotated = cli(store, "custody", "rotate", "fee-payer", "--new-keypair", str(new_file),
                  "--move-lamports", str(2 * 10**9), "--json")

    assert rotated.returncode == exit_codes.OK, rotated.stderr
    report = json.loads(rotated.stdout)
    chain = EmbeddedSolana(store.settings.data_dir / EMBEDDED_CHAIN_DIR)
    try:
        _top_up, link = [chain.landed(signature) for signature in report["signatures"]]
        assert link is not None and link.error is None
        message = Transaction.from_bytes(link.raw).message
        assert tx.signers(message) == (report["old"], str(new))
        assert tx.memo_texts(message) == (FEE_PAYER_ROTATION_MEMO,)
    finally:
        chain.close()
    service_ledger.open_account(funded=3 * DEAL)
    assert settle_once(store)["waiting"] == 0


def test_a_key_given_by_setting_must_be_set_before_settlement_resumes(
    service_ledger, store, tmp_path
):
    settle_once(store)
    new_file, new = key_file(tmp_path / "new-minter.json")
    configured = {"DEALS_MINT_AUTHORITY_KEYPAIR": str(new_file)}
    old_file, _ = key_file(tmp_path / "elsewhere.json")

    rotated = run(store, "custody", "rotate", "mint-authority", "--new-keypair", str(new_file),
                  DEALS_MINT_AUTHORITY_KEYPAIR=str(old_file))
    # the configured key is not the chain's: refused before anything moves
    assert rotated.returncode == exit_codes.FAILURE
    rotated = cli(store, "custody", "rotate", "mint-authority", "--new-keypair", str(new_file))
    assert rotated.returncode == exit_codes.OK, rotated.stderr
    assert "installed the new key" in rotated.stdout

    (store.settings.data_dir / ROLE_KEY_FILE_NAMES["mint-authority"]).unlink()
    stopped = run(store, "settle", "--once")
    assert stopped.returncode == exit_codes.FAILURE
    assert "not the configured mint authority key" in stopped.stderr
    assert "DEALS_MINT_AUTHORITY_KEYPAIR" in stopped.stderr
    service_ledger.open_account(funded=DEAL)
    assert settle_once(store, **configured)["waiting"] == 0


def test_an_interrupted_owner_rotation_stops_settlement_until_it_is_finished(
    service_ledger, store, tmp_path, monkeypatch
):
    """A rotation that dies after its first batch leaves the treasury (moved
    last) with the old key, which the start-up check reads: without the
    marker the settler starts, and a payment out of an account already moved
    fails on chain (OwnerMismatch) and is compensated. With it, settlement
    refuses until the same command finishes the rotation."""
    ledger = service_ledger
    accounts = [ledger.open_account(funded=DEAL) for _ in range(24)]  # two batches at least
    settle_once(store)
    new_file, new = key_file(tmp_path / "new-owner.json")
    real_sign_and_land, landed = rotation.SeededTokenChain.sign_and_land, []

    async def dies_after_one_batch(chain, instructions):
        if landed:
            raise RuntimeError("killed after the first batch")
        landed.append(await real_sign_and_land(chain, instructions))
        return landed[-1]

    monkeypatch.setattr(rotation.SeededTokenChain, "sign_and_land", dies_after_one_batch)
    args = argparse.Namespace(action="rotate", role="owner", new_keypair=new_file,
                              move_lamports=None, json=True)
    with pytest.raises(RuntimeError, match="killed"):
        run_custody(args, store.settings)
    monkeypatch.undo()
    assert len(landed) == 1

    payer, payee = accounts[0], accounts[1]
    ledger.execute(c.TransferFunds(transfer_id=uuid4(), source=payer, destination=payee,
                                   amount=DEAL // 2, reason="after a half rotation"))
    refused = run(store, "settle", "--once")
    assert refused.returncode == exit_codes.FAILURE
    assert "owner rotation was interrupted" in refused.stderr
    assert ledger.balance(payer) == DEAL // 2  # pending, not failed and compensated

    finished = cli(store, "custody", "rotate", "owner", "--new-keypair", str(new_file), "--json")
    assert finished.returncode == exit_codes.OK, finished.stderr
    assert json.loads(finished.stdout)["moved"] >= 1
    assert settle_once(store)["waiting"] == 0
    assert ledger.balance(payer) == DEAL // 2
    chain = EmbeddedSolana(store.settings.data_dir / EMBEDDED_CHAIN_DIR)
    try:
        base = load_custody_keypair(None, store.settings.data_dir)
        state = tx.decode_token_account(bytes(chain.get_account(
            tx.token_account_address(base.pubkey, payee)).data))
        assert (state.owner, int(state.amount)) == (new, DEAL + DEAL // 2)
    finally:
        chain.close()
