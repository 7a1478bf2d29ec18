"""``deals-ledger custody rotate ROLE --new-keypair FILE``: move one custody
power to a new key, on chain first, then in this host's configuration.

The command takes the settlement lease for its whole run (refused while a
settler holds it: stop the settlers first) and refuses while submissions are
in flight (a creation signed before the rotation would make a token account
owned by the old key). The chain part is ``interface.chain.rotation``:
resumable, so after a crash run the same command again.

Then the new key becomes the configured one: with the role's DEALS_*_KEYPAIR
unset, the new key file's content is installed in the data dir under the
role's file name (a previous one there is kept as ``<name>.retired-<its
public key>``); with it set, the command says to point it at the new file.
Until then the service refuses to settle, naming the key the chain expects
(for the fee payer, which nothing on chain names, the settlement store keeps
the rotated key's fingerprint, ``FEE_PAYER_ROTATION_META``).
A fee payer rotated any other way (the setting pointed at a new key without
this command) leaves no link on chain: a restore across it would not see
what the old fee payer paid for.

A new key that already holds another power, or is the address base, is
refused before anything moves: the split would be undone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from uuid import UUID

from solders.pubkey import Pubkey

from application.errors import SettlementUnavailable
from application.settlement.fee_payer import key_fingerprint
from application.settlement.store import FEE_PAYER_ROTATION_META, OWNER_ROTATION_META
from domain.system import TREASURY_ID
from interface.chain.base import SeededTokenChain
from interface.chain.custody import (
    ROLE_KEY_FILE_NAMES,
    CustodyKey,
    CustodyKeyError,
    read_keypair_file,
)
from interface.chain.rotation import (
    ROLES,
    RotationError,
    RotationReport,
    link_fee_payers,
    move_fee_payer_sol,
    rotate_mint_authority,
    rotate_owner,
)
from interface.cli import exit_codes
from interface.secret_file import create_secret_file, read_secret_file
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings
from interface.wiring.settler import ROLE_SETTINGS, custody_keys, open_chain

BALANCES_PAGE = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["rotate"], help="rotate: move a power to a new key")
    parser.add_argument("role", choices=ROLES, help="the power to move")
    parser.add_argument("--new-keypair", type=Path, required=True,
                        help="the new key: a Solana CLI keypair file, mode 0600")
    parser.add_argument("--move-lamports", type=int, default=None,
                        help="fee-payer only: the old fee payer tops the new one up to this many "
                             "lamports (a rerun sends only what is missing)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_custody(args: argparse.Namespace, settings: Settings) -> int:
    """Rotate a custody power (mint-authority: mint and freeze authority of
    the mint; owner: owner of every custody token account; fee-payer: the
    key that pays fees and rent). See docs/operations.md, "Custody keys"."""
    try:
        new = read_keypair_file(args.new_keypair, "new key file")
    except CustodyKeyError as error:
        raise RotationError(str(error)) from None
    if args.move_lamports is not None and args.role != "fee-payer":
        raise RotationError("--move-lamports is for the fee-payer rotation only")
    if shared := _shared_power(settings, args.role, new.pubkey):
        print(f"deals-ledger: {shared}", file=sys.stderr)
        return exit_codes.USAGE
    service = LedgerService(settings)
    try:
        service.start(settlement=False)
        lease = service.settlement.new_lease()
        if not lease.try_acquire():
            raise SettlementUnavailable("a settler holds the settlement lease: stop every "
                                        "settler (serve and settle) before a rotation")
        try:
            report = asyncio.run(_rotate(service, args.role, new, args.move_lamports))
        finally:
            lease.release()
    finally:
        service.stop()
    installed = _install(settings, args.role, args.new_keypair, report)
    _print(report, installed, as_json=args.json)
    return 0


async def _rotate(service: LedgerService, role: str, new_key: CustodyKey,
                  move_lamports: int | None) -> RotationReport:
    """The rotation on chain. A fee-payer rotation always lands the link
    (``link_fee_payers``) that lets a restore's lookup find what the old
    fee payer paid for."""
    new = new_key.pubkey
    service.settlement_fold.catch_up()
    in_flight = service.settlement_fold.store.in_flight(1)
    if in_flight:
        raise SettlementUnavailable(f"submission {in_flight[0].signature} is in flight: let "
                                    "settlement confirm it (or its expiry) before a rotation")
    chain = open_chain(service.settings)
    assert isinstance(chain, SeededTokenChain)
    try:
        if role == "mint-authority":
            return await rotate_mint_authority(chain, new)
        if role == "owner":
            return await _rotate_owner(service, chain, new)
        report = RotationReport("fee-payer", str(chain.keys.fee_payer), str(new))
        if move_lamports is not None:
            signature = await move_fee_payer_sol(chain, new, move_lamports)
            report.signatures += [signature] if signature else []
            report.moved, report.already = (1, 0) if signature else (0, 1)
        report.signatures.append(await link_fee_payers(chain, new_key))
        service.settlement_fold.store.set_meta(FEE_PAYER_ROTATION_META, key_fingerprint(str(new)))
        return report
    finally:
        await chain.close()


async def _rotate_owner(service: LedgerService, chain: SeededTokenChain,
                        new: Pubkey) -> RotationReport:
    """The marker stays set if the run dies midway, so no settler starts on
    the half-moved accounts; it is cleared once every account has moved."""
    store = service.settlement_fold.store
    store.set_meta(OWNER_ROTATION_META, 1)
    report = await rotate_owner(chain, new, _account_ids(service), TREASURY_ID)
    store.set_meta(OWNER_ROTATION_META, 0)
    return report


def _shared_power(settings: Settings, role: str, new: Pubkey) -> str | None:
    """Why ``new`` may not take ``role``: another power's key (as configured
    now) or the address base already is it, and one key would hold two
    powers, undoing the split. None when it is a key of its own."""
    keys = custody_keys(settings)
    others = {"fee-payer": keys.fee_payer, "owner": keys.owner,
              "mint-authority": keys.mint_authority}
    others.pop(role)
    holders = [name for name, key in others.items() if key == new]
    holders += ["address base (the custody key)"] * (new in (keys.address_base, keys.anchor))
    if not holders:
        return None
    return (f"the new key {new} is already the {', '.join(holders)}: one key would hold "
            f"two powers; give the {role} a key of its own")


def _account_ids(service: LedgerService) -> list[UUID]:
    """Every account settlement has given a token account (its settled balances)."""
    store, after = service.settlement_fold.store, ""
    found: list[UUID] = []
    while page := store.balances_page(after, BALANCES_PAGE):
        found += [account_id for account_id, _ in page]
        after = page[-1][0].hex
    return found


def _install(settings: Settings, role: str, new_file: Path, report: RotationReport) -> str:
    """Make the new key the configured one; what was done, in words."""
    field, variable = ROLE_SETTINGS[role]
    configured = getattr(settings, field)
    if configured is not None:
        if Path(configured).resolve() == new_file.resolve():
            return f"{variable} already names {new_file}"
        return f"now set {variable}={new_file} (the service refuses to settle until then)"
    target = settings.data_dir / ROLE_KEY_FILE_NAMES[role]
    content = read_secret_file(new_file, CustodyKeyError, what="new key file")
    if target.exists() and read_secret_file(target, CustodyKeyError,
                                            what=f"{role} key file") == content:
        return f"{target} already holds the new key"
    if target.exists():
        os.replace(target, target.with_name(f"{target.name}.retired-{report.old}"))
    create_secret_file(target, content)
    return f"installed the new key as {target}"


def _print(report: RotationReport, installed: str, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**report.as_dict(), "configuration": installed}))
        return
    print(f"{report.role}: {report.old} -> {report.new}; moved {report.moved}, already moved "
          f"{report.already}, in {len(report.signatures)} transaction(s)")
    for signature in report.signatures:
        print(f"  {signature}")
    print(installed)


run_custody.add_arguments = add_arguments  # type: ignore[attr-defined]
