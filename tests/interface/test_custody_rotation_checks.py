"""``deals-ledger custody rotate`` leaves nothing behind that contradicts it,
on the embedded chain of a real data dir, both stores: reconciliation
knows a rotation's transactions as the ledger's own (a stranger's
SetAuthority on a custody account stays a finding, and so does a leaked
owner key's handing an account to someone else), a new key already
holding another power is refused before anything moves, and after a
fee-payer rotation a settler refuses to pay with the old key."""

from __future__ import annotations

import json
from pathlib import Path

from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction
from spl.token.models import AuthorityType

from domain.system import TREASURY_ID
from interface.chain import rotation
from interface.chain import transactions as tx
from interface.chain.custody import ROLE_KEY_FILE_NAMES, load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.cli import exit_codes
from interface.wiring.settler import EMBEDDED_CHAIN_DIR
from tests.interface.test_custody_cli import key_file, run, settle_once

DEAL = 10**8


def stranger_set_authority(data_dir: Path, account_id) -> str:
    """A stranger's SetAuthority on a custody token account, sent past
    preflight: it lands, failed (only the owner can sign it)."""
    stranger = Keypair()
    chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
    try:
        base = load_custody_keypair(None, data_dir)
        target = tx.token_account_address(base.pubkey, account_id)
        chain.fund(stranger.pubkey(), 10**9)
        blockhash, _ = chain.latest_blockhash()
        message = Message.new_with_blockhash([rotation.set_authority_instruction(
            target, AuthorityType.ACCOUNT_OWNER, stranger.pubkey(), stranger.pubkey(),
        )], stranger.pubkey(), blockhash)
        outcome = chain.process(Transaction([stranger], message, blockhash), preflight=False)
        assert outcome.landed is not None and outcome.landed.error is not None
        return outcome.landed.signature
    finally:
        chain.close()


def test_reconciliation_knows_the_rotations_transactions_and_not_a_strangers(
    service_ledger, store, tmp_path
):
    alice = service_ledger.open_account(funded=DEAL)
    service_ledger.open_account(funded=2 * DEAL)
    settle_once(store)
    for role in ("owner", "mint-authority"):
        new_file, _ = key_file(tmp_path / f"{role}.json")
        rotated = run(store, "custody", "rotate", role, "--new-keypair", str(new_file), "--json")
        assert rotated.returncode == exit_codes.OK, rotated.stderr
        assert json.loads(rotated.stdout)["signatures"]
    service_ledger.open_account(funded=DEAL)
    settle_once(store)
    clean = run(store, "reconcile", "--full", "--json")
    assert clean.returncode == exit_codes.OK, clean.stdout[-2000:]

    forged = stranger_set_authority(store.settings.data_dir, alice)
    found = run(store, "reconcile", "--full", "--json")
    assert found.returncode == exit_codes.FINDINGS
    findings = json.loads(found.stdout)["unmatched_signatures"]
    assert [(f["kind"], f["signature"]) for f in findings] == [("unknown_signature", forged)]


def leaked_owner_hands_over(data_dir: Path, account_id) -> str:
    """The owner key, leaked, signs a SetAuthority handing a custody token
    account to a stranger, who pays: the structure of a rotation's own
    transaction, and it lands."""
    stranger = Keypair()
    chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
    try:
        owner = load_custody_keypair(None, data_dir)  # the owner while powers are not split
        target = tx.token_account_address(owner.pubkey, account_id)
        chain.fund(stranger.pubkey(), 10**9)
        blockhash, _ = chain.latest_blockhash()
        message = Message.new_with_blockhash([rotation.set_authority_instruction(
            target, AuthorityType.ACCOUNT_OWNER, owner.pubkey, stranger.pubkey())],
            stranger.pubkey(), blockhash)
        signed = Transaction.new_unsigned(message)
        signed.partial_sign([stranger], blockhash)
        owner.partial_sign(signed, blockhash)
        outcome = chain.process(signed)
        assert outcome.landed is not None and outcome.landed.error is None, outcome
        return outcome.landed.signature
    finally:
        chain.close()


def test_a_leaked_owner_keys_handover_is_no_rotation_of_ours(service_ledger, store):
    alice = service_ledger.open_account(funded=DEAL)
    settle_once(store)
    clean = run(store, "reconcile", "--full", "--json")
    assert clean.returncode == exit_codes.OK, clean.stdout[-2000:]

    handover = leaked_owner_hands_over(store.settings.data_dir, alice)
    found = run(store, "reconcile", "--full", "--json")
    assert found.returncode == exit_codes.FINDINGS, found.stdout[-2000:]
    findings = json.loads(found.stdout)["unmatched_signatures"]
    assert [(f["kind"], f["signature"]) for f in findings] == [("unknown_signature", handover)]


def test_a_new_key_holding_another_power_is_refused_before_anything_moves(
    service_ledger, store, tmp_path
):
    data_dir = store.settings.data_dir
    service_ledger.open_account(funded=DEAL)
    settle_once(store)
    payer_file, payer = key_file(tmp_path / "payer.json")
    rotated = run(store, "custody", "rotate", "fee-payer", "--new-keypair", str(payer_file))
    assert rotated.returncode == exit_codes.OK, rotated.stderr
    base_file = tmp_path / "base.json"
    base_file.write_text(json.dumps(list(bytes(Keypair.from_bytes(json.loads(
        (data_dir / "custody-keypair.json").read_text()))))))
    base_file.chmod(0o600)

    for role, file, holder in (("owner", payer_file, "fee-payer"),
                               ("mint-authority", payer_file, "fee-payer"),
                               ("owner", base_file, "mint-authority, address base"),
                               ("fee-payer", base_file, "owner, mint-authority, address base")):
        refused = run(store, "custody", "rotate", role, "--new-keypair", str(file))
        assert refused.returncode == exit_codes.USAGE, (role, refused.stderr)
        assert f"is already the {holder}" in refused.stderr
        assert "one key would hold two powers" in refused.stderr
    assert not (data_dir / ROLE_KEY_FILE_NAMES["owner"]).exists()
    chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
    try:
        base = load_custody_keypair(None, data_dir)
        treasury = tx.decode_token_account(bytes(chain.get_account(
            tx.token_account_address(base.pubkey, TREASURY_ID)).data))
        assert treasury.owner == base.pubkey != payer
    finally:
        chain.close()


def test_after_a_fee_payer_rotation_the_old_configured_key_does_not_settle(
    service_ledger, store, tmp_path
):
    old_file, old = key_file(tmp_path / "payer-old.json")
    service_ledger.open_account(funded=DEAL)
    settle_once(store, DEALS_FEE_PAYER_KEYPAIR=str(old_file))
    new_file, _ = key_file(tmp_path / "payer-new.json")
    rotated = run(store, "custody", "rotate", "fee-payer", "--new-keypair", str(new_file),
                  "--move-lamports", str(2 * 10**9), DEALS_FEE_PAYER_KEYPAIR=str(old_file))
    assert rotated.returncode == exit_codes.OK, rotated.stderr
    assert f"now set DEALS_FEE_PAYER_KEYPAIR={new_file}" in rotated.stdout

    service_ledger.open_account(funded=DEAL)
    refused = run(store, "settle", "--once", DEALS_FEE_PAYER_KEYPAIR=str(old_file))
    assert refused.returncode == exit_codes.FAILURE
    assert f"the configured fee payer {old} is not the key" in refused.stderr
    assert "DEALS_FEE_PAYER_KEYPAIR" in refused.stderr
    assert settle_once(store, DEALS_FEE_PAYER_KEYPAIR=str(new_file))["waiting"] == 0
