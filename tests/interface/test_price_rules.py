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


def test_a_deactivated_rule_gives_way_to_the_rule_before_it(api, admin):
    """An admin withdraws a rule: the price falls back to the rule set before
    it (then to the default), the listing says who withdrew it, a repeat
    writes nothing, and a replay of the log finds the same read models."""
    soon = datetime.now(UTC) - timedelta(minutes=1)
    base = admin.put("/v1/pricing/search", json={"token_cost": "0.3"}).json()["position"]
    window = {"valid_from": soon.isoformat(), "valid_to": (soon + timedelta(days=1)).isoformat()}
    promo = admin.put("/v1/pricing/search", json={"token_cost": "0.05", **window}).json()
    assert _rules(admin, "search")["token_cost"] == "0.05"

    path = f"/v1/pricing/search/rules/{promo['position']}/deactivate"
    done = admin.post(path, headers={"X-Request-ID": "withdraw-promo"})
    assert done.status_code == 200, done.text
    assert "Idempotent-Replayed" not in done.headers
    answer = done.json()
    assert (answer["rule_position"], answer["is_active"]) == (promo["position"], False)
    assert answer["position"] > promo["position"]
    body = _rules(admin, "search")
    assert body["token_cost"] == "0.3"
    withdrawn = body["rules"][-1]
    assert (withdrawn["is_active"], withdrawn["deactivated_by"],
            withdrawn["deactivation_request_id"]) == (False, "admin", "withdraw-promo")
    assert withdrawn["deactivated_at"] is not None
    assert body["rules"][0]["is_active"] and body["rules"][0]["deactivated_at"] is None

    again = admin.post(path)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["rule_position"] == promo["position"]
    assert admin.post(f"/v1/pricing/search/rules/{base}/deactivate").status_code == 200
    assert _rules(admin, "search")["token_cost"] == "0.1"  # the default

    replay = admin.post("/v1/audit/replay", json={})
    assert replay.status_code == 200, replay.text
    assert replay.json()["mismatches"] == [], replay.text


def test_deactivating_what_no_rule_of_that_service_set_is_not_found(api, admin):
    goal = admin.put("/v1/pricing/goal", json={"token_cost": "2"}).json()["position"]
    assert_error(admin.post(f"/v1/pricing/search/rules/{goal}/deactivate"), 404,
                 "price_rule_not_found")
    assert_error(admin.post("/v1/pricing/goal/rules/1/deactivate"), 404, "price_rule_not_found")
    assert_error(admin.post(f"/v1/pricing/goal/rules/{goal + 10**6}/deactivate"), 404,
                 "price_rule_not_found")
    assert_error(admin.post("/v1/pricing/goal/rules/0/deactivate"), 422, "invalid_request")
    assert_error(admin.post("/v1/pricing/teleport/rules/1/deactivate"), 422,
                 "unknown_service_type")
    assert _rules(admin, "goal")["rules"][-1]["is_active"] is True
