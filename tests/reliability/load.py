"""A client-side load that remembers what the service promised.

Several threads send transfers between funded accounts and fees into the hot
treasury, over HTTP, through faults. Each command is filed by what its
client saw: ``acknowledged`` (2xx: the service promised it is durable),
``refused`` (a definitive 4xx: nothing applied) or ``unknown`` (a connection
error, a timeout or 503: it may or may not have been applied). After the
fault, ``retry_unknown`` sends every unknown command again with the same id
until it is answered 2xx, so each ends acknowledged and the log can be
checked for exactly-once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.interface.helpers import funded_account, new_id
from tests.support.http import ADMIN, bearer, wait_until, wait_while_progressing

REQUEST_TIMEOUT_S = 5.0
RETRY_WAIT_S_MAX = 60.0
UNAVAILABLE_BACKOFF_S = 0.05
"""A client's pause after a 503 or no answer, as a polite client's would be."""
AMOUNT = "0.00000001"
FEE_SERVICE = "notification"


@dataclass(frozen=True)
class Command:
    """One command as sent: where to, and the body (which carries its id)."""

    path: str
    body: dict

    @property
    def command_id(self) -> str:
        return self.body.get("transfer_id") or self.body["charge_id"]


@dataclass
class Ledgerbook:
    """What the clients saw, shared by the load's threads."""

    acknowledged: dict[str, Command] = field(default_factory=dict)
    refused: dict[str, tuple[Command, int]] = field(default_factory=dict)
    unknown: dict[str, Command] = field(default_factory=dict)
    why_unknown: dict[str, str] = field(default_factory=dict)
    """The last thing each unknown command's client saw: an error or a 503 body."""
    positions: list[int] = field(default_factory=list)
    latencies_s: list[tuple[float, float]] = field(default_factory=list)
    """(monotonic time sent, seconds to a 2xx answer), for the soak."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def file(self, command: Command, response: httpx.Response | Exception,
             sent_at: float) -> None:
        with self.lock:
            if isinstance(response, Exception) or response.status_code == 503:
                self.unknown[command.command_id] = command
                self.why_unknown[command.command_id] = _why(response, sent_at)
            elif response.status_code in (200, 201):
                self.acknowledged[command.command_id] = command
                self.unknown.pop(command.command_id, None)
                self.why_unknown.pop(command.command_id, None)
                self.positions.append(response.json()["position"])
                self.latencies_s.append((sent_at, time.monotonic() - sent_at))
            else:
                self.refused[command.command_id] = (command, response.status_code)

    @property
    def surprises(self) -> dict[str, str]:
        """Every command not acknowledged, with what its client saw: empty
        when a run without faults kept every promise."""
        with self.lock:
            seen = dict(self.why_unknown)
            seen.update({key: f"{status} refused" for key, (_, status) in self.refused.items()})
            return seen

    @property
    def acknowledged_count(self) -> int:
        return len(self.acknowledged)

    @property
    def last_position(self) -> int:
        with self.lock:
            return max(self.positions, default=0)


def _why(response: httpx.Response | Exception, sent_at: float) -> str:
    waited = f"after {time.monotonic() - sent_at:.2f} s"
    if isinstance(response, Exception):
        return f"{type(response).__name__} {waited}"
    return f"503 {response.text} {waited}"


def transfer(source: str, destination: str) -> Command:
    return Command("/v1/transfers", {"transfer_id": new_id(), "from": source, "to": destination,
                                     "amount": AMOUNT, "reason": "load"})


def fee(account: str) -> Command:
    return Command("/v1/fees", {"charge_id": new_id(), "account_id": account,
                                "service_type": FEE_SERVICE})


class Load:
    """``clients`` threads, each sending one command after another (a mix of
    transfers and fees) to one of ``urls`` until ``stop``; ``rate_per_s``
    (all clients together) paces them, None sends as fast as answered."""

    def __init__(self, urls: list[str], accounts: list[str], *, clients: int = 4,
                 rate_per_s: float | None = None, seed: int = 7) -> None:
        self.urls = urls
        self.accounts = accounts
        self.book = Ledgerbook()
        self.rate_per_s = rate_per_s
        self._clients = clients
        self._seed = seed
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Load:
        for number in range(self._clients):
            thread = threading.Thread(target=self._run, args=(number,), name=f"load-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wait_for_acknowledged(self, count: int, stall_s_max: float = 60) -> None:
        """Fails only when acknowledgements stop for ``stall_s_max`` (an
        outage the test causes must end within it): a busy machine makes
        the clients slower, and ``count`` would take longer, never forever."""
        wait_while_progressing(lambda: max(0, count - self.book.acknowledged_count),
                               stall_s_max, f"{count} acknowledged commands")

    def stop(self) -> Ledgerbook:
        self._stopping.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT_S * 3)
            assert not thread.is_alive(), "a load client did not stop"
        return self.book

    def _run(self, number: int) -> None:
        rng = random.Random(self._seed * 1000 + number)  # noqa: S311
        url = self.urls[number % len(self.urls)]
        interval_s = self._clients / self.rate_per_s if self.rate_per_s else 0.0
        next_at = time.monotonic()
        with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=REQUEST_TIMEOUT_S) as client:
            while not self._stopping.is_set():
                command = self._next_command(rng)
                sent_at = time.monotonic()
                response = _post(client, command)
                self.book.file(command, response, sent_at)
                if isinstance(response, Exception) or response.status_code == 503:
                    self._stopping.wait(UNAVAILABLE_BACKOFF_S)
                elif interval_s:
                    next_at += interval_s
                    self._stopping.wait(max(0.0, next_at - time.monotonic()))

    def _next_command(self, rng: random.Random) -> Command:
        if rng.random() < 0.5:
            return fee(rng.choice(self.accounts))
        source, destination = rng.sample(self.accounts, 2)
        return transfer(source, destination)


def _post(client: httpx.Client, command: Command) -> httpx.Response | Exception:
    try:
        return client.post(command.path, json=command.body)
    except httpx.HTTPError as error:  # connection refused or reset, timeout: outcome unknown
        return error


def retry_unknown(book: Ledgerbook, url: str, *, timeout_s: float = RETRY_WAIT_S_MAX) -> int:
    """Send every command whose outcome is unknown again, same id and body,
    until each is answered 2xx; the number retried."""
    pending = dict(book.unknown)
    with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=REQUEST_TIMEOUT_S) as client:
        for command in pending.values():
            answered: Callable[[], bool] = lambda c=command: _acknowledges(client, book, c)  # noqa: E731
            wait_until(answered, timeout_s, f"a retry of {command.command_id} to be answered",
                       interval_s=0.1)
    assert not book.unknown
    return len(pending)


def _acknowledges(client: httpx.Client, book: Ledgerbook, command: Command) -> bool:
    sent_at = time.monotonic()
    response = _post(client, command)
    book.file(command, response, sent_at)
    if not isinstance(response, Exception) and response.status_code not in (200, 201, 503):
        raise AssertionError(f"retry of {command.command_id}: {response.status_code} "
                             f"{response.text}")
    return command.command_id in book.acknowledged


@dataclass
class LoadRun:
    load: Load
    accounts: list[str]
    stopped_book: Ledgerbook | None = None

    @property
    def book(self) -> Ledgerbook:
        """What every client saw; there once the ``load_against`` block ended."""
        assert self.stopped_book is not None, "the load is still running"
        return self.stopped_book


@contextmanager
def load_against(url: str, admin: httpx.Client, *, clients: int = 4) -> Iterator[LoadRun]:
    """Four funded accounts and a load running on them while the block
    injects its fault; ``book`` holds what every client saw once it stops."""
    accounts = [funded_account(admin, "1000") for _ in range(4)]
    run = LoadRun(Load([url], accounts, clients=clients).start(), accounts)
    try:
        yield run
    finally:
        run.stopped_book = run.load.stop()
