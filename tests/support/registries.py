"""What the registry tests walk: every module of the layers, and every
subclass of a base wherever it is defined.

A registry (the handler table, the status table, a fold's event list) is
only as complete as the classes it names; these helpers find the classes it
should name, so a test can fail on the one that was forgotten.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

LAYERS = ("domain", "application", "projections", "interface")


def import_every_module(packages: tuple[str, ...] = LAYERS) -> list[str]:
    """Import every module under ``packages`` (a subclass defined in a
    module nobody imported yet would be missed); returns their names.
    ``__main__`` modules run a program when imported, so they are skipped."""
    names = []
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            importlib.import_module(info.name)
            names.append(info.name)
    return names


def subclasses(base: type) -> Iterator[type]:
    """Every subclass of ``base``, at any depth, each once, abstract ones
    (``abc``) left out."""
    seen: set[type] = set()
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if not inspect.isabstract(cls):
            yield cls


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def stored_event_classes() -> list[type]:
    """Every event class an aggregate of domain/ can store, nested ones too
    (``Account.Debited``). Left out: bases other events of the aggregate
    derive from (``Account.Posted``, the library's ``Event``), which the
    log never holds under their own topic, and the library's generated
    ``Created`` of an aggregate that declares its own created event."""
    from eventsourcing.domain import Aggregate

    import_every_module(("domain",))
    stored = []
    for aggregate in subclasses(Aggregate):
        if not aggregate.__module__.startswith("domain."):
            continue
        events = _event_classes_of(aggregate)
        bases = {base for event in events for base in event.__mro__[1:]}
        own_created = any(issubclass(e, Aggregate.Created) and e is not aggregate.Created
                          for e in events)
        stored += [event for event in events if event not in bases
                   and not (own_created and event is aggregate.Created)]
    return stored


def _event_classes_of(aggregate: type) -> list[type]:
    from eventsourcing.domain import Aggregate

    return [value for value in vars(aggregate).values()
            if isinstance(value, type) and issubclass(value, Aggregate.Event)]


def undeclared_events(handled: list[type], not_shown: frozenset[type]) -> dict[str, list[str]]:
    """What a fold's declarations miss or contradict: stored events it
    neither handles nor lists as not shown, events in both, and handled or
    listed classes the log never holds (a handler that never runs)."""
    stored = set(stored_event_classes())
    return {name: sorted(qualified(cls) for cls in found) for name, found in {
        "neither handled nor listed as not shown": stored - set(handled) - not_shown,
        "both handled and listed as not shown": set(handled) & not_shown,
        "declared but never stored": (set(handled) | not_shown) - stored,
    }.items() if found}
