"""The table of the deployed benchmark (issue 14), ratios first, as Markdown
so a run's output goes into ``benchmarks/README.md`` unchanged.

A peer that could not be measured (pgledger's files absent) is "not
reported" with the reason, never a guess: its row keeps the service's figure
and leaves the ratio empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.pgledger_peer import PeerResult
from benchmarks.wrk_load import WrkResult

NOT_REPORTED = "not reported"


@dataclass
class Loaded:
    """One wrk load on the service and the projection lag sampled beside it."""

    result: WrkResult
    lags_s: list[float]
    started: float
    ended: float

    def lag_p99_s(self) -> float | None:
        return percentile(self.lags_s, 0.99)


@dataclass
class Settled:
    movements: int
    load_s: float
    after_s: float  # from the load's end until the last settled (or the wait gave up)
    left: int
    backlog_max: int
    fold_lag_max: int

    @property
    def per_s(self) -> float:
        return (self.movements - self.left) / max(self.load_s + self.after_s, 1e-9)


@dataclass
class Fixed:
    offered_per_s: float
    ok: int
    seconds: float
    cpu: dict[str, float]
    lags_s: list[float]
    backlog_end: int

    def ms_per_transfer(self, kind: str | None = None) -> float:
        spent = sum(self.cpu.values()) if kind is None else self.cpu[kind]
        return 1000 * spent / max(self.ok, 1)


@dataclass
class Sustained:
    """The load at the transfers' own rate: the settlement backlog's
    maximum, and its size half-way and at the end (bounded: not growing)."""

    rate: float
    ok: int
    seconds: float
    backlog_max: int
    backlog_half: int
    backlog_end: int

    @property
    def bounded(self) -> bool:
        return self.backlog_end <= self.backlog_half

    @property
    def growth_per_s(self) -> float:
        return (self.backlog_end - self.backlog_half) / max(self.seconds / 2, 1e-9)


@dataclass
class Results:
    loads: dict[str, Loaded] = field(default_factory=dict)
    alone: tuple[int, float] | None = None  # (movements, seconds) settled alone
    settled: Settled | None = None
    fixed: Fixed | None = None
    sustained: Sustained | None = None
    rss_bytes: int = 0
    bare: WrkResult | None = None
    peers: dict[str, PeerResult] = field(default_factory=dict)
    peer_missing: str = ""
    replay: tuple[int, float, float, float] | None = None  # events, audit, fold, raw
    chain_cost: str = ""  # benchmarks.chain_cost.ChainCost.describe() of the whole run


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Row:
    """One line: what was measured, the service's figure, the baseline or
    peer in the same run, their ratio (None when not reported), the goal and
    whether it is met (None: no goal, or not reported)."""

    what: str
    service: str
    peer: str
    ratio: float | None
    goal: str = ""
    met: bool | None = None


def ratio_row(what: str, service: str, peer_name: str, peer_value: float | None,
              service_value: float, goal: str, meets: float, *, peer_unit: str = "",
              extra_ok: bool = True, missing: str = "") -> Row:
    """A row comparing ``service_value`` with ``peer_value`` (None: the
    peer was not measured, ``missing`` says why); met when the ratio is at
    least ``meets`` and ``extra_ok``."""
    if peer_value is None or peer_value <= 0:
        why = f" ({missing})" if missing else ""
        return Row(what, service, f"{peer_name}: {NOT_REPORTED}{why}", None, goal, None)
    ratio = service_value / peer_value
    return Row(what, service, f"{peer_name}, {peer_value:,.0f} {peer_unit}".rstrip(), ratio, goal,
               ratio >= meets and extra_ok)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table, the ratio in the first column."""
    lines = ["| ratio | goal | met | what | this service | baseline / peer, same run |",
             "| ---: | ---: | --- | --- | ---: | --- |"]
    for row in rows:
        ratio = NOT_REPORTED if row.ratio is None and NOT_REPORTED in row.peer else (
            "" if row.ratio is None else f"{row.ratio:.2f}")
        met = {True: "yes", False: "no", None: ""}[row.met]
        lines.append(f"| {ratio} | {_cell(row.goal)} | {met} | {_cell(row.what)} | "
                     f"{_cell(row.service)} | {_cell(row.peer)} |")
    return "\n".join(lines)


def render_facts(facts: list[tuple[str, str, str]]) -> str:
    """The figures beside the ratios (lag, backlog, CPU, memory) as a
    Markdown table: (what, figure, goal)."""
    lines = ["| what | figure | goal |", "| --- | ---: | --- |"]
    lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in facts]
    return "\n".join(lines)


def _load_text(result: WrkResult, unit: str) -> str:
    failed = f", {result.failed:,} failed" if result.failed else ""
    return f"{result.per_s:,.0f} {unit}, p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms{failed}"


def _settlement_row(settled: Settled, transfers: WrkResult) -> Row:
    after = (f"the last settled {settled.after_s:.0f} s after the load ended" if not settled.left
             else f"{settled.left:,} not settled {settled.after_s:.0f} s after the load ended")
    service = (f"{settled.movements:,} movements made in {settled.load_s:.0f} s; {after}: "
               f"{settled.per_s:,.0f} movements/s; backlog max {settled.backlog_max:,}")
    return ratio_row("settlement on the embedded LiteSVM chain, during and after the two loads above",
                     service, "the ledger's own transfer rate", transfers.per_s, settled.per_s,
                     ">= 1.0: the backlog stays bounded", 1.0, peer_unit="transfers/s",
                     extra_ok=not settled.left)


def build_rows(results: Results) -> list[Row]:
    """The issue's table from one run's results (the three wrk loads needed)."""
    t, f = results.loads["transfers"].result, results.loads["fees"].result
    b = results.loads["batch"].result
    uniform, hot = results.peers.get("uniform"), results.peers.get("hot")
    missing = results.peer_missing
    bare = results.bare
    rows = [
        ratio_row("`POST /v1/transfers`", _load_text(t, "req/s"),
                  "bare FastAPI endpoint validating the same body",
                  bare.per_s if bare else None, t.per_s, ">= 0.5, p99 <= 25 ms", 0.5,
                  peer_unit="req/s", extra_ok=t.p99_ms <= 25, missing="not run"),
        ratio_row("same", f"{t.per_s:,.0f} req/s", "pgledger uniform transfers",
                  uniform.tps if uniform else None, t.per_s, ">= 1.5", 1.5, peer_unit="tps",
                  missing=missing),
        ratio_row("`POST /v1/fees` (all into the treasury)", _load_text(f, "req/s"),
                  "pgledger, all into one account", hot.tps if hot else None, f.per_s, ">= 3", 3,
                  peer_unit="tps", missing=missing),
        ratio_row("same", f"{f.per_s:,.0f} req/s", "`POST /v1/transfers` above", t.per_s,
                  f.per_s, ">= 0.9 of transfers", 0.9, peer_unit="req/s"),
        ratio_row("`POST /v1/transfers/batch` (1,000 a request, 4 in flight)",
                  _load_text(b, "transfers/s"), "pgledger uniform",
                  uniform.tps if uniform else None, b.per_s, ">= 10", 10, peer_unit="tps",
                  missing=missing),
    ]
    if results.settled is not None:
        rows.append(_settlement_row(results.settled, t))
    if results.replay is not None:
        events, audit, _fold, raw = results.replay
        rows.append(ratio_row(f"audit replay, {events:,} events (scenario 5)",
                              f"{audit:,.0f} events/s", "raw keyset SELECT of the same rows", raw,
                              audit, ">= 0.5", 0.5, peer_unit="rows/s"))
    return rows


def _lag(lags_s: list[float]) -> str:
    p99 = percentile(lags_s, 0.99)
    return "no probe answered" if p99 is None else f"{1000 * p99:,.0f} ms ({len(lags_s)} probes)"


def build_facts(results: Results) -> list[tuple[str, str, str]]:
    """The figures beside the ratios: lag, backlog, CPU, memory, the peers' own."""
    facts = [(f"projection lag p99 during `{name}`", _lag(loaded.lags_s), "<= 1 s")
             for name, loaded in results.loads.items()]
    if results.fixed is not None:
        facts.append(("projection lag p99 at the fixed load", _lag(results.fixed.lags_s), "<= 1 s"))
    if results.alone is not None:
        count, seconds = results.alone
        facts.append(("settlement capacity alone (the funding mints, nothing else running)",
                      f"{count:,} movements in {seconds:.1f} s: {count / max(seconds, 1e-9):,.0f}/s", ""))
    if results.settled is not None:
        s = results.settled
        facts.append(("settlement backlog max during the transfers and fees loads",
                      f"{s.backlog_max:,} movements (fold behind the log by up to "
                      f"{s.fold_lag_max:,} positions)", "bounded"))
    if results.fixed is not None:
        x = results.fixed
        facts.append((
            f"CPU per transfer at a fixed {x.offered_per_s:g} req/s (open-loop Python sender)",
            f"{x.ms_per_transfer():.2f} ms: service {x.ms_per_transfer('service'):.2f}, "
            f"PostgreSQL backends {x.ms_per_transfer('postgres'):.2f}, Redis "
            f"{x.ms_per_transfer('redis'):.2f}; {x.ok:,} accepted in {x.seconds:.1f} s; "
            f"settlement backlog at the end {x.backlog_end:,}", ""))
    if results.sustained is not None:
        u = results.sustained
        facts.append((
            f"settlement backlog during {u.seconds:.0f} s at the transfers' own rate "
            f"({u.rate:,.0f} req/s offered, open loop)",
            f"max {u.backlog_max:,}; {u.backlog_half:,} half-way, {u.backlog_end:,} at the end "
            f"({u.growth_per_s:+,.0f} movements/s); {u.ok:,} accepted",
            "bounded: " + ("yes" if u.bounded else "no")))
    if results.chain_cost:
        facts.append(("the cost of mirroring: every movement settled in the run, the embedded "
                      "chain's fees at the default settings (no priority price)",
                      results.chain_cost, ""))
    if results.rss_bytes:
        facts.append(("RSS of the service's processes after the run",
                      f"{results.rss_bytes / 10**6:,.0f} MB", "<= 500 MB"))
    if results.bare is not None:
        facts.append(("bare FastAPI endpoint (wrk, same script)", _load_text(results.bare, "req/s"), ""))
    for kind, found in results.peers.items():
        facts.append((f"pgledger {kind} (pgbench)", f"{found.tps:,.0f} tps, "
                      f"{found.transactions:,} transactions, {found.failed:,} failed", ""))
    if results.replay is not None:
        facts.append(("the replay's fold alone (decode + fold + hash chain)",
                      f"{results.replay[2]:,.0f} events/s", ""))
    return facts


def render(results: Results) -> str:
    """Both tables, the ratios first."""
    return render_markdown(build_rows(results)) + "\n\n" + render_facts(build_facts(results))
