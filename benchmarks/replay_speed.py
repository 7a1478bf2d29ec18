"""Replay speed on PostgreSQL, in events per second, for >= 1,000,000 events.

Stages, each timed over the whole log, next to a baseline measured in the
same run: a raw keyset ``SELECT`` of the same rows in the same page size
with psycopg (what the database and driver alone cost).

  read      the read side's log reader (EventLog.read pages)
  fold      read + decode + fold into fresh state + hash chain (the audit's core)
  audit     ReadModelQueries.audit_replay: fold + compare every read model
  rebuild   the projector from position 0 (writes every read model)

    .venv/bin/python -m benchmarks.replay_speed --events 1000000 [--profile fold]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, Filler, fresh_schema, machine_note
from projections.hashchain import ChainVerifier
from projections.ledger_fold import FoldState, LedgerFold
from projections.runtime import ReadSide

PAGE = 5000


def raw_select(side: ReadSide) -> int:
    from psycopg.rows import tuple_row

    log = side.log
    query = log.statements.read  # type: ignore[attr-defined]  # the reader's own page query
    last, rows = 0, 0
    with log._datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:  # type: ignore[attr-defined]
        while True:
            cur.execute(query, (last, PAGE), prepare=True)
            batch = cur.fetchall()
            if not batch:
                return rows
            rows += len(batch)
            last = batch[-1][0]


def read_only(side: ReadSide) -> int:
    last, count = 0, 0
    while events := side.log.read(last, PAGE):
        count += len(events)
        last = events[-1].position
    return count


def fold_only(side: ReadSide) -> int:
    fold = LedgerFold(FoldState(), side.decoder)
    verifier = ChainVerifier(iter(()), 0)
    last, count = 0, 0
    while events := side.log.read(last, PAGE):
        changes = fold.apply(events)
        assert not changes.violations, changes.violations[:3]
        verifier.feed(events)
        count += len(events)
        last = events[-1].position
    return count


def audit(side: ReadSide) -> int:
    report = side.queries.audit_replay()
    assert report.mismatches == [] and report.supply_ok, report.mismatches[:5]
    return report.events_replayed


def rebuild(side: ReadSide) -> int:
    side.projector.page_events = PAGE
    return side.projector.rebuild()


STAGES = {"raw_select": raw_select, "read": read_only, "fold": fold_only,
          "rebuild": rebuild, "audit": audit}


def timed(name: str, side: ReadSide, profile: str | None) -> tuple[int, float]:
    profiler = None
    if profile == name:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    started = time.perf_counter()
    count = STAGES[name](side)
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--url", default=BENCH_DATABASE_URL_DEFAULT)
    parser.add_argument("--profile", choices=sorted(STAGES), default=None)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    with fresh_schema(args.url, keep=args.keep) as settings:
        filler = Filler(settings)
        seconds = filler.fill_direct(args.events)
        head = filler.app.event_log.head()
        print(f"generated {head:,} events in {seconds:.1f} s ({head / seconds:,.0f} events/s, "
              "domain events COPYed into the store)")
        side = ReadSide(filler.app, settings.eventsourcing_env())
        try:
            results = {name: timed(name, side, args.profile) for name in STAGES}
        finally:
            side.close()
            filler.close()
    base_rate = results["raw_select"][0] / results["raw_select"][1]
    print(f"\n{'stage':<12}{'events':>12}{'seconds':>10}{'events/s':>12}{'vs raw SELECT':>15}")
    for name, (count, elapsed) in results.items():
        rate = count / elapsed
        print(f"{name:<12}{count:>12,}{elapsed:>10.2f}{rate:>12,.0f}{rate / base_rate:>14.2f}x")


if __name__ == "__main__":
    main()
