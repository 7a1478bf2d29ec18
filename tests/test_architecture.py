"""The layer rule of DESIGN.md, read from the code's own imports.

Imports point inward: interface -> application / projections -> domain;
benchmarks stand outside the product and the product never imports them;
the domain does no I/O. One exception, the smallest the log's one reader
needs: projections import ``application.eventlog``, the application's
published log, and nothing else of application. A failure names the module
and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("domain", "application", "projections", "interface")
FORBIDDEN = {
    "domain": ("application", "projections", "interface", "benchmarks", "psycopg", "redis",
               "fastapi", "sqlite3", "httpx", "solana", "uvicorn", "socket", "requests"),
    "application": ("projections", "interface", "benchmarks", "fastapi", "uvicorn"),
    "projections": ("application", "interface", "benchmarks", "fastapi", "uvicorn"),
    "interface": ("benchmarks",),
}
PUBLISHED = {"projections": "application.eventlog"}
"""What a layer may import of one it otherwise may not (see the docstring)."""


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", PRODUCT)
def test_imports_point_inward(layer: str) -> None:
    wrong = wrong_imports((REPO / layer).rglob("*.py"), FORBIDDEN[layer], layer)
    assert not wrong, "\n".join(wrong)


def test_the_published_log_stands_alone() -> None:
    """So that projections importing it import nothing else of application."""
    package = REPO / PUBLISHED["projections"].replace(".", "/")
    assert list(package.rglob("*.py")), "the published log moved: update PUBLISHED"
    wrong = wrong_imports(package.rglob("*.py"), ("application", "projections", "interface"),
                          "projections")
    assert not wrong, "\n".join(wrong)


def wrong_imports(paths: Iterable[Path], roots: tuple[str, ...], layer: str) -> list[str]:
    """Imports of ``paths`` into ``roots``, but what ``layer`` may import of them."""
    return [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted(paths)
        for name in imported_modules(path)
        if name.split(".")[0] in roots and not published(layer, name)
    ]


def published(layer: str, name: str) -> bool:
    allowed = PUBLISHED.get(layer)
    return allowed is not None and (name == allowed or name.startswith(allowed + "."))


# Inside application/: the root modules every wing speaks (commands, outcomes,
# errors, ...) import no wing; a wing imports the root, its own modules and
# the wings below it. handlers/ decide commands; write/ runs them; the
# settlement and ops wings send commands through write/.
APPLICATION_WING_RANK = {"eventlog": 1, "handlers": 1, "write": 2, "settlement": 3, "ops": 3}


def application_wing(module: str) -> str:
    """The wing of an application module, '' for the root modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in APPLICATION_WING_RANK else ""


def test_application_wings_import_only_the_root_and_the_wings_below() -> None:
    wrong = []
    for path in sorted((REPO / "application").rglob("*.py")):
        wing = application_wing(".".join(path.relative_to(REPO).with_suffix("").parts))
        rank = APPLICATION_WING_RANK.get(wing, 0)
        for name in imported_modules(path):
            if name.split(".")[0] != "application":
                continue
            target = application_wing(name)
            if target in ("", wing) or APPLICATION_WING_RANK[target] < rank:
                continue
            wrong.append(f"{path.relative_to(REPO)} ({wing or 'root'}) imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_client_stands_alone() -> None:
    """A calling service installs interface.client for httpx and tenacity
    alone: it imports nothing else of the product (not even to share the
    error table; tests/interface/client/test_errors.py keeps them equal)."""
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / "interface" / "client").rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in PRODUCT and not name.startswith("interface.client")
    ]
    assert not wrong, "\n".join(wrong)


# A module name repeats only where one resource has a module per layer (its
# domain rules, its command handlers, its HTTP router and schemas: the same
# thing seen from each), and for the refusals and the amounts of the client,
# which stands alone and so cannot import the domain's. Any other repeat has a
# newcomer open the wrong file (two store.py and two progress.py were renamed).
REPEATED_BY_DESIGN = {
    "accounts", "events", "holds", "movements", "pricing", "proofs", "reconciliations",
    "system", "wallets", "withdrawals",  # a resource per layer
    "errors",  # each layer's refusals, and the client's
    "amounts",  # text to money: the domain's, and the client's
}


def test_module_names_are_distinct_but_by_design() -> None:
    by_name: dict[str, list[str]] = {}
    for layer in PRODUCT:
        for path in sorted((REPO / layer).rglob("*.py")):
            if path.stem not in ("__init__", "__main__"):
                by_name.setdefault(path.stem, []).append(str(path.relative_to(REPO)))
    repeated = {name: paths for name, paths in by_name.items()
                if len(paths) > 1 and name not in REPEATED_BY_DESIGN}
    assert not repeated, f"module names used twice (rename one, or say why in REPEATED_BY_DESIGN): {repeated}"
    unused = sorted(name for name in REPEATED_BY_DESIGN if len(by_name.get(name, [])) < 2)
    assert not unused, f"REPEATED_BY_DESIGN names no longer repeated: {unused}"
