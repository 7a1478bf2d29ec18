"""Which function a fold applies to a stored event.

(Named a fold table, not "handlers": in this house a handler decides a
command, ``application.handlers``.)

A stored event names its class by topic text (``domain.transfer:Transfer.Recorded``)
and that text is a contract: a class that is renamed or moved keeps its old
topic through the library's topic aliases (``eventsourcing.utils.register_topic``).
So a fold must not look its handlers up by today's topic text, or a renamed
event would be skipped without a word. ``FoldTable`` keeps a fold's functions by
class and finds the class of a stored topic through the library's own
resolution, aliases included.

A fold declares, for every event class, that it handles it or that it
deliberately shows nothing of it (``NOT_SHOWN``); a stored topic that is
neither, or that no class answers to (written by a newer version, or
damaged), stops the fold with ``UnknownEvent``: skipping it would build on
a log the fold does not understand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from eventsourcing.utils import TopicError, resolve_topic

H = TypeVar("H")
TOPICS_CACHED_MAX = 10_000


class UnknownEvent(Exception):
    """A stored event this consumer neither handles nor deliberately leaves
    out; its position is named by the caller."""


class FoldTable(Generic[H]):
    """Handlers of one consumer, by event class."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.handled: dict[type, H] = {}
        self.not_shown: frozenset[type] = frozenset()
        self._by_topic: dict[str, H | None] = {}

    def add(self, event_class: type, handler: H) -> None:
        self.handled[event_class] = handler
        self._by_topic.clear()

    def leave_out(self, event_classes: Iterable[type]) -> None:
        self.not_shown = frozenset(event_classes)
        self._by_topic.clear()

    def for_topic(self, topic: str) -> H | None:
        """The handler of a stored event, None for one deliberately left out."""
        try:
            return self._by_topic[topic]
        except KeyError:
            handler = self._resolve(topic)
        if len(self._by_topic) < TOPICS_CACHED_MAX:
            self._by_topic[topic] = handler
        return handler

    def _resolve(self, topic: str) -> H | None:
        try:
            event_class = resolve_topic(topic)
        except TopicError:
            raise UnknownEvent(f"{self.consumer}: no event class answers to topic {topic!r}") from None
        if event_class in self.handled:
            return self.handled[event_class]
        if event_class in self.not_shown:
            return None
        raise UnknownEvent(
            f"{self.consumer}: {event_class.__qualname__} is neither handled nor left out"
        )
