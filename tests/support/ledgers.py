"""A running write side (application, processor, writer) for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from application import commands as c
from application.authority import INTERNAL
from application.handlers.rules import DEFAULT_RULES, Rules
from application.outcomes import Outcome
from application.write.aggregate_cache import AggregateCache
from application.write.event_store import LedgerApplication
from application.write.processor import CommandProcessor
from application.write.writer import CommandWriter
from domain.system import SYSTEM_ACCOUNTS
from tests.support.settling import settle_with

SYSTEM_IDS = tuple(SYSTEM_ACCOUNTS.values())


class SettableClock:
    """A clock the test moves by hand, so expiry and pricing windows are
    exercised without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def tick(self) -> datetime:
        """The command processor's reading: the time now, after which the
        clock runs on a microsecond, so two commits never carry one stamp (a
        real clock's readings differ too, and a commit's stamp is how
        positions find whole commits)."""
        now = self.now
        self.now += timedelta(microseconds=1)
        return now


class LedgerHarness:
    """The write side as a service uses it, plus conveniences for tests."""

    def __init__(self, env: dict[str, str], *, clock: Callable[[], datetime] | None = None,
                 cached_max: int = 50_000, genesis: bool = True,
                 app: LedgerApplication | None = None, rules: Rules = DEFAULT_RULES) -> None:
        self.env = env
        self.clock = clock or SettableClock()
        self.app = app or LedgerApplication(env)
        self.processor = CommandProcessor(
            self.app, cache=AggregateCache(cached_max),
            clock=self.clock.tick if isinstance(self.clock, SettableClock) else self.clock,
            rules=rules,
        )
        self.writer = CommandWriter(self.processor).start()
        if genesis:
            self.execute(c.Genesis())

    def execute(self, command: c.Command) -> Outcome:
        return self.writer.execute(command, authority=INTERNAL)

    def open_account(self, funded: int = 0) -> UUID:
        account_id = uuid4()
        self.execute(c.OpenAccount(account_id))
        if funded:
            self.execute(c.Mint(uuid4(), account_id, funded))
        return account_id

    def settle(self, *transfer_ids: UUID) -> str:
        """Record the movements settled on chain, as the settler does."""
        return settle_with(self.writer, *transfer_ids)

    def balance(self, account_id: UUID) -> int:
        return self.app.account(account_id).balance

    def close(self) -> None:
        self.writer.stop()
        self.app.close()
