use diesel::RunQueryDsl;
use licentia::service::audit;

use crate::harness::{order, TestApp};

#[test]
fn every_change_is_recorded_and_tampering_is_detected() {
    let app = TestApp::start();
    let (_, o) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-1", "C-1", &[("SNP-SINGLE", 2)])),
    );
    app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-2", "C-1", &[("SNP-SINGLE", 1)])),
    );
    let ticket = o["ticket"].as_str().unwrap();

    let (s, h) = app.admin("GET", &format!("/api/v1/history?ticket={ticket}"), None);
    assert_eq!(s, 200, "{h}");
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (
            h[0]["action"].as_str(),
            h[0]["actor"].as_str(),
            h[0]["interface"].as_str()
        ),
        (Some("order.created"), Some("admin"), Some("json"))
    );
    assert_eq!(h[0]["order_id"], o["order_id"]);

    let verify = || {
        app.rt
            .block_on(audit::verify_chain(&app.core, &crate::harness::system()))
            .unwrap()
    };
    let clean = verify();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(clean.events >= 10);

    let mut c = app.db.connect();
    let target = clean.events / 2;
    diesel::sql_query(format!(
        "UPDATE events SET details = '{{\"forged\":true}}' WHERE id = {target}"
    ))
    .execute(&mut c)
    .unwrap();
    let report = verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("event {target}: its content was changed"))),
        "{:?}",
        report.problems
    );

    // Deleting the newest event (the easiest to hide) is caught by the chain head.
    let app2 = TestApp::start();
    app2.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-3", "C-1", &[("SNP-SINGLE", 1)])),
    );
    let mut c2 = app2.db.connect();
    diesel::sql_query("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
        .execute(&mut c2)
        .unwrap();
    let report = app2
        .rt
        .block_on(audit::verify_chain(&app2.core, &crate::harness::system()))
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("events were deleted")),
        "{:?}",
        report.problems
    );
}
