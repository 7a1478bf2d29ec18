"""The read-model store: processes starting together create its tables
without tripping over each other."""

from __future__ import annotations

import threading

from projections.read_model_store import open_store


def test_stores_opened_at_the_same_moment_all_come_up(store):
    errors: list[str] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            open_store(store.env).close()
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    opened = open_store(store.env)
    try:
        assert opened.position() == 0
    finally:
        opened.close()
