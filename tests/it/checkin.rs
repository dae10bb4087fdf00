//! Licenses that must check in (`check_in_days`): the deadline in the signed entry, the
//! offline refusal past it (clock set back included), the renewal at a contact days later
//! (a real `licentia serve` whose clock runs ahead, on the same database), and the report of
//! who has not checked in.
use std::process::Child;

use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, CResult, Container};
use serde_json::{json, Value};

use crate::activation::{new_act, traits, FIRM};
use crate::harness::{order, TestApp, TestDb, ADMIN_PW};

const DAY: i64 = 86_400;
const CHECKING: i64 = 4001;
const PLAIN: i64 = 1001;

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

/// The deadline of license `id` in the container.
fn deadline(c: &Container, id: i64) -> Option<i64> {
    c.firms[&FIRM].content.entries[&id].entry.check_in_until
}

/// The end of the UTC day `days` days after the day of `t`.
fn end_of_day_after(t: i64, days: i64) -> i64 {
    (t.div_euclid(DAY) + days + 1) * DAY
}

/// `licentia serve` on the test database with its wall clock `ahead` (libfaketime, e.g.
/// `+3d`), and its address.
fn serve_ahead(db: &TestDb, ahead: &str) -> (Child, String) {
    let faketime = crate::crash::faketime_library();
    let port = crate::crash::free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_licentia"));
    cmd.arg("serve")
        .env("LD_PRELOAD", faketime)
        .env("FAKETIME", ahead)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("LICENTIA_DATABASE_URL", &db.url)
        .env("LICENTIA_DATA_DIR", &db.dir)
        .env("LICENTIA_MASTER_KEY", "11".repeat(32))
        .env("LICENTIA_LOG", "error");
    (
        crate::crash::serve_command(cmd, port),
        format!("http://127.0.0.1:{port}"),
    )
}

/// The check-in report's rows, as the admin reads them from the server at `base`.
fn report(base: &str) -> Vec<Value> {
    let (s, v) = crate::harness::call_at(
        base,
        "GET",
        "/api/v1/reports/check-in",
        Some(("admin", ADMIN_PW)),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["columns"],
        json!([
            "license_id",
            "item_id",
            "serial",
            "customer_id",
            "check_in_days",
            "last_check_in",
            "check_in_until",
            "overdue"
        ])
    );
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn a_license_that_must_check_in_is_renewed_by_contacts_and_refused_offline_past_its_deadline() {
    let app = TestApp::start();
    let item = |id: &str, days: Value| {
        json!({"item_id": id, "name": "Checks in", "kind": "license",
            "product_code": CHECKING, "options": {"check_in_days": days}})
    };
    for (bad, says) in [
        (json!(0), "check_in_days: between 1 and 3650 days"),
        (json!(3651), "check_in_days: between 1 and 3650 days"),
        (json!(-1), "expected u32"),
        (json!("7"), "expected u32"),
    ] {
        let (s, v) = app.admin("POST", "/api/v1/items", Some(item("CHK-BAD", bad.clone())));
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v.to_string().contains(says), "{v}");
    }
    let (s, v) = app.admin("POST", "/api/v1/items", Some(item("CHK-7", json!(7))));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("CHK-1", "C-CHK", &[("CHK-7", 1), ("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let gw = Gateway::new(&app.base);
    let mut c = new_act(&gw);
    let done = online::activate(&gw, &mut c, &ticket, &[], &mut keep).unwrap();
    assert_eq!(done.added.len(), 2);
    let license_of = |p: i64| {
        c.firms[&FIRM]
            .content
            .entries
            .values()
            .find(|e| e.entry.product_code == p)
            .map(|e| e.entry.license_id)
            .unwrap()
    };
    let (checking, plain) = (license_of(CHECKING), license_of(PLAIN));

    // The signed entry carries the deadline: the end of the day a week from today (UTC).
    let now = unix_now();
    let until = end_of_day_after(now, 7);
    assert_eq!(deadline(&c, checking), Some(until));
    assert_eq!(deadline(&c, plain), None);
    let ok = c.check(FIRM, CHECKING, 0, &traits(), now).unwrap();
    assert_eq!(ok.check_in_by, Some(until));
    assert_eq!(
        c.check(FIRM, PLAIN, 0, &traits(), now).unwrap().check_in_by,
        None
    );
    // Offline, it works until the deadline and not from then on; the other license does.
    let mut offline = c.clone();
    assert!(offline
        .check(FIRM, CHECKING, 0, &traits(), until - 1)
        .is_ok());
    let e = offline
        .check(FIRM, CHECKING, 0, &traits(), until)
        .unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
    let day = chrono::DateTime::from_timestamp(until, 0)
        .unwrap()
        .format("%Y-%m-%d");
    assert!(
        e.message.contains(&format!(
            "had to check in with the license server before {day}"
        )),
        "{e}"
    );
    assert!(offline.check(FIRM, PLAIN, 0, &traits(), until).is_ok());
    // Setting the clock back does not bring it back.
    let e = offline
        .check(FIRM, CHECKING, 0, &traits(), now)
        .unwrap_err();
    assert_eq!(e.code, "clock_set_back", "{e}");

    // Another contact the same day renews nothing: the deadline moves once a day (unless
    // the test ran across midnight, UTC).
    let pulled = online::update(&gw, &mut c, &mut keep).unwrap();
    if end_of_day_after(unix_now(), 7) == until {
        assert!(pulled.is_empty(), "{pulled:?}");
    }
    let rows = report(&app.base);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (
            r["license_id"].as_i64(),
            r["serial"].as_str(),
            r["customer_id"].as_str(),
            r["check_in_days"].as_i64()
        ),
        (
            Some(checking),
            Some(c.serial.as_str()),
            Some("C-CHK"),
            Some(7)
        )
    );
    assert!(r["last_check_in"].is_string(), "{r}");
    assert_eq!(r["overdue"], false);

    // Three days later (a server whose clock runs three days ahead, on the same database):
    // the container's background pull renews the deadline by a new signed entry.
    let db = app.stop();
    let (mut later, base) = serve_ahead(&db, "+3d");
    let gw = Gateway::new(&base);
    let mut stayed_away = c.clone();
    let pulled = online::update(&gw, &mut c, &mut keep).unwrap();
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert_eq!(pulled[0].changed, vec![checking]);
    assert_eq!(deadline(&c, checking), Some(until + 3 * DAY));
    let then = now + 3 * DAY + 60;
    assert!(c.check(FIRM, CHECKING, 0, &traits(), until + DAY).is_ok());
    // The copy that never came back stops at the old deadline.
    assert!(stayed_away
        .check(FIRM, CHECKING, 0, &traits(), then)
        .is_ok());
    let e = stayed_away
        .check(FIRM, CHECKING, 0, &traits(), until + DAY)
        .unwrap_err();
    assert!(e.message.contains("had to check in"), "{e}");
    let _ = later.kill();
    let _ = later.wait();

    // Twelve days on, nobody has checked in since: the report says since when, and overdue.
    let (mut much_later, base) = serve_ahead(&db, "+12d");
    let rows = report(&base);
    let r = &rows[0];
    let last: chrono::DateTime<chrono::Utc> = r["last_check_in"].as_str().unwrap().parse().unwrap();
    assert!((last.timestamp() - (now + 3 * DAY)).abs() < 600, "{r}");
    let shown: chrono::DateTime<chrono::Utc> =
        r["check_in_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown.timestamp(), until + 3 * DAY);
    assert_eq!(r["overdue"], true, "{r}");
    let _ = much_later.kill();
    let _ = much_later.wait();
}
