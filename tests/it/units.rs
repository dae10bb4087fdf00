//! Pay per use: the client runtime counts units down as the vendor's software uses them,
//! every request reports the count, an update item adds units, and a copy of the container
//! restored with fewer units used is caught at its next contact.
use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, CResult, Container};
use serde_json::json;

use crate::activation::{new_act, traits, FIRM};
use crate::harness::{order, TestApp};

const METERED: i64 = 4003;

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

#[test]
fn units_are_counted_reported_topped_up_and_a_restored_copy_is_caught() {
    let app = TestApp::start();
    for item in [
        json!({"item_id": "PPU-10", "name": "Ten runs", "kind": "license",
            "product_code": METERED, "options": {"unit_counter": 10}}),
        json!({"item_id": "PPU-MORE", "name": "Five more runs", "kind": "update",
            "product_code": METERED, "options": {"update": {"add_units": 5}}}),
    ] {
        let (s, v) = app.admin("POST", "/api/v1/items", Some(item));
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("PPU-1", "C-PPU", &[("PPU-10", 1)])),
    );
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let gw = Gateway::new(&app.base);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &[], &mut keep).unwrap();
    let license = *c.firms[&FIRM].content.entries.keys().next().unwrap();
    let now = unix_now();
    assert_eq!(
        c.check(FIRM, METERED, 0, &traits(), now)
            .unwrap()
            .units_left,
        Some(10)
    );

    // The vendor's software uses units: counted down; more than are left counts nothing.
    let used = c.use_units(FIRM, METERED, 4, &traits(), now).unwrap();
    assert_eq!(used.units_left, Some(6));
    let mut copy = c.clone();
    let e = c.use_units(FIRM, METERED, 7, &traits(), now).unwrap_err();
    assert_eq!(e.code, "units_exhausted", "{e}");
    assert!(
        e.message.contains("7 units of product 4003 asked, 6 left"),
        "{e}"
    );
    assert_eq!(
        c.use_units(FIRM, METERED, 6, &traits(), now)
            .unwrap()
            .units_left,
        Some(0)
    );
    let e = c.check(FIRM, METERED, 0, &traits(), now).unwrap_err();
    assert_eq!(e.code, "not_licensed", "{e}");
    assert!(e.message.contains("has used all its 10 units"), "{e}");

    // Its next request reports the count: the vendor sees it.
    assert!(online::update(&gw, &mut c, &mut keep).unwrap().is_empty());
    let (_, r) = app.admin("GET", "/api/v1/reports/units", None);
    let row = &r["rows"][0];
    assert_eq!(
        (
            row["license_id"].as_i64(),
            row["unit_counter"].as_i64(),
            row["used"].as_i64()
        ),
        (Some(license), Some(10), Some(10)),
        "{r}"
    );
    assert!(row["reported_at"].is_string(), "{row}");

    // The copy saved when 4 units were used comes back (the computer restored from a
    // backup) and reports fewer units than the container reported before: caught.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = online::update(&gw, &mut copy, &mut keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
    let (_, v) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(v["state"], "manipulated", "{v}");
    let why = v["state_reason"].as_str().unwrap();
    assert!(
        why.contains(&format!(
            "reports 4 units used of license {license}, where the container reported 10 before"
        )),
        "{why}"
    );

    // Support looks and decides: the genuine container, which reports all 10, goes on.
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/containers/{}/decision", c.serial),
        Some(json!({"decision": "resynchronise", "reason": "the customer kept the newer copy"})),
    );
    assert_eq!(s, 200, "{v}");

    // Five more units: an update item on the same order, brought by the next update.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders/erp/PPU-1/lines",
        Some(json!({"lines": [{"item_id": "PPU-MORE", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    let pulled = online::update(&gw, &mut c, &mut keep).unwrap();
    assert_eq!(pulled[0].changed, vec![license]);
    assert_eq!(
        c.check(FIRM, METERED, 0, &traits(), now)
            .unwrap()
            .units_left,
        Some(5)
    );
}
