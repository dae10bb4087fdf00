use serde_json::json;

use crate::harness::TestApp;

#[test]
fn items_carry_their_options_and_changes_are_versioned() {
    let app = TestApp::start();
    let item = json!({"item_id": "CAD-PRO", "name": "CAD Pro", "product_code": 2001,
        "options": {"license_quantity": 10, "feature_map": 7, "usage_period_days": 90, "container_types": ["dongle"], "text": "CAD"}});
    let (s, v) = app.admin("POST", "/api/v1/items", Some(item.clone()));
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (
            v["options"]["feature_map"].as_i64(),
            v["kind"].as_str(),
            v["version"].as_i64()
        ),
        (Some(7), Some("license"), Some(1))
    );
    let (s, v) = app.admin("POST", "/api/v1/items", Some(item));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );

    for bad in [
        json!({"item_id": "B1", "name": "B", "product_code": -1}),
        json!({"item_id": "B2", "name": "B", "product_code": 1, "options": {"container_types": []}}),
        json!({"item_id": "B3", "name": "B", "product_code": 1, "options": {"usage_period_days": 0}}),
        json!({"item_id": "B4", "name": "", "product_code": 1}),
        json!({"item_id": "B5", "name": "B", "product_code": 1, "options": {"colour": "red"}}),
        json!({"item_id": "B6", "name": "B", "product_code": 1, "kind": "gift"}),
    ] {
        let (s, v) = app.admin("POST", "/api/v1/items", Some(bad.clone()));
        assert_eq!(s, 400, "{bad} -> {v}");
    }
    assert_eq!(app.count("items"), 7);

    let (s, v) = app.admin(
        "PATCH",
        "/api/v1/items/CAD-PRO",
        Some(json!({"version": 1, "name": "CAD Pro 2"})),
    );
    assert_eq!((s, v["version"].as_i64()), (200, Some(2)));
    let (s, v) = app.admin(
        "PATCH",
        "/api/v1/items/CAD-PRO",
        Some(json!({"version": 1, "name": "stale"})),
    );
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("conflict")));
    let (s, v) = app.admin("GET", "/api/v1/items/CAD-PRO", None);
    assert_eq!((s, v["name"].as_str()), (200, Some("CAD Pro 2")));
    let (s, v) = app.admin("GET", "/api/v1/items/NOPE", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_item"))
    );

    // An item withdrawn from sale cannot be ordered.
    app.admin(
        "PATCH",
        "/api/v1/items/CAD-PRO",
        Some(json!({"version": 2, "active": false})),
    );
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order("O1", "C", &[("CAD-PRO", 1)])),
    );
    assert_eq!(s, 400);
}

#[test]
fn ids_and_names_that_only_look_alike_are_refused_and_change_nothing() {
    let app = TestApp::start();
    let items = app.count("items");
    // Each refused with the field and the character named.
    for (bad, field, says) in [
        (
            json!({"item_id": "SNP\u{202E}TXT", "name": "Spoof", "product_code": 9001}),
            "item_id",
            "U+202E",
        ),
        (
            json!({"item_id": "SNP\u{200B}SINGLE", "name": "Twin", "product_code": 9002}),
            "item_id",
            "U+200B",
        ),
        (
            json!({"item_id": "CAFE\u{301}", "name": "Café", "product_code": 9003}),
            "item_id",
            "normal form C",
        ),
        (
            json!({"item_id": "INV-1", "name": "Invoice \u{202E}fdp.exe", "product_code": 9004}),
            "name",
            "U+202E",
        ),
        (
            json!({"item_id": "TRIAL-LOCK", "name": "Lock", "kind": "lock", "product_code": 9005,
                "options": {"trial": true}}),
            "options.trial",
            "only license items can be trials",
        ),
    ] {
        let (s, v) = app.admin("POST", "/api/v1/items", Some(bad.clone()));
        assert_eq!(s, 400, "{bad} -> {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field) && msg.contains(says), "{bad} -> {msg}");
    }
    assert_eq!(app.count("items"), items);

    // An order naming a customer or order id that only looks like another's.
    for (customer, erp) in [("C-1\u{2060}", "E-1"), ("C-1", "E\u{301}-1")] {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(
                json!({"erp_order_id": erp, "customer": {"external_id": customer},
                "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]}),
            ),
        );
        assert_eq!(s, 400, "{customer} {erp} -> {v}");
    }
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(json!({"erp_order_id": "E-2", "customer": {"external_id": "C-2",
            "name": "ACME \u{2067}Ltd\u{2069}"}, "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("customer.name"));
    assert_eq!(app.count("orders"), 0);
    assert_eq!(app.count("customers"), 0);
    // Composed accents and other scripts are ordinary ids.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(json!({"item_id": "CAFÉ-日本", "name": "Café ☕ Größe", "product_code": 9010})),
    );
    assert_eq!(s, 201, "{v}");
}

#[test]
fn the_setting_to_accept_external_entries_is_gone_and_its_migration_drops_it() {
    use diesel::RunQueryDsl;
    let app = TestApp::start();
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"accept_externally_created_entries": true})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"self_service_count": 3})),
    );
    assert_eq!(s, 200, "{v}");

    // A body stored by an earlier version, with the key, is read again after the migration.
    let backend = crate::harness::backend();
    let mut c = app.db.connect();
    let (old_body, up) = if backend == "postgres" {
        (
            "UPDATE settings SET body = jsonb_set(body::jsonb, \
             '{accept_externally_created_entries}', 'true')::text",
            include_str!(
                "../../diesel-migrations/postgres/2026-12-03-000011_no_external_entries/up.sql"
            ),
        )
    } else {
        (
            "UPDATE settings SET body = json_set(body, '$.accept_externally_created_entries', \
             json('true'))",
            include_str!(
                "../../diesel-migrations/sqlite/2026-12-03-000011_no_external_entries/up.sql"
            ),
        )
    };
    diesel::sql_query(old_body).execute(&mut c).unwrap();
    let (s, _) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(s, 500, "the old body no longer reads");
    let statement: String = up
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    diesel::sql_query(statement).execute(&mut c).unwrap();
    let (s, v) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["self_service_count"], 3);
    assert!(v.get("accept_externally_created_entries").is_none(), "{v}");
}
