"""Scenario 5 of ``deals-ledger bench``: the audit replay of a big log on
PostgreSQL, next to a raw keyset SELECT of the same rows (what the database
and driver alone cost). The stages are ``benchmarks.replay_speed``'s.

The log is written through the domain (``Filler.fill_direct``: the events
the writer would store, COPYed in as group commits of 32 transfers, each
sealed: commit seals are on in every process of the service, and the audit
checks every seal) and the read models are built by the projector before
the audit, as the audit compares them with a fresh fold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import BENCH_SEAL_KEYS, Filler
from benchmarks.replay_speed import audit, fold_only, raw_select, rebuild
from interface.wiring.settings import Settings
from projections.runtime import ReadSide


def replay_figures(url: str, schema: str, events: int,
                   step: Callable[[str], None]) -> tuple[int, float, float, float]:
    """(events in the log, audit events/s, fold events/s, raw SELECT rows/s)."""
    settings = Settings(data_dir=Path("/tmp/deals-bench"), database_url=url, postgres_schema=schema)
    filler = Filler(settings, accounts=min(1000, max(10, events // 100)), seal_keys=BENCH_SEAL_KEYS)
    side = None
    try:
        filler.fill_direct(events)
        side = ReadSide(filler.app, settings.eventsourcing_env())
        step("building the read models (projector from position 0)")
        rebuild(side)
        step("raw SELECT, fold and audit replay")
        rates = {}
        for name, stage in (("raw", raw_select), ("fold", fold_only), ("audit", audit)):
            started = time.perf_counter()
            count = stage(side)
            rates[name] = count / (time.perf_counter() - started)
        return count, rates["audit"], rates["fold"], rates["raw"]
    finally:
        if side is not None:
            side.close()
        filler.close()
