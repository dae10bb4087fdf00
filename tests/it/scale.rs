//! At scale: nothing a user waits for reads a growing table from its start. A database
//! filled by the generator (`licentia demo --licenses N`) is driven through every lookup,
//! list page and license report of the JSON API, the back office and the gateway; every
//! statement the server ran on it is recorded (diesel's instrumentation, for this test's
//! database only) and explained by the database itself, and a plan that reads a growing
//! table whole fails the test, naming the statement.
//!
//! SQLite (no statistics gathered, as in use) picks an index wherever one serves, so a
//! `SCAN` of a growing table is a statement no index serves, or one walking a whole index.
//! PostgreSQL chooses among its indexes by cost, and on a test-sized database walking a
//! small table's primary key is cheapest; so there it explains the generic plan (whatever
//! the parameters) with sequential scans priced out, and a `Seq Scan` left means no index
//! could serve at all. The reports are also read whole through their pages and checked
//! against the rows they must hold.
use std::collections::BTreeSet;
use std::sync::Mutex;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use serde_json::Value;

use crate::harness::{backend, TestApp, TestDb, ADMIN_PW};

/// The test database whose statements are recorded (its tag, which its URL contains).
static WATCHED: Mutex<Option<String>> = Mutex::new(None);
/// Whether its statements are being recorded now (the scenario's, not the start's or the
/// test's own).
static RECORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The statements run on it, without their parameters.
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

struct Recorder {
    watched: bool,
}

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let watched = WATCHED.lock().unwrap();
                self.watched = watched.as_ref().is_some_and(|tag| url.contains(tag));
            }
            InstrumentationEvent::StartQuery { query, .. }
                if self.watched && RECORDING.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                let text = query.to_string();
                let sql = text.split(" -- binds: ").next().unwrap_or_default();
                SEEN.lock().unwrap().insert(sql.trim().to_string());
            }
            _ => {}
        }
    }
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Recorder { watched: false }))
}

/// Tables that stay small whatever the licenses: read whole, they cost nothing.
const SMALL: &[&str] = &[
    "firms",
    "items",
    "settings",
    "users",
    "audit_head",
    "audit_key",
    "firm_keys",
    "cloud_authorities",
    "webhooks",
    "job_runs",
    "activation_counts",
    "__diesel_schema_migrations",
];

/// What the database plans for `sql`: one line per step.
fn plan(c: &mut licentia::store::Conn, sql: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }
    match c {
        licentia::store::Conn::Sqlite(c) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<SqlitePlan>(c)
            .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"))
            .into_iter()
            .map(|p| p.detail)
            .collect(),
        licentia::store::Conn::Pg(c) => {
            let params = (1..=100)
                .take_while(|n| sql.contains(&format!("${n}")))
                .count();
            let nulls = vec!["NULL"; params].join(", ");
            diesel::sql_query(format!("PREPARE scan_check AS {sql}"))
                .execute(c)
                .unwrap_or_else(|e| panic!("PREPARE {sql}: {e}"));
            let execute = match params {
                0 => "EXPLAIN (FORMAT JSON) EXECUTE scan_check".to_string(),
                _ => format!("EXPLAIN (FORMAT JSON) EXECUTE scan_check({nulls})"),
            };
            let json = diesel::sql_query(execute)
                .get_result::<PgPlan>(c)
                .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
            diesel::sql_query("DEALLOCATE scan_check")
                .execute(c)
                .unwrap();
            let mut lines = vec![];
            let tree: Value = serde_json::from_str(&json.line).unwrap();
            pg_nodes(&tree[0]["Plan"], &mut lines);
            lines
        }
    }
}

/// PostgreSQL's plan nodes as lines (`Seq Scan on t`, `Index Scan on t`, …).
fn pg_nodes(node: &Value, out: &mut Vec<String>) {
    if let Some(table) = node["Relation Name"].as_str() {
        out.push(format!(
            "{} on {table}",
            node["Node Type"].as_str().unwrap_or("")
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        pg_nodes(child, out);
    }
}

/// The growing table a plan line reads whole, if it does.
fn full_scan(line: &str) -> Option<String> {
    let table = if let Some(rest) = line.trim_start().strip_prefix("SCAN ") {
        // SQLite: `SCAN t`, `SCAN t USING INDEX i` (every entry of an index is as bad).
        rest.split_whitespace().next()?
    } else if let Some(at) = line.find("Seq Scan on ") {
        // PostgreSQL: `Seq Scan on t`, priced out: there is no index it could use.
        line[at + "Seq Scan on ".len()..]
            .split_whitespace()
            .next()?
    } else {
        return None;
    };
    // A subquery's or a CTE's rows, SQLite's `SCAN CONSTANT ROW`: no table.
    if table.starts_with('(') || table == "CONSTANT" || SMALL.contains(&table) {
        return None;
    }
    Some(table.to_string())
}

fn get(app: &TestApp, path: &str) -> Value {
    let (s, v) = app.admin("GET", path, None);
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

#[test]
fn lookups_lists_and_reports_read_by_index_on_a_generated_database() {
    diesel::connection::set_default_instrumentation(recorder).unwrap();
    let db = TestDb::new();
    let tag = db
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("licentia-test-")
        .to_string();
    *WATCHED.lock().unwrap() = Some(tag.clone());
    let app = TestApp::start_on(db, |_| {});
    let filled = app
        .rt
        .block_on(licentia::service::generate::fill(&app.core, 6_000, 7))
        .unwrap();
    assert!(filled.licenses >= 6_000, "{filled:?}");
    assert!(
        filled.orders >= 300 && filled.containers > 100,
        "{filled:?}"
    );
    // What was written hangs together: each order's ticket is its customer's, each license
    // is on its order's ticket, each activated one in a container of that customer, and
    // the history verifies.
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    for (sql, want) in [
        ("SELECT COUNT(*) AS n FROM licenses", filled.licenses as i64),
        ("SELECT COUNT(*) AS n FROM orders", filled.orders as i64),
        (
            "SELECT COUNT(*) AS n FROM containers",
            filled.containers as i64,
        ),
        (
            "SELECT COUNT(*) AS n FROM orders o JOIN tickets t ON t.id = o.ticket_id \
             WHERE t.customer_id <> o.customer_id",
            0,
        ),
        (
            "SELECT COUNT(*) AS n FROM licenses l JOIN order_lines ol ON ol.id = l.order_line_id \
             JOIN orders o ON o.id = ol.order_id WHERE o.ticket_id <> l.ticket_id",
            0,
        ),
        (
            "SELECT COUNT(*) AS n FROM licenses l JOIN tickets t ON t.id = l.ticket_id \
             JOIN containers c ON c.serial = l.serial WHERE c.customer_id <> t.customer_id",
            0,
        ),
    ] {
        let mut c = app.db.connect();
        let got: Count = match &mut c {
            licentia::store::Conn::Sqlite(c) => diesel::sql_query(sql).get_result(c),
            licentia::store::Conn::Pg(c) => diesel::sql_query(sql).get_result(c),
        }
        .unwrap();
        assert_eq!(got.n, want, "{sql}");
    }
    let chain = app
        .rt
        .block_on(licentia::service::audit::verify_chain(
            &app.core,
            &crate::harness::system(),
        ))
        .unwrap();
    assert!(chain.problems.is_empty(), "{:?}", chain.problems);
    assert!(chain.events >= filled.events, "{}", chain.events);
    if backend() == "postgres" {
        // As autovacuum would have by now on a database this size.
        diesel::sql_query("ANALYZE")
            .execute(match &mut app.db.connect() {
                licentia::store::Conn::Pg(c) => c,
                licentia::store::Conn::Sqlite(_) => unreachable!(),
            })
            .unwrap();
    }

    // Something of each kind to look up, from the middle of the data.
    #[derive(QueryableByName)]
    struct Pick {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        license: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        serial: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        erp: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        customer: String,
    }
    let pick: Pick = {
        let sql = "SELECT l.id AS license, l.serial AS serial, t.code AS code, \
                   o.erp_order_id AS erp, c.external_id AS customer \
                   FROM licenses l JOIN tickets t ON t.id = l.ticket_id \
                   JOIN orders o ON o.ticket_id = t.id JOIN customers c ON c.id = t.customer_id \
                   WHERE l.serial IS NOT NULL ORDER BY l.id LIMIT 1 OFFSET 2000";
        let mut c = app.db.connect();
        match &mut c {
            licentia::store::Conn::Sqlite(c) => diesel::sql_query(sql).get_result(c),
            licentia::store::Conn::Pg(c) => diesel::sql_query(sql).get_result(c),
        }
        .unwrap()
    };
    let code = licentia::domain::ticket::TicketCode::parse(&pick.code).unwrap();

    // Lookups.
    RECORDING.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = get(&app, &format!("/api/v1/tickets/{code}"));
    assert!(!t["licenses"].as_array().unwrap().is_empty(), "{t}");
    get(&app, &format!("/api/v1/licenses/{}", pick.license));
    get(&app, &format!("/api/v1/containers/{}", pick.serial));
    get(&app, &format!("/api/v1/orders/demo/{}", pick.erp));
    get(&app, &format!("/api/v1/customers/{}", pick.customer));
    let (s, v) = app.call(
        "GET",
        &format!("/api/v1/gateway/tickets/{code}"),
        None,
        None,
    );
    assert_eq!(s, 200, "{v}");
    // Lists, first pages and pages after a key.
    let customers = get(&app, "/api/v1/customers?limit=50");
    let last = customers.as_array().unwrap().last().unwrap()["external_id"].clone();
    get(
        &app,
        &format!(
            "/api/v1/customers?limit=50&after={}",
            last.as_str().unwrap()
        ),
    );
    get(&app, &format!("/api/v1/history?ticket={code}"));
    get(&app, &format!("/api/v1/history?serial={}", pick.serial));
    get(
        &app,
        &format!("/api/v1/history?license_id={}", pick.license),
    );
    get(&app, "/api/v1/approvals");
    get(&app, "/api/v1/mail");
    // The license reports, read whole (several pages each).
    let expiring = get(&app, "/api/v1/reports/expiring?days=365");
    let never = get(&app, "/api/v1/reports/never-activated");
    let on_ticket = get(
        &app,
        &format!("/api/v1/reports/ticket-licenses?ticket={code}"),
    );
    let in_container = get(
        &app,
        &format!("/api/v1/reports/container-licenses?serial={}", pick.serial),
    );
    get(
        &app,
        &format!(
            "/api/v1/reports/customer-containers?customer_id={}",
            pick.customer
        ),
    );
    get(
        &app,
        &format!(
            "/api/v1/reports/license-history?license_id={}",
            pick.license
        ),
    );
    // The back office's pages over the same data.
    let mut staff = crate::admin::staff(&app, "admin", ADMIN_PW);
    for page in [
        "/admin".to_string(),
        "/admin/orders".to_string(),
        format!("/admin/orders?q={}", pick.erp),
        format!("/admin/orders?q={code}"),
        "/admin/customers".to_string(),
        format!("/admin/customers/view?id={}", pick.customer),
        format!("/admin/containers?serial={}", pick.serial),
        "/admin/reports/never-activated".to_string(),
    ] {
        let p = staff.get(&page);
        assert_eq!(p.status, 200, "{page}: {}", p.body);
    }
    RECORDING.store(false, std::sync::atomic::Ordering::SeqCst);
    *WATCHED.lock().unwrap() = None;

    // Each report holds exactly its rows.
    let mut c = app.db.connect();
    let count = |c: &mut licentia::store::Conn, sql: &str| -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        match c {
            licentia::store::Conn::Sqlite(c) => diesel::sql_query(sql).get_result::<N>(c),
            licentia::store::Conn::Pg(c) => diesel::sql_query(sql).get_result::<N>(c),
        }
        .unwrap()
        .n
    };
    let never_rows = never["rows"].as_array().unwrap();
    assert_eq!(
        never_rows.len() as i64,
        count(
            &mut c,
            "SELECT COUNT(*) AS n FROM licenses WHERE state = 'available' \
             AND activated_at IS NULL AND generation = 1"
        )
    );
    assert!(
        never_rows.len() > 1000,
        "more than one page: {}",
        never_rows.len()
    );
    let ids: Vec<i64> = never_rows
        .iter()
        .map(|r| r["license_id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "by license id, each once"
    );
    // Soonest first, each license once, every one that expires within the year: at least
    // those in the whole seconds after now, at most those from now's second on.
    let keys: Vec<(&str, i64)> = expiring["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let t = r["expiration_time"].as_str().unwrap();
            (t, r["license_id"].as_i64().unwrap())
        })
        .collect();
    assert!(keys.len() > 1000, "more than one page: {}", keys.len());
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "soonest first, each once"
    );
    let now = chrono::Utc::now().naive_utc();
    let second = |t: chrono::NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let window = |op: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM licenses WHERE expires_at {op} '{}' \
             AND expires_at <= '{}' AND state <> 'deleted'",
            second(now),
            second(now + chrono::Duration::days(365))
        )
    };
    let (least, most) = (count(&mut c, &window(">")), count(&mut c, &window(">=")));
    assert!(
        (least..=most).contains(&(keys.len() as i64)),
        "{least} <= {} <= {most}",
        keys.len()
    );
    // A ticket's and a container's licenses, all of them.
    assert_eq!(
        on_ticket["rows"].as_array().unwrap().len() as i64,
        count(
            &mut c,
            &format!(
                "SELECT COUNT(*) AS n FROM licenses l JOIN tickets t ON t.id = l.ticket_id \
                 WHERE t.code = '{}' AND l.state <> 'deleted'",
                pick.code
            )
        )
    );
    assert_eq!(
        in_container["rows"].as_array().unwrap().len() as i64,
        count(
            &mut c,
            &format!(
                "SELECT COUNT(*) AS n FROM licenses WHERE serial = '{}'",
                pick.serial
            )
        )
    );

    // Every statement the server ran, explained.
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    assert!(seen.len() > 30, "statements recorded: {}", seen.len());
    if let licentia::store::Conn::Pg(pg) = &mut c {
        diesel::sql_query("SET enable_seqscan = off")
            .execute(pg)
            .unwrap();
        diesel::sql_query("SET plan_cache_mode = force_generic_plan")
            .execute(pg)
            .unwrap();
    }
    let mut scans = vec![];
    for sql in &seen {
        let verb = sql.split_whitespace().next().unwrap_or("").to_uppercase();
        if !["SELECT", "UPDATE", "DELETE", "WITH"].contains(&verb.as_str()) {
            continue;
        }
        // The first page of a list with no filter: SQLite walks the table in key order and
        // stops after the page's rows, unless it must sort them all first.
        let upper = sql.to_uppercase();
        let first_page =
            !upper.contains(" WHERE ") && upper.contains(" ORDER BY ") && upper.contains(" LIMIT ");
        if first_page {
            for line in plan(&mut c, sql) {
                if line.contains("TEMP B-TREE") {
                    scans.push(format!("sorted whole: {line}\n    in {sql}"));
                }
            }
            continue;
        }
        for line in plan(&mut c, sql) {
            if let Some(table) = full_scan(&line) {
                scans.push(format!("{table}: {line}\n    in {sql}"));
            }
        }
    }
    assert!(
        scans.is_empty(),
        "{} plan(s) read a growing table whole:\n{}",
        scans.len(),
        scans.join("\n")
    );
}

/// Licenses that expire in the same second, read across pages: each once, in license order
/// within the second, the second itself where the report's window begins and ends, and
/// what the pages skip is what lies outside the window (the pages seek by the key's second
/// and then by id).
#[test]
fn expiring_licenses_of_one_second_are_read_across_pages_once_and_counted_per_week() {
    use chrono::Timelike;
    use licentia::service::reports::{Reading, Report};
    let app = TestApp::start();
    let item = |id: &str, at: chrono::DateTime<chrono::Utc>| {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/items",
            Some(serde_json::json!({"item_id": id, "name": id, "firm_code": crate::activation::FIRM,
                "product_code": 1001, "options": {"feature_map": 1, "expiration_time": at.to_rfc3339()}})),
        );
        assert_eq!(s, 201, "{v}");
    };
    let second = (chrono::Utc::now() + chrono::Duration::days(3))
        .with_nanosecond(0)
        .unwrap();
    item("SAME-SECOND", second);
    item("NEXT-SECOND", second + chrono::Duration::seconds(1));
    item("OUTSIDE", second + chrono::Duration::days(30));
    let lines = crate::mail::new_order_of(
        &app,
        "TIES-1",
        &[("SAME-SECOND", 17), ("NEXT-SECOND", 4), ("OUTSIDE", 3)],
    );
    let system = crate::harness::system();
    let ids = app.rt.block_on(async {
        let report = Report::Expiring { days: 10 };
        let (mut reading, mut rows) = Reading::first(&app.core, &system, report, 5).await.unwrap();
        let mut pages = 1;
        while let Some(more) = reading.next(&app.core).await.unwrap() {
            rows.extend(more);
            pages += 1;
        }
        assert!(pages >= 5, "{pages} pages of five");
        rows.iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect::<Vec<_>>()
    });
    let mut want = lines[0].clone();
    want.extend(&lines[1]);
    assert_eq!(
        ids, want,
        "the second's licenses by id, then the next second's"
    );
    // The dashboard counts them per week from the expiration index: 21 in the first week,
    // 3 in the fifth (33 days out), none else.
    let board = app
        .rt
        .block_on(licentia::service::admin::dashboard(&app.core, &system))
        .unwrap();
    let weeks: Vec<i64> = board.expiring.iter().map(|(_, n)| *n).collect();
    assert_eq!(weeks, [21, 0, 0, 0, 3, 0, 0, 0], "{:?}", board.expiring);
}
