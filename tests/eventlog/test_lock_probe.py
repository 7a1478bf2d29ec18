"""A one-holder lock can be asked whether any live holder has it, without
taking it: what /metrics reads to say whether a settler is alive. Both
kinds (flock and PostgreSQL advisory lock, negative and positive keys), on
the lease the settler really uses."""

from __future__ import annotations

import psycopg
import pytest

from application.eventlog.locks import AdvisoryLock, advisory_lock_key
from application.write.event_store import LedgerApplication
from interface.wiring.settler import lease_for


@pytest.fixture
def leases(store):
    """Two lease objects on the store's one settlement lease, and a probe."""
    app = LedgerApplication(store.env)
    made = [lease_for(app.recorder) for _ in range(3)]
    yield made
    for lease in made:
        lease.release()
    app.close()


def test_the_probe_sees_a_holder_and_never_takes_the_lock(leases):
    holder, standby, probe = leases
    assert not probe.is_held_anywhere()
    assert holder.try_acquire()
    assert probe.is_held_anywhere() and standby.is_held_anywhere()
    assert not standby.try_acquire()
    holder.release()
    assert not probe.is_held_anywhere()
    assert standby.try_acquire(), "the probe left the lock free for the next holder"
    assert holder.is_held_anywhere()


@pytest.mark.parametrize("name", ["positive", "negative"])
def test_advisory_keys_of_either_sign_are_found_in_the_lock_table(postgres, name):
    app = LedgerApplication(postgres.env)
    conninfo = lease_for(app.recorder)._conninfo  # noqa: SLF001 - the real connection
    app.close()
    key = next(advisory_lock_key(f"probe-{name}-{n}") for n in range(100)
               if (advisory_lock_key(f"probe-{name}-{n}") > 0) == (name == "positive"))
    holder, probe = AdvisoryLock(conninfo, key), AdvisoryLock(conninfo, key)
    other = AdvisoryLock(conninfo, key ^ 1)
    try:
        assert holder.try_acquire()
        assert probe.is_held_anywhere() and not other.is_held_anywhere()
    finally:
        holder.release()
    assert not probe.is_held_anywhere()


def test_a_released_advisory_lock_is_free_when_release_returns(postgres):
    """The next holder takes it at once (a projector taking over, a read
    side opened right after another closed): closing the session alone left
    the lock held until the server process behind it ended, after
    ``release`` returned, most times a few ms (the next holder stood by and
    projected nothing: test_both_stores_reopen_a_refused_return's helper
    waited 5 s for it and failed under load)."""
    app = LedgerApplication(postgres.env)
    conninfo = lease_for(app.recorder)._conninfo  # noqa: SLF001 - the real connection
    app.close()
    key = advisory_lock_key("probe-released")
    with psycopg.connect(**conninfo, autocommit=True) as next_holder:
        for _ in range(20):
            holder = AdvisoryLock(conninfo, key)
            assert holder.try_acquire()
            holder.release()
            (taken,) = next_holder.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            assert taken, "the lock was still held after release returned"
            next_holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
