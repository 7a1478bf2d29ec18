"""The deployed benchmark's pieces that run without wrk, pgledger, PostgreSQL
or the network (``benchmarks/deployed*.py``, ``wrk_load.py``,
``pgledger_peer.py``): the bodies wrk sends are what the real endpoints
accept, the summaries of wrk and pgbench are read, pgledger without its files
is "not reported", and the table puts the ratios first."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from benchmarks import pgledger_peer as peer
from benchmarks.deployed import Deployed, Options
from benchmarks.deployed_report import (
    NOT_REPORTED,
    Fixed,
    Loaded,
    Results,
    Settled,
    Sustained,
    build_rows,
    render,
)
from benchmarks.deployed_watch import CpuMeter, CpuSample, cpu_seconds, process_tree
from benchmarks.wrk_load import SUMMARY_MARK, WrkResult, lua_script, parse_summary
from interface.http.schemas.requests import FeeRequest, TransferBatchRequest, TransferRequest

ACCOUNTS = tuple(str(uuid.uuid4()) for _ in range(3))


def _id_format(script: str) -> str:
    found = re.search(r'string\.format\("(%s-[^"]+)"', script)
    assert found, script
    return found.group(1)


def _body_format(script: str, first_key: str) -> str:
    found = re.search(r"'(\{\"" + first_key + r"\"[^']*)'", script)
    assert found, script
    return found.group(1)


def test_transfer_ids_are_version_4_uuids_unique_by_prefix_thread_and_counter():
    script = lua_script("transfers", ACCOUNTS, "token", prefix="0badc0de")
    fmt = _id_format(script)
    ids = {fmt % ("0badc0de", thread, counter) for thread in (1, 2) for counter in (1, 2**31)}
    assert len(ids) == 4
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_transfer_fee_and_batch_bodies_validate_as_the_endpoints_requests():
    transfers = lua_script("transfers", ACCOUNTS, "token")
    body = _body_format(transfers, "transfer_id") % (uuid.uuid4(), ACCOUNTS[0], ACCOUNTS[1], 1000)
    transfer = TransferRequest.model_validate_json(body)
    assert str(transfer.amount) == "1000" or transfer.amount == 1000
    assert (str(transfer.source), str(transfer.destination)) == ACCOUNTS[:2]

    fees = lua_script("fees", ACCOUNTS, "token")
    fee = FeeRequest.model_validate_json(_body_format(fees, "charge_id") % (uuid.uuid4(), ACCOUNTS[2]))
    assert str(fee.account_id) == ACCOUNTS[2]

    batch = lua_script("batch", ACCOUNTS, "token", batch_items=1000)
    assert "for i = 1, 1000 do" in batch
    head, tail = re.search(r"'(\{\"transfers\":\[)' \.\. table\.concat\(items, \",\"\) \.\. '([^']+)'",
                           batch).groups()
    items = ",".join(body.replace("1000", str(n)) for n in (1, 2))
    assert len(TransferBatchRequest.model_validate_json(head + items + tail).transfers) == 2


def test_the_script_carries_every_account_and_the_token_and_refuses_bad_input():
    script = lua_script("transfers", ACCOUNTS, "s3cret-token")
    assert all(json.dumps(a) in script for a in ACCOUNTS)
    assert 'wrk.headers["Authorization"] = "Bearer s3cret-token"' in script
    with pytest.raises(ValueError, match="unknown workload"):
        lua_script("reads", ACCOUNTS, "t")
    with pytest.raises(ValueError, match="two accounts"):
        lua_script("transfers", ACCOUNTS[:1], "t")


def test_wrk_summary_line_is_read_and_its_absence_is_an_error():
    line = (f'Running 10s test\n{SUMMARY_MARK}{{"requests":1000,"duration_us":2000000,'
            '"status_errors":10,"connect_errors":0,"read_errors":0,"write_errors":0,'
            '"timeouts":5,"p50_us":1500,"p99_us":25000}\n')
    result = parse_summary(line, items_per_request=1000)
    assert (result.ok, result.p50_ms, result.p99_ms) == (985, 1.5, 25.0)
    assert result.per_s == 985 * 1000 / 2
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_summary("unable to connect to 127.0.0.1:1")


def test_pgbench_uniform_pairs_are_always_two_distinct_accounts_in_range():
    n = 7
    assert "random(1, 7 - 1)" in peer.pgbench_script("uniform", n)
    for a in range(1, n + 1):
        for d in range(1, n):
            b = 1 + (a + d - 1) % n  # the script's arithmetic
            assert b != a and 1 <= b <= n
    assert f"n = {peer.HOT}" in peer.pgbench_script("hot", n)


def test_pgbench_summary_is_read():
    out = ("number of transactions actually processed: 23650\n"
           "number of failed transactions: 3 (0.013%)\nlatency average = 13.5 ms\n"
           "tps = 2365.123456 (without initial connection time)\n")
    assert peer.parse_pgbench("uniform", out) == peer.PeerResult("uniform", 2365.123456, 23650, 3,
                                                                  13.5)
    with pytest.raises(ValueError, match="no tps"):
        peer.parse_pgbench("hot", "pgbench: error: connection refused")


def test_pgledger_files_are_found_in_load_order_or_not_at_all(tmp_path):
    assert peer.sql_files(tmp_path) is None
    vendor = tmp_path / "vendor" / "scoville-pgsql-ulid"
    vendor.mkdir(parents=True)
    for name in ("uuid-to-ulid.sql", "ulid-to-uuid.sql"):
        (vendor / name).write_text("-- x")
    assert peer.sql_files(tmp_path) is None  # pgledger.sql itself missing
    (tmp_path / "pgledger.sql").write_text("-- x")
    assert [p.name for p in peer.sql_files(tmp_path) or []] == [
        "ulid-to-uuid.sql", "uuid-to-ulid.sql", "pgledger.sql"]


def _results(peer_missing: str = "") -> Results:
    def loaded(per_s: float, items: int = 1) -> Loaded:
        return Loaded(WrkResult(int(per_s * 10 / items), 10.0, 0, 30.0, 120.0, items),
                      [0.1, 0.2, 0.3], 0.0, 10.0)

    results = Results(loads={"transfers": loaded(800), "fees": loaded(720),
                             "batch": loaded(5000, 1000)},
                      alone=(1000, 10.0), rss_bytes=250 * 10**6,
                      bare=WrkResult(72000, 10.0, 0, 3.0, 9.0),
                      settled=Settled(16000, 20.0, 140.0, 0, 9000, 40),
                      fixed=Fixed(200.0, 2000, 10.0, {"service": 6.0, "postgres": 2.0, "redis": 0.2},
                                  [0.05], 12),
                      replay=(1_000_000, 100_000.0, 150_000.0, 400_000.0), peer_missing=peer_missing,
                      sustained=Sustained(800.0, 48000, 60.0, 30000, 12000, 27000))
    if not peer_missing:
        results.peers = {"uniform": peer.PeerResult("uniform", 2400, 24000, 0),
                         "hot": peer.PeerResult("hot", 900, 9000, 0)}
    return results


def test_the_table_gives_ratios_first_and_each_goal_met_or_not():
    rows = build_rows(_results())
    ratios = {(row.what, row.peer.split(",")[0]): (round(row.ratio or 0, 2), row.met) for row in rows}
    assert ratios[("`POST /v1/transfers`", "bare FastAPI endpoint validating the same body")] == (
        0.11, False)
    assert ratios[("same", "pgledger uniform transfers")] == (0.33, False)
    assert ratios[("same", "`POST /v1/transfers` above")] == (0.9, True)
    assert ratios[("`POST /v1/transfers/batch` (1,000 a request, 4 in flight)", "pgledger uniform")] == (
        2.08, False)
    settlement = next(row for row in rows if row.what.startswith("settlement"))
    assert round(settlement.ratio or 0, 2) == round(100 / 800, 2)  # 16,000 in 20 + 140 s
    assert "backlog max 9,000" in settlement.service and settlement.met is False
    unfinished = Settled(16000, 20.0, 140.0, 3000, 9000, 40)  # the wait gave up, 3,000 left
    assert unfinished.per_s == 13000 / 160
    results = _results()
    results.settled = unfinished
    row = next(row for row in build_rows(results) if row.what.startswith("settlement"))
    assert "3,000 not settled 140 s after the load ended: 81 movements/s" in row.service
    table = render(_results())
    assert table.splitlines()[0].startswith("| ratio | goal | met |")
    assert "| 0.11 | >= 0.5, p99 <= 25 ms | no |" in table
    assert "4.10 ms: service 3.00, PostgreSQL backends 1.00, Redis 0.10" in table
    assert "| RSS of the service's processes after the run | 250 MB | <= 500 MB |" in table
    assert "max 30,000; 12,000 half-way, 27,000 at the end (+500 movements/s)" in table
    assert "| bounded: no |" in table
    assert Sustained(800.0, 48000, 60.0, 900, 600, 580).bounded


def test_without_pgledger_files_its_ratios_are_not_reported(tmp_path):
    bench = Deployed(Options("postgresql://unused", None, pgledger=tmp_path), tmp_path)
    bench.pgledger()  # an empty folder: no files, so nothing is loaded or run
    assert bench.results.peers == {}
    assert str(tmp_path) in bench.results.peer_missing
    rows = build_rows(_results(peer_missing=bench.results.peer_missing))
    pgledger_rows = [row for row in rows if "pgledger" in row.peer]
    assert len(pgledger_rows) == 3
    assert all(row.ratio is None and row.met is None and NOT_REPORTED in row.peer
               for row in pgledger_rows)
    table = render(_results(peer_missing="git clone failed"))
    assert table.count(f"| {NOT_REPORTED} |") == 3
    assert "pgledger uniform (pgbench)" not in table


def test_cpu_meter_counts_a_process_tree_and_new_processes_from_zero():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in process_tree(os.getpid())
        assert cpu_seconds(os.getpid()) > 0
        assert cpu_seconds(-1) == 0.0
    finally:
        child.kill()
        child.wait()
    before = CpuSample({1: 1.0}, {10: 2.0}, {})
    after = CpuSample({1: 1.5, 2: 0.25}, {10: 2.5}, {20: 0.1})
    assert CpuMeter.spent(before, after) == {"service": 0.75, "postgres": 0.5, "redis": 0.1}


def test_the_wrk_installer_is_shipped_and_a_noop_when_wrk_is_present(tmp_path):
    script = Path(__file__).parents[2] / "benchmarks" / "install_wrk.sh"
    fake = tmp_path / "wrk"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    run = subprocess.run(["sh", str(script)], env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"},
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "apt-get" in script.read_text()
