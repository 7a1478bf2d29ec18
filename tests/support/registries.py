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
