"""Every metric the service exposes is named ``deals_ledger_*`` (issue 15),
but for the seed's names, kept so dashboards built on them go on working,
and prometheus-client's own process and Python metrics."""

from __future__ import annotations

import importlib
import pkgutil

from prometheus_client.parser import text_string_to_metric_families

SEED_NAMES = frozenset({
    "token_transactions", "token_transaction_duration_seconds", "token_balances",
    "ledger_events_appended", "circulating_supply_deal", "holds_outstanding",
    "holds_outstanding_deal", "balance_cache_hits", "balance_cache_misses",
    "balance_cache_errors", "balance_cache_bypassed", "projection_events",
    "projection_errors", "projection_lag_events", "projection_lag_seconds",
    "projection_page_commit_seconds", "read_model_invariant_violations",
    "settlement_submissions", "settlement_movements_settled", "settlement_movements_failed",
    "settlement_compensations_blocked", "settlement_chain_retries", "settlement_backlog",
    "settlement_settler_active", "reconciliation_mismatches",
    "reconciliation_unmatched_signatures", "reconciliation_checked_accounts",
    "reconciliation_findings", "reconciliation_last_finished_timestamp_seconds",
    "alerts", "alerts_suppressed", "alert_webhook_attempts", "alert_webhook_deliveries",
    "suspicious_activity", "suspicious_activity_observations_dropped",
})
"""The names the ledger had before issue 15 (docs/operations.md lists them)."""
LIBRARY_PREFIXES = ("process_", "python_")


def _import_every_module() -> None:
    """Metrics register when their module is imported: import them all, so
    one registered by a module this server did not load is checked too."""
    for package in ("application", "projections", "interface"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)


def test_every_metric_is_prefixed_but_the_seeds(api):
    _import_every_module()
    with api.client() as client:
        text = client.get("/metrics").text
    # an unlabelled counter's _created sample parses as a family of its own
    names = {family.name.removesuffix("_created")
             for family in text_string_to_metric_families(text)}
    assert "deals_ledger_http_requests" in names and "token_transactions" in names
    unprefixed = {name for name in names - SEED_NAMES
                  if not name.startswith(("deals_ledger_", *LIBRARY_PREFIXES))}
    assert not unprefixed, f"new metric names take the deals_ledger_ prefix: {sorted(unprefixed)}"
