//! Production orders: dongles programmed on the production line through the JSON API, as
//! the dongle bridge does it, with the client runtime's dongle containers (create, trust
//! the firm's template, request → program → apply → receipt).
use std::collections::{BTreeMap, BTreeSet};

use licentia::client::online::Gateway;
use licentia::client::{unix_now, Container};
use licentia::domain::{ContainerType, Role};
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with, FIRM};
use crate::harness::{TestApp, ADMIN_PW};

/// The production line's user (role `production`).
const LINE: &str = "line";
const LINE_PW: &str = "line-password-123";

fn start() -> TestApp {
    let app = TestApp::start();
    assert_eq!(app.add_user(LINE, Role::Production), LINE_PW);
    app
}

/// Creates a production order as the admin; its answer.
fn create(app: &TestApp, erp: &str, dongles: i64, lines: &[(&str, i64)]) -> Value {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(json!({"erp_order_id": erp, "dongles": dongles,
            "lines": lines.iter().map(|(i, q)| json!({"item_id": i, "quantity": q}))
                .collect::<Vec<_>>()})),
    );
    assert_eq!(s, 201, "{v}");
    v
}

fn id_of(po: &Value) -> i64 {
    po["production_order_id"].as_i64().unwrap()
}

fn view(app: &TestApp, po: i64) -> Value {
    let (s, v) = app.admin("GET", &format!("/api/v1/production/orders/{po}"), None);
    assert_eq!(s, 200, "{v}");
    v
}

/// A fresh dongle with its serial from production, trusting the firm's template.
fn dongle(app: &TestApp, serial: &str) -> Container {
    let mut c = Container::create(ContainerType::Dongle, Some(serial.into()), &[], 0).unwrap();
    let t = Gateway::new(&app.base).template(FIRM).unwrap();
    c.trust(t.firm_code, &t.firm_name, &t.keys);
    c
}

/// The production line asks at `base` (a node) for the update of the dongle that made
/// `request`. A `busy` answer (nothing was written: on PostgreSQL, every free slot was
/// being taken by another request at that moment) is sent again, as the bridge does.
fn program_at(base: &str, po: i64, station: &str, request: &str) -> (u16, Value) {
    let auth = Some((LINE, LINE_PW));
    let body = json!({"station": station, "request": request});
    for _ in 0..100 {
        let (s, v) = crate::harness::call_at(
            base,
            "POST",
            &format!("/api/v1/production/orders/{po}/program"),
            auth,
            Some(body.clone()),
        );
        if s != 503 {
            return (s, v);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("dongle request to production order {po}: still busy after 100 tries")
}

fn program(app: &TestApp, po: i64, station: &str, c: &mut Container) -> (u16, Value) {
    let request = c.request(FIRM, unix_now()).unwrap();
    program_at(&app.base, po, station, &request)
}

fn post_receipt(app: &TestApp, po: i64, station: &str, receipt: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/api/v1/production/orders/{po}/receipt"),
        Some((LINE, LINE_PW)),
        Some(json!({"station": station, "receipt": receipt})),
    )
}

fn failed(app: &TestApp, po: i64, serial: &str, written: bool, reason: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/api/v1/production/orders/{po}/failed"),
        Some((LINE, LINE_PW)),
        Some(
            json!({"station": "st-1", "serial": serial, "written": written,
            "reason": reason}),
        ),
    )
}

/// Applies the update of a program answer in the dongle; its receipt.
fn apply(c: &mut Container, answer: &Value) -> String {
    c.apply(answer["update"].as_str().unwrap(), unix_now())
        .unwrap()
        .receipt
}

/// Programs dongle `c` the whole way; its slot.
fn program_fully(app: &TestApp, po: i64, station: &str, c: &mut Container) -> i64 {
    let (s, v) = program(app, po, station, c);
    assert_eq!(s, 200, "{v}");
    let receipt = apply(c, &v);
    let (s, r) = post_receipt(app, po, station, &receipt);
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["programmed"].as_bool(), r["slot"].as_i64()),
        (Some(true), v["slot"].as_i64())
    );
    v["slot"].as_i64().unwrap()
}

/// The licenses each slot owns, from the order's lines: slot s (1-based) gets, of every
/// line, the per-dongle quantity of licenses from (s - 1) × that quantity on.
fn expected_slots(app: &TestApp, po: &Value) -> BTreeMap<i64, BTreeSet<i64>> {
    let (s, order) = app.admin(
        "GET",
        &format!(
            "/api/v1/orders/{}/{}",
            po["source"].as_str().unwrap(),
            po["erp_order_id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(s, 200, "{order}");
    let dongles = po["dongles"].as_i64().unwrap();
    let mut out: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for (line, per) in order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .zip(po["lines"].as_array().unwrap())
    {
        let q = per["quantity"].as_i64().unwrap() as usize;
        let ids: Vec<i64> = line["licenses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), q * dongles as usize);
        for slot in 1..=dongles {
            let from = (slot as usize - 1) * q;
            out.entry(slot).or_default().extend(&ids[from..from + q]);
        }
    }
    out
}

/// What the server holds of container `serial`: license id → state.
fn held(app: &TestApp, serial: &str) -> BTreeMap<i64, String> {
    let (s, v) = app.admin("GET", &format!("/api/v1/containers/{serial}"), None);
    assert_eq!(s, 200, "{v}");
    v["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["license_id"].as_i64().unwrap(),
                l["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(app: &TestApp, what: &str) -> i64 {
    app.count(what)
}

fn refusals(app: &TestApp, reason: &str) -> i64 {
    count(
        app,
        &format!(
            "events WHERE action = 'production.dongle_refused' AND details LIKE '%\"reason\":\"{reason}\"%'"
        ),
    )
}

#[test]
fn a_production_order_ends_with_every_dongle_holding_exactly_its_slots_licenses() {
    let app = start();
    let po = create(&app, "PO-1", 4, &[("SNP-FLOAT-5", 1), ("SNP-SINGLE", 2)]);
    let id = id_of(&po);
    assert_eq!(
        (
            po["dongles"].as_i64(),
            po["remaining"].as_i64(),
            po["created"].as_bool()
        ),
        (Some(4), Some(4), Some(true))
    );
    assert_eq!(po["customer_id"], "production");
    assert_eq!(
        po["lines"],
        json!([{"item_id": "SNP-FLOAT-5", "quantity": 1}, {"item_id": "SNP-SINGLE", "quantity": 2}])
    );
    let want = expected_slots(&app, &po);

    // The first dongle: its update issued, no receipt yet.
    let mut dongles: Vec<Container> = (1..=4)
        .map(|n| dongle(&app, &format!("3-100000{n}")))
        .collect();
    let (s, first) = program(&app, id, "st-1", &mut dongles[0]);
    assert_eq!(s, 200, "{first}");
    assert_eq!(
        (first["slot"].as_i64(), first["serial"].as_str()),
        (Some(1), Some("3-1000001"))
    );
    let added: BTreeSet<i64> = first["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().unwrap())
        .collect();
    assert_eq!(added, want[&1]);
    let v = view(&app, id);
    assert_eq!(
        (
            v["assigned"].as_i64(),
            v["programmed"].as_i64(),
            v["remaining"].as_i64()
        ),
        (Some(1), Some(0), Some(3))
    );
    assert_eq!(v["slots"][0]["state"], "assigned");
    assert_eq!(v["slots"][0]["station"], "st-1");
    assert_eq!(v["complete"], false);
    for l in &want[&1] {
        assert_eq!(
            license(&app, *l),
            ("pending".into(), Some("3-1000001".into()))
        );
    }
    let receipt = apply(&mut dongles[0], &first);
    let (s, r) = post_receipt(&app, id, "st-1", &receipt);
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["programmed"].as_bool(), r["already_confirmed"].as_bool()),
        (Some(true), Some(false))
    );
    // Sent again: the same answer, recorded once.
    let (s, again) = post_receipt(&app, id, "st-1", &receipt);
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        (
            again["programmed"].as_bool(),
            again["already_confirmed"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_programmed'"),
        1
    );

    // Two stations share the rest; the last receipt comes through the plain gateway.
    assert_eq!(program_fully(&app, id, "st-2", &mut dongles[1]), 2);
    assert_eq!(program_fully(&app, id, "st-1", &mut dongles[2]), 3);
    let (s, last) = program(&app, id, "st-2", &mut dongles[3]);
    assert_eq!(s, 200, "{last}");
    let receipt = apply(&mut dongles[3], &last);
    Gateway::new(&app.base).receipt(&receipt).unwrap();

    let v = view(&app, id);
    assert_eq!(
        (
            v["programmed"].as_i64(),
            v["assigned"].as_i64(),
            v["remaining"].as_i64(),
            v["failed"].as_i64()
        ),
        (Some(4), Some(0), Some(0), Some(0)),
        "{v}"
    );
    assert_eq!(v["complete"], true);
    assert_eq!(v["stations"], json!({"st-1": 2, "st-2": 2}));
    // The plain gateway receipt counts for the slot; only the production door records it.
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_programmed'"),
        3
    );
    for (n, c) in dongles.iter_mut().enumerate() {
        let slot = n as i64 + 1;
        let s = &v["slots"][n];
        assert_eq!(
            (s["slot"].as_i64(), s["serial"].as_str()),
            (Some(slot), Some(c.serial.as_str()))
        );
        assert_eq!(s["state"], "programmed");
        assert!(s["programmed_at"].is_string(), "{s}");
        // The server and the dongle itself hold exactly the slot's licenses.
        let on_server = held(&app, &c.serial);
        assert_eq!(
            on_server.keys().copied().collect::<BTreeSet<_>>(),
            want[&slot]
        );
        assert!(
            on_server.values().all(|st| st == "activated"),
            "{on_server:?}"
        );
        let in_dongle: BTreeSet<i64> = c.firms[&FIRM].content.entries.keys().copied().collect();
        assert_eq!(in_dongle, want[&slot]);
        assert_eq!(c.firms[&FIRM].counter, 1);
        // And the vendor's software finds them in the dongle with no server.
        let found = c.check(FIRM, 1002, 1, &[], unix_now()).unwrap();
        assert_eq!(found.quantity, 5);
        assert_eq!(
            c.check(FIRM, 1001, 1, &[], unix_now())
                .unwrap()
                .license_ids
                .len(),
            2
        );
    }
    // Every license of the ticket is in exactly one dongle.
    let all: BTreeSet<i64> = want.values().flatten().copied().collect();
    assert_eq!(all.len(), 12);

    // A fifth dongle: no slot left; refused, recorded, and nothing of it is kept.
    let events = count(&app, "events");
    let mut fifth = dongle(&app, "3-1000005");
    let (s, e) = program(&app, id, "st-1", &mut fifth);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert_eq!(
        e["error"]["message"],
        format!("conflict: production order {id} has no dongle left to program")
    );
    assert_eq!(count(&app, "events"), events + 1);
    assert_eq!(refusals(&app, "conflict"), 1);
    let (s, _) = app.admin("GET", "/api/v1/containers/3-1000005", None);
    assert_eq!(s, 404);

    // The history of the order tells every dongle.
    let (_, h) = app.admin(
        "GET",
        &format!("/api/v1/history?order_id={}", v["order_id"]),
        None,
    );
    let actions: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "production.dongle_assigned")
            .count(),
        4
    );
    assert!(actions.contains(&"production.order_created"), "{actions:?}");
    assert!(
        actions.contains(&"production.dongle_refused"),
        "{actions:?}"
    );
}

#[test]
fn a_retried_program_gets_its_own_slot_and_a_programmed_dongle_is_refused() {
    let app = start();
    let id = id_of(&create(&app, "PO-R", 3, &[("SNP-FLOAT-5", 1)]));
    let mut d = dongle(&app, "3-2000001");
    let request = d.request(FIRM, unix_now()).unwrap();
    let (s, first) = program_at(&app.base, id, "st-1", &request);
    assert_eq!(s, 200, "{first}");
    // The same request again (its answer was lost), and a new request (the bridge
    // restarted, at another station): the same slot, never a second one.
    let (s, same) = program_at(&app.base, id, "st-1", &request);
    assert_eq!(s, 200, "{same}");
    let (s, again) = program(&app, id, "st-2", &mut d);
    assert_eq!(s, 200, "{again}");
    for answer in [&same, &again] {
        assert_eq!(answer["slot"], first["slot"]);
        assert_eq!(answer["added"], first["added"]);
        assert_ne!(answer["update_id"], first["update_id"]);
    }
    let v = view(&app, id);
    assert_eq!(
        (v["assigned"].as_i64(), v["remaining"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["slots"][0]["station"], "st-2");
    assert_eq!(count(&app, "production_slots WHERE serial IS NOT NULL"), 1);
    // The last update is the one written; its receipt programs the slot.
    let receipt = apply(&mut d, &again);
    let (s, r) = post_receipt(&app, id, "st-2", &receipt);
    assert_eq!((s, r["programmed"].as_bool()), (200, Some(true)), "{r}");
    // Asking again once programmed: refused, with the slot named.
    let (s, e) = program(&app, id, "st-1", &mut d);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert_eq!(
        e["error"]["message"],
        format!(
            "conflict: dongle 3-2000001 is already programmed: slot 1 of production order {id}"
        )
    );

    // A receipt lost on the way: the dongle's next request proves the update; the slot is
    // programmed (that stays) and the dongle is told so.
    let mut e2 = dongle(&app, "3-2000002");
    let (s, v2) = program(&app, id, "st-1", &mut e2);
    assert_eq!(s, 200, "{v2}");
    apply(&mut e2, &v2);
    let (s, e) = program(&app, id, "st-1", &mut e2);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already programmed: slot 2"),
        "{e}"
    );
    let v = view(&app, id);
    assert_eq!(v["slots"][1]["state"], "programmed", "{v}");
    assert_eq!(
        (v["programmed"].as_i64(), v["remaining"].as_i64()),
        (Some(2), Some(1))
    );
    for l in v2["added"].as_array().unwrap() {
        assert_eq!(license(&app, l.as_i64().unwrap()).0, "activated");
    }
    assert_eq!(refusals(&app, "conflict"), 2);
}

#[test]
fn concurrent_programs_of_different_dongles_never_share_a_slot() {
    let app = start();
    let node = app.second_node();
    let id = id_of(&create(&app, "PO-C", 10, &[("SNP-FLOAT-5", 1)]));
    // 14 dongles for 10 slots, from two bridges on two nodes at once; three of them ask
    // twice at the same time (a bridge retrying while its first request is under way).
    let mut dongles: Vec<Container> = (0..14)
        .map(|n| dongle(&app, &format!("3-30000{n:02}")))
        .collect();
    let mut asks: Vec<(usize, String, String)> = vec![];
    for (n, d) in dongles.iter_mut().enumerate() {
        let base = if n % 2 == 0 { &app.base } else { &node.base };
        for _ in 0..(if n < 3 { 2 } else { 1 }) {
            asks.push((n, base.clone(), d.request(FIRM, unix_now()).unwrap()));
        }
    }
    let answers: Vec<(usize, u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = asks
            .iter()
            .map(|(n, base, request)| {
                s.spawn(move || {
                    let (st, v) = program_at(base, id, &format!("st-{}", n % 3), request);
                    (*n, st, v)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut slot_of: BTreeMap<usize, i64> = BTreeMap::new();
    let mut updates: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    let mut refused = BTreeSet::new();
    for (n, status, v) in &answers {
        match status {
            200 => {
                let slot = v["slot"].as_i64().unwrap();
                // A dongle asking twice gets its one slot both times.
                assert_eq!(*slot_of.entry(*n).or_insert(slot), slot, "{answers:?}");
                updates.entry(*n).or_default().push(v.clone());
            }
            409 => {
                assert_eq!(v["error"]["code"], "conflict", "{v}");
                refused.insert(*n);
            }
            other => panic!("dongle {n}: {other} {v}"),
        }
    }
    assert_eq!(slot_of.len(), 10, "{answers:?}");
    assert_eq!(refused.len(), 4, "{answers:?}");
    let slots: BTreeSet<i64> = slot_of.values().copied().collect();
    assert_eq!(slots, (1..=10).collect(), "two dongles never share a slot");
    // Every one of them programs its slot; the slots own disjoint licenses.
    let mut licenses = BTreeSet::new();
    for (n, answers) in &updates {
        let c = &mut dongles[*n];
        let receipt = apply(c, answers.last().unwrap());
        let (s, r) = post_receipt(&app, id, "st-0", &receipt);
        assert_eq!((s, r["programmed"].as_bool()), (200, Some(true)), "{r}");
        for l in held(&app, &c.serial).keys() {
            assert!(licenses.insert(*l), "license {l} in two dongles");
        }
    }
    let v = view(&app, id);
    assert_eq!(
        (v["programmed"].as_i64(), v["complete"].as_bool()),
        (Some(10), Some(true)),
        "{v}"
    );
    assert_eq!(licenses.len(), 10);
    assert_eq!(count(&app, "production_slots WHERE serial IS NOT NULL"), 10);
    assert_eq!(count(&app, "licenses WHERE state = 'activated'"), 10);
    // The refused dongles were not kept.
    for n in &refused {
        let (s, _) = app.admin(
            "GET",
            &format!("/api/v1/containers/{}", dongles[*n].serial),
            None,
        );
        assert_eq!(s, 404);
    }
}

/// What a refusal must leave as it was: the slots, the order's licenses, the containers
/// and their updates.
fn snapshot(app: &TestApp, po: i64) -> (Value, i64, i64, i64) {
    let mut v = view(app, po);
    v["created"] = Value::Null;
    (
        v,
        count(app, "licenses WHERE state <> 'available'"),
        count(app, "containers"),
        count(app, "updates"),
    )
}

#[test]
fn every_refusal_says_why_and_changes_nothing() {
    let app = start();
    let gw = Gateway::new(&app.base);
    let a = id_of(&create(&app, "PO-A", 2, &[("SNP-FLOAT-5", 1)]));
    let b = id_of(&create(&app, "PO-B", 2, &[("SNP-FLOAT-5", 1)]));
    let mut programmed = dongle(&app, "3-4000001");
    program_fully(&app, a, "st-1", &mut programmed);
    let before = snapshot(&app, b);
    let refused = |c: &mut Container, status: u16, code: &str, message: &str| {
        let events = count(&app, "events");
        let (s, e) = program(&app, b, "st-9", c);
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{e}"
        );
        assert_eq!(e["error"]["message"], message, "{e}");
        assert_eq!(
            count(&app, "events"),
            events + 1,
            "only the refusal is recorded"
        );
        assert_eq!(snapshot(&app, b), before);
        e
    };

    // A dongle programmed in another production order of this firm.
    refused(
        &mut programmed,
        403,
        "not_allowed",
        "not allowed: dongle 3-4000001 already holds licenses of firm code 6000010; recycle it first",
    );
    // One that got this firm's license through the gateway.
    let (ticket, ids) = ticket_with(&app, "T-1", "SNP-FLOAT-5", 1);
    let mut customers = dongle(&app, "3-4000002");
    let issued = gw
        .activate(&ticket, &ids, &customers.request(FIRM, unix_now()).unwrap())
        .unwrap();
    gw.receipt(&customers.apply(&issued.update, unix_now()).unwrap().receipt)
        .unwrap();
    let before = snapshot(&app, b);
    let refused_here = |c: &mut Container, status, code, message| {
        let events = count(&app, "events");
        let (s, e) = program(&app, b, "st-9", c);
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{e}"
        );
        assert_eq!(e["error"]["message"], message, "{e}");
        assert_eq!(count(&app, "events"), events + 1);
        assert_eq!(snapshot(&app, b), before);
        e
    };
    refused_here(
        &mut customers,
        403,
        "not_allowed",
        "not allowed: dongle 3-4000002 already holds licenses of firm code 6000010; recycle it first",
    );

    // One of another firm.
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
            json!({"item_id": "OTHER-D", "name": "Other firm's dongle product", "kind": "license",
            "product_code": 3001, "firm_code": 6000020}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (ticket, ids) = ticket_with(&app, "T-2", "OTHER-D", 1);
    let mut other = dongle(&app, "3-4000003");
    let t = gw.template(6000020).unwrap();
    other.trust(t.firm_code, &t.firm_name, &t.keys);
    let issued = gw
        .activate(&ticket, &ids, &other.request(6000020, unix_now()).unwrap())
        .unwrap();
    gw.receipt(&other.apply(&issued.update, unix_now()).unwrap().receipt)
        .unwrap();
    let before = snapshot(&app, b);
    let refused_here = |c: &mut Container, firm: i64, status, code, message| {
        let events = count(&app, "events");
        let request = c.request(firm, unix_now()).unwrap();
        let (s, e) = program_at(&app.base, b, "st-9", &request);
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{e}"
        );
        assert_eq!(e["error"]["message"], message, "{e}");
        assert_eq!(count(&app, "events"), events + 1);
        assert_eq!(snapshot(&app, b), before);
    };
    refused_here(
        &mut other,
        FIRM,
        403,
        "not_allowed",
        "not allowed: dongle 3-4000003 belongs to firm code 6000020",
    );
    // A request for another firm code than the order's.
    refused_here(
        &mut other,
        6000020,
        403,
        "not_allowed",
        "not allowed: the request of dongle 3-4000003 is for firm code 6000020; this \
         production order programs licenses of firm code 6000010",
    );
    // An act container's request.
    let mut act = new_act(&gw);
    refused_here(
        &mut act,
        FIRM,
        403,
        "not_allowed",
        "not allowed: production programs dongles; the request is from act container new",
    );

    // A blacklisted dongle: refused with the lock, which travels with the refusal.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/blacklist",
        Some(json!({"serial": "3-4000004", "description": "stolen batch"})),
    );
    assert_eq!(s, 201, "{v}");
    let mut listed = dongle(&app, "3-4000004");
    let (s, e) = program(&app, b, "st-9", &mut listed);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("blacklisted")),
        "{e}"
    );
    assert!(
        e["error"]["update"]["update"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN LICENTIA UPDATE"),
        "{e}"
    );
    assert_eq!(refusals(&app, "blacklisted"), 1);
    let v = view(&app, b);
    assert_eq!(
        (v["remaining"].as_i64(), v["assigned"].as_i64()),
        (Some(2), Some(0))
    );

    // Not a dongle's credentials at all: a production user's password is needed.
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/production/orders/{b}/program"),
        None,
        Some(json!({"station": "st-1", "request": "x"})),
    );
    assert_eq!(s, 401);
    let (s, e) = app.call(
        "POST",
        "/api/v1/production/orders/999/program",
        Some((LINE, LINE_PW)),
        Some(json!({"station": "st-1", "request": listed.request(FIRM, unix_now()).unwrap()})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_production_order")),
        "{e}"
    );
    assert_eq!(refusals(&app, "not_allowed"), 5);
    // B is untouched and programs as usual.
    let mut fresh = dongle(&app, "3-4000005");
    assert_eq!(program_fully(&app, b, "st-1", &mut fresh), 1);
}

#[test]
fn a_failure_frees_or_keeps_its_slot_and_is_counted_once() {
    let app = start();
    let po = create(&app, "PO-F", 3, &[("SNP-FLOAT-5", 1)]);
    let id = id_of(&po);
    let want = expected_slots(&app, &po);

    // Never written: the slot is free again, its licenses available, the update void.
    let mut d = dongle(&app, "3-5000001");
    let (s, first) = program(&app, id, "st-1", &mut d);
    assert_eq!(s, 200, "{first}");
    let (s, slot) = failed(&app, id, "3-5000001", false, "dongle refused the write");
    assert_eq!(s, 200, "{slot}");
    assert_eq!(
        (
            slot["slot"].as_i64(),
            slot["state"].as_str(),
            slot["failures"].as_i64()
        ),
        (Some(1), Some("free"), Some(1))
    );
    assert_eq!(slot["serial"], Value::Null);
    assert_eq!(slot["last_failure"], "dongle refused the write");
    for l in &want[&1] {
        assert_eq!(license(&app, *l), ("available".into(), None));
    }
    let update = first["update_id"].as_i64().unwrap();
    assert_eq!(
        count(
            &app,
            &format!("updates WHERE id = {update} AND state = 'void'")
        ),
        1
    );
    // The same report again: the same answer, counted once.
    let (s, again) = failed(&app, id, "3-5000001", false, "dongle refused the write");
    assert_eq!((s, again["failures"].as_i64()), (200, Some(1)), "{again}");
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_failed'"),
        1
    );
    // The station was wrong and the dongle did get it: its receipt is refused.
    let receipt = apply(&mut d, &first);
    let (s, e) = post_receipt(&app, id, "st-1", &receipt);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_dongle")),
        "{e}"
    );
    let (s, e) = app.call(
        "POST",
        "/api/v1/gateway/receipt",
        None,
        Some(json!({"receipt": receipt})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("context_mismatch")),
        "{e}"
    );
    for l in &want[&1] {
        assert_eq!(license(&app, *l), ("available".into(), None));
    }
    // The free slot goes to the next dongle.
    let mut e2 = dongle(&app, "3-5000002");
    assert_eq!(program_fully(&app, id, "st-1", &mut e2), 1);

    // Written (or unknown): the slot stays assigned until the dongle's receipt comes.
    let mut f = dongle(&app, "3-5000003");
    let (s, v) = program(&app, id, "st-2", &mut f);
    assert_eq!((s, v["slot"].as_i64()), (200, Some(2)), "{v}");
    let receipt = apply(&mut f, &v);
    for _ in 0..2 {
        let (s, slot) = failed(
            &app,
            id,
            "3-5000003",
            true,
            "removed before the receipt was read",
        );
        assert_eq!(s, 200, "{slot}");
        assert_eq!(
            (
                slot["state"].as_str(),
                slot["serial"].as_str(),
                slot["failures"].as_i64()
            ),
            (Some("assigned"), Some("3-5000003"), Some(1))
        );
    }
    let pv = view(&app, id);
    assert_eq!(
        (
            pv["assigned"].as_i64(),
            pv["failed"].as_i64(),
            pv["remaining"].as_i64()
        ),
        (Some(1), Some(2), Some(1)),
        "{pv}"
    );
    // The dongle came back to a station: its receipt is read and uploaded.
    let (s, r) = post_receipt(&app, id, "st-3", &receipt);
    assert_eq!(
        (s, r["programmed"].as_bool(), r["slot"].as_i64()),
        (200, Some(true), Some(2)),
        "{r}"
    );
    // A programmed dongle cannot be reported as never written.
    let (s, e) = failed(&app, id, "3-5000003", false, "late report");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    let (s, e) = failed(&app, id, "3-5999999", false, "no such dongle");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_dongle")),
        "{e}"
    );
    let pv = view(&app, id);
    assert_eq!(
        (
            pv["programmed"].as_i64(),
            pv["failed"].as_i64(),
            pv["remaining"].as_i64()
        ),
        (Some(2), Some(2), Some(1)),
        "{pv}"
    );
    assert_eq!(
        pv["slots"][1]["last_failure"],
        "removed before the receipt was read"
    );

    // The first dongle's report, arriving late after its slot went to another dongle: still
    // known, not counted again.
    let (s, late) = failed(&app, id, "3-5000001", false, "dongle refused the write");
    assert_eq!(s, 200, "{late}");
    assert_eq!(
        (
            late["slot"].as_i64(),
            late["state"].as_str(),
            late["failures"].as_i64()
        ),
        (Some(1), Some("programmed"), Some(1))
    );
    // A dongle freed by its own failure tries again: its next failure counts, even for the
    // same reason; that one sent twice counts once.
    let mut g = dongle(&app, "3-5000004");
    let (s, v) = program(&app, id, "st-1", &mut g);
    assert_eq!((s, v["slot"].as_i64()), (200, Some(3)), "{v}");
    let (s, slot) = failed(&app, id, "3-5000004", false, "write error");
    assert_eq!((s, slot["state"].as_str()), (200, Some("free")), "{slot}");
    let (s, v) = program(&app, id, "st-1", &mut g);
    assert_eq!((s, v["slot"].as_i64()), (200, Some(3)), "{v}");
    for _ in 0..2 {
        let (s, slot) = failed(&app, id, "3-5000004", true, "write error");
        assert_eq!(
            (s, slot["state"].as_str(), slot["failures"].as_i64()),
            (200, Some("assigned"), Some(2)),
            "{slot}"
        );
    }
    let pv = view(&app, id);
    assert_eq!(
        (
            pv["programmed"].as_i64(),
            pv["assigned"].as_i64(),
            pv["failed"].as_i64(),
            pv["remaining"].as_i64()
        ),
        (Some(2), Some(1), Some(4), Some(0)),
        "{pv}"
    );
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_failed'"),
        4
    );

    // The report: per day and production order, programmed and failed.
    let (s, rep) = app.admin("GET", "/api/v1/reports/production", None);
    assert_eq!(s, 200, "{rep}");
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        rep["rows"],
        json!([{"day": today, "production_order_id": id, "programmed": 2, "failed": 4}])
    );
    let csv = ureq::get(&format!(
        "{}/api/v1/reports/production?format=csv",
        app.base
    ))
    .set("Authorization", &basic("admin", ADMIN_PW))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert_eq!(
        csv,
        format!("day,production_order_id,programmed,failed\r\n{today},{id},2,4\r\n")
    );
}

fn basic(user: &str, pw: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn recycle(app: &TestApp, who: (&str, &str), serial: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/api/v1/production/dongles/{serial}/recycle"),
        Some(who),
        Some(json!({"reason": "came back from a customer"})),
    )
}

#[test]
fn a_recycled_dongle_is_programmed_again() {
    let app = start();
    let sue = app.add_user("sue", Role::Support);
    let a = id_of(&create(
        &app,
        "PO-1",
        2,
        &[("SNP-FLOAT-5", 1), ("SNP-SINGLE", 1)],
    ));
    let b = id_of(&create(&app, "PO-2", 1, &[("SNP-FLOAT-5", 1)]));
    let mut d = dongle(&app, "3-6000001");
    program_fully(&app, a, "st-1", &mut d);
    let licenses: Vec<i64> = held(&app, "3-6000001").keys().copied().collect();
    let (s, e) = program(&app, b, "st-1", &mut d);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_allowed")),
        "{e}"
    );

    // Only support and admins recycle.
    let (s, e) = recycle(&app, (LINE, LINE_PW), "3-6000001");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (s, r) = recycle(&app, ("sue", &sue), "3-6000001");
    assert_eq!(s, 200, "{r}");
    let kept = r["kept_as"].as_str().unwrap().to_string();
    assert!(kept.starts_with("3-6000001~recycled-"), "{r}");
    assert_eq!(r["deleted"], json!(licenses));
    assert_eq!(
        (r["production_order_id"].as_i64(), r["slot"].as_i64()),
        (Some(a), Some(1))
    );
    for l in &licenses {
        assert_eq!(license(&app, *l), ("deleted".into(), None));
    }
    let (s, _) = app.admin("GET", "/api/v1/containers/3-6000001", None);
    assert_eq!(s, 404);
    assert_eq!(held(&app, &kept).len(), 0);
    let v = view(&app, a);
    assert_eq!(v["slots"][0]["state"], "withdrawn");
    assert_eq!(v["slots"][0]["serial"], kept.as_str());
    assert_eq!(
        (v["withdrawn"].as_i64(), v["programmed"].as_i64()),
        (Some(1), Some(0))
    );
    // Sent again: the same registration named, nothing more done.
    let (s, again) = recycle(&app, ("admin", ADMIN_PW), "3-6000001");
    assert_eq!(
        (s, again["kept_as"].as_str(), again["recycled"].as_bool()),
        (200, Some(kept.as_str()), Some(false)),
        "{again}"
    );
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_recycled'"),
        1
    );

    // Not wiped: its old keys belong to the kept registration.
    let (s, e) = program(&app, b, "st-1", &mut d);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_allowed")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("registered for container {kept}")),
        "{e}"
    );
    // Wiped (new keys): programmed again, in another order.
    let mut wiped = dongle(&app, "3-6000001");
    assert_eq!(program_fully(&app, b, "st-1", &mut wiped), 1);
    assert_eq!(view(&app, b)["complete"], true);
    // And it may come back to the first order's free slot only after another recycle.
    let (s, e) = program(&app, a, "st-1", &mut wiped);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_allowed")),
        "{e}"
    );

    // A dongle with another firm's licenses is not recycled here; an act container never.
    let gw = Gateway::new(&app.base);
    let mut act = new_act(&gw);
    let (ticket, ids) = ticket_with(&app, "T-ACT", "SNP-SINGLE", 1);
    let issued = gw
        .activate(&ticket, &ids, &act.request(FIRM, unix_now()).unwrap())
        .unwrap();
    act.apply(&issued.update, unix_now()).unwrap();
    let (s, e) = recycle(&app, ("admin", ADMIN_PW), &act.serial);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("not_allowed")),
        "{e}"
    );
    let (s, e) = recycle(&app, ("admin", ADMIN_PW), "3-6999999");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_container")),
        "{e}"
    );
}

#[test]
fn roles_decide_who_creates_programs_and_reads() {
    let app = start();
    let sam = app.add_user("sam", Role::Sales);
    let sue = app.add_user("sue", Role::Support);
    let sap = app.add_user("sap", Role::Erp);
    let body = |erp: &str| {
        json!({"erp_order_id": erp, "dongles": 2,
        "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 1}]})
    };
    let post = |who: (&str, &str), erp: &str| {
        app.call(
            "POST",
            "/api/v1/production/orders",
            Some(who),
            Some(body(erp)),
        )
    };
    // The production line creates nothing; support neither.
    for who in [(LINE, LINE_PW), ("sue", sue.as_str())] {
        let (s, e) = post(who, "R-0");
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{e}"
        );
    }
    assert_eq!(count(&app, "production_orders"), 0);
    assert_eq!(count(&app, "orders"), 0);
    let (s, v) = post(("sap", &sap), "R-1");
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(("sam", &sam), "R-2");
    assert_eq!(s, 201, "{v}");
    let id = id_of(&v);
    // Everyone of the vendor reads it.
    for who in [
        (LINE, LINE_PW),
        ("sue", sue.as_str()),
        ("sap", sap.as_str()),
        ("sam", sam.as_str()),
    ] {
        let (s, v) = app.call(
            "GET",
            &format!("/api/v1/production/orders/{id}"),
            Some(who),
            None,
        );
        assert_eq!(s, 200, "{v}");
    }
    // Sales may not program, report or free slots.
    let mut d = dongle(&app, "3-7000001");
    let request = d.request(FIRM, unix_now()).unwrap();
    let path = |what: &str| format!("/api/v1/production/orders/{id}/{what}");
    let sales = Some(("sam", sam.as_str()));
    for (what, body) in [
        ("program", json!({"station": "st-1", "request": request})),
        ("receipt", json!({"station": "st-1", "receipt": request})),
        (
            "failed",
            json!({"station": "st-1", "serial": "3-7000001", "written": false, "reason": "x"}),
        ),
    ] {
        let (s, e) = app.call("POST", &path(what), sales, Some(body));
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{what}: {e}"
        );
    }
    assert_eq!(count(&app, "containers"), 0);
    // The production line (and an admin) may.
    let (s, v) = program_at(&app.base, id, "st-1", &request);
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.admin(
        "POST",
        &path("program"),
        Some(json!({"station": "st-1",
        "request": dongle(&app, "3-7000002").request(FIRM, unix_now()).unwrap()})),
    );
    assert_eq!((s, v["slot"].as_i64()), (200, Some(2)), "{v}");

    // Cancelled: no new dongle, but one assigned may still be finished.
    let (s, e) = app.call("POST", &path("cancel"), Some((LINE, LINE_PW)), None);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (s, v) = app.call("POST", &path("cancel"), sales, None);
    assert_eq!(s, 200, "{v}");
    assert!(v["cancelled_at"].is_string(), "{v}");
    let (s, v) = program(&app, id, "st-1", &mut d);
    assert_eq!((s, v["slot"].as_i64()), (200, Some(1)), "{v}");
    let (s, e) = program(&app, id, "st-1", &mut dongle(&app, "3-7000003"));
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert_eq!(
        e["error"]["message"],
        format!("conflict: production order {id} is cancelled")
    );

    // A production user is made like any other.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "line2",
        "password": "line2-password-123", "role": "production"})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, e) = app.admin(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "x",
        "password": "x-password-12345", "role": "boss"})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("malformed_request")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("production"),
        "{e}"
    );
}

#[test]
fn creating_a_production_order_is_idempotent_and_checks_its_items() {
    let app = start();
    let po = create(&app, "PO-I", 3, &[("SNP-FLOAT-5", 2)]);
    assert_eq!(po["remaining"], 3);
    let body = |dongles: i64, item: &str, q: i64| {
        json!({"erp_order_id": "PO-I", "dongles": dongles,
        "lines": [{"item_id": item, "quantity": q}]})
    };
    let (s, again) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(body(3, "SNP-FLOAT-5", 2)),
    );
    assert_eq!(
        (s, again["created"].as_bool()),
        (200, Some(false)),
        "{again}"
    );
    assert_eq!(again["production_order_id"], po["production_order_id"]);
    assert_eq!(again["ticket"], po["ticket"]);
    // The same six licenses, dealt otherwise: another production order, refused.
    let (s, e) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(body(6, "SNP-FLOAT-5", 1)),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("order_conflict")),
        "{e}"
    );
    let (s, e) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(body(3, "SNP-SINGLE", 2)),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("order_conflict")),
        "{e}"
    );
    // A normal order's id is not a production order.
    let (s, v) = app.admin("POST", "/api/v1/orders", Some(json!({"source": "json", "erp_order_id": "N-1",
        "customer": {"external_id": "production"}, "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 2}]})));
    assert_eq!(s, 201, "{v}");
    let (s, e) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(json!({"erp_order_id": "N-1",
        "dongles": 2, "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 1}]})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("order_conflict")),
        "{e}"
    );

    let (orders, licenses) = (count(&app, "orders"), count(&app, "licenses"));
    for (body, field) in [
        (
            json!({"dongles": 2, "lines": [{"item_id": "SNP-TRIAL-30", "quantity": 1}]}),
            "cannot go into a dongle",
        ),
        (
            json!({"dongles": 2, "lines": [{"item_id": "SNP-UPD-PRO", "quantity": 1}]}),
            "is an update item",
        ),
        (
            json!({"dongles": 0, "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 1}]}),
            "dongles",
        ),
        (
            json!({"dongles": 5001, "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 2}]}),
            "at most 10000",
        ),
        (json!({"dongles": 2, "lines": []}), "at least one line"),
    ] {
        let (s, e) = app.admin("POST", "/api/v1/production/orders", Some(body));
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("invalid_input")),
            "{e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{e}"
        );
    }
    let (s, e) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(json!({"dongles": 1, "lines": [{"item_id": "NOPE", "quantity": 1}]})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_item")),
        "{e}"
    );
    assert_eq!(
        (count(&app, "orders"), count(&app, "licenses")),
        (orders, licenses)
    );
    assert_eq!(count(&app, "production_orders"), 1);
    let (s, e) = app.admin("GET", "/api/v1/production/orders/77", None);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_production_order")),
        "{e}"
    );
}

fn zeep(app: &TestApp, who: (&str, &str), binding: &str, op: &str, args: Value) -> Value {
    crate::soap::zeep_at(app, "Sales", binding, who, op, args)
}

/// A raw SOAP 1.1 call to the Sales service: the answer's text, checked against the XSD.
fn soap_valid(app: &TestApp, op: &str) -> String {
    let body = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:s=\"http://licentia.dev/ns/sales/v1\"><soap:Body>{op}</soap:Body></soap:Envelope>"
    );
    let r = match ureq::post(&format!("{}/soap/Sales", app.base))
        .set("Content-Type", "text/xml; charset=utf-8")
        .set("Authorization", &basic("admin", ADMIN_PW))
        .send_string(&body)
    {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
        Err(e) => panic!("{e}"),
    };
    crate::soap::xmllint_valid(&r);
    r
}

#[test]
fn zeep_creates_and_follows_production_orders_over_soap() {
    let app = start();
    let erp = app.add_user("erp", Role::Erp);
    let erp = ("erp", erp.as_str());
    let order = json!({"ErpOrderId": "SO-P1", "Dongles": 2,
        "Line": [{"ItemId": "SNP-FLOAT-5", "Quantity": 1}, {"ItemId": "SNP-SINGLE", "Quantity": 2}]});
    let v = zeep(
        &app,
        erp,
        "SalesSoap11",
        "CreateProductionOrder",
        order.clone(),
    );
    let r = &v["ok"];
    assert_eq!(
        (r["Created"].as_bool(), r["Dongles"].as_i64()),
        (Some(true), Some(2)),
        "{v}"
    );
    assert_eq!(r["Remaining"], 2);
    assert_eq!(r["Slot"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(r["Slot"][0]["State"], "free");
    assert_eq!(r["Line"][1]["Quantity"], 2);
    let id = r["ProductionOrderId"].as_i64().unwrap();
    // Sent again over SOAP 1.2: the same production order.
    let again = zeep(&app, erp, "SalesSoap12", "CreateProductionOrder", order);
    assert_eq!(
        (
            again["ok"]["ProductionOrderId"].as_i64(),
            again["ok"]["Created"].as_bool()
        ),
        (Some(id), Some(false)),
        "{again}"
    );
    assert_eq!(count(&app, "production_orders"), 1);
    // Its ticket is the vendor's own production customer's.
    let (_, po) = app.admin("GET", &format!("/api/v1/production/orders/{id}"), None);
    assert_eq!(po["customer_id"], "production");

    // One dongle programmed, one assigned: the progress as the ERP reads it.
    let mut d1 = dongle(&app, "3-8000001");
    program_fully(&app, id, "st-1", &mut d1);
    let mut d2 = dongle(&app, "3-8000002");
    let (s, _) = program(&app, id, "st-2", &mut d2);
    assert_eq!(s, 200);
    let got = zeep(
        &app,
        erp,
        "SalesSoap12",
        "GetProductionOrder",
        json!({"ProductionOrderId": id}),
    );
    let g = &got["ok"];
    assert_eq!(
        (
            g["Programmed"].as_i64(),
            g["Assigned"].as_i64(),
            g["Remaining"].as_i64(),
            g["Complete"].as_bool()
        ),
        (Some(1), Some(1), Some(0), Some(false)),
        "{got}"
    );
    assert_eq!(g["Station"], json!([{"Name": "st-1", "Programmed": 1}]));
    assert_eq!(
        (
            g["Slot"][0]["Serial"].as_str(),
            g["Slot"][0]["State"].as_str()
        ),
        (Some("3-8000001"), Some("programmed"))
    );
    assert!(g["Slot"][0]["ProgrammedAt"].is_string(), "{got}");
    assert_eq!(g["Slot"][1]["State"], "assigned");
    // Both answers are valid by the served XSD.
    soap_valid(&app, &format!("<s:GetProductionOrder><s:ProductionOrderId>{id}</s:ProductionOrderId></s:GetProductionOrder>"));
    soap_valid(
        &app,
        "<s:CreateProductionOrder><s:ErpOrderId>SO-P2</s:ErpOrderId><s:Customer>\
         <s:ExternalId>C-LINE</s:ExternalId></s:Customer><s:Dongles>1</s:Dongles><s:Line>\
         <s:ItemId>SNP-FLOAT-5</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateProductionOrder>",
    );

    // Faults carry our code.
    let f = zeep(
        &app,
        erp,
        "SalesSoap11",
        "CreateProductionOrder",
        json!({"Dongles": 2, "Line": [{"ItemId": "SNP-TRIAL-30", "Quantity": 1}]}),
    );
    assert!(crate::soap::fault(&f).contains("invalid_input"), "{f}");
    assert!(
        crate::soap::fault(&f).contains("cannot go into a dongle"),
        "{f}"
    );
    let f = zeep(
        &app,
        erp,
        "SalesSoap12",
        "GetProductionOrder",
        json!({"ProductionOrderId": 99}),
    );
    assert!(
        crate::soap::fault(&f).contains("unknown_production_order"),
        "{f}"
    );
    let f = zeep(
        &app,
        (LINE, LINE_PW),
        "SalesSoap11",
        "CreateProductionOrder",
        json!({"Dongles": 1, "Line": [{"ItemId": "SNP-FLOAT-5", "Quantity": 1}]}),
    );
    assert!(crate::soap::fault(&f).contains("forbidden"), "{f}");
    let faulted = soap_valid(&app, "<s:CreateProductionOrder><s:Dongles>two</s:Dongles><s:Line>\
        <s:ItemId>SNP-FLOAT-5</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateProductionOrder>");
    assert!(
        faulted.contains("CreateProductionOrder/Dongles: &quot;two&quot; is not an xs:int"),
        "{faulted}"
    );
    // The report over the Report service.
    let rep = crate::soap::zeep_at(
        &app,
        "Report",
        "ReportSoap11",
        erp,
        "RunReport",
        json!({"Name": "production"}),
    );
    assert_eq!(
        rep["ok"]["Column"],
        json!(["day", "production_order_id", "programmed", "failed"]),
        "{rep}"
    );
    assert_eq!(rep["ok"]["Row"][0]["Value"][1], id.to_string(), "{rep}");
}

/// `licentia …` on the test server's database.
fn licentia(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(args)
        .env("LICENTIA_DATABASE_URL", &app.db.url)
        .env("LICENTIA_DATA_DIR", &app.db.dir)
        .env("LICENTIA_MASTER_KEY", "11".repeat(32))
        .env("LICENTIA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_cli_creates_shows_and_recycles() {
    let app = start();
    let (code, out, err) = licentia(
        &app,
        &[
            "production",
            "create",
            "--dongles",
            "2",
            "--item",
            "SNP-FLOAT-5=1",
            "--erp-order-id",
            "CLI-1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let mut words = out.split_whitespace();
    let id: i64 = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next().unwrap().len(), 29, "{out}");
    // The same again: the same production order.
    let (code, again, _) = licentia(
        &app,
        &[
            "production",
            "create",
            "--dongles",
            "2",
            "--item",
            "SNP-FLOAT-5=1",
            "--erp-order-id",
            "CLI-1",
        ],
    );
    assert_eq!((code, again.as_str()), (0, out.as_str()));
    let mut d = dongle(&app, "3-9000001");
    program_fully(&app, id, "st-7", &mut d);
    let (code, shown, err) = licentia(&app, &["production", "show", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("programmed 1  assigned 0  withdrawn 0  remaining 1  failed 0"),
        "{shown}"
    );
    assert!(shown.contains("station st-7: 1 programmed"), "{shown}");
    assert!(
        shown.contains("slot 1\tprogrammed\t3-9000001\tst-7"),
        "{shown}"
    );
    let (code, json_out, _) = licentia(&app, &["production", "show", &id.to_string(), "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["programmed"], 1);

    let (code, out, err) = licentia(
        &app,
        &["production", "recycle", "3-9000001", "--reason", "returned"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("dongle 3-9000001 recycled: kept as 3-9000001~recycled-"),
        "{out}"
    );
    assert!(out.contains("1 license(s) deleted"), "{out}");
    assert_eq!(view(&app, id)["withdrawn"], 1);
    let (code, _, err) = licentia(&app, &["production", "show", "404"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = licentia(
        &app,
        &[
            "production",
            "create",
            "--dongles",
            "0",
            "--item",
            "SNP-FLOAT-5=1",
        ],
    );
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = licentia(&app, &["report", "production", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("day,production_order_id,programmed,failed\r\n"),
        "{out}"
    );
}

/// A production order's ticket is not a customer's: its licenses cannot be activated or
/// re-activated through the gateway (or the portal, which calls the same service), only
/// programmed into dongles through the production order; nothing changes when refused.
#[test]
fn a_production_tickets_licenses_are_not_activated_through_the_gateway() {
    let app = start();
    let po = create(&app, "PO-GW", 2, &[("SNP-FLOAT-5", 1)]);
    let ticket = po["ticket"].as_str().unwrap().to_string();
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    assert_eq!(t["state"], "production", "{t}");
    let ids: Vec<i64> = t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["license_id"].as_i64().unwrap())
        .collect();
    let gw = Gateway::new(&app.base);
    let before = count(&app, "updates");
    // Named licenses and "all of the ticket" alike.
    for named in [vec![ids[0]], vec![]] {
        let mut c = dongle(&app, "3-4400001");
        let request = c.request(FIRM, licentia::client::unix_now()).unwrap();
        let e = gw.activate(&ticket, &named, &request).unwrap_err();
        assert_eq!(e.code, "not_allowed", "{e}");
        assert!(e.message.contains("production order"), "{e}");
    }
    let mut c = dongle(&app, "3-4400002");
    let request = c.request(FIRM, licentia::client::unix_now()).unwrap();
    let e = gw.reactivate(&ticket, &ids[..1], &request).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert_eq!(count(&app, "updates"), before, "no update was issued");
    let v = view(&app, id_of(&po));
    assert_eq!(v["remaining"], 2, "{v}");
    // The production line still programs them.
    let mut d = dongle(&app, "3-4400003");
    assert!(program_fully(&app, id_of(&po), "st-1", &mut d) > 0);
}

fn write_off(app: &TestApp, who: (&str, &str), serial: &str, reason: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/api/v1/production/dongles/{serial}/lost"),
        Some(who),
        Some(json!({ "reason": reason })),
    )
}

#[test]
fn a_dongle_that_never_came_back_is_written_off_and_its_slot_programmed_again() {
    let app = start();
    let sue = app.add_user("sue", Role::Support);
    let po = create(&app, "PO-L", 2, &[("SNP-FLOAT-5", 1), ("SNP-SINGLE", 1)]);
    let id = id_of(&po);
    let want = expected_slots(&app, &po);
    // The update was written, then the dongle was pulled out and went missing.
    let mut lost = dongle(&app, "3-7000001");
    let (s, v) = program(&app, id, "st-1", &mut lost);
    assert_eq!((s, v["slot"].as_i64()), (200, Some(1)), "{v}");
    let receipt = apply(&mut lost, &v);
    let (s, slot) = failed(&app, id, "3-7000001", true, "pulled out after the write");
    assert_eq!(
        (s, slot["state"].as_str()),
        (200, Some("assigned")),
        "{slot}"
    );

    // Refused, each changing nothing: a station may not decide it, nor a reason be empty,
    // nor an unknown dongle or a serial that is none be written off.
    let (s, e) = write_off(&app, (LINE, LINE_PW), "3-7000001", "never came back");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (s, e) = write_off(&app, ("sue", &sue), "3-7000001", "");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{e}"
    );
    let (s, e) = write_off(&app, ("sue", &sue), "3-7999999", "never came back");
    assert_eq!(s, 404, "{e}");
    let (s, e) = write_off(&app, ("sue", &sue), "not-a-serial", "never came back");
    assert_eq!(s, 400, "{e}");
    assert_eq!(view(&app, id)["slots"][0]["state"], "assigned");

    // Support writes it off: blacklisted, the update void, the slot and its licenses free.
    let (s, r) = write_off(&app, ("sue", &sue), "3-7000001", "never came back");
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["slot"].as_i64(), r["production_order_id"].as_i64()),
        (Some(1), Some(id))
    );
    let freed: BTreeSet<i64> = r["freed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_i64().unwrap())
        .collect();
    assert_eq!(freed, want[&1]);
    for l in &freed {
        assert_eq!(license(&app, *l), ("available".into(), None));
    }
    let (_, bl) = app.admin("GET", "/api/v1/reports/blacklist", None);
    assert!(
        bl["rows"]
            .to_string()
            .contains("lost on the production line: never came back"),
        "{bl}"
    );
    let (s, e) = write_off(&app, ("sue", &sue), "3-7000001", "never came back");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );
    assert_eq!(
        count(&app, "events WHERE action = 'production.dongle_lost'"),
        1
    );

    // The next dongle takes the slot and holds exactly its licenses.
    let mut next = dongle(&app, "3-7000002");
    assert_eq!(program_fully(&app, id, "st-2", &mut next), 1);
    let now_held: BTreeSet<i64> = held(&app, "3-7000002").keys().copied().collect();
    assert_eq!(now_held, want[&1]);
    // A programmed dongle is a customer's: it is not written off here.
    let (s, e) = write_off(&app, ("sue", &sue), "3-7000002", "mistake");
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{e}"
    );

    // The lost dongle turns up: its old receipt proves nothing, and holding the update the
    // write-off voided, it is marked "manipulation detected" and gets nothing.
    let (s, e) = post_receipt(&app, id, "st-1", &receipt);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_dongle")),
        "{e}"
    );
    let (s, e) = program(&app, id, "st-1", &mut lost);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("manipulation_detected")),
        "{e}"
    );
    for l in &want[&1] {
        assert_eq!(license(&app, *l).1, Some("3-7000002".into()));
    }
}
