"""Suspicious activity: rules over accepted commands that flag, never block.

Three rules, each configurable and each off at 0:

* ``account_velocity``: an account moved (sent, received, held) more than
  ``account_commands_max`` times within ``window_s``. The system accounts
  (treasury, rewards, issuance) take part in every fee and reward, so they
  are exempt.
* ``key_velocity``: an API key had more than ``key_commands_max`` write
  requests accepted within ``window_s`` (the HTTP layer reports them).
* ``large_amount``: one movement of at least ``large_amount`` base units.
* ``auth_failures``: more than ``auth_failures_max`` requests refused 401
  (no or unknown token) from one client address within ``window_s``: someone
  guessing tokens, or a service deployed with a revoked key.

A match is a domain-neutral record: a WARNING log line with structured
fields, ``suspicious_activity_total{rule}`` and a ``suspicious_activity``
alert. A velocity rule flags a subject at most once per window.

Why it cannot slow or refuse legitimate traffic: the writer calls
``on_batch`` after it has answered the batch's callers, and all it does
there is put small tuples in a bounded queue (full: the observation is
dropped and counted); one background thread evaluates them. Memory is
bounded too: at most ``subjects_max`` accounts and keys are tracked (the
least recently active is forgotten first), each as six counters.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from prometheus_client import Counter

from application.alerts import AlertKind, Alerts
from application.metrics_registry import metric
from application.ops.background import BackgroundThread
from application.outcomes import BatchRecorded, HoldPlaced, MovementRecorded
from domain.amounts import UNITS_PER_DEAL, format_amount
from domain.system import EXTERNAL_ID, ISSUANCE_ID, REWARDS_ID, TREASURY_ID

logger = logging.getLogger(__name__)

SUSPICIOUS_ACTIVITY = metric(
    Counter, "suspicious_activity", "Suspicious activity records, by rule", labels=("rule",)
)
OBSERVATIONS_DROPPED = metric(
    Counter, "suspicious_activity_observations_dropped",
    "Accepted commands not evaluated because the monitor's queue was full",
)

ACCOUNT_VELOCITY, KEY_VELOCITY, LARGE_AMOUNT = "account_velocity", "key_velocity", "large_amount"
AUTH_FAILURES = "auth_failures"


@dataclass(frozen=True)
class SuspicionRules:
    window_s: float = 60.0
    account_commands_max: int = 600
    key_commands_max: int = 20_000
    large_amount: int = 1_000_000 * UNITS_PER_DEAL
    auth_failures_max: int = 100
    exempt_accounts: frozenset[UUID] = field(
        default=frozenset({TREASURY_ID, REWARDS_ID, ISSUANCE_ID, EXTERNAL_ID})
    )


@dataclass(frozen=True)
class _Movement:
    transfer_id: UUID
    kind: str
    accounts: tuple[UUID, ...]
    amount: int


@dataclass(frozen=True)
class _KeyCommand:
    key_name: str


@dataclass(frozen=True)
class _AuthFailure:
    client: str


_Observation = _Movement | _KeyCommand | _AuthFailure


class _Window:
    """One subject's recent commands, counted in ``BUCKETS`` slices of the
    window (a sliding window to within one slice), so a subject costs the
    same few integers however busy it is."""

    BUCKETS = 6

    def __init__(self, window_s: float) -> None:
        self.bucket_s = window_s / self.BUCKETS
        self.counts = [0] * self.BUCKETS
        self.last_bucket: int | None = None
        self.flagged_at: float | None = None

    def add(self, now: float) -> int:
        """Count one command at ``now``; the commands within the window."""
        bucket = int(now // self.bucket_s)
        if self.last_bucket is None or bucket - self.last_bucket >= self.BUCKETS:
            self.counts = [0] * self.BUCKETS
        else:
            for passed in range(self.last_bucket + 1, bucket + 1):
                self.counts[passed % self.BUCKETS] = 0
        self.last_bucket = bucket if self.last_bucket is None else max(bucket, self.last_bucket)
        self.counts[bucket % self.BUCKETS] += 1
        return sum(self.counts)


class SuspiciousActivityMonitor:
    def __init__(
        self,
        rules: SuspicionRules,
        alerts: Alerts,
        *,
        queued_max: int = 10_000,
        subjects_max: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self._alerts = alerts
        self._queue: queue.Queue[_Observation] = queue.Queue(queued_max)
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._subjects_max = subjects_max
        self._monotonic = monotonic
        self._background = BackgroundThread("suspicious-activity", self._run)

    # --- observing (callers' threads: cheap, never blocking) -------------------

    def on_batch(self, report: object) -> None:
        """The command writer's observer (after the batch's callers had their answers)."""
        for result in getattr(report, "results", ()):
            for movement in _movements(result):
                self._offer(movement)

    def on_key_command(self, key_name: str) -> None:
        """The HTTP layer: a write request of this API key was accepted."""
        if self.rules.key_commands_max > 0:
            self._offer(_KeyCommand(key_name))

    def on_auth_failure(self, client: str) -> None:
        """The HTTP layer: a request from this client address was refused 401."""
        if self.rules.auth_failures_max > 0:
            self._offer(_AuthFailure(client))

    def _offer(self, observation: _Observation) -> None:
        try:
            self._queue.put_nowait(observation)
        except queue.Full:
            OBSERVATIONS_DROPPED.inc()

    # --- evaluating (the monitor's thread) ---------------------------------------

    def start(self) -> SuspiciousActivityMonitor:
        self._background.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._background.stop(timeout_s)

    def drain(self) -> None:
        """Evaluate everything queued now, in the caller's thread (tests)."""
        while True:
            try:
                observation = self._queue.get_nowait()
            except queue.Empty:
                return
            self.evaluate(observation)

    def _run(self) -> None:
        while not self._background.stopping.is_set():
            try:
                observation = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.evaluate(observation)
            except Exception:
                logger.exception("suspicious-activity rule failed")

    def evaluate(self, observation: _Observation) -> None:
        if isinstance(observation, _KeyCommand):
            self._count(KEY_VELOCITY, observation.key_name, self.rules.key_commands_max)
            return
        if isinstance(observation, _AuthFailure):
            self._count(AUTH_FAILURES, observation.client, self.rules.auth_failures_max)
            return
        if 0 < self.rules.large_amount <= observation.amount:
            self._flag(LARGE_AMOUNT, str(observation.transfer_id),
                       transfer_id=str(observation.transfer_id), movement=observation.kind,
                       amount=format_amount(observation.amount),
                       threshold=format_amount(self.rules.large_amount))
        for account in observation.accounts:
            if account not in self.rules.exempt_accounts:
                self._count(ACCOUNT_VELOCITY, str(account), self.rules.account_commands_max)

    def _count(self, rule: str, subject: str, limit: int) -> None:
        if limit <= 0:
            return
        now = self._monotonic()
        window = self._window(rule, subject)
        commands = window.add(now)
        if commands <= limit:
            return
        if window.flagged_at is not None and now - window.flagged_at < self.rules.window_s:
            return
        window.flagged_at = now
        self._flag(rule, subject, subject=subject, commands=commands,
                   limit=limit, window_s=self.rules.window_s)

    def _window(self, rule: str, subject: str) -> _Window:
        key = (rule, subject)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(self.rules.window_s)
            while len(self._windows) > self._subjects_max:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        return window

    def _flag(self, rule: str, dedup: str, **fields: str | int | float) -> None:
        SUSPICIOUS_ACTIVITY.labels(rule).inc()
        logger.warning("suspicious activity: rule=%s %s", rule,
                       " ".join(f"{k}={v}" for k, v in fields.items()),
                       extra={"suspicious_activity": {"rule": rule, **fields}})
        self._alerts.raise_alert(AlertKind.SUSPICIOUS_ACTIVITY, f"suspicious activity: {rule}",
                                 dedup_key=f"{rule}:{dedup}", rule=rule, **fields)

    @property
    def tracked_subjects(self) -> int:
        return len(self._windows)


def _movements(result: object) -> Iterator[_Movement]:
    if isinstance(result, MovementRecorded) and not result.replayed:
        yield _Movement(result.transfer_id, result.kind, (result.source, result.destination),
                        result.amount)
    elif isinstance(result, BatchRecorded) and result.applied and not result.replayed:
        yield from _batch_movements(item.outcome for item in result.results)
    elif isinstance(result, HoldPlaced) and not result.replayed:
        yield _Movement(result.hold_id, "hold", (result.account_id,), result.amount)


def _batch_movements(outcomes: Iterable[MovementRecorded | None]) -> Iterator[_Movement]:
    for outcome in outcomes:
        if outcome is not None:
            yield from _movements(outcome)
