//! Lost licenses and vendor control through the client runtime against a running server:
//! re-activation, restore, approvals, blacklist and lock, withdraw, replace, update items,
//! split, reset, assignment, quota and reports.
use diesel::prelude::*;
use licentia::client::online::{self, Gateway, RoundTrip};
use licentia::client::{unix_now, CResult, ClientError, Container};
use licentia::domain::{ContainerType, Role};
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with, traits, FIRM};
use crate::harness::TestApp;

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

fn activate(gw: &Gateway, c: &mut Container, ticket: &str, ids: &[i64]) -> RoundTrip {
    online::activate(gw, c, ticket, ids, &mut keep).unwrap()
}

fn reactivate(
    gw: &Gateway,
    c: &mut Container,
    ticket: &str,
    ids: &[i64],
) -> Result<RoundTrip, ClientError> {
    online::reactivate(gw, c, ticket, ids, &mut keep)
}

fn settings(app: &TestApp, body: Value) {
    let (s, v) = app.admin("PUT", "/api/v1/settings", Some(body));
    assert_eq!(s, 200, "{v}");
}

/// A report's rows as JSON objects.
fn report(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = app.admin("GET", &format!("/api/v1/reports/{query}"), None);
    assert_eq!(s, 200, "{v}");
    v["rows"].as_array().unwrap().clone()
}

/// A report as CSV, parsed back: header and records.
fn report_csv(app: &TestApp, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let sep = if query.contains('?') { '&' } else { '?' };
    let resp = ureq::get(&format!(
        "{}/api/v1/reports/{query}{sep}format=csv",
        app.base
    ))
    .set(
        "Authorization",
        &format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("admin:{}", crate::harness::ADMIN_PW)
            )
        ),
    )
    .call()
    .unwrap();
    assert!(resp.content_type().starts_with("text/csv"));
    let text = resp.into_string().unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn events_of(app: &TestApp, license_id: i64) -> Vec<(String, String, String)> {
    report(app, &format!("license-history?license_id={license_id}"))
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["interface"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn generation(app: &TestApp, id: i64) -> i64 {
    let (_, v) = app.admin("GET", &format!("/api/v1/licenses/{id}"), None);
    v["license"]["generation"].as_i64().unwrap()
}

fn set_activated_at(app: &TestApp, id: i64, days_ago: i64) {
    use licentia::store::schema::licenses;
    let at = chrono::Utc::now().naive_utc() - chrono::Duration::days(days_ago);
    let mut c = app.db.connect();
    diesel::update(licenses::table.filter(licenses::id.eq(id)))
        .set(licenses::activated_at.eq(Some(at)))
        .execute(&mut c)
        .unwrap();
}

fn other_machine() -> Vec<(String, String)> {
    let mut t = traits();
    for (_, v) in t.iter_mut().take(3) {
        v.push_str("-elsewhere");
    }
    t
}

#[test]
fn self_service_reactivation_blacklists_the_old_container_then_needs_approval() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let support = app.add_user("sue", Role::Support);
    let sales = app.add_user("sam", Role::Sales);
    let (ticket, ids) = ticket_with(&app, "R-1", "SNP-SINGLE", 1);
    let id = ids[0];
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids);

    // The computer is gone: the license moves to B as a new generation, without a return.
    let mut b = new_act(&gw);
    let done = reactivate(&gw, &mut b, &ticket, &ids).unwrap();
    assert_eq!(done.added, vec![id]);
    assert_eq!(
        license(&app, id),
        ("activated".into(), Some(b.serial.clone()))
    );
    assert_eq!(generation(&app, id), 2);
    b.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();

    // The old container (default behaviour: blacklist) gets the lock on its next contact.
    let bl = report(&app, "blacklist");
    assert_eq!(bl.len(), 1);
    assert_eq!(bl[0]["serial"], a.serial.as_str());
    assert!(bl[0]["lock_sent_at"].is_null());
    let locked = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(locked.len(), 1);
    let e = a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap_err();
    assert_eq!(e.code, "locked", "{e}");
    let bl = report(&app, "blacklist");
    assert!(bl[0]["lock_sent_at"].is_string(), "{bl:?}");
    assert!(bl[0]["lock_validated_at"].is_string(), "{bl:?}");
    // Every other action of the blacklisted container is refused.
    let (t2, ids2) = ticket_with(&app, "R-2", "SNP-SINGLE", 1);
    let e = online::activate(&gw, &mut a, &t2, &ids2, &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    assert_eq!(license(&app, ids2[0]).0, "available");
    assert_eq!(
        online::update(&gw, &mut a, &mut keep).unwrap_err().code,
        "blacklisted"
    );

    // The self-service count (1) is used up: the next re-activation becomes an approval.
    let mut c = new_act(&gw);
    let e = reactivate(&gw, &mut c, &ticket, &ids).unwrap_err();
    assert_eq!(e.code, "approval_required", "{e}");
    assert!(e.message.contains("self-service"), "{e}");
    let again = reactivate(&gw, &mut c, &ticket, &ids).unwrap_err();
    assert_eq!(again.code, "approval_required");
    let (s, open) = app.call(
        "GET",
        "/api/v1/approvals?state=open",
        Some(("sue", &support)),
        None,
    );
    assert_eq!(s, 200, "{open}");
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 1, "one request, however often asked: {open:?}");
    let approval = open[0]["approval_id"].as_i64().unwrap();
    assert_eq!(open[0]["license_id"], id);
    assert_eq!(open[0]["old_serial"], b.serial.as_str());
    assert_eq!(license(&app, id).1, Some(b.serial.clone()));

    // Sales may not decide; support approves and the next contact brings the license.
    let path = format!("/api/v1/approvals/{approval}/approve");
    let (s, v) = app.call("POST", &path, Some(("sam", &sales)), Some(json!({})));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(license(&app, id).1, Some(b.serial.clone()));
    let (s, v) = app.call(
        "POST",
        &path,
        Some(("sue", &support)),
        Some(json!({"reason": "customer called"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    let (s, _) = app.call("POST", &path, Some(("sue", &support)), Some(json!({})));
    assert_eq!(s, 409, "decided once");
    let pulled = online::update(&gw, &mut c, &mut keep).unwrap();
    assert_eq!(pulled[0].added, vec![id]);
    assert_eq!(
        license(&app, id),
        ("activated".into(), Some(c.serial.clone()))
    );
    assert_eq!(generation(&app, id), 3);
    c.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();

    // The history says who did what, through which interface.
    let h = events_of(&app, id);
    let customer = format!("ticket:{}", ticket.replace('-', ""));
    assert!(
        h.contains(&("license.reactivated".into(), customer, "gateway".into())),
        "{h:?}"
    );
    assert!(
        h.contains(&(
            "approval.requested".into(),
            format!("ticket:{}", ticket.replace('-', "")),
            "gateway".into()
        )),
        "{h:?}"
    );
    assert!(
        h.contains(&("approval.approved".into(), "sue".into(), "json".into())),
        "{h:?}"
    );
    assert!(
        h.contains(&("license.reactivated".into(), "sue".into(), "json".into())),
        "{h:?}"
    );
}

#[test]
fn reactivation_policy_never_blocking_period_item_override_and_withdraw_behaviour() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "P-1", "SNP-SINGLE", 2);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids);
    let mut b = new_act(&gw);

    settings(&app, json!({"reactivation": "never"}));
    let e = reactivate(&gw, &mut b, &ticket, &ids[..1]).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");

    // Within the blocking period it takes an approval; after it the customer does it alone.
    settings(
        &app,
        json!({"reactivation": "after_blocking_period", "blocking_period_days": 30,
               "self_service_count": 5, "reactivation_behaviour": "withdraw"}),
    );
    let e = reactivate(&gw, &mut b, &ticket, &ids[..1]).unwrap_err();
    assert_eq!(e.code, "approval_required", "{e}");
    assert!(e.message.contains("blocking period"), "{e}");
    assert_eq!(license(&app, ids[0]).1, Some(a.serial.clone()));
    set_activated_at(&app, ids[0], 31);
    reactivate(&gw, &mut b, &ticket, &ids[..1]).unwrap();
    assert_eq!(license(&app, ids[0]).1, Some(b.serial.clone()));

    // Behaviour withdraw: the old container is not blacklisted; its next contact deletes
    // the old generation and keeps the rest.
    assert!(report(&app, "blacklist").is_empty());
    let pulled = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(pulled[0].deleted, vec![ids[0]]);
    let held = a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();
    assert_eq!(held.license_ids, vec![ids[1]]);
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());

    // An item may ask for approval whatever the global setting says.
    settings(
        &app,
        json!({"reactivation": "allowed", "reactivation_behaviour": "none"}),
    );
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "SNP-GUARDED", "name": "Guarded", "firm_code": FIRM,
            "product_code": 1001, "options": {"feature_map": 1, "reactivation": "approval"}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (t2, g) = ticket_with(&app, "P-2", "SNP-GUARDED", 1);
    let mut d = new_act(&gw);
    activate(&gw, &mut d, &t2, &g);
    let e = reactivate(&gw, &mut b, &t2, &g).unwrap_err();
    assert_eq!(e.code, "approval_required", "{e}");
    // A state that is no approval state is bad input, not an empty list.
    let (s, v) = app.admin("GET", "/api/v1/approvals?state=opne", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open, approved, denied"),
        "{v}"
    );
    // Denied, with a reason (required); asking again gets the denial.
    let (_, open) = app.admin("GET", "/api/v1/approvals?state=open", None);
    let id = open
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["license_id"] == g[0])
        .unwrap()["approval_id"]
        .as_i64()
        .unwrap();
    let deny = format!("/api/v1/approvals/{id}/deny");
    let (s, _) = app.admin("POST", &deny, Some(json!({"reason": " "})));
    assert_eq!(s, 400);
    let (s, v) = app.admin("POST", &deny, Some(json!({"reason": "not our customer"})));
    assert_eq!((s, v["state"].as_str()), (200, Some("denied")));
    let e = reactivate(&gw, &mut b, &t2, &g).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains("not our customer"), "{e}");
    assert_eq!(license(&app, g[0]).1, Some(d.serial.clone()));
    // Behaviour none: the old container keeps its generation, nothing waits for it.
    reactivate(&gw, &mut b, &ticket, &ids[1..]).unwrap();
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
    // Returned from B, the license goes back into A, which kept the older generation.
    online::deactivate(&gw, &mut b, FIRM, &ids[1..], &mut keep).unwrap();
    let back = activate(&gw, &mut a, &ticket, &ids[1..]);
    assert_eq!(back.added, vec![ids[1]]);
    assert_eq!(
        license(&app, ids[1]),
        ("activated".into(), Some(a.serial.clone()))
    );
    assert_eq!(generation(&app, ids[1]), 2);
    // Only a license in another container can be re-activated.
    let (t3, avail) = ticket_with(&app, "P-3", "SNP-SINGLE", 1);
    let e = reactivate(&gw, &mut b, &t3, &avail).unwrap_err();
    assert_eq!(e.code, "conflict", "{e}");
}

#[test]
fn restore_recognises_the_same_computer_and_blacklists_the_old_container() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "S-1", "SNP-SINGLE", 2);
    let mut old = new_act(&gw);
    activate(&gw, &mut old, &ticket, &ids);

    // Another computer is refused.
    let mut stranger = new_act(&gw);
    let e = online::restore(
        &gw,
        &mut stranger,
        &old.serial,
        FIRM,
        &other_machine(),
        &mut keep,
    )
    .unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains("not the same computer"), "{e}");
    // Several values per trait name do not help.
    let mut guesses = other_machine();
    guesses.extend(traits());
    let e =
        online::restore(&gw, &mut stranger, &old.serial, FIRM, &guesses, &mut keep).unwrap_err();
    assert!(e.message.contains("5 of 5"), "{e}");

    settings(&app, json!({"restore": "never"}));
    let mut fresh = new_act(&gw);
    let e = online::restore(&gw, &mut fresh, &old.serial, FIRM, &traits(), &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");

    // Same computer (one trait changed after the reinstall), restore allowed. Its answer is
    // lost the first time: sent again, it brings the same licenses.
    settings(&app, json!({"restore": "allowed"}));
    let mut t = traits();
    t[1].1 = "renamed-host".into();
    let salt = gw.salt(&old.serial).unwrap();
    let hashed: Vec<licentia::protocol::Trait> = t
        .iter()
        .map(|(n, v)| licentia::protocol::Trait {
            name: n.clone(),
            hash: licentia::client::hash_trait(&salt, n, v),
        })
        .collect();
    online::ensure_trust(&gw, &mut fresh, FIRM).unwrap();
    let lost = gw
        .restore(
            &old.serial,
            &fresh.request(FIRM, unix_now()).unwrap(),
            &hashed,
        )
        .unwrap();
    assert_eq!(lost.added, ids);
    let done = online::restore(&gw, &mut fresh, &old.serial, FIRM, &t, &mut keep).unwrap();
    assert_eq!(done.added, ids);
    // Once applied, there is nothing more to restore.
    let e = online::restore(&gw, &mut fresh, &old.serial, FIRM, &t, &mut keep).unwrap_err();
    assert_eq!(e.code, "conflict", "{e}");
    assert!(e.message.contains("restored into"), "{e}");
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(fresh.serial.clone()))
        );
        assert_eq!(generation(&app, *id), 2);
    }
    let bl = report(&app, "blacklist");
    assert_eq!(bl[0]["serial"], old.serial.as_str());
    assert_eq!(
        online::update(&gw, &mut old, &mut keep).unwrap().len(),
        1,
        "the lock"
    );

    // Within the blocking period: an approval, and the approved restore arrives on contact.
    settings(
        &app,
        json!({"restore": "after_blocking_period", "blocking_period_days": 10}),
    );
    let mut again = new_act(&gw);
    let e =
        online::restore(&gw, &mut again, &fresh.serial, FIRM, &traits(), &mut keep).unwrap_err();
    assert_eq!(e.code, "approval_required", "{e}");
    let (_, open) = app.admin("GET", "/api/v1/approvals?state=open", None);
    let id = open[0]["approval_id"].as_i64().unwrap();
    assert_eq!(open[0]["kind"], "restore");
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        Some(json!({})),
    );
    assert_eq!(s, 200, "{v}");
    let pulled = online::update(&gw, &mut again, &mut keep).unwrap();
    assert_eq!(pulled[0].added, ids);
    // A dongle is not restored.
    let (s, v) = app.admin("GET", "/api/v1/gateway/containers/3-1/salt", None);
    assert_eq!(s, 404, "{v}");

    // A container the vendor put on the blacklist is not restored past it.
    settings(&app, json!({"restore": "allowed"}));
    let (ticket, ids) = ticket_with(&app, "S-2", "SNP-SINGLE", 1);
    let mut listed = new_act(&gw);
    activate(&gw, &mut listed, &ticket, &ids);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/blacklist",
        Some(json!({"serial": listed.serial, "description": "stolen laptop"})),
    );
    assert_eq!(s, 201, "{v}");
    let mut thief = new_act(&gw);
    let e =
        online::restore(&gw, &mut thief, &listed.serial, FIRM, &traits(), &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains("is on the blacklist"), "{e}");
    assert!(!e.message.contains("stolen"), "{e}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(listed.serial.clone()))
    );
    // Nor one marked as manipulated (a copy of it came back with a state never issued).
    let (ticket3, ids3) = ticket_with(&app, "S-3", "SNP-SINGLE", 2);
    let mut m = new_act(&gw);
    activate(&gw, &mut m, &ticket3, &ids3[..1]);
    let mut copy = m.clone();
    online::deactivate(&gw, &mut m, FIRM, &ids3[..1], &mut keep).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = online::activate(&gw, &mut copy, &ticket3, &ids3[1..], &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
    let mut other = new_act(&gw);
    let e = online::restore(&gw, &mut other, &m.serial, FIRM, &traits(), &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains("marked as manipulated"), "{e}");
    // A license named twice is bad input, not a conflict.
    let e = gw
        .reactivate(
            &ticket,
            &[ids[0], ids[0]],
            &thief.request(FIRM, unix_now()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e}");
    assert!(e.message.contains("named twice"), "{e}");
}

#[test]
fn a_blacklisted_container_gets_the_lock_before_its_refusal_and_removal_is_recorded() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let support = app.add_user("sue", Role::Support);
    let (ticket, ids) = ticket_with(&app, "B-1", "SNP-SINGLE", 2);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids[..1]);

    let (s, v) = app.call(
        "POST",
        "/api/v1/blacklist",
        Some(("sue", &support)),
        Some(json!({"serial": a.serial, "description": "stolen laptop"})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, _) = app.call(
        "POST",
        "/api/v1/blacklist",
        Some(("sue", &support)),
        Some(json!({"serial": a.serial, "description": "twice"})),
    );
    assert_eq!(s, 409);
    // Serials no container can have are refused by the protocol's rule; nothing is stored,
    // nor found by the other places that take a serial.
    for bad in [
        "not-a-serial-😀",
        "130-1234567890123",
        "130-12 34",
        "",
        "new",
        "130-",
    ] {
        let (s, v) = app.call(
            "POST",
            "/api/v1/blacklist",
            Some(("sue", &support)),
            Some(json!({"serial": bad, "description": "made up"})),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{bad}: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("130-1234567890"),
            "{v}"
        );
    }
    assert_eq!(report(&app, "blacklist").len(), 1);
    for path in [
        "/api/v1/containers/not-a-serial/reset",
        "/api/v1/containers/130-1234567890123/reset",
    ] {
        let (s, v) = app.admin("POST", path, Some(json!({"reason": "x"})));
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{path}: {v}"
        );
    }
    let e = gw.salt("130-1234567890123").unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e}");
    // The activation is refused, and the lock came with the refusal.
    let e = online::activate(&gw, &mut a, &ticket, &ids[1..], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    assert!(e.message.contains("stolen laptop"), "{e}");
    assert_eq!(
        a.check(FIRM, 1001, 1, &traits(), unix_now())
            .unwrap_err()
            .code,
        "locked"
    );
    assert_eq!(license(&app, ids[1]).0, "available");
    let bl = report(&app, "blacklist");
    assert!(bl[0]["lock_validated_at"].is_string(), "{bl:?}");
    let e = online::deactivate(&gw, &mut a, FIRM, &ids[..1], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted");

    // Removing is for admins, with a reason, and recorded.
    let path = format!("/api/v1/blacklist/{}/remove", a.serial);
    let (s, _) = app.call(
        "POST",
        &path,
        Some(("sue", &support)),
        Some(json!({"reason": "found"})),
    );
    assert_eq!(s, 403);
    let (s, v) = app.admin("POST", &path, Some(json!({"reason": ""})));
    assert_eq!(s, 400, "{v}");
    let (s, v) = app.admin("POST", &path, Some(json!({"reason": "laptop found"})));
    assert_eq!(s, 200, "{v}");
    let bl = report(&app, "blacklist");
    assert_eq!(bl[0]["removed_by"], "admin");
    assert_eq!(bl[0]["removed_reason"], "laptop found");
    // Its next contact lifts the lock; then it may activate again.
    let pulled = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(pulled.len(), 1);
    a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();
    activate(&gw, &mut a, &ticket, &ids[1..]);
    let (_, h) = app.admin("GET", &format!("/api/v1/history?serial={}", a.serial), None);
    let actions: Vec<(&str, &str)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("blacklist.added", "sue")), "{actions:?}");
    assert!(
        actions.iter().any(|a| a.0 == "blacklist.lock_sent"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.0 == "blacklist.lock_validated"),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("blacklist.removed", "admin")),
        "{actions:?}"
    );
}

#[test]
fn withdraw_and_replace_in_both_states() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let support = app.add_user("sue", Role::Support);
    let (ticket, ids) = ticket_with(&app, "W-1", "SNP-SINGLE", 4);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &[ids[0], ids[1]]);

    // Wrong role: refused, nothing changed.
    let (s, _) = app.call(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(("sue", &support)),
        Some(json!({"licenses": [ids[2]]})),
    );
    assert_eq!(s, 403);
    assert_eq!(license(&app, ids[2]).0, "available");

    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(json!({"licenses": [ids[0], ids[2]], "reason": "refund"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["state"], "withdrawing");
    assert_eq!(v[1]["state"], "deleted");
    // Not activated: off the ticket at once. Activated: deleted by the next update.
    let on_ticket = |app: &TestApp| -> Vec<i64> {
        report(app, &format!("ticket-licenses?ticket={ticket}"))
            .iter()
            .map(|r| r["license_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(on_ticket(&app), vec![ids[0], ids[1], ids[3]]);

    // Replace the available one at once, the activated one in the same container.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/replace",
        Some(json!({"license_id": ids[3], "item_id": "SNP-FLOAT-5"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["old"]["state"], "deleted");
    assert_eq!(v["new"]["state"], "available");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/replace",
        Some(json!({"license_id": ids[1], "item_id": "SNP-FLOAT-5"})),
    );
    assert_eq!(s, 200, "{v}");
    let new_id = v["new"]["license_id"].as_i64().unwrap();
    assert_eq!(v["new"]["state"], "pending");
    assert_eq!(v["new"]["serial"], a.serial.as_str());
    assert_eq!(v["old"]["state"], "withdrawing");

    // One update: both old licenses deleted, the new one added.
    let pulled = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(pulled[0].deleted, vec![ids[0], ids[1]]);
    assert_eq!(pulled[0].added, vec![new_id]);
    assert_eq!(license(&app, ids[0]).0, "deleted");
    assert_eq!(license(&app, ids[1]).0, "deleted");
    assert_eq!(
        license(&app, new_id),
        ("activated".into(), Some(a.serial.clone()))
    );
    assert_eq!(
        a.check(FIRM, 1001, 1, &traits(), unix_now())
            .unwrap_err()
            .code,
        "not_licensed"
    );
    assert_eq!(
        a.check(FIRM, 1002, 1, &traits(), unix_now())
            .unwrap()
            .quantity,
        5
    );
    let now_on = on_ticket(&app);
    assert_eq!(now_on.len(), 2, "{now_on:?}");
    assert!(now_on.contains(&new_id));
    let h = events_of(&app, ids[1]);
    assert!(
        h.contains(&("license.replaced".into(), "admin".into(), "json".into())),
        "{h:?}"
    );
    assert!(h.iter().any(|e| e.0 == "license.deleted"), "{h:?}");
}

#[test]
fn update_items_change_licenses_directly_or_by_automatic_update() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "U-1", "SNP-SINGLE", 2);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids[..1]);
    assert_eq!(
        a.check(FIRM, 1001, 2, &traits(), unix_now())
            .unwrap_err()
            .code,
        "not_licensed"
    );
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "SNP-EXTEND-1Y", "name": "One more year", "kind": "update",
            "firm_code": FIRM, "product_code": 1001,
            "options": {"update": {"extend_expiration_days": 365}}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "SNP-BAD-UPD", "name": "Says nothing", "kind": "update",
            "firm_code": FIRM, "product_code": 1001, "options": {}}),
        ),
    );
    assert_eq!(s, 400, "{v}");

    // Appended by the ERP order id: the Pro bits and a year, on both licenses.
    let lines_before = app.count("order_lines");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders/erp/U-1/lines",
        Some(json!({"batch_key": "upgrade", "lines": [
            {"item_id": "SNP-UPD-PRO", "quantity": 1},
            {"item_id": "SNP-EXTEND-1Y", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(app.count("order_lines"), lines_before + 2);
    assert_eq!(app.count("licenses"), 2, "update items make no licenses");
    let (_, l) = app.admin("GET", &format!("/api/v1/licenses/{}", ids[1]), None);
    assert_eq!(l["license"]["options"]["feature_map"], 3);
    assert!(
        l["license"]["options"]["expiration_time"].is_string(),
        "{l}"
    );

    // The activated one gets it by automatic update.
    let pulled = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(pulled[0].changed, vec![ids[0]]);
    a.check(FIRM, 1001, 2, &traits(), unix_now()).unwrap();
    let h = events_of(&app, ids[0]);
    assert!(
        h.contains(&("license.updated".into(), "admin".into(), "json".into())),
        "{h:?}"
    );
    let expiring = report(&app, "expiring?days=400");
    assert_eq!(expiring.len(), 2, "{expiring:?}");
    assert!(report(&app, "expiring?days=300").is_empty());

    // An update item that matches nothing is refused and adds nothing.
    ticket_with(&app, "U-2", "SNP-FLOAT-5", 1);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders/erp/U-2/lines",
        Some(json!({"lines": [{"item_id": "SNP-UPD-PRO", "quantity": 1}]})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("matches no license"),
        "{v}"
    );
    assert_eq!(app.count("order_lines"), lines_before + 3);
}

#[test]
fn split_adds_up_and_only_available_licenses_split() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "SP-1", "SNP-FLOAT-5", 2);
    let split = |id: i64, q: Value| {
        app.admin(
            "POST",
            "/api/v1/licenses/split",
            Some(json!({"license_id": id, "quantities": q})),
        )
    };
    let (s, v) = split(ids[0], json!([2, 2]));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add up to 4"),
        "{v}"
    );
    let (s, _) = split(ids[0], json!([5]));
    assert_eq!(s, 400);
    let (s, v) = split(ids[0], json!([2, 3]));
    assert_eq!(s, 200, "{v}");
    let parts: Vec<i64> = v["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(license(&app, ids[0]).0, "deleted");
    let on: Vec<Value> = report(&app, &format!("ticket-licenses?ticket={ticket}"));
    let quantities: Vec<(i64, i64)> = on
        .iter()
        .map(|r| {
            (
                r["license_id"].as_i64().unwrap(),
                r["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(quantities, vec![(ids[1], 5), (parts[0], 2), (parts[1], 3)]);

    // The parts go to different containers.
    let mut d1 =
        Container::create(ContainerType::Dongle, Some("3-7000001".into()), &[], 0).unwrap();
    online::ensure_trust(&gw, &mut d1, FIRM).unwrap();
    activate(&gw, &mut d1, &ticket, &parts[..1]);
    assert_eq!(
        d1.check(FIRM, 1002, 1, &[], unix_now()).unwrap().quantity,
        2
    );
    let (s, v) = split(parts[0], json!([1, 1]));
    assert_eq!(s, 409, "{v}");
}

#[test]
fn reset_and_assign_containers() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let support = app.add_user("sue", Role::Support);
    let (ticket, ids) = ticket_with(&app, "X-1", "SNP-SINGLE", 2);
    let mut d = Container::create(ContainerType::Dongle, Some("3-7100001".into()), &[], 0).unwrap();
    online::ensure_trust(&gw, &mut d, FIRM).unwrap();
    activate(&gw, &mut d, &ticket, &ids);
    let containers = |cust: &str| -> Vec<String> {
        report(&app, &format!("customer-containers?customer_id={cust}"))
            .iter()
            .map(|r| r["serial"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(containers("C-ACT"), vec!["3-7100001".to_string()]);

    // Assigned to another customer.
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(json!({"external_id": "C-DEMO", "name": "Demo pool"})),
    );
    assert!(s == 200 || s == 201);
    let (s, v) = app.call(
        "PUT",
        "/api/v1/containers/3-7100001/customer",
        Some(("sue", &support)),
        Some(json!({"customer_id": "C-DEMO"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(containers("C-DEMO"), vec!["3-7100001".to_string()]);
    assert!(containers("C-ACT").is_empty());

    // Reset is for admins only.
    let (s, _) = app.call(
        "POST",
        "/api/v1/containers/3-7100001/reset",
        Some(("sue", &support)),
        None,
    );
    assert_eq!(s, 403);
    assert_eq!(license(&app, ids[0]).0, "activated");
    let (s, v) = app.admin("POST", "/api/v1/containers/3-7100001/reset", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deleted"], json!(ids));
    assert!(report(&app, &format!("ticket-licenses?ticket={ticket}")).is_empty());
    assert!(containers("C-DEMO").is_empty());
    // The dongle's next contact deletes the entries.
    let pulled = online::update(&gw, &mut d, &mut keep).unwrap();
    assert_eq!(pulled[0].deleted, ids);
    assert_eq!(
        d.check(FIRM, 1001, 1, &[], unix_now()).unwrap_err().code,
        "not_licensed"
    );
    assert!(report(&app, "container-licenses?serial=3-7100001").is_empty());
    for id in &ids {
        assert_eq!(license(&app, *id), ("deleted".into(), None));
    }
}

#[test]
fn the_monthly_quota_refuses_past_it_and_counts_the_refusal() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    settings(&app, json!({"monthly_activation_quota": 2}));
    let (ticket, ids) = ticket_with(&app, "Q-1", "SNP-SINGLE", 3);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids[..2]);
    let e = online::activate(&gw, &mut a, &ticket, &ids[2..], &mut keep).unwrap_err();
    assert_eq!(e.code, "quota_exceeded", "{e}");
    assert_eq!(license(&app, ids[2]).0, "available");
    let e = online::activate(&gw, &mut a, &ticket, &ids[2..], &mut keep).unwrap_err();
    assert_eq!(e.code, "quota_exceeded");
    let rows = report(&app, "activations");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["firm_code"], FIRM);
    assert_eq!(
        rows[0]["month"],
        chrono::Utc::now().format("%Y-%m").to_string()
    );
    assert_eq!(
        (rows[0]["activations"].as_i64(), rows[0]["refused"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(rows[0]["quota"], 2);
}

#[test]
fn reports_list_what_the_state_holds_as_json_and_csv() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "RP-1", "SNP-SINGLE", 3);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids[..1]);

    let (header, rows) = report_csv(&app, &format!("container-licenses?serial={}", a.serial));
    assert_eq!(header[0], "license_id");
    assert_eq!(rows.len(), 1);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows[0][col("license_id")], ids[0].to_string());
    assert_eq!(rows[0][col("state")], "activated");
    assert_eq!(rows[0][col("ticket")], ticket);
    assert!(rows[0][col("activated_at")].ends_with('Z'), "{rows:?}");

    let never: Vec<i64> = report(&app, "never-activated")
        .iter()
        .map(|r| r["license_id"].as_i64().unwrap())
        .collect();
    assert_eq!(never, ids[1..].to_vec());
    let (_, rows) = report_csv(&app, "never-activated");
    assert_eq!(rows.len(), 2);
    // Without a quota the count is kept in shards by container; the report adds them up.
    let mut b = new_act(&gw);
    activate(&gw, &mut b, &ticket, &ids[1..2]);
    let counted = report(&app, "activations");
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0]["activations"], 2);
    assert!(counted[0]["quota"].is_null());
    let (_, rows) = report_csv(&app, &format!("license-history?license_id={}", ids[0]));
    assert!(
        rows.iter()
            .any(|r| r.contains(&"license.activated".to_string())),
        "{rows:?}"
    );

    // Bad parameters are clear errors.
    let (s, v) = app.admin("GET", "/api/v1/reports/nothing", None);
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown report"));
    let (s, v) = app.admin("GET", "/api/v1/reports/expiring?days=soon", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    let (s, _) = app.admin("GET", "/api/v1/reports/container-licenses", None);
    assert_eq!(s, 400);
    let (s, _) = app.admin(
        "GET",
        "/api/v1/reports/container-licenses?serial=130-1",
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = app.admin("GET", "/api/v1/reports/blacklist?format=xml", None);
    assert_eq!(s, 400);
    let (s, _) = app.call("GET", "/api/v1/reports/blacklist", None, None);
    assert_eq!(s, 401);
}

#[test]
fn racing_reactivations_of_one_license_move_it_once() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "RR-1", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids);
    let mut racers: Vec<Container> = (0..8).map(|_| new_act(&gw)).collect();
    let results: Vec<Result<RoundTrip, ClientError>> = std::thread::scope(|s| {
        let handles: Vec<_> = racers
            .iter_mut()
            .map(|c| {
                let (gw, ticket, ids) = (&gw, &ticket, &ids);
                s.spawn(move || reactivate(gw, c, ticket, ids))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..8).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            assert!(
                e.code == "approval_required" || e.code == "conflict",
                "racer {i}: {e}"
            );
        }
    }
    let winner = &racers[won[0]];
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(winner.serial.clone()))
    );
    assert_eq!(generation(&app, ids[0]), 2);
    let moved = events_of(&app, ids[0])
        .iter()
        .filter(|e| e.0 == "license.reactivated")
        .count();
    assert_eq!(moved, 1);
}

#[test]
fn a_license_withdrawn_before_its_update_was_applied_is_settled_by_the_next_contact() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "WP-1", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    // The update is issued but never applied (the customer lost the file).
    let request = a.request(FIRM, unix_now()).unwrap();
    let lost = gw.activate(&ticket, &ids, &request).unwrap();
    assert_eq!(license(&app, ids[0]).0, "pending");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(json!({"licenses": ids})),
    );
    assert_eq!((s, v[0]["state"].as_str()), (200, Some("withdrawing")));
    // The next contact gets an update that adds nothing; its receipt settles the license.
    let pulled = online::update(&gw, &mut a, &mut keep).unwrap();
    assert_eq!(pulled.len(), 1);
    assert!(pulled[0].added.is_empty() && pulled[0].deleted.is_empty());
    assert_eq!(license(&app, ids[0]), ("deleted".into(), None));
    // The lost update can no longer be applied.
    let e = a.apply(&lost.update, unix_now()).unwrap_err();
    assert_eq!(e.code, "wrong_counter", "{e}");
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
}

#[test]
fn housekeeping_reports_stale_pending_activations_and_releases_nothing() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "EX-1", "SNP-SINGLE", 2);
    let mut a = new_act(&gw);
    let lost = gw
        .activate(&ticket, &ids[..1], &a.request(FIRM, unix_now()).unwrap())
        .unwrap();
    let mut b = new_act(&gw);
    activate(&gw, &mut b, &ticket, &ids[1..]);
    {
        use licentia::store::schema::updates;
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::days(1);
        let mut c = app.db.connect();
        diesel::update(updates::table.filter(updates::id.eq(lost.update_id)))
            .set(updates::expires_at.eq(past))
            .execute(&mut c)
            .unwrap();
    }
    let (s, v) = app.admin("POST", "/api/v1/jobs/housekeeping/run", None);
    assert_eq!(s, 200, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.starts_with("1 pending activation(s)"), "{v}");
    assert!(
        detail.contains(&format!("{}@{}", ids[0], lost.serial)),
        "{v}"
    );
    // Nothing is released: the container may have applied the update before it expired.
    assert_eq!(
        license(&app, ids[0]),
        ("pending".into(), Some(lost.serial.clone()))
    );
    a.apply(&lost.update, unix_now()).unwrap();
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(lost.serial.clone()))
    );
    assert_eq!(license(&app, ids[1]).0, "activated");
    // A role other than admin may not run jobs.
    let pw = app.add_user("sue", Role::Support);
    let (s, _) = app.call(
        "POST",
        "/api/v1/jobs/housekeeping/run",
        Some(("sue", &pw)),
        None,
    );
    assert_eq!(s, 403);
}

/// A license re-activated into a container that has not confirmed it yet does not move on at
/// once: for a pending license the blocking period starts now (the date it keeps is the
/// previous generation's).
#[test]
fn a_pending_reactivation_does_not_skip_the_blocking_period() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "P-9", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids);
    settings(
        &app,
        json!({"reactivation": "after_blocking_period", "blocking_period_days": 30,
               "self_service_count": 5, "reactivation_behaviour": "none"}),
    );
    set_activated_at(&app, ids[0], 31);
    let mut b = new_act(&gw);
    gw.reactivate(&ticket, &ids, &b.request(FIRM, unix_now()).unwrap())
        .unwrap();
    let (state, in_b) = license(&app, ids[0]);
    assert_eq!(state, "pending");
    assert_ne!(in_b, Some(a.serial.clone()));
    let mut c = new_act(&gw);
    let e = reactivate(&gw, &mut c, &ticket, &ids).unwrap_err();
    assert_eq!(e.code, "approval_required", "{e}");
    assert!(e.message.contains("blocking period"), "{e}");
    assert_eq!(license(&app, ids[0]), ("pending".into(), in_b));
}

#[test]
fn the_duplicate_check_records_a_copy_left_by_a_reactivation_once() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    // Re-activation leaves the old container alone: its copy is a duplicate.
    settings(
        &app,
        json!({"reactivation": "allowed", "reactivation_behaviour": "none"}),
    );
    let (t, ids) = ticket_with(&app, "DUP-1", "SNP-SINGLE", 2);
    let (mut a, mut b) = (new_act(&gw), new_act(&gw));
    activate(&gw, &mut a, &t, &ids);
    reactivate(&gw, &mut b, &t, &[ids[0]]).unwrap();
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(b.serial.clone()))
    );

    // The report lists the copy from the containers' confirmed contents.
    let rows = report(&app, "duplicates");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            &rows[0]["serial"],
            &rows[0]["license_id"],
            &rows[0]["lives_in"],
            &rows[0]["state"]
        ),
        (
            &json!(a.serial),
            &json!(ids[0]),
            &json!(b.serial),
            &json!("activated")
        )
    );
    let old = a.serial.clone();
    let seen = |app: &TestApp| {
        let (_, h) = app.admin("GET", &format!("/api/v1/history?serial={old}"), None);
        h.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "license.duplicate_seen")
            .cloned()
            .collect::<Vec<_>>()
    };
    // The old container's next contacts: the copy is recorded once, and nothing deleted.
    assert!(seen(&app).is_empty());
    for _ in 0..2 {
        assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
    }
    let events = seen(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["license_id"], json!(ids[0]));
    let held = a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();
    assert_eq!(held.license_ids.len(), 2, "the check deletes nothing");

    // Off: a contact records nothing; the report still shows what is there.
    settings(
        &app,
        json!({"reactivation": "allowed", "reactivation_behaviour": "none",
            "duplicate_check": false}),
    );
    reactivate(&gw, &mut b, &t, &[ids[1]]).unwrap();
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
    assert_eq!(seen(&app).len(), 1);
    assert_eq!(report(&app, "duplicates").len(), 2);
}

/// With `lock_item` set, the lock carries the firm's lock item: while the lock holds, the
/// vendor's software finds that product (and nothing else), and taking the container off
/// the blacklist takes it away with the lock.
#[test]
fn the_lock_carries_the_lock_item_for_the_vendors_software_to_test_for() {
    const LOCK_PRODUCT: i64 = 9999;
    let app = TestApp::start();
    // A lock item whose product code a product sold also has would pass for that product.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "LOCK-1001", "name": "Lock", "kind": "lock",
            "product_code": 1001}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    for (item, says) in [
        (
            "SNP-SINGLE",
            "item SNP-SINGLE is not a lock item of this firm",
        ),
        ("NOPE", "there is no item NOPE"),
        (
            "LOCK-1001",
            "product code 1001 is also the product code of SNP-",
        ),
    ] {
        let (s, v) = app.admin("PUT", "/api/v1/settings", Some(json!({"lock_item": item})));
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    settings(&app, json!({"lock_item": "LOCK"}));
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "LI-1", "SNP-SINGLE", 2);
    let mut a = new_act(&gw);
    activate(&gw, &mut a, &ticket, &ids[..1]);
    // Not locked: the lock item is not there.
    let e = a
        .check(FIRM, LOCK_PRODUCT, 0, &traits(), unix_now())
        .unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/blacklist",
        Some(json!({"serial": a.serial, "description": "chargeback"})),
    );
    assert_eq!(s, 201, "{v}");
    let e = online::activate(&gw, &mut a, &ticket, &ids[1..], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    let found = a
        .check(FIRM, LOCK_PRODUCT, 0, &traits(), unix_now())
        .unwrap();
    assert!(found.lock, "{found:?}");
    assert!(found.license_ids.is_empty());
    let e = a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap_err();
    assert_eq!(e.code, "locked", "{e}");
    // Off the blacklist: the next contact lifts the lock and the lock item with it.
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/blacklist/{}/remove", a.serial),
        Some(json!({"reason": "paid after all"})),
    );
    assert_eq!(s, 200, "{v}");
    online::update(&gw, &mut a, &mut keep).unwrap();
    assert!(a.check(FIRM, 1001, 1, &traits(), unix_now()).is_ok());
    let e = a
        .check(FIRM, LOCK_PRODUCT, 0, &traits(), unix_now())
        .unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
}
