"""Prometheus series registered once per process, whichever module asks.

Names are registered in the default registry (which ``GET /metrics``
exposes); ``metric`` returns the collector already registered under a name
instead of failing, so two modules that define the same series (or a
re-import in tests) do not break start-up. Every wing defines its series
through here. No label names an account or a transfer.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, Counter


def metric(cls: type, name: str, documentation: str, *, labels: tuple[str, ...] = (),
           **kwargs: Any) -> Any:
    """The collector named ``name``: the registered one, else a new ``cls``."""
    existing = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001 - no public lookup
    if existing is None and cls is Counter:
        existing = REGISTRY._names_to_collectors.get(f"{name}_total")  # noqa: SLF001
    if existing is not None:
        return existing
    return cls(name, documentation, labels, **kwargs)
