//! Cloud containers: licenses activated into a container kept on the server, used online
//! as seats with leases, through credential files that can be replaced and revoked.
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use licentia::client::cloud::{Cloud, Credential};
use licentia::client::CResult;
use licentia::protocol::cloud::{Lease, OpenRequest};
use serde_json::{json, Value};

use crate::activation::{license, ticket_with, FIRM};
use crate::harness::{backend, call_at, skip, TestApp, ADMIN_PW};

/// A floating item for cloud containers: `quantity` seats, leases of `lease` seconds.
pub(crate) fn floating_item(
    app: &TestApp,
    id: &str,
    product_code: i64,
    quantity: u32,
    lease: u32,
    counting: &str,
) {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": id, "name": "Cloud floating", "kind": "license",
            "product_code": product_code,
            "options": {"license_quantity": quantity, "feature_map": 3,
                "container_types": ["cloud", "act"], "lease_seconds": lease,
                "seat_counting": counting}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
}

/// A new cloud container of customer C-ACT (the activation tests' customer).
pub(crate) fn new_cloud(app: &TestApp) -> String {
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(
            json!({"external_id": "C-ACT", "name": "Customer", "email": "buyer@example.com",
            "locale": "de"}),
        ),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/cloud/containers",
        Some(json!({"customer": "C-ACT"})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["firm_code"], FIRM);
    v["serial"].as_str().unwrap().to_string()
}

/// Orders one license of `item` and activates it into `serial`; its id.
pub(crate) fn activate_one(app: &TestApp, serial: &str, erp: &str, item: &str) -> i64 {
    let (ticket, ids) = ticket_with(app, erp, item, 1);
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/licenses"),
        Some(json!({"ticket": ticket})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["activated"], json!(ids));
    ids[0]
}

/// A new credential file for `serial` (any earlier one is revoked), opened.
pub(crate) fn credential(app: &TestApp, serial: &str) -> Credential {
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/credentials"),
        Some(json!({"reason": "test"})),
    );
    assert_eq!(s, 201, "{v}");
    Credential::from_bytes(v["content"].as_str().unwrap().as_bytes(), None).unwrap()
}

pub(crate) fn container(app: &TestApp, serial: &str) -> Value {
    let (s, v) = app.admin("GET", &format!("/api/v1/cloud/containers/{serial}"), None);
    assert_eq!(s, 200, "{v}");
    v
}

pub(crate) fn open_req(product_code: i64, station: &str) -> OpenRequest {
    OpenRequest {
        firm_code: FIRM,
        product_code,
        features: 1,
        station: station.into(),
    }
}

/// Checks an HTTP refusal's status and error code.
pub(crate) fn refused(status: u16, v: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (want_status, Some(want_code)),
        "{v}"
    );
}

pub(crate) fn code<T: std::fmt::Debug>(r: CResult<T>) -> String {
    r.expect_err("refused").code
}

/// The actions of the events of container `serial`.
pub(crate) fn actions(app: &TestApp, serial: &str) -> Vec<String> {
    let (s, v) = app.admin("GET", &format!("/api/v1/history?serial={serial}"), None);
    assert_eq!(s, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// What the load clients saw: when each held a seat (from the open's answer to the
/// release's sending, inside the server's own holding), and how many opens were refused.
#[derive(Default)]
struct Seen {
    held: Mutex<Vec<(Instant, Instant)>>,
    denied: AtomicU32,
    taken: AtomicU32,
}

/// 20 clients, each with its own credential session, open, keep and release seats of a
/// five-seat license for `secs` seconds, spread over the servers `bases`, while a sampler
/// asks the vendor API how many are in use. Returns what the clients saw and the most the
/// sampler saw.
fn load(app: &TestApp, bases: &[String], serial: &str, pc: i64, secs: u64) -> (Seen, u32) {
    let cred_pem = {
        let (s, v) = app.admin(
            "POST",
            &format!("/api/v1/cloud/containers/{serial}/credentials"),
            Some(json!({})),
        );
        assert_eq!(s, 201, "{v}");
        v["content"].as_str().unwrap().to_string()
    };
    let seen = Seen::default();
    let stop = AtomicBool::new(false);
    let sampled = AtomicU32::new(0);
    let until = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Also bounded in time: a client that panicked never sets `stop`.
            while !stop.load(Ordering::Relaxed) && Instant::now() < until + Duration::from_secs(5) {
                let (st, v) = call_at(
                    &bases[0],
                    "GET",
                    &format!("/api/v1/cloud/containers/{serial}"),
                    Some(("admin", ADMIN_PW)),
                    None,
                );
                assert_eq!(st, 200, "{v}");
                let n = v["licenses"][0]["in_use"].as_u64().unwrap() as u32;
                assert!(n <= 5, "the server holds {n} seats of 5");
                sampled.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(15));
            }
        });
        let clients: Vec<_> = (0..20)
            .map(|i| {
                let (seen, base, pem) = (&seen, &bases[i % bases.len()], &cred_pem);
                s.spawn(move || {
                    let cloud =
                        Cloud::new(base, Credential::from_bytes(pem.as_bytes(), None).unwrap());
                    let station = format!("station-{i}");
                    let mut n = 0u64;
                    while Instant::now() < until {
                        n += 1;
                        match cloud.open(&open_req(pc, &station)) {
                            Ok(lease) => {
                                let got = Instant::now();
                                seen.taken.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(
                                    10 + (n * 7 + i as u64) % 30,
                                ));
                                cloud.heartbeat(lease.seat).unwrap();
                                std::thread::sleep(Duration::from_millis(5));
                                let leaving = Instant::now();
                                cloud.release(lease.seat).unwrap();
                                seen.held.lock().unwrap().push((got, leaving));
                            }
                            Err(e) if e.code == "no_seat_free" => {
                                seen.denied.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            Err(e) => panic!("client {i}: {e:?}"),
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let most = sampled.load(Ordering::Relaxed);
    (seen, most)
}

/// The most intervals that overlap at any instant.
fn most_at_once(held: &[(Instant, Instant)]) -> usize {
    let mut edges: Vec<(Instant, i32)> =
        held.iter().flat_map(|(a, b)| [(*a, 1), (*b, -1)]).collect();
    // At the same instant a release counts before an open.
    edges.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn check_load(app: &TestApp, serial: &str, seen: &Seen, sampled: u32) {
    let held = seen.held.lock().unwrap();
    let at_once = most_at_once(&held);
    let (taken, denied) = (
        seen.taken.load(Ordering::Relaxed),
        seen.denied.load(Ordering::Relaxed),
    );
    println!(
        "cloud load: {taken} seats taken, {denied} opens denied, at most {at_once} held at \
         once by the clients' logs, at most {sampled} by the server's"
    );
    assert!(at_once <= 5, "the clients held {at_once} seats at once");
    assert!(at_once >= 2 && sampled >= 1, "the load never overlapped");
    assert!(denied > 0, "20 clients on 5 seats were never refused");
    // The use per day counted every open and every denial once.
    let v = container(app, serial);
    let days = v["use_per_day"].as_array().unwrap();
    let sum = |k: &str| days.iter().map(|d| d[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("opened"), i64::from(taken), "{v}");
    assert_eq!(sum("denials"), i64::from(denied), "{v}");
    assert!(days.iter().all(|d| d["peak"].as_i64().unwrap() <= 5), "{v}");
    assert_eq!(
        v["licenses"][0]["in_use"], 0,
        "every seat was released: {v}"
    );
    // The reports say the same.
    let lid = v["licenses"][0]["license_id"].clone();
    let (s, r) = app.admin("GET", "/api/v1/reports/cloud-use?days=2", None);
    assert_eq!(s, 200, "{r}");
    let mine: Vec<&Value> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["license_id"] == lid)
        .collect();
    let total = |k: &str| mine.iter().map(|d| d[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (total("opened"), total("denials")),
        (i64::from(taken), i64::from(denied))
    );
    assert!(mine.iter().all(|d| d["serial"] == serial), "{r}");
    let (s, r) = app.admin("GET", "/api/v1/reports/cloud-seats", None);
    assert_eq!(s, 200, "{r}");
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["license_id"] == lid)
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(
        (&row["seats"], &row["in_use"], &row["serial"]),
        (&json!(5), &json!(0), &json!(serial))
    );
}

#[test]
fn a_floating_license_of_five_never_has_more_than_five_users() {
    let app = TestApp::start();
    floating_item(&app, "CLOUD-FLOAT-5", 7001, 5, 5, "per_access");
    let serial = new_cloud(&app);
    activate_one(&app, &serial, "CLOUD-LOAD-1", "CLOUD-FLOAT-5");
    let (seen, sampled) = load(&app, std::slice::from_ref(&app.base), &serial, 7001, 4);
    check_load(&app, &serial, &seen, sampled);

    // Five clients die holding seats: a sixth is refused until their leases run out, then
    // they are reclaimed (once each), and a late heartbeat of a dead one cannot revive its
    // seat, which another client may hold by then. (A container of its own, whose history
    // is short.)
    let serial = new_cloud(&app);
    activate_one(&app, &serial, "CLOUD-LOAD-1B", "CLOUD-FLOAT-5");
    let dead = Cloud::new(&app.base, credential(&app, &serial));
    let leases: Vec<Lease> = (0..5)
        .map(|i| dead.open(&open_req(7001, &format!("dead-{i}"))).unwrap())
        .collect();
    assert_eq!(code(dead.open(&open_req(7001, "alive"))), "no_seat_free");
    std::thread::sleep(Duration::from_millis(5_600));
    let alive = dead.open(&open_req(7001, "alive")).unwrap();
    assert_eq!(code(dead.heartbeat(leases[0].seat)), "lease_lost");
    assert_eq!(code(dead.release(leases[1].seat)), "lease_lost");
    assert!(
        alive.seat > leases.iter().map(|l| l.seat).max().unwrap(),
        "fencing tokens grow"
    );
    let reclaimed = actions(&app, &serial)
        .iter()
        .filter(|a| *a == "cloud.seat_reclaimed")
        .count();
    assert_eq!(reclaimed, 5);
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 1);
}

#[test]
fn the_quantity_holds_across_two_nodes() {
    if backend() != "postgres" {
        skip(
            "cloud::the_quantity_holds_across_two_nodes",
            "two server nodes share a PostgreSQL database; this run is on SQLite",
        );
        return;
    }
    let app = TestApp::start();
    let node = app.second_node();
    floating_item(&app, "CLOUD-FLOAT-2N", 7002, 5, 30, "per_access");
    let serial = new_cloud(&app);
    activate_one(&app, &serial, "CLOUD-LOAD-2", "CLOUD-FLOAT-2N");
    let (seen, sampled) = load(
        &app,
        &[app.base.clone(), node.base.clone()],
        &serial,
        7002,
        4,
    );
    check_load(&app, &serial, &seen, sampled);
    // A revocation on one node holds on the other at once.
    let on_b = Cloud::new(&node.base, credential(&app, &serial));
    let seat = on_b.open(&open_req(7002, "pc-b")).unwrap();
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/credentials/revoke"),
        Some(json!({"reason": "stolen"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(code(on_b.heartbeat(seat.seat)), "not_allowed");
}

#[test]
fn seats_counted_per_station_are_shared_by_the_stations_opens() {
    let app = TestApp::start();
    floating_item(&app, "CLOUD-STATION-2", 7003, 2, 60, "per_station");
    let serial = new_cloud(&app);
    activate_one(&app, &serial, "CLOUD-ST-1", "CLOUD-STATION-2");
    let cloud = Cloud::new(&app.base, credential(&app, &serial));
    let a1 = cloud.open(&open_req(7003, "pc-a")).unwrap();
    let a2 = cloud.open(&open_req(7003, "pc-a")).unwrap();
    assert_eq!(a1.seat, a2.seat, "one station, one seat");
    let b = cloud.open(&open_req(7003, "pc-b")).unwrap();
    assert_eq!(code(cloud.open(&open_req(7003, "pc-c"))), "no_seat_free");
    // pc-a's seat ends with its last release.
    cloud.release(a1.seat).unwrap();
    assert_eq!(code(cloud.open(&open_req(7003, "pc-c"))), "no_seat_free");
    cloud.release(a2.seat).unwrap();
    let c = cloud.open(&open_req(7003, "pc-c")).unwrap();
    assert_ne!(c.seat, a1.seat);
    assert_ne!(c.seat, b.seat);
    // Features the license lacks, another product, another firm code: nothing to open.
    let mut wrong = open_req(7003, "pc-d");
    wrong.features = 4;
    assert_eq!(code(cloud.open(&wrong)), "unknown_license");
    assert_eq!(code(cloud.open(&open_req(7999, "pc-d"))), "unknown_license");
    let mut other_firm = open_req(7003, "pc-d");
    other_firm.firm_code = 6000099;
    assert_eq!(code(cloud.open(&other_firm)), "unknown_firm");
    let status = cloud.status().unwrap();
    assert_eq!(status.serial, serial);
    assert_eq!(
        (status.licenses[0].seats, status.licenses[0].in_use),
        (2, 2)
    );
}

#[test]
fn credentials_are_replaced_revoked_and_never_forged() {
    let app = TestApp::start();
    floating_item(&app, "CLOUD-CRED", 7004, 3, 60, "per_access");
    let serial = new_cloud(&app);
    let lid = activate_one(&app, &serial, "CLOUD-CRED-1", "CLOUD-CRED");
    let first = Cloud::new(&app.base, credential(&app, &serial));
    let seat = first.open(&open_req(7004, "pc-1")).unwrap();

    // Lost: a new credential file; the old one is refused at once and its seat ended.
    let second = Cloud::new(&app.base, credential(&app, &serial));
    let e = first.heartbeat(seat.seat).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
    assert!(e.message.contains("revoked"), "{e:?}");
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 0);
    let s2 = second.open(&open_req(7004, "pc-1")).unwrap();
    second.heartbeat(s2.seat).unwrap();

    // Another container's credential can neither keep nor release this container's seats,
    // and sees none of its licenses.
    let other_serial = new_cloud(&app);
    let other = Cloud::new(&app.base, credential(&app, &other_serial));
    assert_eq!(code(other.heartbeat(s2.seat)), "lease_lost");
    assert_eq!(code(other.release(s2.seat)), "lease_lost");
    assert_eq!(code(other.open(&open_req(7004, "pc-9"))), "unknown_license");
    second.heartbeat(s2.seat).unwrap();

    // Stolen: revoked; its sessions end at once, it gets no new token.
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/credentials/revoke"),
        Some(json!({"reason": "laptop stolen"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["seats_ended"], json!([s2.seat]));
    let e = second.heartbeat(s2.seat).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
    assert!(e.message.contains("laptop stolen"), "{e:?}");
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/credentials/revoke"),
        Some(json!({"reason": "again"})),
    );
    refused(s, &v, 409, "conflict");

    // A token request: replayed, tampered, too old, or with a certificate this server did
    // not issue (a self-made one naming the container) is refused.
    let third = credential(&app, &serial);
    let req = third.token_request().unwrap();
    let post = |body: Value| call_at(&app.base, "POST", "/cloud/v1/token", None, Some(body));
    let (s, v) = post(json!(req));
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(json!(req));
    refused(s, &v, 400, "invalid_message");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("replayed"),
        "{v}"
    );
    let mut tampered = third.token_request().unwrap();
    tampered.at += 1;
    let (s, v) = post(json!(tampered));
    refused(s, &v, 400, "invalid_message");
    let mut forged = third.token_request().unwrap();
    forged.certificate = self_made_certificate(&serial);
    let (s, v) = post(json!(forged));
    refused(s, &v, 403, "not_allowed");
    let (s, v) = post(json!({"certificate": "x", "nonce": "00", "at": 0, "signature": ""}));
    refused(s, &v, 400, "invalid_input");
    // No token, or a made-up one.
    let (s, _) = call_at(&app.base, "GET", "/cloud/v1/status", None, None);
    assert_eq!(s, 401);
    let made_up = ureq::get(&format!("{}/cloud/v1/status", app.base))
        .set("Authorization", &format!("Bearer {}", "ab".repeat(32)))
        .call();
    assert!(matches!(made_up, Err(ureq::Error::Status(401, _))));
    let third = Cloud::new(&app.base, third);
    third.open(&open_req(7004, "pc-3")).unwrap();

    // Returned from the cloud container: available again, its seats ended.
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/return"),
        Some(json!({"licenses": [lid]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(license(&app, lid), ("available".into(), None));
    assert_eq!(code(third.open(&open_req(7004, "pc-3"))), "unknown_license");
    let acts = actions(&app, &serial);
    for a in [
        "container.registered",
        "license.activated",
        "cloud.credential_issued",
        "cloud.seat_taken",
        "cloud.credential_revoked",
        "license.returned",
    ] {
        assert!(acts.iter().any(|x| x == a), "{a} in {acts:?}");
    }
}

/// A self-signed certificate naming `serial` as a credential would.
fn self_made_certificate(serial: &str) -> String {
    use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
    let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, &FIRM.to_string())
        .unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, serial).unwrap();
    let name = name.build();
    let mut b = x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

#[test]
fn activation_into_a_cloud_container_follows_the_rules() {
    let app = TestApp::start();
    let serial = new_cloud(&app);
    // An item that may not go into a cloud container.
    let (ticket, ids) = ticket_with(&app, "CLOUD-RULE-1", "SNP-FLOAT-5", 1);
    let path = format!("/api/v1/cloud/containers/{serial}/licenses");
    let (s, v) = app.admin(
        "POST",
        &path,
        Some(json!({"ticket": ticket, "licenses": ids})),
    );
    refused(s, &v, 403, "not_allowed");
    let (s, v) = app.admin("POST", &path, Some(json!({"ticket": ticket})));
    refused(s, &v, 409, "conflict");
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    // Another customer's ticket.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order(
            "CLOUD-RULE-2",
            "C-OTHER",
            &[("SNP-SINGLE", 1)],
        )),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin("POST", &path, Some(json!({"ticket": v["ticket"]})));
    refused(s, &v, 403, "not_allowed");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another customer"),
        "{v}"
    );
    // Activated once; a second time is a conflict.
    let (ticket, ids) = ticket_with(&app, "CLOUD-RULE-3", "SNP-SINGLE", 1);
    let (s, v) = app.admin(
        "POST",
        &path,
        Some(json!({"ticket": ticket, "licenses": ids})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(serial.clone()))
    );
    let (s, v) = app.admin(
        "POST",
        &path,
        Some(json!({"ticket": ticket, "licenses": ids})),
    );
    refused(s, &v, 409, "conflict");
    // Unknown container or customer; a sales user may make one, an ERP user may not.
    let (s, v) = app.admin("GET", "/api/v1/cloud/containers/150-0000000001", None);
    refused(s, &v, 404, "unknown_container");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/cloud/containers",
        Some(json!({"customer": "NOBODY"})),
    );
    refused(s, &v, 404, "unknown_customer");
    let erp = app.add_user("erp-cloud", licentia::domain::Role::Erp);
    let (s, _) = app.call(
        "POST",
        "/api/v1/cloud/containers",
        Some(("erp-cloud", &erp)),
        Some(json!({"customer": "C-ACT"})),
    );
    assert_eq!(s, 403);
    // A PKCS#12 file needs a passphrase, and opens with it.
    let cred_path = format!("/api/v1/cloud/containers/{serial}/credentials");
    let (s, v) = app.admin("POST", &cred_path, Some(json!({"format": "pkcs12"})));
    refused(s, &v, 400, "invalid_input");
    let (s, v) = app.admin(
        "POST",
        &cred_path,
        Some(json!({"format": "pkcs12", "passphrase": "correct horse"})),
    );
    assert_eq!(s, 201, "{v}");
    use base64::Engine;
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(v["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        Credential::from_bytes(&p12, Some("wrong horse"))
            .err()
            .unwrap()
            .code,
        "bad_credential"
    );
    let cloud = Cloud::new(
        &app.base,
        Credential::from_bytes(&p12, Some("correct horse")).unwrap(),
    );
    cloud.open(&open_req(1001, "pc-1")).unwrap();
    // The activation wizard's way in: a ticket activated with the credential, into its own
    // container; another customer's ticket is refused.
    let (ticket, ids) = ticket_with(&app, "CLOUD-RULE-4", "SNP-SINGLE", 2);
    assert_eq!(cloud.activate_ticket(&ticket, &[]).unwrap(), ids);
    assert_eq!(cloud.status().unwrap().licenses.len(), 3);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order(
            "CLOUD-RULE-5",
            "C-OTHER",
            &[("SNP-SINGLE", 1)],
        )),
    );
    assert_eq!(s, 201, "{v}");
    let e = cloud
        .activate_ticket(v["ticket"].as_str().unwrap(), &[])
        .unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
}
