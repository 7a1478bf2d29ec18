"""Reaching the real PostgreSQL and Redis servers the tests use.

A test that needs a server it cannot reach is skipped on a developer's
machine, but FAILS when DEALS_REQUIRE_SERVICES=1 (as in CI), so a missing
service can never turn a red run green.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_HOST = os.environ.get("DEALS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DEALS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("DEALS_TEST_PG_USER", "root")
PG_ADMIN_DB = os.environ.get("DEALS_TEST_PG_ADMIN_DB", "postgres")
REDIS_URL = os.environ.get("DEALS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def services_required() -> bool:
    return os.environ.get("DEALS_REQUIRE_SERVICES") == "1"


def unreachable(what: str, error: Exception) -> None:
    message = f"{what} is unreachable: {type(error).__name__}: {error}"
    if services_required():
        pytest.fail(message + " (DEALS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def pg_connect(dbname: str = PG_ADMIN_DB):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=5
    )


class PostgresTestDatabase:
    """One database per test run, dropped at the end; one schema per test."""

    def __init__(self) -> None:
        self.name = f"deals_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with pg_connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    def new_schema(self) -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with pg_connect(self.name) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return schema

    def drop_schema(self, schema: str) -> None:
        with pg_connect(self.name) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def drop(self) -> None:
        with pg_connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (self.name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')


def redis_client(url: str = REDIS_URL):
    """A client of the shared Redis server, or skip/fail (see ``unreachable``)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as error:
        client.close()
        unreachable("Redis", error)
    return client


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, on a free port, that the test can
    stop, restart, pause (SIGSTOP) and resume. Always ``close()`` it."""

    def __init__(self, workdir) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            unreachable("redis-server", FileNotFoundError("redis-server is not installed"))
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import subprocess
        import time

        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as error:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    unreachable("redis-server (own)", error)
                time.sleep(0.05)  # polling a server's start-up: nothing to wait on
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        import signal

        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        import signal

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.kill()
            self.process.wait(10)
            self.process = None
