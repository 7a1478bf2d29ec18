"""The system accounts' balances on ``/metrics``, read from the read models
when scraped.

They were gauges the projector set from the accounts a page changed: after
a restart, or in an API process that does not project, a scrape showed 0 or
nothing for the treasury until a page happened to touch it. ``SYSTEM_BALANCES``
reads them from the read models at each scrape instead (as the settlement
liveness collector reads the store), so any process serving ``/metrics``
answers the same, right values.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Protocol
from uuid import UUID

from prometheus_client.core import GaugeMetricFamily

from domain.amounts import UNITS_PER_DEAL
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from projections.queries import BalanceView, Consistency

logger = logging.getLogger(__name__)

ACCOUNT_KINDS: tuple[tuple[UUID, str, int], ...] = (
    (TREASURY_ID, "treasury", 1), (REWARDS_ID, "rewards_pool", 1),
    (ISSUANCE_ID, "circulating_supply", -1),  # what issuance has issued
)


class BalanceSource(Protocol):
    def balance(self, account_id: UUID, *, consistency: Consistency) -> BalanceView: ...


class SystemBalances:
    """A collector of ``token_balances{account_kind}`` and
    ``circulating_supply_deal``. ``watch`` names the read models to read (the
    last started service of the process); when they cannot be read (the
    store down, no genesis yet) the scrape leaves the values out rather
    than show a number that may be false."""

    def __init__(self) -> None:
        self._source: BalanceSource | None = None
        self._lock = threading.Lock()

    def watch(self, source: BalanceSource) -> None:
        with self._lock:
            self._source = source

    def forget(self, source: BalanceSource) -> None:
        with self._lock:
            if self._source is source:
                self._source = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self._source
        if source is None:
            return
        try:
            deal = {kind: sign * source.balance(account, consistency=Consistency.EVENTUAL).balance
                    / UNITS_PER_DEAL for account, kind, sign in ACCOUNT_KINDS}
        except Exception as error:  # no value beats a false one
            logger.debug("system balances not read: %s", type(error).__name__)
            return
        balances = GaugeMetricFamily(
            "token_balances", "Balances of the system accounts in DEAL, by account kind: "
            "treasury, rewards_pool, and circulating_supply (what the issuance account has "
            "issued)", labels=["account_kind"])
        for kind, value in deal.items():
            balances.add_metric([kind], value)
        yield balances
        yield GaugeMetricFamily("circulating_supply_deal", "Tokens in circulation (minus the "
                                "issuance balance), in DEAL", value=deal["circulating_supply"])


SYSTEM_BALANCES = SystemBalances()
"""Not in the default registry: ``GET /metrics`` adds it to every exposition
(in multiprocess mode too)."""
