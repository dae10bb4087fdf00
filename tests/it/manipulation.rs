//! Support's decision about a container marked "manipulation detected": resynchronise it
//! (JSON API, CLI) or blacklist it (back office), and what its next request meets.
use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, CResult, Container};
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with, FIRM};
use crate::admin::{post, staff};
use crate::harness::{TestApp, ADMIN_PW};

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

/// The license ids the container holds of the firm.
fn held(c: &Container) -> Vec<i64> {
    c.firms[&FIRM].content.entries.keys().copied().collect()
}

/// Restores `copy` (made earlier) while `c` went on: `copy`'s next request is marked as
/// manipulated.
fn rolled_back(gw: &Gateway, copy: &mut Container, ticket: &str, more: i64) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = online::activate(gw, copy, ticket, &[more], &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
}

fn history_of(app: &TestApp, serial: &str, action: &str) -> Vec<Value> {
    let (s, h) = app.admin("GET", &format!("/api/v1/history?serial={serial}"), None);
    assert_eq!(s, 200, "{h}");
    h.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| {
            // The details are kept as JSON text.
            let mut e = e.clone();
            e["details"] = serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
            e
        })
        .collect()
}

#[test]
fn support_resynchronises_a_container_restored_from_an_old_copy() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let sales = app.add_user("sam", Role::Sales);
    let (ticket, ids) = ticket_with(&app, "R-1", "SNP-SINGLE", 4);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids[..1], &mut keep).unwrap();
    // The backup: it holds license 0 only.
    let mut copy = c.clone();
    online::activate(&gw, &mut c, &ticket, &ids[1..2], &mut keep).unwrap();
    online::deactivate(&gw, &mut c, FIRM, &ids[..1], &mut keep).unwrap();
    assert_eq!(held(&c), vec![ids[1]]);
    // The machine is restored from the backup: it shows a state the server made once.
    rolled_back(&gw, &mut copy, &ticket, ids[2]);
    let path = format!("/api/v1/containers/{}/decision", c.serial);

    // Bad decisions change nothing.
    let events = app.count("events");
    for (body, status, code, says) in [
        (
            json!({"decision": "resynchronise", "reason": " "}),
            400,
            "invalid_input",
            "say why",
        ),
        (
            json!({"decision": "forgive", "reason": "x"}),
            400,
            "malformed_request",
            "expected `resynchronise` or `blacklist`",
        ),
        (
            json!({"decision": "blacklist", "reason": "x".repeat(257)}),
            400,
            "invalid_input",
            "reason",
        ),
    ] {
        let (s, v) = app.admin("POST", &path, Some(body));
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{v}"
        );
        assert!(v.to_string().contains(says), "{v}");
    }
    let (s, v) = app.call(
        "POST",
        &path,
        Some(("sam", &sales)),
        Some(json!({"decision": "resynchronise", "reason": "x"})),
    );
    assert_eq!(s, 403, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/containers/130-9999999999/decision",
        Some(json!({"decision": "resynchronise", "reason": "x"})),
    );
    assert_eq!(s, 404, "{v}");
    assert_eq!(app.count("events"), events);

    let (s, v) = app.admin(
        "POST",
        &path,
        Some(json!({"decision": "resynchronise",
            "reason": "the customer restored the computer from a backup (case 4711)"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "resynchronising", "{v}");
    assert!(v["state_reason"].as_str().unwrap().contains("case 4711"));
    let (s, v) = app.admin(
        "POST",
        &path,
        Some(json!({"decision": "resynchronise", "reason": "again"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let decided = history_of(&app, &c.serial, "container.manipulation_decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["actor"], "admin", "{decided:?}");
    assert!(decided[0]["details"]["detected"]
        .as_str()
        .unwrap()
        .contains("restored from a copy"));

    // Its next request is taken as its state: license 1 comes back, license 0 (returned
    // since the backup) goes, and license 2 is activated in the same round trip.
    let done = online::activate(&gw, &mut copy, &ticket, &ids[2..3], &mut keep).unwrap();
    assert_eq!(held(&copy), vec![ids[1], ids[2]]);
    assert_eq!(done.deleted, vec![ids[0]]);
    let (_, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(
        (v["state"].as_str(), v["state_reason"].as_str()),
        (Some("active"), Some(""))
    );
    assert_eq!(license(&app, ids[0]).0, "available");
    for id in &ids[1..3] {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(c.serial.clone()))
        );
    }
    let resynced = history_of(&app, &c.serial, "container.resynchronised");
    assert_eq!(resynced.len(), 1, "{resynced:?}");
    let d = &resynced[0]["details"];
    assert_eq!(
        (d["taken"].as_bool(), d["counter"].as_i64()),
        (Some(true), Some(1)),
        "{d}"
    );
    assert_eq!(d["withdrawn"], json!([ids[0]]));
    // The vendor's software finds the product in it offline again.
    assert!(copy
        .check(FIRM, 1001, 1, &crate::activation::traits(), unix_now())
        .is_ok());
    // Only one of the two copies lives on: the other now shows an old state.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = online::update(&gw, &mut c, &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");

    // A copy that shows a state the server never made cannot be resynchronised: it is
    // marked again, saying so. (The CLI decides this time.)
    let (code, out, err) = crate::cli::licentia(
        &app.db,
        &[
            "serial",
            "decide",
            &c.serial,
            "resynchronise",
            "--reason",
            "try",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resynchronise decided"), "{out}");
    let mut forged = c.clone();
    forged.firms.get_mut(&FIRM).unwrap().counter = 9;
    let e = online::update(&gw, &mut forged, &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
    let (_, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(v["state"], "manipulated");
    assert!(
        v["state_reason"]
            .as_str()
            .unwrap()
            .contains("was to be resynchronised"),
        "{v}"
    );
    let (code, _, err) = crate::cli::licentia(
        &app.db,
        &["serial", "decide", &c.serial, "forget", "--reason", "x"],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("is not one of resynchronise, blacklist"),
        "{err}"
    );
}

#[test]
fn a_manipulated_container_blacklisted_in_the_back_office_gets_the_lock_where_it_stands() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "R-2", "SNP-SINGLE", 3);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids[..1], &mut keep).unwrap();
    let mut copy = c.clone();
    online::deactivate(&gw, &mut c, FIRM, &ids[..1], &mut keep).unwrap();
    rolled_back(&gw, &mut copy, &ticket, ids[1]);

    let mut admin = staff(&app, "admin", ADMIN_PW);
    let page = format!("/admin/containers?serial={}", c.serial);
    let p = admin.get(&page);
    assert!(
        p.body.contains("Manipulation detected: decide"),
        "{}",
        p.body
    );
    let p = post(
        &mut admin,
        &page,
        &format!("/admin/containers/{}/decision", c.serial),
        &[
            ("decision", "blacklist"),
            ("reason", "second copy in use (case 12)"),
        ],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let p = admin.get(&p.location);
    assert!(p.body.contains("resynchronising"), "{}", p.body);
    assert!(!p.body.contains("Manipulation detected: decide"));

    // Its next request is taken as its state, and the answer is the lock, which it applies.
    let e = online::activate(&gw, &mut copy, &ticket, &ids[1..2], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    assert!(e.message.contains("case 12"), "{e}");
    let locked = copy.check(FIRM, 1001, 1, &crate::activation::traits(), unix_now());
    assert_eq!(locked.unwrap_err().code, "locked");
    assert_eq!(license(&app, ids[1]).0, "available");
    let (_, bl) = app.admin("GET", "/api/v1/reports/blacklist", None);
    let row = bl["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == c.serial.as_str())
        .cloned()
        .unwrap();
    assert!(row["lock_validated_at"].is_string(), "{row}");
    assert_eq!(
        history_of(&app, &c.serial, "container.manipulation_decided")[0]["details"]["decision"],
        "blacklist"
    );
}

/// With automatic update handling off the answer to the request that is taken as the
/// container's state still brings everything: its own licenses back (one activated since
/// the copy was made) and the copy of one re-activated into another container since goes.
#[test]
fn a_resynchronised_copy_loses_a_license_that_moved_elsewhere_even_with_handling_off() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"automatic_update_handling": false, "reactivation_behaviour": "none"})),
    );
    assert_eq!(s, 200, "{v}");
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "R-3", "SNP-SINGLE", 3);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids[..1], &mut keep).unwrap();
    let mut copy = c.clone();
    online::activate(&gw, &mut c, &ticket, &ids[1..2], &mut keep).unwrap();
    // License 0 moves into another computer (the old one keeps a copy: behaviour none).
    let mut other = new_act(&gw);
    online::reactivate(&gw, &mut other, &ticket, &ids[..1], &mut keep).unwrap();
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(other.serial.clone()))
    );
    rolled_back(&gw, &mut copy, &ticket, ids[2]);
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/containers/{}/decision", c.serial),
        Some(json!({"decision": "resynchronise", "reason": "restored from backup"})),
    );
    assert_eq!(s, 200, "{v}");
    let done = online::activate(&gw, &mut copy, &ticket, &ids[2..3], &mut keep).unwrap();
    assert_eq!(done.deleted, vec![ids[0]], "{done:?}");
    assert_eq!(held(&copy), vec![ids[1], ids[2]]);
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(other.serial.clone()))
    );
    assert_eq!(held(&other), vec![ids[0]]);
}
