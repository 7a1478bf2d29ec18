"""``deals-ledger custody rotate`` as an operator runs it, on the embedded
chain of a real data dir: refused while a settler holds the lease; a
rotation moves the power on chain, installs the new key (0600) in the data
dir, and a second run moves nothing; settlement goes on with the new key
while the old one can no longer move tokens; a key given by setting is only
named, and until it is set the settler refuses, saying which key the chain
expects."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from interface.chain import transactions as tx
from interface.chain.custody import ROLE_KEY_FILE_NAMES, load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.cli import exit_codes
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
