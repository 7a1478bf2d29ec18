"""``deals-ledger verify-proof FILE``: check a proof with no access to the
ledger's database, only the proof and the chain (docs/proofs.md).

An event proof (``GET /v1/transfers/{id}/proof``, ``GET /v1/audit/proof``):
the canonical bytes say what the listed fields say, the leaf's inclusion
path leads to the anchored root, the anchor's memo states that root for
this ledger, and the chain holds that memo in a successful transaction
co-signed by the anchor signer. A consistency proof
(``GET /v1/audit/consistency``): the later anchored log extends the earlier
one, and both anchors are on chain. Exit 0 when everything holds, 4 with
one line per failed check (``--json``: one object).

Pass ``--anchor-signer`` with the address the operator publishes: without
it the proof's own claim is used, which proves only that someone anchored
this log, not that the ledger's operator did.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from application.eventlog.merkle_log import parse_canonical
from domain.anchor import AnchorMemo, parse_anchor_memo
from domain.merkle import leaf_hash, verify_consistency, verify_inclusion
from interface.cli import exit_codes
from interface.wiring.settings import Settings
from projections.proofs import CONSISTENCY_FORMAT, PROOF_FORMAT

PROOF_FILE_BYTES_MAX = 1 << 20


@dataclass(frozen=True)
class LandedAnchor:
    """What the chain says about an anchor's transaction."""

    error: str | None
    slot: int
    memos: tuple[str, ...]
    signers: tuple[str, ...]


Lookup = Callable[[str], "LandedAnchor | None"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the proof (JSON) to check")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--rpc-url", help="a Solana JSON-RPC endpoint (default DEALS_SOLANA_RPC_URL)")
    where.add_argument("--chain-dir", type=Path,
                       help="the embedded chain's folder (default <DEALS_DATA_DIR>/chain)")
    parser.add_argument("--anchor-signer", help="the anchor signer's address, as published")
    parser.add_argument("--json", action="store_true",
                        help='print {"ok", "failed": [...], "summary"} as JSON')


def run_verify_proof(args: argparse.Namespace, settings: Settings) -> int:
    """Check a proof file against the chain alone (exit 4 when a check fails)."""
    document = _load(args.file)
    lookup = _lookup(args, settings)
    problems = check(document, lookup, args.anchor_signer)
    if args.json:
        print(json.dumps({"ok": not problems, "failed": problems,
                          "summary": None if problems else _summary(document)}))
    for problem in [] if args.json else problems:
        print(f"FAILED: {problem}")
    if not problems and not args.json:
        print(f"OK: {_summary(document)}")
    return exit_codes.FINDINGS if problems else exit_codes.OK


run_verify_proof.add_arguments = add_arguments  # type: ignore[attr-defined]


def check(document: Any, lookup: Lookup, anchor_signer: str | None) -> list[str]:
    """Every failed check, in words; [] when the proof holds."""
    try:
        if not isinstance(document, dict):
            return ["the proof is not a JSON object"]
        if document.get("format") == PROOF_FORMAT:
            problems = check_event_proof(document)
            anchors = [document["anchor"]]
        elif document.get("format") == CONSISTENCY_FORMAT:
            problems = check_consistency_proof(document)
            anchors = [document["from"], document["to"]]
        else:
            return [f"unknown proof format {document.get('format')!r}"]
        for anchor in anchors:
            problems += check_on_chain(anchor, lookup, anchor_signer)
        return problems
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        return [f"the proof is malformed ({type(error).__name__}: {error})"]


def check_event_proof(document: dict[str, Any]) -> list[str]:
    event, inclusion, anchor = document["event"], document["inclusion"], document["anchor"]
    problems: list[str] = []
    data = base64.b64decode(event["canonical_bytes"], validate=True)
    parsed = parse_canonical(data)
    listed = (event["position"], event["topic"], event["version"],
              event["originator_id"].replace("-", ""))
    if (parsed.position, parsed.topic, parsed.version, parsed.originator_id) != listed:
        problems.append("the event's fields are not what its canonical bytes say")
    if parsed.state.decode("utf-8", errors="replace") != event["state"]:
        problems.append("the event's state is not what its canonical bytes say")
    path = [bytes.fromhex(node) for node in inclusion["path"]]
    if inclusion["tree_size"] != anchor["tree_size"] or parsed.position > anchor["position"]:
        problems.append("the anchor does not cover the event")
    if not verify_inclusion(leaf_hash(data), inclusion["leaf_index"], inclusion["tree_size"],
                            path, bytes.fromhex(anchor["root"])):
        problems.append("the inclusion path does not lead to the anchored root")
    problems += check_memo(anchor, document["ledger_id"])
    return problems


def check_consistency_proof(document: dict[str, Any]) -> list[str]:
    older, newer = document["from"], document["to"]
    path = [bytes.fromhex(node) for node in document["path"]]
    problems = check_memo(older, None) + check_memo(newer, None)
    if parse_anchor_memo(older["memo"]) and parse_anchor_memo(newer["memo"]):
        older_memo, newer_memo = parse_anchor_memo(older["memo"]), parse_anchor_memo(newer["memo"])
        assert older_memo is not None and newer_memo is not None
        if older_memo.ledger_id != newer_memo.ledger_id:
            problems.append("the two anchors are of different ledgers")
    if not verify_consistency(older["tree_size"], newer["tree_size"], bytes.fromhex(older["root"]),
                              bytes.fromhex(newer["root"]), path):
        problems.append("the later anchored log does not extend the earlier one")
    return problems


def check_memo(anchor: dict[str, Any], ledger_id: str | None) -> list[str]:
    memo = parse_anchor_memo(anchor["memo"])
    if memo is None:
        return ["the anchor's memo is not an anchor memo"]
    stated = AnchorMemo(memo.ledger_id, anchor["sequence"], anchor["position"],
                        anchor["tree_size"], anchor["root"], anchor["previous_root"])
    problems = [] if stated == memo else ["the anchor's fields are not what its memo says"]
    if ledger_id is not None and memo.ledger_id != ledger_id:
        problems.append("the anchor is of another ledger")
    return problems


def check_on_chain(anchor: dict[str, Any], lookup: Lookup, anchor_signer: str | None) -> list[str]:
    sequence = anchor["sequence"]
    landed = lookup(anchor["signature"])
    if landed is None:
        return [f"anchor {sequence}: the chain does not know transaction {anchor['signature']}"]
    problems = []
    if landed.error is not None:
        problems.append(f"anchor {sequence}: its transaction failed on chain ({landed.error})")
    if anchor["memo"] not in landed.memos:
        problems.append(f"anchor {sequence}: the transaction on chain carries another memo")
    signer = anchor_signer or anchor.get("signer")
    if signer is None or signer not in landed.signers:
        problems.append(f"anchor {sequence}: not signed by the anchor signer {signer}")
    return problems


# --- reading the chain, without the ledger ------------------------------------------


def _lookup(args: argparse.Namespace, settings: Settings) -> Lookup:
    rpc_url = args.rpc_url or (None if args.chain_dir else settings.solana_rpc_url)
    if rpc_url:
        return _rpc_lookup(rpc_url, settings.solana_timeout_s)
    from interface.wiring.settler import EMBEDDED_CHAIN_DIR

    return _embedded_lookup(args.chain_dir or settings.data_dir / EMBEDDED_CHAIN_DIR)


def _embedded_lookup(chain_dir: Path) -> Lookup:
    from interface.chain.embedded import DATABASE_FILE_NAME
    from interface.chain.embedded_store import read_landed

    path = chain_dir / DATABASE_FILE_NAME
    if not path.is_file():
        raise SystemExit(f"deals-ledger: no embedded chain at {chain_dir}")

    def lookup(signature: str) -> LandedAnchor | None:
        landed = read_landed(path, signature)
        if landed is None:
            return None
        return LandedAnchor(landed.error, landed.slot, landed.memos, _signers(landed.raw))

    return lookup


def _rpc_lookup(url: str, timeout_s: float) -> Lookup:
    def lookup(signature: str) -> LandedAnchor | None:
        return asyncio.run(_rpc_transaction(url, timeout_s, signature))

    return lookup


async def _rpc_transaction(url: str, timeout_s: float, signature: str) -> LandedAnchor | None:
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed
    from solders.signature import Signature

    from interface.chain import transactions as tx

    client = AsyncClient(url, timeout=timeout_s)
    try:
        response = await client.get_transaction(
            Signature.from_string(signature), encoding="base64", commitment=Confirmed,
            max_supported_transaction_version=0,
        )
    finally:
        await client.close()
    found = response.value
    if found is None or found.transaction.meta is None:
        return None
    raw = bytes(found.transaction.transaction)  # type: ignore[arg-type]
    return LandedAnchor(tx.error_text(found.transaction.meta.err), found.slot,
                        _memos(raw, tx), _signers(raw))


def _signers(raw: bytes) -> tuple[str, ...]:
    from solders.transaction import Transaction

    message = Transaction.from_bytes(raw).message
    count = message.header.num_required_signatures
    return tuple(str(key) for key in message.account_keys[:count])


def _memos(raw: bytes, tx: Any) -> tuple[str, ...]:
    from solders.transaction import Transaction

    return tuple(tx.memo_texts(Transaction.from_bytes(raw).message))


def _load(path: Path) -> Any:
    if path.stat().st_size > PROOF_FILE_BYTES_MAX:
        raise SystemExit(f"deals-ledger: {path} is larger than a proof can be")
    try:
        return json.loads(path.read_bytes())
    except ValueError:
        raise SystemExit(f"deals-ledger: {path} is not JSON") from None


def _summary(document: dict[str, Any]) -> str:
    if document.get("format") == PROOF_FORMAT:
        anchor = document["anchor"]
        return (f"event at position {document['event']['position']} is in the ledger as "
                f"anchored by anchor {anchor['sequence']} ({anchor['signature']}, slot "
                f"{anchor['slot']})")
    return (f"anchor {document['to']['sequence']} extends anchor "
            f"{document['from']['sequence']}; both on chain")
