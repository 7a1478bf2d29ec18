"""Reading the event log itself, to prove what was applied and how often."""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from eventsourcing.utils import get_topic

from application.write.event_store import LedgerApplication
from domain.account import Account

PAGE = 1000


def debits_by_transfer(app: LedgerApplication) -> Counter[UUID]:
    """How many times each transfer id debited an account, over the whole log."""
    counts: Counter[UUID] = Counter()
    topic = get_topic(Account.Debited)
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start=start, limit=PAGE,
                                                          topics=[topic])
        if not notifications:
            return counts
        for notification in notifications:
            counts[app.mapper.to_domain_event(notification).transfer_id] += 1
        start = notifications[-1].id + 1
