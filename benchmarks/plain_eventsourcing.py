"""The reference the write path is judged against: plain ``eventsourcing``
moving money between two cached aggregates, one save per transfer and 200
transfers per save, on the same store in the same run."""

from __future__ import annotations

import random
import time
import uuid

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class PlainAccount(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.balance = 0

    @event("Debited")
    def debit(self, amount: int) -> None:
        self.balance -= amount

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount


class PlainBank(Application):
    name = "PlainBank"


def transfers_per_second(env: dict, *, transfers: int, per_save: int, accounts: int = 1000) -> float:
    app = PlainBank(env)
    try:
        pool = [PlainAccount() for _ in range(accounts)]
        for chunk in range(0, accounts, 500):
            app.save(*pool[chunk:chunk + 500])
        rng = random.Random(1)  # noqa: S311
        started = time.perf_counter()
        for _ in range(transfers // per_save):
            touched = {}
            for _ in range(per_save):
                source, destination = rng.sample(pool, 2)
                source.debit(1)
                destination.credit(1)
                touched[source.id], touched[destination.id] = source, destination
            app.save(*touched.values())
        return transfers / (time.perf_counter() - started)
    finally:
        app.close()


def plain_env(env: dict) -> dict:
    """The same store, without the ledger's recorder tuning."""
    return env | {"PERSISTENCE_MODULE": "eventsourcing.postgres",
                  "DEALS_BENCH_RUN": uuid.uuid4().hex}
