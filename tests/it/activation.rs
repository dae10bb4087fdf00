//! Containers and activation through the real client runtime against a running server.
use std::collections::BTreeSet;

use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, Container};
use licentia::domain::ContainerType;
use serde_json::{json, Value};

use crate::harness::{order, TestApp};

pub const FIRM: i64 = 6000010;

pub fn traits() -> Vec<(String, String)> {
    ["machine_id", "hostname", "mac", "cpu", "disk"]
        .iter()
        .map(|n| (n.to_string(), format!("{n}-of-test-machine")))
        .collect()
}

pub fn new_act(gw: &Gateway) -> Container {
    let mut c = Container::create(ContainerType::Act, None, &traits(), 2).unwrap();
    online::ensure_trust(gw, &mut c, FIRM).unwrap();
    c
}

fn keep(_: &Container) -> licentia::client::CResult<()> {
    Ok(())
}

/// An order of `qty` × `item`; its ticket and license ids.
pub fn ticket_with(app: &TestApp, erp: &str, item: &str, qty: i64) -> (String, Vec<i64>) {
    ticket_of(app, erp, &[(item, qty)])
}

/// A ticket ordered with `lines`, and its license ids.
fn ticket_of(app: &TestApp, erp: &str, lines: &[(&str, i64)]) -> (String, Vec<i64>) {
    let (s, v) = app.admin("POST", "/api/v1/orders", Some(order(erp, "C-ACT", lines)));
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    (ticket.clone(), license_ids(app, &ticket))
}

fn license_ids(app: &TestApp, ticket: &str) -> Vec<i64> {
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["license_id"].as_i64().unwrap())
        .collect()
}

/// (state, serial) of a license as the vendor sees it.
pub fn license(app: &TestApp, id: i64) -> (String, Option<String>) {
    let (s, v) = app.admin("GET", &format!("/api/v1/licenses/{id}"), None);
    assert_eq!(s, 200, "{v}");
    (
        v["license"]["state"].as_str().unwrap().to_string(),
        v["license"]["serial"].as_str().map(str::to_string),
    )
}

fn events(app: &TestApp) -> i64 {
    app.count("events")
}

#[test]
fn online_activation_round_trip_then_the_license_checks_offline() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "A-1", "SNP-SINGLE", 2);
    // The gateway's JSON, as any activation wizard reads it (any case, dashes optional).
    let path = format!(
        "/api/v1/gateway/tickets/{}",
        ticket.to_lowercase().replace('-', "")
    );
    let (s, info) = app.call("GET", &path, None, None);
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["licenses"].as_array().unwrap().len(), 2);
    assert_eq!(info["licenses"][0]["state"], "available");
    // And as the client runtime reads it.
    let typed = gw.ticket(&ticket).unwrap();
    assert_eq!(typed.licenses.len(), 2);
    assert_eq!(typed.licenses[0].state, "available");

    let mut c = new_act(&gw);
    let done = online::activate(&gw, &mut c, &ticket, &[ids[0]], &mut keep).unwrap();
    assert_eq!(done.added, vec![ids[0]]);
    assert!(c.serial.starts_with("130-"), "{}", c.serial);
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(c.serial.clone()))
    );
    assert_eq!(license(&app, ids[1]).0, "available");

    // The vendor's software checks it with no server.
    let ok = c.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();
    assert_eq!(ok.license_ids, vec![ids[0]]);
    let e = c.check(FIRM, 1001, 2, &traits(), unix_now()).unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
    assert!(e.message.contains("feature bits"), "{e}");
    assert_eq!(
        c.check(FIRM, 9999, 0, &traits(), unix_now())
            .unwrap_err()
            .code,
        "not_licensed"
    );
    // Two traits may change, three may not.
    let mut moved = traits();
    moved[0].1 = "new disk".into();
    moved[1].1 = "renamed".into();
    c.check(FIRM, 1001, 1, &moved, unix_now()).unwrap();
    moved[2].1 = "new NIC".into();
    assert_eq!(
        c.check(FIRM, 1001, 1, &moved, unix_now()).unwrap_err().code,
        "fingerprint_mismatch"
    );
    // A clock set back before what the container has seen is refused.
    let e = c
        .check(FIRM, 1001, 1, &traits(), unix_now() - 86_400)
        .unwrap_err();
    assert_eq!(e.code, "clock_set_back");

    // The second license joins the same container; a receipt sent twice changes nothing.
    let done = online::activate(&gw, &mut c, &ticket, &[], &mut keep).unwrap();
    assert_eq!(done.added, vec![ids[1]]);
    assert_eq!(done.counter, 2);
    let before = events(&app);
    let again = gw.receipt(&c.receipt(FIRM, unix_now()).unwrap()).unwrap();
    assert!(again.already_confirmed);
    assert_eq!(events(&app), before);
    assert_eq!(
        c.check(FIRM, 1001, 1, &traits(), unix_now())
            .unwrap()
            .license_ids,
        ids
    );

    // Support sees the container, and the history tells every step.
    let (s, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["firms"][0]["counter"], 2);
    assert_eq!(v["licenses"].as_array().unwrap().len(), 2);
    let (_, h) = app.admin("GET", &format!("/api/v1/history?ticket={ticket}"), None);
    let actions: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"license.activation_requested"),
        "{actions:?}"
    );
    let (s, v) = app.admin("GET", "/api/v1/containers/130-1", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_container"))
    );
}

#[test]
fn offline_files_do_the_same_round_trip() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "F-1", "SNP-FLOAT-5", 1);
    let mut c = Container::create(ContainerType::Dongle, Some("3-4455667".into()), &[], 0).unwrap();
    let t = gw.template(FIRM).unwrap();
    c.trust(t.firm_code, &t.firm_name, &t.keys);
    let request = c.request(FIRM, unix_now()).unwrap();
    let post = |path: &str, body: &str| match ureq::post(&format!(
        "{}/api/v1/gateway/files/{path}",
        app.base
    ))
    .set("Content-Type", "application/octet-stream")
    .send_string(body)
    {
        Ok(r) => (
            r.status(),
            r.header("Content-Disposition").unwrap_or("").to_string(),
            r.into_string().unwrap(),
        ),
        Err(ureq::Error::Status(s, r)) => (s, String::new(), r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let (s, disposition, update) = post(
        &format!("activate?ticket={ticket}&license={}", ids[0]),
        &request,
    );
    assert_eq!(s, 200, "{update}");
    assert!(
        disposition.contains("3-4455667-6000010-1.lcu"),
        "{disposition}"
    );
    assert!(update.starts_with("-----BEGIN LICENTIA UPDATE-----"));
    assert_eq!(license(&app, ids[0]).0, "pending");
    let applied = c.apply(&update, unix_now()).unwrap();
    let (s, _, body) = post("receipt", &applied.receipt);
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some("3-4455667".into()))
    );
    assert_eq!(c.check(FIRM, 1002, 1, &[], unix_now()).unwrap().quantity, 5);
    // Nothing waits for it: no update file.
    let (s, _, _) = post("updates", &c.request(FIRM, unix_now()).unwrap());
    assert_eq!(s, 204);
    // A file that is not a request.
    let (s, _, body) = post("receipt", "hello");
    assert_eq!(s, 400);
    assert!(body.contains("invalid_message"), "{body}");
}

#[test]
fn a_return_is_released_only_by_its_receipt_and_the_license_moves_on() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "R-1", "SNP-SINGLE", 1);
    let (mut a, mut b) = (new_act(&gw), new_act(&gw));
    online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
    let e = online::activate(&gw, &mut b, &ticket, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "conflict", "{e}");
    assert!(e.message.contains(&a.serial), "{e}");

    // The return update is issued, but until its receipt the license stays bound to A.
    let issued = gw
        .deactivate(&ids, &a.request(FIRM, unix_now()).unwrap())
        .unwrap();
    assert_eq!(issued.deleted, ids);
    assert_eq!(
        license(&app, ids[0]),
        ("returning".into(), Some(a.serial.clone()))
    );
    let e = online::activate(&gw, &mut b, &ticket, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "conflict");
    // Applied but the receipt is lost: the next contact makes it good.
    a.apply(&issued.update, unix_now()).unwrap();
    assert_eq!(license(&app, ids[0]).0, "returning");
    assert!(online::update(&gw, &mut a, &mut keep).unwrap().is_empty());
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    assert_eq!(
        a.check(FIRM, 1001, 0, &traits(), unix_now())
            .unwrap_err()
            .code,
        "not_licensed"
    );

    online::activate(&gw, &mut b, &ticket, &ids, &mut keep).unwrap();
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(b.serial.clone()))
    );
    b.check(FIRM, 1001, 0, &traits(), unix_now()).unwrap();
    // A license not in the container cannot be returned from it.
    let e = online::deactivate(&gw, &mut a, FIRM, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "conflict", "{e}");
    // A license named twice is refused, and nothing changes.
    let (ticket2, ids2) = ticket_with(&app, "R-2", "SNP-SINGLE", 1);
    let before = (events(&app), license(&app, ids[0]));
    let twice = [ids[0], ids[0]];
    let e = online::deactivate(&gw, &mut b, FIRM, &twice, &mut keep).unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e}");
    assert!(e.message.contains("named twice"), "{e}");
    let mut c = new_act(&gw);
    let e = online::activate(&gw, &mut c, &ticket2, &[ids2[0], ids2[0]], &mut keep).unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e}");
    assert_eq!(license(&app, ids2[0]), ("available".into(), None));
    assert_eq!((events(&app), license(&app, ids[0])), before);
}

#[test]
fn a_lost_activation_receipt_is_made_good_and_unconfirmed_updates_are_chained() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "L-1", "SNP-SINGLE", 2);
    let mut c = new_act(&gw);
    // First update issued, never applied (lost on the way): the next one carries it too.
    let first = gw
        .activate(&ticket, &[ids[0]], &c.request(FIRM, unix_now()).unwrap())
        .unwrap();
    assert_eq!(license(&app, ids[0]).0, "pending");
    let second = gw
        .activate(&ticket, &[ids[1]], &c.request(FIRM, unix_now()).unwrap())
        .unwrap();
    assert_eq!(second.added, ids);
    assert_eq!((first.counter_from, second.counter_from), (0, 0));
    // Applied, receipt lost: both pending until the next contact shows the counter.
    c.apply(&second.update, unix_now()).unwrap();
    // The first update can no longer be applied.
    assert_eq!(
        c.apply(&first.update, unix_now()).unwrap_err().code,
        "wrong_counter"
    );
    assert_eq!(license(&app, ids[1]).0, "pending");
    online::update(&gw, &mut c, &mut keep).unwrap();
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(c.serial.clone()))
        );
    }
    let (_, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(v["firms"][0]["counter"], 1);
    assert_eq!(v["firms"][0]["unconfirmed_updates"], json!([]));

    // "Activate all" whose answer was lost: the retry gets the update again, counted once.
    let (ticket, ids) = ticket_with(&app, "L-2", "SNP-SINGLE", 2);
    let mut c = new_act(&gw);
    let lost = gw
        .activate(&ticket, &[], &c.request(FIRM, unix_now()).unwrap())
        .unwrap();
    let again = gw
        .activate(&ticket, &[], &c.request(FIRM, unix_now()).unwrap())
        .unwrap();
    assert_eq!(
        (lost.added.clone(), again.added.clone()),
        (ids.clone(), ids.clone())
    );
    online::finish(&gw, &mut c, again, &mut keep).unwrap();
    for id in &ids {
        assert_eq!(
            license(&app, *id),
            ("activated".into(), Some(c.serial.clone()))
        );
    }
    let requested = app.count(&format!(
        "events WHERE action = 'license.activation_requested' AND serial = '{}'",
        c.serial
    ));
    assert_eq!(requested, 2);
}

#[test]
fn automatic_updates_come_before_the_activation_that_follows() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "P-1", "SNP-SINGLE", 1);
    let (ticket2, pushed) = ticket_with(&app, "P-2", "SNP-SUB-1Y", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap();
    let path = format!("/api/v1/containers/{}/licenses", c.serial);
    let (s, v) = app.admin("POST", &path, Some(json!({"license_id": pushed[0]})));
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        license(&app, pushed[0]),
        ("pending".into(), Some(c.serial.clone()))
    );
    let (s, v) = app.admin("POST", &path, Some(json!({"license_id": pushed[0]})));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("conflict")));
    let (_, v) = app.call(
        "POST",
        &path,
        Some(("nobody", "x")),
        Some(json!({"license_id": 1})),
    );
    assert_eq!(v["error"]["code"], "unauthenticated");

    // A second license of the first ticket: the pushed one rides in the same update, first.
    let (_, more) = app.admin(
        "POST",
        "/api/v1/orders/erp/P-1/lines",
        Some(json!({"batch_key": "b2", "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    let new_id = more["lines"].as_array().unwrap().last().unwrap()["licenses"][0]
        .as_i64()
        .unwrap();
    let done = online::activate(&gw, &mut c, &ticket, &[new_id], &mut keep).unwrap();
    assert_eq!(done.added, vec![pushed[0], new_id]);
    assert_eq!(license(&app, pushed[0]).0, "activated");
    c.check(FIRM, 1004, 3, &traits(), unix_now()).unwrap();
    let _ = ticket2;
}

#[test]
fn with_automatic_update_handling_off_pushed_licenses_wait_for_the_updates_request() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"automatic_update_handling": false})),
    );
    assert_eq!(s, 200, "{v}");
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "AU-1", "SNP-SINGLE", 3);
    let (_, pushed) = ticket_with(&app, "AU-2", "SNP-SUB-1Y", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &[ids[0]], &mut keep).unwrap();
    let path = format!("/api/v1/containers/{}/licenses", c.serial);
    let (s, v) = app.admin("POST", &path, Some(json!({"license_id": pushed[0]})));
    assert_eq!(s, 202, "{v}");

    // An activation and a return carry only the licenses they name.
    let done = online::activate(&gw, &mut c, &ticket, &[ids[1]], &mut keep).unwrap();
    assert_eq!(done.added, vec![ids[1]]);
    let back = online::deactivate(&gw, &mut c, FIRM, &[ids[0]], &mut keep).unwrap();
    assert_eq!((back.added, back.deleted), (vec![], vec![ids[0]]));
    assert_eq!(license(&app, ids[0]).0, "available");
    assert_eq!(
        license(&app, pushed[0]),
        ("pending".into(), Some(c.serial.clone())),
        "the pushed license still waits"
    );
    assert!(c.check(FIRM, 1004, 3, &traits(), unix_now()).is_err());

    // Asking for updates brings it.
    let updates = online::update(&gw, &mut c, &mut keep).unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].added, vec![pushed[0]]);
    assert_eq!(license(&app, pushed[0]).0, "activated");
    c.check(FIRM, 1004, 3, &traits(), unix_now()).unwrap();
    // Nothing is left: a second ask brings nothing.
    assert!(online::update(&gw, &mut c, &mut keep).unwrap().is_empty());
}

#[test]
fn fifty_containers_race_for_one_license_and_exactly_one_wins() {
    let app = TestApp::start();
    let (ticket, ids) = ticket_with(&app, "RACE-1", "SNP-SINGLE", 1);
    let base = app.base.clone();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (base, ticket, id) = (base.clone(), ticket.clone(), ids[0]);
            std::thread::spawn(move || {
                let gw = Gateway::new(&base);
                let mut c = new_act(&gw);
                online::activate(&gw, &mut c, &ticket, &[id], &mut keep).map(|_| c)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<&Container> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1);
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code, "conflict", "{e}");
        }
    }
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(winners[0].serial.clone()))
    );
    // A refused activation leaves nothing behind, not even the container's registration.
    assert_eq!(app.count("containers"), 1);
    assert_eq!(app.count("updates"), 1);
}

#[test]
fn replayed_foreign_and_tampered_messages_are_refused_and_change_nothing() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "H-1", "SNP-SINGLE", 2);
    let (mut a, mut b) = (new_act(&gw), new_act(&gw));
    online::activate(&gw, &mut b, &ticket, &[ids[1]], &mut keep).unwrap();
    let issued = gw
        .activate(&ticket, &[ids[0]], &a.request(FIRM, unix_now()).unwrap())
        .unwrap();

    // An update for another container.
    let e = b.apply(&issued.update, unix_now()).unwrap_err();
    assert_eq!(e.code, "wrong_container", "{e}");
    // A tampered update: one character of its body changed.
    let mut lines: Vec<String> = issued.update.lines().map(str::to_string).collect();
    let mid = lines[3].clone();
    let flipped: String = mid
        .chars()
        .enumerate()
        .map(|(i, ch)| {
            if i == 10 {
                if ch == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                ch
            }
        })
        .collect();
    lines[3] = flipped;
    let tampered = lines.join("\n");
    let snapshot = a.clone();
    assert!(a.apply(&tampered, unix_now()).is_err());
    assert_eq!(a.firms[&FIRM].counter, 0);
    // Applied once, then replayed.
    let applied = a.apply(&issued.update, unix_now()).unwrap();
    assert_eq!(
        a.apply(&issued.update, unix_now()).unwrap_err().code,
        "wrong_counter"
    );

    let before = (events(&app), license(&app, ids[0]));
    // A tampered receipt.
    let bad = applied.receipt.replacen("-----\n", "-----\nAA", 1);
    let e = gw.receipt(&bad).unwrap_err();
    assert_eq!(e.code, "invalid_message", "{e}");
    // A receipt for a counter the update does not make (signed by the container itself).
    let mut wrong = snapshot.clone();
    wrong.firms.get_mut(&FIRM).unwrap().counter = 5;
    wrong.firms.get_mut(&FIRM).unwrap().last_update = Some(issued.update_id);
    wrong.serial = a.serial.clone();
    let e = gw
        .receipt(&wrong.receipt(FIRM, unix_now()).unwrap())
        .unwrap_err();
    assert_eq!(e.code, "context_mismatch", "{e}");
    // A request signed by another key than the serial's.
    let mut impostor = new_act(&gw);
    impostor.serial = a.serial.clone();
    let e = gw
        .activate(
            &ticket,
            &[ids[0]],
            &impostor.request(FIRM, unix_now()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert_eq!((events(&app), license(&app, ids[0])), before);
    assert_eq!(license(&app, ids[0]).0, "pending");

    // The real receipt still confirms.
    gw.receipt(&applied.receipt).unwrap();
    assert_eq!(license(&app, ids[0]).0, "activated");
    // Sent again it is answered as confirmed already; B, up to date, signing a receipt that
    // names A's update is refused: that update was not issued for B.
    assert!(gw.receipt(&applied.receipt).unwrap().already_confirmed);
    let mut foreign = b.clone();
    foreign.firms.get_mut(&FIRM).unwrap().last_update = Some(issued.update_id);
    let before = events(&app);
    let e = gw
        .receipt(&foreign.receipt(FIRM, unix_now()).unwrap())
        .unwrap_err();
    assert_eq!(e.code, "context_mismatch", "{e}");
    assert!(
        e.message.contains(&format!(
            "update {} was not issued for container {}",
            issued.update_id, b.serial
        )),
        "{e}"
    );
    assert_eq!(events(&app), before);

    // A request used to ask for updates, sent again to return the license (someone who saw
    // the request file): refused, nothing changes. Sent again for updates, it is a retry.
    let asked = a.request(FIRM, unix_now()).unwrap();
    assert!(gw.updates(&asked).unwrap().is_none());
    let before = events(&app);
    let e = gw.deactivate(&[ids[0]], &asked).unwrap_err();
    assert_eq!(e.code, "context_mismatch", "{e}");
    assert!(e.message.contains("already used for updates"), "{e}");
    assert_eq!(license(&app, ids[0]).0, "activated");
    assert_eq!(events(&app), before);
    assert!(gw.updates(&asked).unwrap().is_none());
    // A fresh request returns it.
    online::deactivate(&gw, &mut a, FIRM, &[ids[0]], &mut keep).unwrap();
    assert_eq!(license(&app, ids[0]).0, "available");
}

#[test]
fn a_container_rolled_back_to_an_old_copy_is_marked_as_manipulated() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "M-1", "SNP-SINGLE", 2);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &[ids[0]], &mut keep).unwrap();
    let copy = c.clone();
    online::deactivate(&gw, &mut c, FIRM, &[ids[0]], &mut keep).unwrap();
    assert_eq!(license(&app, ids[0]).0, "available");
    // The copy still holds the returned license and asks for more.
    let mut copy = copy;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = online::activate(&gw, &mut copy, &ticket, &[ids[1]], &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
    let (_, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(v["state"], "manipulated");
    assert!(
        v["state_reason"]
            .as_str()
            .unwrap()
            .contains("restored from a copy"),
        "{v}"
    );
    assert_eq!(license(&app, ids[1]).0, "available");
    // Automatic handling stops for it, also for the genuine copy.
    let e = online::activate(&gw, &mut c, &ticket, &[ids[1]], &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected");
    let (_, h) = app.admin("GET", "/api/v1/history", None);
    let found = h
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "container.manipulation_detected");
    assert!(found, "{h}");
}

#[test]
fn a_rotated_firm_key_reaches_containers_already_in_the_field() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "K-1", "SNP-SINGLE", 2);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &[ids[0]], &mut keep).unwrap();
    let old_keys: BTreeSet<String> = c.firms[&FIRM].keys.keys().cloned().collect();
    let sys = licentia::domain::Actor::system(licentia::domain::Interface::Cli);
    let new_key = app
        .rt
        .block_on(licentia::service::firms::rotate_key(&app.core, &sys, FIRM))
        .unwrap();
    assert!(!old_keys.contains(&new_key));
    online::activate(&gw, &mut c, &ticket, &[ids[1]], &mut keep).unwrap();
    assert!(c.firms[&FIRM].keys.contains_key(&new_key));
    let signed_by: Vec<&str> = c.firms[&FIRM]
        .content
        .entries
        .values()
        .map(|e| e.key_id.as_str())
        .collect();
    assert_eq!(signed_by.len(), 2);
    assert!(signed_by.contains(&new_key.as_str()));
    assert_eq!(
        c.check(FIRM, 1001, 1, &traits(), unix_now())
            .unwrap()
            .license_ids,
        ids
    );
    // Years of rotations: a container that trusts every key the firm has had (20 now)
    // still asks, and gets its update from the newest key.
    for _ in 0..18 {
        app.rt
            .block_on(licentia::service::firms::rotate_key(&app.core, &sys, FIRM))
            .unwrap();
    }
    let mut veteran = new_act(&gw);
    assert_eq!(veteran.firms[&FIRM].keys.len(), 20);
    let (ticket4, ids4) = ticket_with(&app, "K-3", "SNP-SINGLE", 1);
    online::activate(&gw, &mut veteran, &ticket4, &ids4, &mut keep).unwrap();
    // A container that trusts only a forged key refuses the update.
    let mut forged = new_act(&gw);
    forged.firms.get_mut(&FIRM).unwrap().keys =
        [("0011223344556677".to_string(), "AAAA".to_string())].into();
    let (ticket3, ids3) = ticket_with(&app, "K-2", "SNP-SINGLE", 1);
    let e = online::activate(&gw, &mut forged, &ticket3, &ids3, &mut keep).unwrap_err();
    assert_eq!(e.code, "invalid_update", "{e}");
}

#[test]
fn ticket_rules_decide_what_may_be_activated_and_returned() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "KEEP-1", "name": "No return", "kind": "license",
            "product_code": 2001, "options": {"deactivation_allowed": false}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"single_container": true, "activation_mode": "all"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("RULE-1", "C-R", &[("SNP-SINGLE", 1), ("KEEP-1", 1)])),
    );
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let ids = license_ids(&app, &ticket);
    let (_, info) = app.call(
        "GET",
        &format!("/api/v1/gateway/tickets/{ticket}"),
        None,
        None,
    );
    assert_eq!(
        (
            info["activation_mode"].as_str(),
            info["single_container"].as_bool()
        ),
        (Some("all"), Some(true))
    );
    assert_eq!(info["licenses"][1]["returnable"], false);

    // Mode `all`: picking one of two is refused; all at once works.
    let mut a = new_act(&gw);
    let e = online::activate(&gw, &mut a, &ticket, &[ids[0]], &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert_eq!(license(&app, ids[0]).0, "available");
    let done = online::activate(&gw, &mut a, &ticket, &[], &mut keep).unwrap();
    assert_eq!(done.added, ids);
    // The item that may not be returned stays; the other one goes.
    let e = online::deactivate(&gw, &mut a, FIRM, &[ids[1]], &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    online::deactivate(&gw, &mut a, FIRM, &[ids[0]], &mut keep).unwrap();
    // One container per ticket: the returned license cannot go elsewhere.
    let mut b = new_act(&gw);
    let e = online::activate(&gw, &mut b, &ticket, &[], &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains(&a.serial), "{e}");
    online::activate(&gw, &mut a, &ticket, &[], &mut keep).unwrap();
    // A dongle-only license cannot go into an act container.
    let (s, _) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "DONGLE-ONLY", "name": "Dongle", "kind": "license",
            "product_code": 2002, "options": {"container_types": ["dongle"]}}),
        ),
    );
    assert_eq!(s, 201);
    let (t2, ids2) = ticket_with(&app, "RULE-2", "DONGLE-ONLY", 1);
    let e = online::activate(&gw, &mut b, &t2, &ids2, &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
}

/// A container holds licenses of two firm codes; a return asked for one firm may not name
/// the other's license, and nothing changes.
#[test]
fn a_return_names_only_licenses_of_its_firm_code() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    app.rt
        .block_on(licentia::service::firms::ensure(
            &app.core,
            &crate::harness::system(),
            6000020,
            "Second Firm",
        ))
        .unwrap();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "OTHER-1", "name": "Other firm's product", "kind": "license",
            "product_code": 3001, "firm_code": 6000020}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (ticket, ids) = ticket_of(&app, "FIRMS-1", &[("SNP-SINGLE", 1), ("OTHER-1", 1)]);
    let mut a = new_act(&gw);
    for id in &ids {
        online::activate(&gw, &mut a, &ticket, &[*id], &mut keep).unwrap();
    }
    let held = |app: &TestApp| ids.iter().map(|id| license(app, *id)).collect::<Vec<_>>();
    let before = (events(&app), held(&app));
    assert!(before.1.iter().all(|l| l.0 == "activated"), "{before:?}");
    let e = online::deactivate(&gw, &mut a, FIRM, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e}");
    assert!(e.message.contains("another firm code"), "{e}");
    assert_eq!((events(&app), held(&app)), before);
}

/// The same receipt sent many times at once (PostgreSQL runs them on several writers):
/// one confirms, the others find it confirmed; the license is activated once.
#[test]
fn a_receipt_sent_many_times_at_once_confirms_once() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "RCPT-1", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    let issued = gw
        .activate(&ticket, &ids, &a.request(FIRM, unix_now()).unwrap())
        .unwrap();
    let receipt = a.apply(&issued.update, unix_now()).unwrap().receipt;
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| s.spawn(|| Gateway::new(&app.base).receipt(&receipt)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let confirmed: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        confirmed.iter().filter(|c| !c.already_confirmed).count(),
        1,
        "{confirmed:?}"
    );
    assert!(confirmed.iter().all(|c| c.counter == 1), "{confirmed:?}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(a.serial.clone()))
    );
    let once = format!(
        "events WHERE action = 'license.activated' AND license_id = {}",
        ids[0]
    );
    assert_eq!(app.count(&once), 1);
    assert_eq!(app.count("events WHERE action = 'update.confirmed'"), 1);
}

/// A first request that shows licenses this server never issued, or an encryption key no
/// update can be sealed for, is refused and leaves nothing behind: no container registered
/// (its serial stays free for the real one), no event, no license touched.
#[test]
fn a_made_up_first_request_is_refused_and_leaves_nothing_behind() {
    use licentia::protocol::{self, crypto::SigningKey, Context, FirmContent};
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "N-1", "SNP-SINGLE", 1);
    let t = gw.template(FIRM).unwrap();
    let (containers, before) = (app.count("containers"), events(&app));
    // A dongle never seen here that claims to have applied an update.
    let dongle = || {
        let mut d =
            Container::create(ContainerType::Dongle, Some("3-7788990".into()), &[], 0).unwrap();
        d.trust(t.firm_code, &t.firm_name, &t.keys);
        d
    };
    let mut forged = dongle();
    forged.firms.get_mut(&FIRM).unwrap().counter = 1;
    let e = gw
        .activate(
            &ticket,
            &[ids[0]],
            &forged.request(FIRM, unix_now()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.code, "invalid_message", "{e}");
    assert!(
        e.message
            .contains("must show firm update counter 0 and no licenses; it shows counter 1"),
        "{e}"
    );
    // A new act container whose encryption key is a low-order point (all zeros).
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let key = SigningKey::generate();
    let ctx = Context {
        kind: "request".into(),
        v: protocol::VERSION,
        serial: "new".into(),
        container_type: ContainerType::Act,
        firm_code: FIRM,
        counter: 0,
        digest: FirmContent::default().digest(),
        sign_key: b64(&key.public()),
        enc_key: b64(&[0u8; 32]),
        fingerprint: vec![],
        known_keys: vec![],
        nonce: protocol::nonce(),
        created_at: unix_now(),
        update_id: None,
        units_used: vec![],
    };
    let e = gw
        .activate(&ticket, &[ids[0]], &protocol::write_context(&ctx, &key))
        .unwrap_err();
    assert_eq!(e.code, "invalid_message", "{e}");
    assert!(e.message.contains("enc_key"), "{e}");
    assert_eq!(
        (app.count("containers"), events(&app)),
        (containers, before)
    );
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    // The real dongle of that serial registers and activates.
    let mut real = dongle();
    online::activate(&gw, &mut real, &ticket, &[ids[0]], &mut keep).unwrap();
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some("3-7788990".into()))
    );

    // A path segment or query string that does not parse: a 400 in the JSON error form.
    for path in [
        "/api/v1/gateway/template/abc".to_string(),
        format!("/api/v1/licenses/{}x", ids[0]),
    ] {
        let (s, v) = app.admin("GET", &path, None);
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["error"]["code"], "malformed_request", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with("path"),
            "{v}"
        );
    }
    let r = ureq::post(&format!(
        "{}/api/v1/gateway/files/activate?ticket={ticket}&licence=1",
        app.base
    ))
    .send_string(&real.request(FIRM, unix_now()).unwrap());
    let Err(ureq::Error::Status(400, r)) = r else {
        panic!("{r:?}")
    };
    let v: serde_json::Value = r.into_json().unwrap();
    assert_eq!(v["error"]["code"], "malformed_request", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("licence"),
        "{v}"
    );
}

/// Two licenses of a one-container ticket activated at the same moment into two containers:
/// one wins and the other is refused, every time; the ticket is never split (on PostgreSQL
/// two writers run side by side).
#[test]
fn two_activations_at_once_do_not_split_a_one_container_ticket() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"single_container": true})),
    );
    assert_eq!(s, 200, "{v}");
    for round in 0..12 {
        let (ticket, ids) = ticket_with(&app, &format!("SPLIT-{round}"), "SNP-SINGLE", 2);
        let start = std::sync::Barrier::new(2);
        let results: Vec<_> = std::thread::scope(|s| {
            let runs: Vec<_> = ids
                .iter()
                .map(|id| {
                    let (base, ticket, start) = (&app.base, &ticket, &start);
                    s.spawn(move || {
                        let gw = Gateway::new(base);
                        let mut c = new_act(&gw);
                        start.wait();
                        online::activate(&gw, &mut c, ticket, &[*id], &mut keep)
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "round {round}: {results:?}");
        assert_eq!(refused[0].code, "not_allowed", "{}", refused[0]);
        let serials: BTreeSet<Option<String>> = ids
            .iter()
            .map(|id| license(&app, *id).1)
            .filter(Option::is_some)
            .collect();
        assert_eq!(serials.len(), 1, "round {round}: {serials:?}");
    }
}

#[test]
fn the_gateway_holds_back_ticket_guessing() {
    // A rate per address on this node, and failures counted in the database for every node
    // (shared with the portal's login).
    let app = TestApp::start_with(|c| {
        c.gateway_ticket_lookups_per_minute = 30;
        c.portal_login_limit = 3;
    });
    let (ticket, ids) = ticket_with(&app, "G-1", "SNP-SINGLE", 1);
    let agent = ureq::AgentBuilder::new().build();
    let get = |code: &str| match agent
        .get(&format!("{}/api/v1/gateway/tickets/{code}", app.base))
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => (
            r.status(),
            r.header("retry-after").map(str::to_string),
            r.into_json::<Value>().unwrap(),
        ),
        Err(e) => panic!("{e}"),
    };
    // Three well-formed tickets that do not exist: then this address is held back, also
    // for the real ticket, with the time to wait.
    let mut guesses = vec![];
    while guesses.len() < 3 {
        let g = licentia::domain::ticket::TicketCode::generate().to_string();
        if g != ticket {
            guesses.push(g);
        }
    }
    for g in &guesses {
        let (s, _, v) = get(g);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("unknown_ticket")),
            "{v}"
        );
    }
    let (s, retry, v) = get(&ticket);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // So is an activation naming it; nothing changes.
    let gw = Gateway::new(&app.base);
    let mut c = new_act(&gw);
    let e = gw
        .activate(&ticket, &ids, &c.request(FIRM, unix_now()).unwrap())
        .unwrap_err();
    assert_eq!(e.code, "rate_limited", "{e}");
    assert_eq!(license(&app, ids[0]).0, "available");
    // Counted where the portal's login counts (the same hold on every node).
    let count = app.count("portal_login_failures");
    assert_eq!(
        count, 6,
        "three failures of the address, one of each ticket"
    );

    // Another address (through a trusted proxy it names) is not held back by these
    // failures, but its rate is its own: a burst of 10, then 30 a minute: 429 with the wait.
    let app2 = TestApp::start_with(|c| {
        c.gateway_ticket_lookups_per_minute = 30;
        c.trusted_proxies = "127.0.0.1".into();
    });
    let (ticket2, _) = ticket_with(&app2, "G-2", "SNP-SINGLE", 1);
    let from = |addr: &str| match agent
        .get(&format!("{}/api/v1/gateway/tickets/{ticket2}", app2.base))
        .set("X-Forwarded-For", addr)
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            (r.status(), r.header("retry-after").map(str::to_string))
        }
        Err(e) => panic!("{e}"),
    };
    for i in 0..10 {
        assert_eq!(from("203.0.113.7").0, 200, "lookup {i}");
    }
    let (s, retry) = from("203.0.113.7");
    assert_eq!(s, 429);
    assert_eq!(retry.as_deref(), Some("2"), "one lookup every two seconds");
    assert_eq!(
        from("203.0.113.8").0,
        200,
        "another address has its own rate"
    );
}

/// An item's activation limit: a customer's activations and re-activations of one license
/// within the period are counted (confirmed ones), and one more is refused, saying when it
/// can be activated again.
#[test]
fn an_activation_limit_stops_deactivate_reactivate_loops() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "LIMIT-2", "name": "Twice a month", "product_code": 4242,
            "options": {"activation_limit": {"activations": 2, "days": 30},
                "self_service_count": 5}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "LIMIT-0", "name": "Bad", "product_code": 4243,
            "options": {"activation_limit": {"activations": 0, "days": 30}}}),
        ),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "LIMIT-1", "LIMIT-2", 1);
    let mut a = new_act(&gw);
    for _ in 0..2 {
        online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
        online::deactivate(&gw, &mut a, FIRM, &ids, &mut keep).unwrap();
    }
    let e = online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
    assert!(
        e.message.contains("activated 2 times in the last 30 days"),
        "{e:?}"
    );
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    // A re-activation from a lost container counts the same way.
    let (ticket, ids) = ticket_with(&app, "LIMIT-2", "LIMIT-2", 1);
    let mut b = new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
    online::reactivate(&gw, &mut b, &ticket, &ids, &mut keep).unwrap();
    let mut c = new_act(&gw);
    let e = online::reactivate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(b.serial.clone()))
    );
}

#[test]
fn a_license_with_maintenance_covers_only_versions_released_before_it_ended() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "SNP-MAINT", "name": "With maintenance", "product_code": 1001,
            "options": {"feature_map": 1, "maintenance_period_days": 30}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (ticket, ids) = ticket_with(&app, "MAINT-1", "SNP-MAINT", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap();
    let now = unix_now();
    let day = 86_400;
    // The first use starts the maintenance period.
    let ok = c
        .check_release(FIRM, 1001, 0, &traits(), now, Some(now - 100 * day))
        .unwrap();
    let ends = ok.maintenance_ends.expect("a maintenance end");
    assert!((ends - (now + 30 * day)).abs() <= 1, "{ends}");
    c.check_release(FIRM, 1001, 0, &traits(), now, Some(now + 29 * day))
        .unwrap();
    let e = c
        .check_release(FIRM, 1001, 0, &traits(), now, Some(now + 31 * day))
        .unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
    assert!(e.message.contains("maintenance ended"), "{e}");
    // A version that does not say when it was released is not held to it, and the days go
    // on counting from the first use, not from each check.
    c.check(FIRM, 1001, 0, &traits(), now + 40 * day).unwrap();
    let e = c
        .check_release(
            FIRM,
            1001,
            0,
            &traits(),
            now + 41 * day,
            Some(now + 35 * day),
        )
        .unwrap_err();
    assert!(e.message.contains("maintenance ended"), "{e}");
}

/// The firm's `fingerprint_tolerance` reaches the containers: one that trusts the firm by
/// its license template takes the firm's tolerance when it is stricter than its own.
#[test]
fn the_firms_fingerprint_tolerance_binds_containers_that_trust_it() {
    let app = TestApp::start();
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"fingerprint_tolerance": 1})),
    );
    assert_eq!(s, 200, "{v}");
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "T-1", "SNP-SINGLE", 1);
    let mut c = new_act(&gw);
    assert_eq!(c.tolerance, 1);
    online::activate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap();
    let mut moved = traits();
    moved[0].1 = "another machine id".into();
    assert!(c.check(FIRM, 1001, 1, &moved, unix_now()).is_ok());
    moved[1].1 = "another host name".into();
    let e = c.check(FIRM, 1001, 1, &moved, unix_now()).unwrap_err();
    assert_eq!(e.code, "fingerprint_mismatch", "{e}");
    assert!(e.message.contains("at most 1 may"), "{e}");
}
