use diesel::RunQueryDsl;

use crate::harness::{backend, order, TestApp};

/// PostgreSQL restarted or a connection cut: the writers and readers connect anew, and the
/// write that met the cut connection is not half done.
#[test]
fn lost_database_connections_are_made_anew() {
    if backend() != "postgres" {
        return; // SQLite has no connection to lose.
    }
    let app = TestApp::start();
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("P-1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201);
    let mut c = app.db.connect();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut c)
    .unwrap();
    let mut statuses = vec![];
    for _ in 0..10 {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(order("P-2", "C", &[("SNP-SINGLE", 1)])),
        );
        statuses.push(s);
        if s == 201 || s == 200 {
            assert_eq!(v["lines"][0]["licenses"].as_array().unwrap().len(), 1);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        statuses.iter().any(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!((app.count("orders"), app.count("licenses")), (2, 2));
    let (s, _) = app.admin("GET", "/api/v1/orders/erp/P-1", None);
    assert_eq!(s, 200);
}
