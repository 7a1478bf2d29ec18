"""Delivering business events to webhook subscribers, at least once, in order.

One process delivers at a time (a one-active-holder lock, as the projector
and the settler hold theirs; every ``serve`` process stands by for it), on
background threads only: a command never waits for a receiver. Each
subscription is delivered by one round at a time on a small thread pool,
so a receiver that hangs holds one thread until its timeout while the
others keep flowing.

A round reads the subscription's next page of events from the log (after
its ``delivered_position``, of its types) and POSTs them one by one in
position order; the position moves past an event only once the receiver
answered 2xx, so a crash or a restart resends at most the event in flight,
with the same ``webhook-id``. A failed event is retried with backoff
(tenacity, a few attempts per round), then the subscription rests with a
growing pause before its next round; it is never skipped. Each request is
signed as Standard Webhooks specifies (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``; the ``standardwebhooks`` package signs), so a
receiver verifies it with any Standard Webhooks library. Every attempt is
written to the delivery log; nothing of a secret is.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import httpx
import orjson
from standardwebhooks import Webhook
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from application.eventlog.locks import OneHolderLock
from application.ops.background import BackgroundThread
from interface.webhooks.subscriptions import Delivery, Subscription, WebhookStore
from projections.business_events import BusinessEvent
from projections.event_stream import EventStream

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_s: float = 5.0
    """Per attempt: connect and answer."""
    attempts_per_round: int = 3
    backoff_s: float = 0.5
    backoff_s_max: float = 60.0
    """The longest wait between two attempts at one event, and between rounds."""
    page_events: int = 100
    workers: int = 8
    poll_s: float = 0.2
    """Between two looks at the subscriptions and the log's head."""
    lock_retry_s: float = 2.0
    """Between two tries of a stand-by to take the delivery lock."""


class _Failed(Exception):
    """The receiver did not acknowledge the event (no 2xx, a timeout, no connection)."""


class _Stopping(Exception):
    """The worker stops while an event waits for its next attempt."""


def signed_headers(secret: str, event_id: str, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (signed anew each time:
    the timestamp is part of what is signed)."""
    return {
        "content-type": "application/json", "user-agent": "deals-ledger-webhooks",
        "webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }


def _now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class WebhookDeliverer:
    def __init__(self, store: WebhookStore, stream: EventStream, lock: OneHolderLock,
                 policy: DeliveryPolicy | None = None) -> None:
        self.store = store
        self.stream = stream
        self.lock = lock
        self.policy = policy or DeliveryPolicy()
        self._http = httpx.Client()
        self._background = BackgroundThread("webhook-deliverer", self._run)
        self._pool: ThreadPoolExecutor | None = None
        self._guard = threading.Lock()
        self._busy: set[UUID] = set()
        self._resting: dict[UUID, tuple[float, int]] = {}
        """Per subscription after a failed round: (monotonic time of its next round, failures)."""

    def start(self) -> WebhookDeliverer:
        self._http = httpx.Client(timeout=self.policy.timeout_s, follow_redirects=False)
        self._pool = ThreadPoolExecutor(self.policy.workers, thread_name_prefix="webhook")
        self._background.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._background.stop(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.lock.release()
        self._http.close()

    @property
    def active(self) -> bool:
        return self.lock.held

    def _run(self) -> None:
        next_try, pause = 0.0, self.policy.poll_s
        while not self._background.stopping.is_set():
            try:
                if self.lock.held:
                    self._dispatch()
                elif time.monotonic() >= next_try:  # a stand-by asks now and then, not each look
                    next_try = time.monotonic() + self.policy.lock_retry_s
                    if self.lock.try_acquire():
                        self._dispatch()
                pause = self.policy.poll_s
            except Exception as error:  # the store is down: look again, less often, quietly
                if pause == self.policy.poll_s:
                    logger.warning("webhook delivery paused: %s", type(error).__name__)
                pause = min(self.policy.backoff_s_max, pause * 2)
            self._background.stopping.wait(pause)

    def _dispatch(self) -> None:
        """Start a round for each subscription that has none running and is not resting."""
        now, head = time.monotonic(), self.stream.head()
        subscriptions = self.store.all()
        with self._guard:  # forget deleted subscriptions' pauses
            known = {s.subscription_id for s in subscriptions}
            self._resting = {key: rest for key, rest in self._resting.items() if key in known}
        for subscription in subscriptions:
            key = subscription.subscription_id
            if subscription.delivered_position >= head:
                continue  # nothing new: no read of the log for it
            with self._guard:
                if key in self._busy or self._resting.get(key, (0.0, 0))[0] > now:
                    continue
                self._busy.add(key)
            assert self._pool is not None
            self._pool.submit(self._round, subscription)

    def _round(self, subscription: Subscription) -> None:
        key = subscription.subscription_id
        try:
            delivered = self._deliver_page(subscription)
        except _Stopping:
            delivered = True
        except Exception as error:
            logger.warning("webhook %s: round failed (%s)", key, type(error).__name__)
            delivered = False
        with self._guard:
            self._busy.discard(key)
            if delivered:
                self._resting.pop(key, None)
            else:
                failures = self._resting.get(key, (0.0, 0))[1] + 1
                pause = min(self.policy.backoff_s_max, self.policy.backoff_s * 2 ** failures)
                self._resting[key] = (time.monotonic() + pause, failures)

    def _deliver_page(self, subscription: Subscription) -> bool:
        """Deliver the next page in order; False when an event was not acknowledged."""
        position = subscription.delivered_position
        page = self.stream.page(position, self.policy.page_events, subscription.types)
        for event in page.events:
            if not self._deliver(subscription, event):
                return False
            if not self.store.advance(subscription.subscription_id, position, event.position):
                return True  # replayed or deleted meanwhile: the next round reads it anew
            position = event.position
        if page.next_after > position:
            self.store.advance(subscription.subscription_id, position, page.next_after)
        return True

    def _deliver(self, subscription: Subscription, event: BusinessEvent) -> bool:
        body = orjson.dumps(event.as_dict()).decode()
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts_per_round),
            wait=wait_random_exponential(multiplier=self.policy.backoff_s,
                                         max=self.policy.backoff_s_max),
            retry=retry_if_exception_type(_Failed), sleep=self._sleep, reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._post(subscription, event, body, attempt.retry_state.attempt_number)
        except _Failed:
            return False
        return True

    def _sleep(self, seconds: float) -> None:
        if self._background.stopping.wait(seconds):
            raise _Stopping

    def _post(self, subscription: Subscription, event: BusinessEvent, body: str, attempt: int) -> None:
        headers = signed_headers(subscription.secret, event.id, body, datetime.now(UTC))
        status, error = None, None
        try:
            answer = self._http.post(subscription.url, content=body.encode(), headers=headers)
            status = answer.status_code
        except httpx.HTTPError as failure:
            error = type(failure).__name__
        delivered = status is not None and 200 <= status < 300
        if status is not None and not delivered:
            error = f"HTTP {status}"
        self.store.record(Delivery(subscription.subscription_id, event.id, event.position,
                                   event.type, attempt, "delivered" if delivered else "failed",
                                   status, error, _now_text()))
        if not delivered:
            raise _Failed(error)
