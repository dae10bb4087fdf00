//! Cloud containers beyond seats: borrowing into a local container, the vendor's control
//! (withdraw, replace, push) and the SOAP Admin operations.
use diesel::RunQueryDsl;
use licentia::client::cloud::{Cloud, Credential};
use serde_json::{json, Value};

use crate::activation::{license, ticket_with, FIRM};
use crate::cloud::{
    actions, activate_one, code, container, credential, floating_item, new_cloud, open_req, refused,
};
use crate::harness::{TestApp, ADMIN_PW};

#[test]
fn a_borrowed_seat_counts_until_it_comes_back_or_runs_out() {
    use licentia::client::online::{self, Gateway};
    use licentia::client::unix_now;
    let app = TestApp::start();
    floating_item(&app, "CLOUD-BORROW-2", 7005, 2, 60, "per_access");
    let serial = new_cloud(&app);
    let parent = activate_one(&app, &serial, "CLOUD-BORROW-1", "CLOUD-BORROW-2");
    let cloud = Cloud::new(&app.base, credential(&app, &serial));
    let gw = Gateway::new(&app.base);
    let mut laptop = crate::activation::new_act(&gw);
    let mut keep = |_: &licentia::client::Container| Ok(());
    let traits = crate::activation::traits();

    // Borrowed for 3 days into the laptop: a license of its own, activated there on the
    // receipt, usable offline, and one of the two seats is taken.
    let rt = online::borrow(&gw, &cloud, &mut laptop, FIRM, 7005, 1, 3, &mut keep).unwrap();
    let lent = rt.added[0];
    assert_ne!(lent, parent);
    assert_eq!(
        license(&app, lent),
        ("activated".into(), Some(laptop.serial.clone()))
    );
    let now = unix_now();
    laptop.check(FIRM, 7005, 1, &traits, now).unwrap();
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 1);
    let s1 = cloud.open(&open_req(7005, "office")).unwrap();
    assert_eq!(code(cloud.open(&open_req(7005, "home"))), "no_seat_free");
    let (_, r) = app.admin("GET", "/api/v1/reports/cloud-seats", None);
    let row = &r["rows"][0];
    assert_eq!(
        (&row["license_id"], &row["in_use"], &row["borrowed"]),
        (&json!(parent), &json!(2), &json!(1)),
        "{r}"
    );
    // A borrowed seat is no session's: no heartbeat keeps it, revoking the credential
    // leaves it, and the cloud license cannot be returned while it is out.
    let borrowed_seat = s1.seat - 1;
    assert_eq!(code(cloud.heartbeat(borrowed_seat)), "lease_lost");
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/return"),
        Some(json!({"licenses": [parent]})),
    );
    refused(s, &v, 409, "conflict");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("borrowed"),
        "{v}"
    );
    // A second borrow finds no free seat, and changes nothing in the laptop.
    let mut other = crate::activation::new_act(&gw);
    let e = online::borrow(&gw, &cloud, &mut other, FIRM, 7005, 1, 3, &mut keep).unwrap_err();
    assert_eq!(e.code, "no_seat_free", "{e:?}");
    // Too long, or not a product the cloud container holds.
    let e = online::borrow(&gw, &cloud, &mut other, FIRM, 7005, 1, 366, &mut keep).unwrap_err();
    assert_eq!(e.code, "invalid_input", "{e:?}");
    let e = online::borrow(&gw, &cloud, &mut other, FIRM, 7999, 1, 3, &mut keep).unwrap_err();
    assert_eq!(e.code, "unknown_license", "{e:?}");

    // The laptop's clock runs past the borrow: refused, also with the clock set back.
    let mut copy = laptop.clone();
    let later = now + 4 * 86_400;
    assert!(copy.check(FIRM, 7005, 1, &traits, later).is_err());
    assert_eq!(
        copy.check(FIRM, 7005, 1, &traits, now).unwrap_err().code,
        "clock_set_back"
    );

    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(json!({"licenses": [parent], "reason": "refund"})),
    );
    refused(s, &v, 409, "conflict");

    // Returned: the seat is free again, and the license made for the borrow is gone.
    online::deactivate(&gw, &mut laptop, FIRM, &[lent], &mut keep).unwrap();
    assert_eq!(license(&app, lent).0, "deleted");
    let s2 = cloud.open(&open_req(7005, "home")).unwrap();
    cloud.release(s2.seat).unwrap();

    // Borrowed again; when the borrow's time has run out (moved into the past here), the
    // seat is reclaimed by the next open, and the expired license coming back later is
    // deleted, never made available on its ticket.
    let rt = online::borrow(&gw, &cloud, &mut laptop, FIRM, 7005, 1, 1, &mut keep).unwrap();
    let lent = rt.added[0];
    assert_eq!(code(cloud.open(&open_req(7005, "home"))), "no_seat_free");
    diesel::sql_query(format!(
        "UPDATE cloud_seats SET expires_at = '2000-01-01 00:00:00' WHERE borrowed_license_id = {lent}"
    ))
    .execute(&mut app.db.connect())
    .unwrap();
    let s3 = cloud.open(&open_req(7005, "home")).unwrap();
    assert!(actions(&app, &serial)
        .iter()
        .any(|a| a == "cloud.seat_reclaimed"));
    cloud.release(s3.seat).unwrap();
    online::deactivate(&gw, &mut laptop, FIRM, &[lent], &mut keep).unwrap();
    assert_eq!(license(&app, lent).0, "deleted");

    // Withdrawn by the vendor while borrowed: once the laptop's receipt proves it gone, the
    // seat goes back.
    let rt = online::borrow(&gw, &cloud, &mut laptop, FIRM, 7005, 1, 2, &mut keep).unwrap();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(json!({"licenses": rt.added, "reason": "recalled"})),
    );
    assert_eq!(s, 200, "{v}");
    // The office's session and the borrow.
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 2);
    online::update(&gw, &mut laptop, &mut keep).unwrap();
    assert_eq!(license(&app, rt.added[0]).0, "deleted");
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 1);

    // Revoking the credential ends its sessions, not what it borrowed: that license lives
    // in the laptop until it comes back.
    cloud.release(s1.seat).unwrap();
    let rt = online::borrow(&gw, &cloud, &mut laptop, FIRM, 7005, 1, 2, &mut keep).unwrap();
    cloud.open(&open_req(7005, "office")).unwrap();
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/credentials/revoke"),
        Some(json!({"reason": "stolen"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["seats_ended"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 1);
    online::deactivate(&gw, &mut laptop, FIRM, &rt.added, &mut keep).unwrap();
    assert_eq!(container(&app, &serial)["licenses"][0]["in_use"], 0);
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/return"),
        Some(json!({"licenses": [parent]})),
    );
    assert_eq!(s, 200, "{v}");
}

#[test]
fn the_admin_service_makes_cloud_containers_and_credentials_through_zeep() {
    use crate::soap::{fault, zeep_at};
    let app = TestApp::start();
    let sam = app.add_user("sam", licentia::domain::Role::Sales);
    let admin = |op: &str, args: Value| {
        zeep_at(&app, "Admin", "AdminSoap12", ("admin", ADMIN_PW), op, args)
    };
    floating_item(&app, "CLOUD-SOAP", 7006, 2, 60, "per_access");
    let (ticket, ids) = ticket_with(&app, "CLOUD-SOAP-1", "CLOUD-SOAP", 1);
    let r = admin("CreateCloudContainer", json!({"CustomerId": "C-ACT"}));
    let serial = r["ok"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(serial.starts_with("150-"), "{r}");
    let r = admin(
        "ActivateIntoCloudContainer",
        json!({"Serial": serial, "Ticket": ticket}),
    );
    assert_eq!(r["ok"], json!(ids), "{r}");
    let r = admin(
        "IssueCloudCredential",
        json!({"Serial": serial, "Format": "pkcs12"}),
    );
    assert!(fault(&r).contains("passphrase"), "{r}");
    let r = admin(
        "IssueCloudCredential",
        json!({"Serial": serial, "Reason": "new"}),
    );
    let file = &r["ok"];
    assert_eq!(file["FileName"], format!("{serial}.pem"), "{r}");
    let cred = Credential::from_bytes(file["Content"].as_str().unwrap().as_bytes(), None).unwrap();
    assert_eq!(cred.fingerprint(), file["Fingerprint"].as_str().unwrap());
    let cloud = Cloud::new(&app.base, cred);
    let seat = cloud.open(&open_req(7006, "pc-1")).unwrap();
    // Sales may make containers and credentials, not revoke them.
    let r = zeep_at(
        &app,
        "Admin",
        "AdminSoap12",
        ("sam", &sam),
        "RevokeCloudCredentials",
        json!({"Serial": serial, "Reason": "stolen"}),
    );
    assert!(fault(&r).contains("forbidden"), "{r}");
    let r = admin(
        "RevokeCloudCredentials",
        json!({"Serial": serial, "Reason": "stolen"}),
    );
    assert_eq!(r["ok"]["EndedSeat"], json!([seat.seat]), "{r}");
    assert_eq!(code(cloud.status()), "not_allowed");
    let r = admin(
        "ReturnFromCloudContainer",
        json!({"Serial": serial, "LicenseId": ids}),
    );
    assert_eq!(r["ok"], json!(ids), "{r}");
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    let r = admin(
        "ReturnFromCloudContainer",
        json!({"Serial": serial, "LicenseId": ids}),
    );
    assert!(fault(&r).contains("conflict"), "{r}");
}

/// The vendor's control reaches a cloud container at once (the server is the container):
/// a withdrawn license is gone with its seats, a replacement takes the old one's place, a
/// pushed license is in it.
#[test]
fn withdraw_replace_and_push_reach_a_cloud_container_at_once() {
    let app = TestApp::start();
    floating_item(&app, "CLOUD-CTRL-A", 7007, 2, 60, "per_access");
    floating_item(&app, "CLOUD-CTRL-B", 7008, 3, 60, "per_access");
    let serial = new_cloud(&app);
    let withdrawn = activate_one(&app, &serial, "CLOUD-CTRL-1", "CLOUD-CTRL-A");
    let cloud = Cloud::new(&app.base, credential(&app, &serial));
    let seat = cloud.open(&open_req(7007, "pc-1")).unwrap();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/withdraw",
        Some(json!({"licenses": [withdrawn], "reason": "refunded"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["state"], "deleted", "{v}");
    assert_eq!(code(cloud.heartbeat(seat.seat)), "lease_lost");
    assert_eq!(code(cloud.open(&open_req(7007, "pc-1"))), "unknown_license");

    let old = activate_one(&app, &serial, "CLOUD-CTRL-2", "CLOUD-CTRL-A");
    cloud.open(&open_req(7007, "pc-1")).unwrap();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/licenses/replace",
        Some(json!({"license_id": old, "item_id": "CLOUD-CTRL-B"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["old"]["state"], &v["new"]["state"]),
        (&json!("deleted"), &json!("activated")),
        "{v}"
    );
    let new = v["new"]["license_id"].as_i64().unwrap();
    assert_eq!(
        license(&app, new),
        ("activated".into(), Some(serial.clone()))
    );
    let lease = cloud.open(&open_req(7008, "pc-1")).unwrap();
    assert_eq!(lease.license_id, new);

    let (_, ids) = ticket_with(&app, "CLOUD-CTRL-3", "CLOUD-CTRL-A", 1);
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/containers/{serial}/licenses"),
        Some(json!({"license_id": ids[0]})),
    );
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(serial.clone()))
    );
    cloud.open(&open_req(7007, "pc-2")).unwrap();

    // A cloud container is never lost, reset or given to another customer; a license of
    // another customer's ticket is not pushed into it.
    use licentia::client::online::{self, Gateway};
    let gw = Gateway::new(&app.base);
    let (ticket_a, ids_a) = ticket_with(&app, "CLOUD-CTRL-4", "CLOUD-CTRL-A", 1);
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/cloud/containers/{serial}/licenses"),
        Some(json!({"ticket": ticket_a})),
    );
    assert_eq!(s, 200, "{v}");
    let mut other = crate::activation::new_act(&gw);
    let e = online::reactivate(&gw, &mut other, &ticket_a, &ids_a, &mut |_| Ok(())).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e:?}");
    assert!(e.message.contains("never lost"), "{e:?}");
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/containers/{serial}/reset"),
        Some(json!({})),
    );
    refused(s, &v, 403, "not_allowed");
    let (s, v) = app.admin(
        "PUT",
        &format!("/api/v1/containers/{serial}/customer"),
        Some(json!({"customer_id": "C-OTHER"})),
    );
    refused(s, &v, 403, "not_allowed");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order(
            "CLOUD-CTRL-5",
            "C-OTHER",
            &[("CLOUD-CTRL-A", 1)],
        )),
    );
    assert_eq!(s, 201, "{v}");
    let (_, t) = app.admin(
        "GET",
        &format!("/api/v1/tickets/{}", v["ticket"].as_str().unwrap()),
        None,
    );
    let foreign = t["licenses"][0]["license_id"].as_i64().unwrap();
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/containers/{serial}/licenses"),
        Some(json!({"license_id": foreign})),
    );
    refused(s, &v, 403, "not_allowed");
}
