"""The Redis balance cache, against a real redis-server of the test's own:
write-through, compare-and-set, and reads that stay right while Redis is
down, paused or flushed, healing when it returns."""

from __future__ import annotations

import time
from uuid import uuid4

import pytest
import redis

from application import commands as c
from domain.errors import InsufficientBalance
from projections import ledger_metrics as metrics
from projections.balance_cache import BalanceCache, CachedBalance, cache_key, meta_key
from projections.queries import Consistency
from projections.runtime import ReadSide


@pytest.fixture
def cached(ledger, store, redis_server):
    side = ReadSide(ledger.app, store.env, redis_url=redis_server.url, clock=ledger.clock,
                    wait_s_max=0.5)
    side.cache.cooldown_s = 0.2
    yield side
    side.close()


def raw(redis_server) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, socket_timeout=2)


def entry(server, account_id) -> dict:
    values = raw(server).hgetall(cache_key(account_id.hex))
    return {k.decode(): v.decode() for k, v in values.items()}


def count(counter) -> float:
    return counter._value.get()


def incarnation(server, prefix: str = "") -> str:
    return raw(server).hget(meta_key(prefix), "id").decode()


def bound_cache(server, prefix: str = "") -> BalanceCache:
    """A cache bound by hand to an incarnation of a ledger "g"."""
    raw(server).hset(meta_key(prefix), mapping={"id": "g:1", "w": 0})
    cache = BalanceCache(server.url, prefix=prefix, genesis=lambda: "g")
    cache.incarnation = "g:1"
    return cache


def last_change(queries, account_id) -> int:
    return queries.history(account_id).items[-1].position


def funded_pair(ledger):
    return ledger.open_account(1_000), ledger.open_account()


def test_the_projector_writes_balances_through_with_their_position_and_a_ttl(
    ledger, cached, redis_server
):
    source, destination = funded_pair(ledger)
    moved = ledger.execute(c.TransferFunds(uuid4(), source, destination, 250))
    cached.projector.catch_up()
    credited = last_change(cached.queries, destination)
    assert 0 < credited <= moved.position
    assert entry(redis_server, destination) == {
        "p": str(credited), "b": "250", "h": "0", "x": "", "l": incarnation(redis_server)}
    assert 0 < raw(redis_server).ttl(cache_key(destination.hex)) <= 300
    hits = count(metrics.CACHE_HITS)
    view = cached.queries.balance(destination)
    assert (view.balance, view.position) == (250, ledger.app.event_log.head())
    assert count(metrics.CACHE_HITS) == hits + 1


def test_ledgers_sharing_a_redis_keep_to_their_own_prefix(redis_server):
    """The system accounts have one id in every ledger: without a prefix of
    its own, one ledger's treasury entry (at a higher position) would win
    the compare-and-set against another's and be answered as its balance."""
    first = bound_cache(redis_server, prefix="ledger-a:")
    second = bound_cache(redis_server, prefix="ledger-b:")
    treasury = uuid4().hex
    assert first.put([CachedBalance(treasury, 900, 0, 5_000, None)])
    assert second.put([CachedBalance(treasury, 40, 0, 12, None)])
    assert first.get(treasury).entry == CachedBalance(treasury, 900, 0, 5_000, None)
    assert second.get(treasury).entry == CachedBalance(treasury, 40, 0, 12, None)
    assert raw(redis_server).exists(cache_key(treasury, "ledger-b:"))
    first.close()
    second.close()


def test_an_older_position_never_overwrites_a_newer_one(redis_server):
    cache = bound_cache(redis_server)
    account = uuid4().hex
    assert cache.put([CachedBalance(account, 500, 0, 20, None)])
    assert cache.put([CachedBalance(account, 100, 0, 10, None)])  # late, older write
    assert cache.get(account).entry == CachedBalance(account, 500, 0, 20, None)
    assert cache.put([CachedBalance(account, 700, 5, 21, 123)])
    assert cache.get(account).entry == CachedBalance(account, 700, 5, 21, 123)
    cache.close()


def test_a_read_filling_a_miss_cannot_undo_the_projector(ledger, cached, redis_server):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 1))
    cached.projector.catch_up()
    stale = CachedBalance(destination.hex, 0, 0, 1, None)  # what a slow reader saw earlier
    cached.cache.fill(stale, incarnation(redis_server))
    assert cached.queries.balance(destination).balance == 1


def test_reads_stay_right_while_redis_is_down_and_the_cache_heals_after(
    ledger, cached, redis_server
):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 100))
    cached.projector.catch_up()
    redis_server.stop()
    errors = count(metrics.CACHE_ERRORS.labels("write"))
    late = ledger.execute(c.TransferFunds(uuid4(), source, destination, 50))
    cached.projector.catch_up()  # the write-through fails; the projection goes on
    assert count(metrics.CACHE_ERRORS.labels("write")) > errors
    assert cached.queries.balance(destination).balance == 150
    assert cached.store.meta("cache_resync_from") is not None
    redis_server.start()  # empty again, as after a restart... then an old value appears:
    raw(redis_server).hset(cache_key(destination.hex),
                           mapping={"p": 1, "b": 100, "h": 0, "x": ""})
    time.sleep(cached.cache.cooldown_s)  # let the cool-down after the failure run out
    cached.projector.catch_up()  # nothing new in the log; a later page heals it:
    ledger.execute(c.TransferFunds(uuid4(), source, ledger.open_account(), 1))
    cached.projector.catch_up()
    assert int(entry(redis_server, destination)["p"]) == late.position - 1  # its credit
    assert entry(redis_server, destination)["b"] == "150"
    assert cached.store.meta("cache_resync_from") is None


def test_a_paused_redis_costs_a_short_timeout_not_a_wrong_answer(ledger, cached, redis_server):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 100))
    cached.projector.catch_up()
    redis_server.pause()
    try:
        started = time.monotonic()
        assert cached.queries.balance(destination).balance == 100
        assert cached.queries.balance(destination).balance == 100  # bypassed while cooling
        assert time.monotonic() - started < 2.0  # 100 ms timeout, then SQL; not a hang
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 1))
        cached.projector.catch_up()
        assert cached.queries.balance(destination).balance == 101
    finally:
        redis_server.resume()
    time.sleep(cached.cache.cooldown_s)  # the cool-down after the failure
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 1))
    cached.projector.catch_up()
    assert entry(redis_server, destination)["b"] == "102"
    assert cached.queries.audit_replay().mismatches == []


def test_after_a_flush_reads_answer_from_sql_and_refill_the_cache(ledger, cached, redis_server):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 100))
    cached.projector.catch_up()
    raw(redis_server).flushall()  # the binding goes too: reads go to SQL
    bypassed = count(metrics.CACHE_BYPASSED)
    assert cached.queries.balance(destination).balance == 100
    assert count(metrics.CACHE_BYPASSED) == bypassed + 1
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 1))
    cached.projector.catch_up()  # the projector binds again and writes every account
    assert entry(redis_server, source)["b"] == "899"
    assert entry(redis_server, destination)["b"] == "101"
    misses = count(metrics.CACHE_MISSES)
    assert cached.queries.balance(destination).balance == 101
    assert count(metrics.CACHE_MISSES) == misses


def test_an_entry_whose_hold_may_have_expired_is_not_used(ledger, cached, redis_server):
    account = ledger.open_account(1_000)
    ledger.execute(c.PlaceHold(uuid4(), account, amount=300, expires_in_s=60))
    cached.projector.catch_up()
    assert entry(redis_server, account)["h"] == "300"
    assert cached.queries.balance(account).held == 300
    ledger.clock.advance(60)
    view = cached.queries.balance(account)
    assert (view.held, view.available) == (0, 1_000)


def test_the_cache_never_authorises_a_debit(ledger, cached, redis_server):
    source, destination = funded_pair(ledger)
    cached.projector.catch_up()
    raw(redis_server).hset(cache_key(source.hex), mapping={
        "p": 10**12, "b": 10**15, "h": 0, "x": "", "l": incarnation(redis_server)})
    assert cached.queries.balance(source).balance == 1_000  # past the head: never used
    eventual = cached.queries.balance(source, consistency=Consistency.EVENTUAL)
    assert eventual.balance == 10**15  # an eventual read trusts the binding: misled
    with pytest.raises(InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 5_000))
    report = cached.queries.audit_replay()  # ...and the audit finds it
    assert [(m.model, m.key) for m in report.mismatches] == [
        ("redis_cache", f"{source.hex}.position")]


def test_the_audit_finds_a_cached_balance_that_disagrees_at_the_same_position(
    ledger, cached, redis_server
):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 10))
    cached.projector.catch_up()
    raw(redis_server).hset(cache_key(destination.hex), "b", 11)
    report = cached.queries.audit_replay()
    assert [(m.model, m.key, m.expected, m.actual) for m in report.mismatches] == [
        ("redis_cache", destination.hex, "balance 0.0000001, held 0",
         "balance 0.00000011, held 0")]


def test_a_projector_killed_between_its_sql_commit_and_redis_leaves_nothing_stale_after_restart(
    ledger, store, cached, redis_server
):
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 100))
    cached.projector.catch_up()
    assert entry(redis_server, destination)["b"] == "100"
    # The process dies after the page's SQL commit, before its write-through:
    cached.cache.write_through = lambda *args, **kwargs: None
    late = ledger.execute(c.TransferFunds(uuid4(), source, destination, 50))
    cached.projector.catch_up()
    assert entry(redis_server, destination)["b"] == "100"  # stale, as the kill left it
    cached.projector.lock.release()  # the dead process's lock goes with it
    restarted = ReadSide(ledger.app, store.env, redis_url=redis_server.url, clock=ledger.clock)
    try:
        restarted.projector.catch_up()  # nothing new in the log: the start alone resyncs
        assert entry(redis_server, destination)["b"] == "150"
        assert int(entry(redis_server, destination)["p"]) == late.position - 1  # its credit
        assert restarted.queries.balance(destination).balance == 150
    finally:
        restarted.close()


@pytest.fixture
def recreated(request, store, tmp_path):
    """A ledger created afresh where ``store``'s was (a schema re-created, a
    data directory replaced), kept apart so both can be compared."""
    from tests.support.ledgers import LedgerHarness
    from tests.support.stores import postgres_store, sqlite_store

    if store.kind == "sqlite":
        again = sqlite_store(tmp_path / "recreated")
        cleanup = lambda: None  # noqa: E731
    else:
        database = request.getfixturevalue("postgres_database")
        schema = database.new_schema()
        again = postgres_store(tmp_path / "recreated", database.url, schema)
        cleanup = lambda: database.drop_schema(schema)  # noqa: E731
    ledger = LedgerHarness(again.env)
    yield ledger, again
    ledger.close()
    cleanup()


def test_a_recreated_ledger_never_reads_the_old_ledgers_entries(
    ledger, cached, recreated, redis_server
):
    from domain.system import TREASURY_ID

    payer = ledger.open_account(10**10)
    for _ in range(30):  # the old ledger's treasury entry stands at a high position
        ledger.execute(c.ChargeFee(uuid4(), payer, "search"))
    cached.projector.catch_up()
    old = cached.queries.balance(TREASURY_ID)
    new_ledger, new_store = recreated
    plain = ReadSide(new_ledger.app, new_store.env)  # its read models, projected without Redis
    plain.projector.catch_up()
    plain.close()
    side = ReadSide(new_ledger.app, new_store.env, redis_url=redis_server.url,
                    clock=new_ledger.clock, wait_s_max=5)
    try:
        assert int(entry(redis_server, TREASURY_ID)["p"]) > new_ledger.app.event_log.head()
        fresh = side.queries.balance(TREASURY_ID)  # before its projector bound anything
        side.projector.catch_up()
        assert fresh.balance == new_ledger.balance(TREASURY_ID) != old.balance
        assert side.queries.balance(TREASURY_ID).balance == fresh.balance
        new_payer = new_ledger.open_account(10**9)
        new_ledger.execute(c.ChargeFee(uuid4(), new_payer, "search"))
        side.projector.catch_up()  # its writes are not refused by the old, higher position
        expected = new_ledger.balance(TREASURY_ID)
        assert int(entry(redis_server, TREASURY_ID)["b"]) == expected
        assert side.queries.balance(TREASURY_ID).balance == expected
        assert side.queries.audit_replay().mismatches == []
    finally:
        side.close()


def test_a_cache_that_knows_positions_the_read_models_do_not_is_bound_anew(
    ledger, store, cached, redis_server
):
    """As after restoring a backup of the same ledger: Redis has seen a
    later timeline. A starting projector draws a new incarnation, so no
    entry of that timeline is ever read."""
    source, destination = funded_pair(ledger)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 10))
    cached.projector.catch_up()
    before = incarnation(redis_server)
    raw(redis_server).hset(meta_key(), "w", 10**9)  # the later timeline's knowledge
    raw(redis_server).hset(cache_key(destination.hex), mapping={"p": 5, "b": 999_999})
    cached.projector.lock.release()
    restarted = ReadSide(ledger.app, store.env, redis_url=redis_server.url, clock=ledger.clock)
    try:
        restarted.projector.catch_up()
        assert incarnation(redis_server) != before
        assert restarted.queries.balance(destination).balance == 10
        assert entry(redis_server, destination)["b"] == "10"
    finally:
        restarted.close()


def test_entries_of_the_earlier_format_are_misses_and_are_overwritten(ledger, cached,
                                                                       redis_server):
    source, destination = funded_pair(ledger)
    cached.projector.catch_up()
    raw(redis_server).delete(cache_key(destination.hex))
    raw(redis_server).hset(cache_key(destination.hex),  # as the earlier version wrote it
                           mapping={"p": 10**6, "b": 12_345, "h": 0, "x": ""})
    misses = count(metrics.CACHE_MISSES)
    assert cached.queries.balance(destination).balance == 0
    assert count(metrics.CACHE_MISSES) == misses + 1
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 4))
    cached.projector.catch_up()
    assert entry(redis_server, destination)["b"] == "4"
    assert entry(redis_server, destination)["l"] == incarnation(redis_server)


def test_a_page_is_one_pooled_connection_a_side_and_one_read_model_transaction(
    ledger, cached, redis_server, store, monkeypatch
):
    """On PostgreSQL a page's log questions (read, seals, head) share one
    pooled connection, and its load, write and cache entries one
    transaction on another: each connection taken is a pre-ping, each
    transaction a BEGIN and its end. The entries read inside the write
    are what Redis gets once it committed."""
    if store.kind == "sqlite":
        pytest.skip("SQLite's log and read models take no pooled connections")
    source, destination = funded_pair(ledger)
    cached.projector.catch_up()
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 250))
    taken = {"log": 0, "read models": 0}

    def counting(side: str, datastore):
        take = datastore.get_connection

        def get_connection():
            taken[side] += 1
            return take()
        monkeypatch.setattr(datastore, "get_connection", get_connection)

    counting("log", cached.log._datastore)
    counting("read models", cached.store.datastore)
    report = cached.projector.run_once()
    assert report.events > 0 and report.behind == 0
    assert taken == {"log": 1, "read models": 1}
    assert entry(redis_server, destination)["b"] == "250"
    assert entry(redis_server, source)["b"] == "750"
