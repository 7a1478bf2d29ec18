"""Building the webhook deliverer of one ``serve`` process: its store, its
one-active-holder lock and its policy, from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from application.eventlog.locks import (
    AdvisoryLock,
    FileLock,
    OneHolderLock,
    advisory_lock_key,
    conninfo_of,
)
from interface.webhooks.delivery import DeliveryPolicy, WebhookDeliverer
from interface.webhooks.subscriptions import open_webhook_store
from interface.wiring.settings import Settings
from projections.event_stream import EventStream

LOCK_FILE_NAME = "webhooks.lock"


def delivery_lock(recorder: Any) -> OneHolderLock:
    """One delivering process per ledger: the others stand by."""
    from eventsourcing.postgres import PostgresApplicationRecorder

    if isinstance(recorder, PostgresApplicationRecorder):
        datastore = recorder.datastore
        key = advisory_lock_key(f"deals-ledger:webhooks:{datastore.schema}")
        return AdvisoryLock(conninfo_of(datastore), key, purpose="webhooks")
    return FileLock(Path(recorder.datastore.pool.db_name).parent / LOCK_FILE_NAME)


def build_deliverer(settings: Settings, recorder: Any, stream: EventStream) -> WebhookDeliverer:
    policy = DeliveryPolicy(timeout_s=settings.webhook_timeout_s,
                            backoff_s_max=settings.webhook_backoff_s_max)
    return WebhookDeliverer(open_webhook_store(recorder), stream, delivery_lock(recorder), policy)
