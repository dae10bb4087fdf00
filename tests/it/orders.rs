use serde_json::json;

use crate::harness::{order, TestApp};

#[test]
fn an_order_becomes_a_ticket_with_one_license_per_unit() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order(
            "4711",
            "C-100",
            &[("SNP-SINGLE", 3), ("SNP-FLOAT-5", 1)],
        )),
    );
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    assert_eq!(ticket.len(), 29);
    assert_eq!(ticket.split('-').count(), 5);
    assert_eq!(v["lines"][0]["licenses"].as_array().unwrap().len(), 3);
    assert_eq!(v["lines"][1]["licenses"].as_array().unwrap().len(), 1);

    // Any case, with or without dashes.
    let (s, t) = app.admin(
        "GET",
        &format!("/api/v1/tickets/{}", ticket.replace('-', "").to_lowercase()),
        None,
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["ticket"], ticket);
    assert_eq!(t["customer_id"], "C-100");
    let lics = t["licenses"].as_array().unwrap();
    assert_eq!(lics.len(), 4);
    assert!(lics
        .iter()
        .all(|l| l["state"] == "available" && l["generation"] == 1));
    assert_eq!(lics[3]["options"]["license_quantity"], 5);

    let id = lics[0]["license_id"].as_i64().unwrap();
    let (s, l) = app.admin("GET", &format!("/api/v1/licenses/{id}"), None);
    assert_eq!((s, l["ticket"].as_str()), (200, Some(ticket.as_str())));
    let (s, l) = app.admin("GET", "/api/v1/licenses/999999", None);
    assert_eq!(
        (s, l["error"]["code"].as_str()),
        (404, Some("unknown_license"))
    );

    let (s, c) = app.admin("GET", "/api/v1/customers/C-100", None);
    assert_eq!(
        (s, c["email"].as_str(), c["locale"].as_str()),
        (200, Some("buyer@example.com"), Some("de"))
    );

    let (_, m) = app.call("GET", "/metrics", None, None);
    let m = m.as_str().unwrap();
    assert!(m.contains("licentia_orders_created_total 1"), "{m}");
    assert!(m.contains("licentia_licenses_created_total 4"), "{m}");
    assert!(m.contains("route=\"/api/v1/orders\",status=\"201\""), "{m}");
    let cpu: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no process_cpu_seconds_total in {m}"));
    assert!(cpu > 0.0, "{m}");
    // The order was one write in one group transaction, at least (the server writes other
    // things too); the writers' times are reported.
    let value = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {m}"))
    };
    assert!(value("licentia_db_writes_total") >= 1.0, "{m}");
    assert!(value("licentia_db_write_groups_total") >= 1.0, "{m}");
    assert!(value("licentia_db_write_group_seconds_total") > 0.0, "{m}");
    assert!(value("licentia_db_writer_busy_seconds_total") > 0.0, "{m}");
    let writers = if crate::harness::backend() == "sqlite" {
        1.0
    } else {
        2.0
    };
    assert_eq!(value("licentia_db_writers"), writers, "{m}");
    let (s, h) = app.call("GET", "/health", None, None);
    assert_eq!((s, h["database"].as_str()), (200, Some("ok")));
}

#[test]
fn the_same_order_again_returns_the_first_result_and_changes_nothing() {
    let app = TestApp::start();
    let body = order("A-1", "C-1", &[("SNP-SINGLE", 2)]);
    let (s1, first) = app.admin("POST", "/api/v1/orders", Some(body.clone()));
    let (s2, again) = app.admin("POST", "/api/v1/orders", Some(body));
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["ticket"], again["ticket"]);
    assert_eq!(first["lines"], again["lines"]);
    assert_eq!(again["created"], false);
    assert_eq!(
        (
            app.count("orders"),
            app.count("tickets"),
            app.count("licenses")
        ),
        (1, 1, 2)
    );

    // Same ERP order id, other lines: a conflict, nothing written.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("A-1", "C-1", &[("SNP-SINGLE", 5)])),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("order_conflict"))
    );
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("A-1", "C-2", &[("SNP-SINGLE", 2)])),
    );
    assert_eq!(s, 409);
    assert_eq!(app.count("licenses"), 2);

    // The same ERP order id from another source is another order.
    let mut other = order("A-1", "C-1", &[("SNP-SINGLE", 2)]);
    other["source"] = json!("shop");
    let (s, v) = app.admin("POST", "/api/v1/orders", Some(other));
    assert_eq!(s, 201);
    assert_ne!(v["ticket"], first["ticket"]);
}

#[test]
fn add_to_order_appends_to_the_same_ticket_once() {
    let app = TestApp::start();
    let (_, first) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("B-7", "C-1", &[("SNP-SINGLE", 1)])),
    );
    let add =
        json!({"batch_key": "upgrade-1", "lines": [{"item_id": "SNP-UPD-PRO", "quantity": 1}]});
    let (s, v) = app.admin("POST", "/api/v1/orders/erp/B-7/lines", Some(add.clone()));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ticket"], first["ticket"]);
    assert_eq!(v["lines"].as_array().unwrap().len(), 2);
    let (s, again) = app.admin("POST", "/api/v1/orders/erp/B-7/lines", Some(add));
    assert_eq!((s, again["lines"].as_array().unwrap().len()), (200, 2));
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders/erp/B-7/lines",
        Some(
            json!({"batch_key": "upgrade-1", "lines": [{"item_id": "SNP-SINGLE", "quantity": 4}]}),
        ),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("order_conflict"))
    );
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders/erp/NOPE/lines",
        Some(json!({"lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_order"))
    );
    let (_, t) = app.admin(
        "GET",
        &format!("/api/v1/tickets/{}", first["ticket"].as_str().unwrap()),
        None,
    );
    // The update item made no license: it upgraded the one there (feature bits 1 | 2).
    assert_eq!(t["licenses"].as_array().unwrap().len(), 1);
    assert_eq!(t["licenses"][0]["options"]["feature_map"], 3);
    assert_eq!(app.count("tickets"), 1);
    let (s, o) = app.admin("GET", "/api/v1/orders/erp/B-7", None);
    assert_eq!((s, o["lines"].as_array().unwrap().len()), (200, 2));
}

#[test]
fn thirty_two_concurrent_identical_orders_make_one_order_and_one_ticket() {
    let app = TestApp::start();
    let body = order("RACE-1", "C-9", &[("SNP-SINGLE", 2)]);
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| app.admin("POST", "/api/v1/orders", Some(body.clone()))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let replayed = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, replayed), (1, 31), "{results:?}");
    assert!(results
        .iter()
        .all(|(_, v)| v["ticket"] == results[0].1["ticket"]));
    assert_eq!(
        (
            app.count("orders"),
            app.count("tickets"),
            app.count("licenses")
        ),
        (1, 1, 2)
    );
}

#[test]
fn bad_orders_are_refused_with_a_clear_code_and_write_nothing() {
    let app = TestApp::start();
    let before = (
        app.count("orders"),
        app.count("licenses"),
        app.count("events"),
        app.count("customers"),
    );
    let cases = [
        (order("X1", "C", &[("NO-SUCH-SKU", 1)]), 404, "unknown_item"),
        (order("X2", "C", &[("SNP-SINGLE", 0)]), 400, "invalid_input"),
        (
            order("X3", "C", &[("SNP-SINGLE", -3)]),
            400,
            "invalid_input",
        ),
        (
            order("X4", "C", &[("SNP-SINGLE", 10_000_000)]),
            400,
            "invalid_input",
        ),
        (order("X5", "C", &[]), 400, "invalid_input"),
        (order("X6", "C", &[("LOCK", 1)]), 400, "invalid_input"),
        (
            order(&"Y".repeat(300), "C", &[("SNP-SINGLE", 1)]),
            400,
            "invalid_input",
        ),
        (
            json!({"erp_order_id": "X7", "customer": {"external_id": "C"}, "lines": [{"item_id": "SNP-SINGLE", "quantity": "two"}]}),
            400,
            "malformed_request",
        ),
        (
            json!({"erp_order_id": "X8", "customer": {"external_id": "C", "email": "not-mail"}, "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]}),
            400,
            "invalid_input",
        ),
        (
            json!({"erp_order_id": "X9", "customer": {"external_id": "C"}, "lines": [], "surprise": 1}),
            400,
            "malformed_request",
        ),
    ];
    for (body, status, code) in cases {
        let (s, v) = app.admin("POST", "/api/v1/orders", Some(body.clone()));
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} -> {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Valid and invalid items in one order: never half an order.
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("X10", "C", &[("SNP-SINGLE", 1), ("NOPE", 1)])),
    );
    assert_eq!(s, 404);

    let (s, v) = app.raw_post("/api/v1/orders", "application/json", b"{\"lines\": [");
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("malformed_request"))
    );
    let huge = vec![b' '; 70 * 1024];
    let (s, v) = app.raw_post("/api/v1/orders", "application/json", &huge);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(
        before,
        (
            app.count("orders"),
            app.count("licenses"),
            app.count("events"),
            app.count("customers")
        )
    );

    // Tickets: a typo is caught before any lookup; a valid unknown one is 404.
    let (s, v) = app.admin("GET", "/api/v1/tickets/ABCDE-FGHJK-LMNPQ-RSTUV-WXZ2I", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_ticket"))
    );
    let code = licentia::domain::ticket::TicketCode::generate().to_string();
    let (s, v) = app.admin("GET", &format!("/api/v1/tickets/{code}"), None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_ticket"))
    );
}

/// Each node remembers the history head it appended last and appends after it without
/// reading it first; when the other node appended in between, that must be noticed and the
/// append made after the real head, with no event lost.
#[test]
fn nodes_taking_turns_keep_one_unbroken_history() {
    let app = TestApp::start();
    let node = app.second_node();
    let created = || app.count("events WHERE action = 'order.created'");
    let (before, created_before) = (app.count("events"), created());
    for i in 0..12 {
        let base = if i % 2 == 0 { &app.base } else { &node.base };
        let body = order(&format!("TURN-{i}"), "C-6", &[("SNP-SINGLE", 1)]);
        let (s, v) = app.admin_at(base, "POST", "/api/v1/orders", Some(body));
        assert_eq!(s, 201, "{v}");
    }
    assert_eq!(created() - created_before, 12);
    assert!(app.count("events") >= before + 12);
    let report = app
        .rt
        .block_on(licentia::service::audit::verify_chain(
            &app.core,
            &crate::harness::system(),
        ))
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, app.count("events") as u64);
}

#[test]
fn two_nodes_on_one_database_make_one_order_and_keep_one_history() {
    let app = TestApp::start();
    let node = app.second_node();
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (app, node) = (&app, &node);
                s.spawn(move || {
                    let base = if i % 2 == 0 {
                        app.base.clone()
                    } else {
                        node.base.clone()
                    };
                    // Two distinct orders, each sent 16 times across both nodes.
                    let body = order(&format!("MN-{}", i % 4 / 2), "C-5", &[("SNP-SINGLE", 1)]);
                    app.admin_at(&base, "POST", "/api/v1/orders", Some(body))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 201),
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        2,
        "{results:?}"
    );
    assert_eq!(
        (
            app.count("orders"),
            app.count("tickets"),
            app.count("licenses")
        ),
        (2, 2, 2)
    );
    let report = app
        .rt
        .block_on(licentia::service::audit::verify_chain(
            &app.core,
            &crate::harness::system(),
        ))
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
