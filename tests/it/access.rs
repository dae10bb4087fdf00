use licentia::domain::Role;
use serde_json::json;

use crate::harness::{order, TestApp};

#[test]
fn roles_decide_who_may_do_what_and_refusals_change_nothing() {
    let app = TestApp::start();
    let sales = app.add_user("sam", Role::Sales);
    let support = app.add_user("sue", Role::Support);
    let erp = app.add_user("sap", Role::Erp);

    let (s, v) = app.call(
        "POST",
        "/api/v1/orders",
        None,
        Some(order("R1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (s, _) = app.call(
        "POST",
        "/api/v1/orders",
        Some(("admin", "wrong-password-xx")),
        Some(order("R1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 401);
    let (s, _) = app.call(
        "GET",
        "/api/v1/items",
        Some(("nobody", "whatever-password")),
        None,
    );
    assert_eq!(s, 401);

    let (s, v) = app.call(
        "POST",
        "/api/v1/orders",
        Some(("sue", &support)),
        Some(order("R1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(app.count("orders"), 0);
    let (s, _) = app.call(
        "POST",
        "/api/v1/orders",
        Some(("sap", &erp)),
        Some(order("R1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201);
    let (s, _) = app.call(
        "POST",
        "/api/v1/orders",
        Some(("sam", &sales)),
        Some(order("R2", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201);

    let item = json!({"item_id": "NEW-1", "name": "New", "product_code": 77});
    for (u, p) in [("sam", &sales), ("sap", &erp), ("sue", &support)] {
        let (s, _) = app.call("POST", "/api/v1/items", Some((u, p)), Some(item.clone()));
        assert_eq!(s, 403, "{u}");
        let (s, _) = app.call(
            "PUT",
            "/api/v1/settings",
            Some((u, p)),
            Some(json!({"self_service_count": 3})),
        );
        assert_eq!(s, 403, "{u}");
        let (s, _) = app.call("GET", "/api/v1/users", Some((u, p)), None);
        assert_eq!(s, 403, "{u}");
    }
    let (s, _) = app.call("GET", "/api/v1/settings", Some(("sue", &support)), None);
    assert_eq!(s, 200);
    assert_eq!(app.count("items"), 6);

    // A disabled user is refused at once, even with a cached password.
    let (s, _) = app.admin("PATCH", "/api/v1/users/sam", Some(json!({"active": false})));
    assert_eq!(s, 200);
    let (s, _) = app.call("GET", "/api/v1/items", Some(("sam", &sales)), None);
    assert_eq!(s, 401);

    let (s, v) = app.admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "x", "password": "short", "role": "sales"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    let (s, v) = app.admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "sue", "password": "long-enough-pass", "role": "sales"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );
    let (s, _) = app.admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "z", "password": "long-enough-pass", "role": "king"})),
    );
    assert_eq!(s, 400);
}

#[test]
fn settings_are_typed_and_kept() {
    let app = TestApp::start();
    let (s, v) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(
        (s, v["reactivation_behaviour"].as_str()),
        (200, Some("blacklist"))
    );
    let (s, v) = app.admin("PUT", "/api/v1/settings", Some(json!({"reactivation_behaviour": "withdraw", "blocking_period_days": 30, "monthly_activation_quota": 1000})));
    assert_eq!(s, 200, "{v}");
    let (_, v) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(
        (
            v["reactivation_behaviour"].as_str(),
            v["blocking_period_days"].as_i64()
        ),
        (Some("withdraw"), Some(30))
    );
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"reactivation_behavior": "none"})),
    );
    assert_eq!(s, 400);
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"reactivation_behaviour": "explode"})),
    );
    assert_eq!(s, 400);
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"blocking_period_days": 99999})),
    );
    assert_eq!(s, 400);
    let (_, v) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(v["reactivation_behaviour"].as_str(), Some("withdraw"));
}

/// The erp role may blacklist only where the settings allow it (a refunded order locks its
/// dongle); admin and support always may.
#[test]
fn erp_users_blacklist_only_when_the_settings_allow_it() {
    let app = TestApp::start();
    let erp = app.add_user("erpy", Role::Erp);
    let add = |serial: &str| {
        app.call(
            "POST",
            "/api/v1/blacklist",
            Some(("erpy", &erp)),
            Some(json!({"serial": serial, "description": "order refunded"})),
        )
    };
    let (s, v) = add("130-1234567890");
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("erp_may_blacklist"),
        "{v}"
    );
    assert_eq!(app.count("blacklist"), 0);
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"erp_may_blacklist": true})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = add("130-1234567890");
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        app.count("blacklist WHERE placed_by = 'erpy' AND description = 'order refunded'"),
        1
    );
    // Taking it off stays with the admin.
    let (s, _) = app.call(
        "POST",
        "/api/v1/blacklist/130-1234567890/remove",
        Some(("erpy", &erp)),
        Some(json!({"reason": "paid after all"})),
    );
    assert_eq!(s, 403);
}
