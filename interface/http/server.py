"""``deals-ledger serve``: the HTTP API under uvicorn.

The socket is bound here, before any worker starts, so the banner names the
real address (``--port 0`` picks a free port) and every worker accepts on the
same socket. Each worker process builds its own LedgerService (writer and
all) from the environment; they share the store, whose optimistic
concurrency settles conflicts between them.

SIGTERM (or Ctrl-C): uvicorn stops accepting, lets in-flight requests finish
(up to DEALS_SHUTDOWN_GRACE_S), then the app's lifespan stops the writer,
which answers every command still waiting, and closes the store.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from interface.http.auth import ApiKeyError, ensure_generated_key, key_file, parse_api_keys
from interface.http.edge import EdgeLimits, EdgeProtocol, connections_max_under_file_limit
from interface.wiring.logs import json_formatter, log_config
from interface.wiring.settings import Settings

APP_FACTORY = "interface.http.app:app_from_env"
STARTUP_FAILURE_EXIT = 3
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
BANNER_PROBE_INTERVAL_S = 0.1


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    new_token = _prepare_keys(settings)
    config = uvicorn_config(
        APP_FACTORY, settings, factory=True, host=host, port=port, workers=workers,
        log_config=log_config(settings), log_level=(settings.log_level or "INFO").lower(),
    )
    sock = config.bind_socket()
    bound_host, bound_port = sock.getsockname()[:2]
    text = partial(banner, settings.replace(host=bound_host, port=bound_port), new_token, workers)
    if workers > 1:
        done = threading.Event()
        probe = f"http://{_probe_host(bound_host)}:{bound_port}/health"
        threading.Thread(target=_banner_once_answering, args=(probe, text, done),
                         name="banner", daemon=True).start()
        with _shared_metrics_dir():
            supervisor = Multiprocess(config, sockets=[sock])
            try:
                supervisor.run()
            finally:
                done.set()
        started = all(worker.exitcode != STARTUP_FAILURE for worker in supervisor.processes)
    else:
        server = _BannerServer(config, text)
        with _stop_signals_end_normally():
            server.run(sockets=[sock])
        started = server.started
    if not started:
        print("deals-ledger: the server did not start (see the log above)", file=sys.stderr)
        return STARTUP_FAILURE_EXIT
    return 0


def _banner_once_answering(probe: str, text: Callable[[], str], done: threading.Event) -> None:
    """Several workers start in processes of their own: the banner waits
    until one of them answers /health (its app has started), and is never
    printed when none does."""
    while not done.is_set():
        try:
            with urllib.request.urlopen(probe, timeout=2) as answer:  # noqa: S310 - our own http URL
                if answer.status == 200:
                    print(text(), flush=True)
                    return
        except OSError:
            pass  # not accepting yet
        done.wait(BANNER_PROBE_INTERVAL_S)


def _probe_host(host: str) -> str:
    """Where this machine reaches the bound address (a wildcard is loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - reading the bind address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _BannerServer(uvicorn.Server):
    """uvicorn's server that prints the banner once the app has started (its
    lifespan ran: the ledger is open, genesis done), never before: a start
    that fails says so without having said "listening"."""

    def __init__(self, config: uvicorn.Config, text: Callable[[], str]) -> None:
        super().__init__(config)
        self.banner_text = text

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self.banner_text(), flush=True)  # made now: a JSON record's time


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn as the ledger runs it (``deals-ledger serve``, the tests' servers):
    the edge's bounds (interface.http.edge) and the settings' proxies.

    X-Forwarded-For and X-Forwarded-Proto are believed only from
    DEALS_TRUSTED_PROXIES (uvicorn's own default believes any loopback
    client, so a local process could forge the address the token-guessing
    alert and the access log see); with none configured they are ignored.
    The app reads them itself (interface.http.forwarded), so an entry that
    is not an IP address is never taken for the client; uvicorn's own
    proxy middleware is off.
    """
    limits = EdgeLimits(
        header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s,
        header_bytes_max=settings.header_bytes_max,
        connections_max=connections_max_under_file_limit(settings.connections_max),
    )
    return uvicorn.Config(
        app, http=cast(Any, partial(EdgeProtocol, limits=limits)), lifespan="on",
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s), server_header=False,
        proxy_headers=False, **options,
    )


@contextmanager
def _shared_metrics_dir() -> Iterator[None]:
    """Several workers: prometheus-client's multiprocess mode, so a scrape of
    /metrics, whichever worker answers it, sums them all. Each worker process
    is started afresh (spawn) and reads PROMETHEUS_MULTIPROC_DIR when it first
    imports prometheus-client. An operator's own directory (shared with
    ``project`` or ``settle`` workers) is kept; else a new empty one lives as
    long as the server."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="deals-ledger-metrics-") as folder:
        os.environ[MULTIPROC_DIR_VARIABLE] = folder
        try:
            yield
        finally:
            del os.environ[MULTIPROC_DIR_VARIABLE]


@contextmanager
def _stop_signals_end_normally() -> Iterator[None]:
    """uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the
    signal to the handler that was there before it. With a no-op one there,
    a requested stop ends the process with exit code 0, not killed by the
    signal (or a KeyboardInterrupt) after the graceful shutdown already ran."""
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stop_signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _prepare_keys(settings: Settings) -> str | None:
    """Fail fast on bad DEALS_API_KEYS; without them, make sure the data dir
    holds the generated admin key (before any worker starts, so they agree)."""
    if settings.api_keys:
        parse_api_keys(settings.api_keys)
        return None
    return ensure_generated_key(settings)


def banner(settings: Settings, new_token: str | None, workers: int) -> str:
    """What ``serve`` prints once it answers: lines for a person, or with
    DEALS_LOG_FORMAT=json one log record like every other line of stdout."""
    if settings.log_format == "json":
        return _json_banner(settings, new_token, workers)
    return _text_banner(settings, new_token, workers)


def _json_banner(settings: Settings, new_token: str | None, workers: int) -> str:
    """One JSON object, formatted as the log's records are. A new admin key
    is not in it (a log shipper would spread it): the record says where the
    key is kept instead."""
    base = f"http://{_url_host(settings.host)}:{settings.port}"
    record = logging.LogRecord("deals_ledger.serve", logging.INFO, __file__, 0,
                               f"Deals Ledger listening on {base}", None, None)
    fields = {"url": base, "workers": workers, "docs": f"{base}/docs",
              "store": "PostgreSQL" if settings.uses_postgres
              else str(settings.data_dir / "events.sqlite"), "correlation_id": "-"}
    if not settings.api_keys:
        fields["api_key_file"] = str(key_file(settings))
        fields["api_key_generated"] = new_token is not None
    record.__dict__.update(fields)
    return json_formatter().format(record)


def _text_banner(settings: Settings, new_token: str | None, workers: int) -> str:
    base = f"http://{_url_host(settings.host)}:{settings.port}"
    store = "PostgreSQL" if settings.uses_postgres else str(settings.data_dir / "events.sqlite")
    lines = [
        f"Deals Ledger listening on {base} ({workers} worker{'s' if workers > 1 else ''}, "
        f"store: {store})",
        f"  API docs: {base}/docs",
    ]
    if settings.api_keys:
        token = "<your token from DEALS_API_KEYS>"  # noqa: S105 - a placeholder
    elif new_token is not None:
        lines.append(f"  admin API key (shown only now; kept in {key_file(settings)}): {new_token}")
        token = new_token
    else:
        lines.append(f"  admin API key: in {key_file(settings)}")
        token = f"$(cat {key_file(settings)})"
    lines.append(f'  try: curl -H "Authorization: Bearer {token}" {base}/v1/system')
    return "\n".join(lines)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


__all__ = ["ApiKeyError", "serve", "banner", "uvicorn_config"]
