"""Writes the golden ledger: a small ledger made by this version of the
service, committed under ``tests/golden/v1`` so that every later version is
tested against data that already exists (stored event topics and fields,
snapshots, table and column names, the embedded chain's files).

Run once, by the version whose data it records:

    .venv/bin/python -m tests.golden.write_golden tests/golden/v1

It writes ``sqlite/`` (a whole data dir: events, read models, settlement
store, the embedded chain and the custody key), ``postgres/`` (a pg_dump of
the same scenario in its own schema, plus that ledger's chain and key) and
``manifest.json`` (what the ledger holds: ids, balances, event counts by
topic, the movements left for settlement, the findings on record), which the
golden test compares against.

The scenario touches every event class: accounts opened, debited,
credited, frozen and unfrozen; holds placed, captured, voided and expired;
allowances set and spent; wallets connected, disconnected, reconnected;
price rules; mint, burn, reversal, batches; snapshots of the hot treasury;
settlement submitted, settled, rejected (a shared transaction refused),
failed and compensated, and a blocked compensation; reconciliation runs
with findings and an adjustment. The last few movements are left unsettled
for the golden test to settle with the code of its day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from application import commands as c
from application.reconciliation import Reconciler, ReconciliationConfig
from application.settlement import SettlementProcess
from domain.amounts import UNITS_PER_DEAL
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.service import LedgerService
from interface.settings import Settings
from interface.settlement import custody_key, embedded_chain_dir, settlement_config

DEAL = UNITS_PER_DEAL
PG_SCHEMA = "deals_golden_v1"
PG_URL = "postgresql://root@127.0.0.1:5432/postgres"
FEES_INTO_TREASURY = 520  # past the snapshot interval (500) of the treasury


@dataclass
class Ledger:
    """One golden ledger being written: its service, chain and manifest."""

    service: LedgerService
    chain: LiteSvmChain
    embedded: EmbeddedSolana
    custody: Any
    users: dict[str, UUID] = field(default_factory=dict)
    unsettled: list[UUID] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def run(self, command: c.Command) -> Any:
        return self.service.writer.execute(command)

    def address(self, name: str) -> Any:
        from solders.pubkey import Pubkey

        return Pubkey.from_string(self.chain.token_account_address(self.users[name]))

    async def settle(self) -> None:
        process = SettlementProcess(
            writer=self.service.writer, fold=self.service.settlement_fold, chain=self.chain,
            config=settlement_config(self.service.settings),
        )
        await process.prepare()
        await process.run_until_idle()

    async def reconcile(self) -> Any:
        reconciler = Reconciler(writer=self.service.writer, fold=self.service.settlement_fold,
                                chain=self.chain, config=ReconciliationConfig())
        return await reconciler.run()


def open_ledger(settings: Settings) -> Ledger:
    service = LedgerService(settings).start(projections=True, settlement=False)
    embedded = EmbeddedSolana(embedded_chain_dir(settings))
    custody = custody_key(settings)
    return Ledger(service, LiteSvmChain(embedded, custody), embedded, custody)


def wallet_address() -> str:
    from solders.keypair import Keypair

    return str(Keypair().pubkey())


def accounts_and_movements(ledger: Ledger) -> None:
    for name in ("alice", "bob", "carol", "dave", "erin", "agent"):
        ledger.users[name] = uuid4()
        ledger.run(c.OpenAccount(ledger.users[name]))
    u = ledger.users
    for name in ("alice", "bob", "dave", "erin", "agent"):
        ledger.run(c.TransferFunds(uuid4(), TREASURY_ID, u[name], 1_000 * DEAL, "funding"))
    ledger.run(c.DistributeReward(uuid4(), u["bob"], "referral", 25 * DEAL))
    ledger.run(c.SetPriceRule("search", DEAL // 5, None, None))
    payers = ("alice", "bob", "dave", "erin")
    for index in range(FEES_INTO_TREASURY):
        service = ("search", "goal", "analysis", "notification")[index % 4]
        ledger.run(c.ChargeFee(uuid4(), u[payers[index % 4]], service))
    ledger.run(c.Mint(uuid4(), u["erin"], 300 * DEAL, "grant"))
    ledger.run(c.Burn(uuid4(), u["erin"], 100 * DEAL, "buyback"))
    reversed_id = uuid4()
    ledger.run(c.TransferFunds(reversed_id, u["dave"], u["erin"], 7 * DEAL, "refundable"))
    ledger.run(c.ReverseTransfer(uuid4(), reversed_id, "refund"))
    items = tuple(c.TransferFunds(uuid4(), u["bob"], u["dave"], DEAL + i, "batch") for i in range(5))
    ledger.run(c.TransferBatch(items, atomic=True))
    ledger.run(c.TransferBatch(items[:2] + (c.TransferFunds(uuid4(), u["bob"], u["erin"], DEAL),),
                               atomic=False))


def allowances_holds_wallets(ledger: Ledger) -> None:
    u = ledger.users
    ledger.run(c.SetAllowance(u["alice"], u["agent"], 50 * DEAL))
    ledger.run(c.TransferFrom(uuid4(), u["agent"], u["alice"], u["bob"], 20 * DEAL, "agent buy"))
    captured, voided, expired = uuid4(), uuid4(), uuid4()
    ledger.run(c.PlaceHold(captured, u["dave"], amount=10 * DEAL))
    ledger.run(c.CaptureHold(captured, amount=6 * DEAL))
    ledger.run(c.PlaceHold(voided, u["dave"], service_type="analysis"))
    ledger.run(c.VoidHold(voided))
    ledger.run(c.PlaceHold(expired, u["erin"], amount=3 * DEAL, expires_in_s=1))
    deadline = time.monotonic() + 30
    while ledger.service.app.transfer(expired).phase != "expired":  # the service's sweeper
        if time.monotonic() > deadline:
            raise SystemExit("the hold did not expire")
        time.sleep(0.1)
    ledger.run(c.FreezeAccount(u["erin"]))
    ledger.run(c.UnfreezeAccount(u["erin"]))
    first, second = wallet_address(), wallet_address()
    ledger.run(c.ConnectWallet(u["alice"], first))
    ledger.run(c.ConnectWallet(u["bob"], second))
    ledger.run(c.DisconnectWallet(u["alice"], first))
    ledger.run(c.ConnectWallet(u["carol"], first))
    ledger.notes["wallets"] = {"carol": first, "bob": second}


async def settlement_faults(ledger: Ledger) -> None:
    """A shared transaction refused (rejected, then failed alone and
    compensated), then a compensation the ledger refuses (blocked)."""
    u = ledger.users
    await ledger.settle()
    frozen = [ledger.embedded.freeze_token_account(ledger.custody, ledger.address("alice"))]
    failing, alongside = uuid4(), uuid4()
    ledger.run(c.TransferFunds(failing, TREASURY_ID, u["alice"], 3 * DEAL, "to a frozen account"))
    ledger.run(c.TransferFunds(alongside, TREASURY_ID, u["bob"], 2 * DEAL, "settles anyway"))
    await ledger.settle()
    ledger.run(c.TransferFunds(uuid4(), TREASURY_ID, u["carol"], 5 * DEAL, "carol funding"))
    await ledger.settle()
    frozen.append(ledger.embedded.freeze_token_account(ledger.custody, ledger.address("carol")))
    blocked, spent = uuid4(), uuid4()
    ledger.run(c.TransferFunds(blocked, TREASURY_ID, u["carol"], 10 * DEAL, "will fail"))
    ledger.run(c.TransferFunds(spent, u["carol"], u["dave"], 14 * DEAL, "spent first"))
    await ledger.settle()
    ledger.notes["failed"] = str(failing)
    ledger.notes["compensation_blocked"] = str(blocked)
    ledger.notes["chain_only_signatures"] = [outcome.signature for outcome in frozen]


async def reconciliation_and_adjustment(ledger: Ledger) -> None:
    behind = ledger.embedded.transfer_directly(
        ledger.custody, ledger.address("bob"), ledger.address("dave"), 4 * DEAL
    )
    ledger.notes["chain_only_signatures"].append(behind.signature)
    report = await ledger.reconcile()
    for finding in report.mismatches:
        if finding.kind == "balance_mismatch":
            ledger.service.adjust_for_finding(finding.finding_id, "golden adjustment")
    again = await ledger.reconcile()
    ledger.notes["reconciliations"] = [
        sorted(f.kind for f in [*r.mismatches, *r.unmatched_signatures]) for r in (report, again)
    ]


def unsettled_tail(ledger: Ledger) -> None:
    u = ledger.users
    for source, destination in (("bob", "erin"), ("dave", "bob"), ("erin", "agent")):
        transfer_id = uuid4()
        ledger.run(c.TransferFunds(transfer_id, u[source], u[destination], 2 * DEAL, "tail"))
        ledger.unsettled.append(transfer_id)
    ledger.run(c.ChargeFee(uuid4(), u["bob"], "goal"))
    open_hold = uuid4()
    ledger.run(c.PlaceHold(open_hold, u["agent"], amount=DEAL, expires_in_s=30 * 24 * 3600))
    ledger.notes["open_hold"] = str(open_hold)


def manifest(ledger: Ledger) -> dict[str, Any]:
    service = ledger.service
    head = service.app.log_index.max_position()
    service.read_side.projector.catch_up()
    topics: Counter[str] = Counter()
    ids: set[str] = set()
    for notification in service.app.recorder.select_notifications(start=1, limit=head + 1):
        topics[notification.topic] += 1
        ids.add(str(notification.originator_id))
    accounts = {**{name: str(i) for name, i in ledger.users.items()},
                "treasury": str(TREASURY_ID), "rewards": str(REWARDS_ID),
                "issuance": str(ISSUANCE_ID)}
    return {
        "written_by": "deals-ledger 0.1.0 (before the structure issue's moves)",
        "head_position": head,
        "read_models_position": service.queries.position(),
        "aggregates": len(ids),
        "event_topics": dict(sorted(topics.items())),
        "accounts": accounts,
        "balances": {name: service.app.account(UUID(i)).balance for name, i in accounts.items()},
        "mint": service.mint_address,
        "unsettled": [str(t) for t in ledger.unsettled],
        "notes": ledger.notes,
    }


async def write_scenario(settings: Settings) -> dict[str, Any]:
    ledger = open_ledger(settings)
    try:
        accounts_and_movements(ledger)
        allowances_holds_wallets(ledger)
        await settlement_faults(ledger)
        await reconciliation_and_adjustment(ledger)
        unsettled_tail(ledger)
        return manifest(ledger)
    finally:
        await ledger.chain.close()
        ledger.service.stop()


def write_sqlite(out: Path) -> dict[str, Any]:
    data_dir = out / "sqlite"
    return asyncio.run(write_scenario(Settings(data_dir=data_dir)))


def write_postgres(out: Path) -> dict[str, Any]:
    data_dir = out / "postgres"
    drop = f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"
    subprocess.run(["psql", PG_URL, "-qc", drop], check=True)  # noqa: S603,S607
    subprocess.run(["psql", PG_URL, "-qc", f"CREATE SCHEMA {PG_SCHEMA}"], check=True)  # noqa: S603,S607
    settings = Settings(data_dir=data_dir, database_url=PG_URL, postgres_schema=PG_SCHEMA)
    written = asyncio.run(write_scenario(settings))
    dump = subprocess.run(  # noqa: S603
        ["pg_dump", "--schema", PG_SCHEMA, "--inserts", "--no-owner", "--no-privileges",  # noqa: S607
         PG_URL], check=True, capture_output=True, text=True,
    ).stdout
    (data_dir / "ledger.sql").write_text(dump)
    subprocess.run(["psql", PG_URL, "-qc", drop], check=True)  # noqa: S603,S607
    written["schema_in_dump"] = PG_SCHEMA
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    result = {"sqlite": write_sqlite(out), "postgres": write_postgres(out)}
    for stray in out.rglob("*.lock"):
        stray.unlink()
    (out / "manifest.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.chmod(out, 0o755)
    print(f"golden ledger written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
