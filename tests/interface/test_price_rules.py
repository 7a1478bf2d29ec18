"""A service type's price rules over HTTP, on both stores: each rule with
the position that set it and whether it can still decide a price; the
earlier ones stop being active once a price change without an end replaces
them, and one past its valid_to is no longer active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.interface.helpers import assert_error


def _rules(admin, service_type: str) -> dict:
    answer = admin.get(f"/v1/pricing/{service_type}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_service_types_rules_say_which_still_decide_a_price(api, admin):
    soon = datetime.now(UTC) + timedelta(days=1)
    window = {"valid_from": soon.isoformat(), "valid_to": (soon + timedelta(days=1)).isoformat()}
    past = {"valid_from": "2001-01-01T00:00:00Z", "valid_to": "2001-02-01T00:00:00Z"}
    set_first = admin.put("/v1/pricing/analysis", json={"token_cost": "0.7"})
    admin.put("/v1/pricing/analysis", json={"token_cost": "0.9", **window})
    admin.put("/v1/pricing/analysis", json={"token_cost": "0.2", **past})
    body = _rules(admin, "analysis")
    assert body["service_type"] == "analysis" and body["token_cost"] == "0.7"
    assert [(r["token_cost"], r["is_active"]) for r in body["rules"]] == [
        ("0.7", True), ("0.9", True), ("0.2", False)]
    assert body["rules"][0]["position"] == set_first.json()["position"]
    assert body["position"] >= body["rules"][-1]["position"]

    changed = admin.put("/v1/pricing/analysis", json={"token_cost": "0.8"})
    assert changed.status_code == 200, changed.text
    body = _rules(admin, "analysis")
    assert body["token_cost"] == "0.8"
    assert [r["is_active"] for r in body["rules"]] == [False, False, False, True]
    every = admin.get("/v1/pricing").json()["services"]
    assert [s["rules"] for s in every if s["service_type"] == "analysis"] == [body["rules"]]


def test_an_unknown_service_type_has_no_rules(api, admin):
    assert_error(admin.get("/v1/pricing/teleport"), 422, "unknown_service_type")
    assert _rules(admin, "notification")["rules"] == []
