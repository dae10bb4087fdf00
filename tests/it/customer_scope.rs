//! Customers are known by their external id within a scope: the vendor's own (`""`: the JSON
//! API, SOAP, the CLI, the portal) or a connector's source. A shop's customer 1001 and the
//! ERP's 1001 stay two customers; the migration that brought scopes moved the customers a
//! connector had made into its scope and kept everyone's ids.
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use licentia::store::Conn;
use serde_json::{json, Value};

use crate::connectors::{send, shipped_with_secrets};
use crate::harness::{order, TestApp, TestDb};

const SQLITE: EmbeddedMigrations = embed_migrations!("diesel-migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("diesel-migrations/postgres");

/// A shop order through the GenericConnector for `customer`.
fn shop_order(app: &TestApp, pw: &str, order_id: &str, customer: &str) -> (u16, String) {
    let url = format!(
        "{}/GenericConnector.php?user=sales&password={pw}&orderid={order_id}\
         &customerid={customer}&item_count=1&item1_id=SNP-SINGLE&item1_quantity=1",
        app.base
    );
    send("GET", &url, None, None)
}

#[test]
fn a_shops_customer_and_the_vendors_with_the_same_id_stay_two() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let pw = app.add_user("sales", licentia::domain::Role::Sales);
    // The vendor's customer 1001, through the JSON API.
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(json!({"external_id": "1001", "name": "ERP Kunde", "email": "erp@example.com"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "");
    // The shop's customer 1001, through the GenericConnector (its source: "generic").
    let (s, body) = shop_order(&app, &pw, "S-1", "1001");
    assert_eq!(s, 200, "{body}");
    let (_, list) = app.admin("GET", "/api/v1/customers", None);
    let named: Vec<(Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["external_id"] == "1001")
        .map(|c| (c["scope"].clone(), c["name"].clone()))
        .collect();
    assert_eq!(named.len(), 2, "{list}");
    assert_eq!(named[0], (json!(""), json!("ERP Kunde")), "{list}");
    let shop_scope = named[1].0.as_str().unwrap().to_string();
    assert!(!shop_scope.is_empty());

    // Each is found in its own scope; the vendor's name was not overwritten by the shop.
    let (s, v) = app.admin("GET", "/api/v1/customers/1001", None);
    assert_eq!((s, v["name"].clone()), (200, json!("ERP Kunde")), "{v}");
    let (s, v) = app.admin(
        "GET",
        &format!("/api/v1/customers/1001?scope={shop_scope}"),
        None,
    );
    assert_eq!((s, v["scope"].clone()), (200, json!(shop_scope)), "{v}");
    let (s, v) = app.admin("GET", "/api/v1/customers/1001?scope=nobody", None);
    assert_eq!(s, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1001 (of nobody)"),
        "{v}"
    );
    let (_, scoped) = app.admin(
        "GET",
        &format!("/api/v1/customers?scope={shop_scope}"),
        None,
    );
    assert_eq!(scoped.as_array().unwrap().len(), 1, "{scoped}");

    // The shop's order belongs to the shop's customer; a JSON order for 1001 to the vendor's.
    let (s, o) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("E-1", "1001", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201, "{o}");
    assert_eq!(
        (o["customer_id"].clone(), o["customer_scope"].clone()),
        (json!("1001"), json!(""))
    );
    let (_, t) = app.admin(
        "GET",
        &format!("/api/v1/tickets/{}", o["ticket"].as_str().unwrap()),
        None,
    );
    assert_eq!(t["customer_scope"], "", "{t}");
    // A JSON caller may name the shop's scope itself (a middleware forwarding shop orders).
    let mut forwarded = order("E-2", "1001", &[("SNP-SINGLE", 1)]);
    forwarded["customer"]["scope"] = json!(shop_scope);
    let (s, o) = app.admin("POST", "/api/v1/orders", Some(forwarded));
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["customer_scope"], json!(shop_scope), "{o}");
    let (_, list) = app.admin("GET", "/api/v1/customers", None);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "no third customer: {list}"
    );

    // An order the vendor's systems placed under the connector's source and number for a
    // customer of the vendor's (as before scopes): the connector's resend finds it.
    let mut before = order("S-9", "1002", &[("SNP-SINGLE", 1)]);
    before["source"] = json!(shop_scope);
    let (s, first) = app.admin("POST", "/api/v1/orders", Some(before));
    assert_eq!(
        (s, first["customer_scope"].clone()),
        (201, json!("")),
        "{first}"
    );
    let (s, body) = shop_order(&app, &pw, "S-9", "1002");
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(first["ticket"].as_str().unwrap()),
        "the same ticket: {body}"
    );

    // Deleting names the scope too: the vendor's 1001 owns an order, the shop's as well.
    let (s, v) = app.admin("DELETE", "/api/v1/customers/1001?scope=nobody", None);
    assert_eq!(s, 404, "{v}");
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(json!({"external_id": "1001",
        "scope": "bad scope "})),
    );
    assert_eq!(s, 400);
}

/// Runs the 18 migrations before the one that brought scopes.
fn migrate_before_scopes(db: &TestDb) -> Conn {
    let mut conn = db.connect();
    for _ in 0..18 {
        match &mut conn {
            Conn::Sqlite(c) => c.run_next_migration(SQLITE).map(|_| ()),
            Conn::Pg(c) => c.run_next_migration(POSTGRES).map(|_| ()),
        }
        .unwrap();
    }
    conn
}

#[test]
fn the_migration_moves_a_connectors_customers_into_its_scope_and_keeps_ids() {
    let db = TestDb::new();
    let mut conn = migrate_before_scopes(&db);
    // A customer a shop made (its only order placed by the connector), one the vendor made
    // (a JSON order), and one both used.
    diesel::sql_query(
        "INSERT INTO customers (id, external_id, name, email, locale, created_at, updated_at) VALUES \
         (7, 'SHOP-7', 'Shop', '', 'en', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
         (8, 'ERP-8', 'Erp', '', 'en', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
         (9, 'BOTH-9', 'Both', '', 'en', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO tickets (id, code, customer_id, state, created_at) VALUES \
         (1, 'AAAAABBBBBCCCCCDDDDDEEEE1', 7, 'active', '2026-01-01 00:00:00'), \
         (2, 'AAAAABBBBBCCCCCDDDDDEEEE2', 8, 'active', '2026-01-01 00:00:00'), \
         (3, 'AAAAABBBBBCCCCCDDDDDEEEE3', 9, 'active', '2026-01-01 00:00:00'), \
         (4, 'AAAAABBBBBCCCCCDDDDDEEEE4', 9, 'active', '2026-01-01 00:00:00')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO orders (source, erp_order_id, customer_id, ticket_id, comment, created_by, \
         created_at) VALUES \
         ('woo', 'W-1', 7, 1, '', 'connector:woo', '2026-01-01 00:00:00'), \
         ('erp', 'E-1', 8, 2, '', 'erp', '2026-01-01 00:00:00'), \
         ('woo', 'W-2', 9, 3, '', 'connector:woo', '2026-01-01 00:00:00'), \
         ('erp', 'E-2', 9, 4, '', 'erp', '2026-01-01 00:00:00')",
    )
    .execute(&mut conn)
    .unwrap();
    // The history says how each order was placed: W-1 and W-2 by the connector.
    diesel::sql_query(
        "INSERT INTO events (at, actor, interface, action, order_id, details, prev_hash, hash) \
         SELECT '2026-01-01 00:00:00', created_by, \
           CASE WHEN source = 'woo' THEN 'connector' ELSE 'json' END, 'order.created', id, '{}', \
           '', '' FROM orders ORDER BY id",
    )
    .execute(&mut conn)
    .unwrap();
    // A customer deleted before the upgrade: its id is not given again.
    diesel::sql_query(
        "INSERT INTO customers (id, external_id, name, email, locale, created_at, updated_at) \
         VALUES (20, 'GONE', '', '', 'en', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("DELETE FROM customers WHERE id = 20")
        .execute(&mut conn)
        .unwrap();
    if let Conn::Pg(_) = conn {
        // As if the rows had been made one by one: the sequence went past them.
        diesel::sql_query("SELECT setval('customers_id_seq', 20)")
            .execute(&mut conn)
            .unwrap();
    }
    licentia::store::run_migrations(&mut conn).unwrap();

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        external_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        scope: String,
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT id, external_id, scope FROM customers ORDER BY id")
            .load(&mut conn)
            .unwrap();
    let got: Vec<(i64, &str, &str)> = rows
        .iter()
        .map(|r| (r.id, r.external_id.as_str(), r.scope.as_str()))
        .collect();
    assert_eq!(
        got,
        [(7, "SHOP-7", "woo"), (8, "ERP-8", ""), (9, "BOTH-9", "")],
        "the shop's customer moves to its source's scope; the others stay the vendor's"
    );
    // The tickets still name their customers, and the same id may now live in two scopes.
    let n: Vec<Row> = diesel::sql_query(
        "SELECT t.id AS id, c.external_id AS external_id, c.scope AS scope FROM tickets t \
         JOIN customers c ON c.id = t.customer_id ORDER BY t.id",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(n.len(), 4);
    diesel::sql_query(
        "INSERT INTO customers (external_id, name, email, locale, created_at, updated_at, scope) \
         VALUES ('SHOP-7', 'Vendor', '', 'en', '2026-01-02 00:00:00', '2026-01-02 00:00:00', '')",
    )
    .execute(&mut conn)
    .unwrap();
    let newest: Vec<Row> = diesel::sql_query(
        "SELECT id, external_id, scope FROM customers WHERE external_id = 'SHOP-7' AND scope = ''",
    )
    .load(&mut conn)
    .unwrap();
    assert!(
        newest[0].id > 20,
        "a new customer's id goes on after the deleted one's: {newest:?}"
    );
    let twice = diesel::sql_query(
        "INSERT INTO customers (external_id, name, email, locale, created_at, updated_at, scope) \
         VALUES ('SHOP-7', 'Again', '', 'en', '2026-01-02 00:00:00', '2026-01-02 00:00:00', 'woo')",
    )
    .execute(&mut conn);
    assert!(twice.is_err(), "one SHOP-7 per scope");
    drop(conn);
    // The server starts on it.
    let app = TestApp::start_on(db, |_| {});
    let (s, v) = app.admin("GET", "/api/v1/customers/SHOP-7?scope=woo", None);
    assert_eq!((s, v["name"].clone()), (200, json!("Shop")), "{v}");
}
