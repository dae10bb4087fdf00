//! The honey-pot item: a license no customer is sold (published in a leaked ticket); a
//! container that activates it is blacklisted at once and takes the lock with the same
//! answer, whether it named the license or took the whole ticket. Set in the settings (JSON,
//! SOAP, the back office's form).
use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, CResult, Container};
use serde_json::{json, Value};

use crate::activation::{license, new_act, traits, FIRM};
use crate::admin::{alert, post, staff};
use crate::harness::{order, TestApp, ADMIN_PW};

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

fn blacklist(app: &TestApp) -> Vec<Value> {
    let (s, v) = app.admin("GET", "/api/v1/reports/blacklist", None);
    assert_eq!(s, 200, "{v}");
    v["rows"].as_array().unwrap().clone()
}

#[test]
fn a_container_that_activates_the_honey_pot_is_blacklisted_at_once() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "HONEY", "name": "SampleNotePad Enterprise (leaked)",
            "product_code": 1001, "options": {"feature_map": 1}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    // The setting through the back office's form; the JSON API reads what it stored.
    let mut v = staff(&app, "admin", ADMIN_PW);
    let (_, before) = app.admin("GET", "/api/v1/settings", None);
    let mut fields: Vec<(String, String)> = vec![];
    for (k, val) in before.as_object().unwrap() {
        match val {
            Value::Bool(true) => fields.push((k.clone(), "1".into())),
            Value::Bool(false) | Value::Null => {}
            Value::String(s) => fields.push((k.clone(), s.clone())),
            other => fields.push((k.clone(), other.to_string())),
        }
    }
    fields.push(("honeypot_item".into(), "HONEY".into()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = post(&mut v, "/admin/settings", "/admin/settings", &refs);
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, after) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(after["honeypot_item"], "HONEY");
    let mut same = before.clone();
    same["honeypot_item"] = json!("HONEY");
    assert_eq!(after, same, "nothing else changed");
    // An id no item can have is refused.
    let (s, e) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"honeypot_item": " HONEY"})),
    );
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{e}"
    );

    // The leaked ticket holds an honest license and the honey-pot.
    let (s, o) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order(
            "LEAK-1",
            "C-LEAK",
            &[("SNP-SINGLE", 1), ("HONEY", 1)],
        )),
    );
    assert_eq!(s, 201, "{o}");
    let ticket = o["ticket"].as_str().unwrap().to_string();
    let honest = o["lines"][0]["licenses"][0].as_i64().unwrap();
    let honey = o["lines"][1]["licenses"][0].as_i64().unwrap();

    // The honest license goes in as ever.
    let mut a = new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &[honest], &mut keep).unwrap();
    a.check(FIRM, 1001, 1, &traits(), unix_now()).unwrap();
    assert!(blacklist(&app).is_empty());
    // The honey-pot: refused as blacklisted, and the lock came with the refusal.
    let e = online::activate(&gw, &mut a, &ticket, &[honey], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    assert!(e.message.contains("honey-pot"), "{e}");
    assert_eq!(
        a.check(FIRM, 1001, 1, &traits(), unix_now())
            .unwrap_err()
            .code,
        "locked"
    );
    let bl = blacklist(&app);
    assert_eq!(bl.len(), 1);
    assert_eq!(bl[0]["serial"], a.serial.as_str());
    assert!(bl[0]["description"]
        .as_str()
        .unwrap()
        .contains(&honey.to_string()));
    assert!(bl[0]["lock_sent_at"].is_string() && bl[0]["lock_validated_at"].is_string());
    // The trap stays set; the thief's container gets nothing more.
    assert_eq!(license(&app, honey).0, "available");
    let e = online::update(&gw, &mut a, &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted");

    // Another container taking the whole ticket (no license named) is caught too.
    let mut b = new_act(&gw);
    let e = online::activate(&gw, &mut b, &ticket, &[], &mut keep).unwrap_err();
    assert_eq!(e.code, "blacklisted", "{e}");
    assert_eq!(blacklist(&app).len(), 2);
    assert_eq!(license(&app, honey).0, "available");
    assert_eq!(
        app.count(&format!(
            "events WHERE action = 'container.honeypot_activated' AND license_id = {honey}"
        )),
        2
    );
    // Without the setting the item is an item like any other.
    let (s, _) = app.admin("PUT", "/api/v1/settings", Some(json!({})));
    assert_eq!(s, 200);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &[honey], &mut keep).unwrap();
    assert_eq!(license(&app, honey).0, "activated");
}
