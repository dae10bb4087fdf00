//! The back office's forms that change what everything else reads: items with every option,
//! the global settings, and the portal's colours and license columns.
use licentia::domain::Role;
use serde_json::json;

use crate::activation::ticket_with;
use crate::admin::{alert, post, staff};
use crate::harness::{TestApp, ADMIN_PW};
use crate::portal::Visitor;

#[test]
fn items_and_settings_are_edited_through_their_forms() {
    let app = TestApp::start();
    let mut v = staff(&app, "admin", ADMIN_PW);
    let p = post(
        &mut v,
        "/admin/items/new",
        "/admin/items",
        &[
            ("item_id", "BO-ITEM"),
            ("name", "Made in the back office"),
            ("kind", "license"),
            ("product_code", "4242"),
            ("active", "1"),
            ("container_types", "act"),
            ("container_types", "cloud"),
            ("license_quantity", "5"),
            ("feature_map", "3"),
            ("expiration_time", "2030-01-31T12:00"),
            ("deactivation_allowed", "no"),
            ("reactivation", "approval"),
            ("seat_counting", "per_station"),
            ("lease_seconds", "600"),
            ("check_in_days", "14"),
            ("activation_limit.activations", "2"),
            ("activation_limit.days", "30"),
            ("text", "Hallo Welt"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert_eq!(p.location, "/admin/items/view?id=BO-ITEM&notice=item_saved");
    let (_, item) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    let o = &item["options"];
    assert_eq!(o["container_types"], json!(["act", "cloud"]));
    assert_eq!(o["license_quantity"], 5);
    assert_eq!(o["expiration_time"], "2030-01-31T12:00:00Z");
    assert_eq!(o["deactivation_allowed"], false);
    assert_eq!(o["reactivation"], "approval");
    assert_eq!(o["seat_counting"], "per_station");
    assert_eq!(o["activation_limit"], json!({"activations": 2, "days": 30}));
    assert_eq!(o["check_in_days"], 14);
    assert_eq!(item["product_code"], 4242);
    // The edit page shows what is stored; saving it unchanged changes nothing but the
    // version.
    let page = v.get("/admin/items/view?id=BO-ITEM");
    assert!(page.body.contains("value=\"2030-01-31T12:00\""));
    assert!(page.body.contains("value=\"per_station\" selected"));
    // Bad values are refused with the option named, and nothing changes.
    for (name, value, says) in [
        ("license_quantity", "-1", "license_quantity"),
        (
            "check_in_days",
            "0",
            "check_in_days: between 1 and 3650 days",
        ),
        ("expiration_time", "tomorrow", "expiration_time"),
        ("reactivation", "sometimes", "unknown variant"),
        ("activation_limit.days", "", "give both"),
    ] {
        let p = post(
            &mut v,
            "/admin/items/view?id=BO-ITEM",
            "/admin/items/view?id=BO-ITEM",
            &[
                // The first value of a name counts.
                (name, value),
                ("version", &item["version"].to_string()),
                ("kind", "license"),
                ("name", "x"),
                ("container_types", "act"),
                ("activation_limit.activations", "2"),
                ("activation_limit.days", "30"),
            ],
        );
        assert_eq!(p.status, 400, "{name}");
        assert!(p.body.contains(says), "{name}: {}", alert(&p));
    }
    let (_, same) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    assert_eq!(same, item);
    let p = post(
        &mut v,
        "/admin/items/view?id=BO-ITEM",
        "/admin/items/view?id=BO-ITEM",
        &[
            ("version", &item["version"].to_string()),
            ("kind", "license"),
            ("name", "Renamed"),
            ("container_types", "act"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, changed) = app.admin("GET", "/api/v1/items/BO-ITEM", None);
    assert_eq!(changed["name"], "Renamed");
    assert_eq!(changed["active"], false, "unchecked: deactivated");
    // An old version: someone else changed it meanwhile.
    let p = post(
        &mut v,
        "/admin/items/view?id=BO-ITEM",
        "/admin/items/view?id=BO-ITEM",
        &[
            ("version", &item["version"].to_string()),
            ("kind", "license"),
            ("name", "y"),
            ("container_types", "act"),
        ],
    );
    assert_eq!(p.status, 409, "{}", alert(&p));

    // The settings form stores what the JSON API reads, every field.
    let (_, before) = app.admin("GET", "/api/v1/settings", None);
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings",
        &[
            ("deactivation_allowed", "1"),
            ("duplicate_check", "1"),
            ("reactivation", "approval"),
            ("restore", "allowed"),
            ("reactivation_behaviour", "withdraw"),
            ("blocking_period_days", "7"),
            ("self_service_count", "2"),
            ("monthly_activation_quota", "100"),
            ("activation_mode", "selected"),
            ("fingerprint_tolerance", "1"),
            ("update_validity_days", "14"),
            ("lock_item", ""),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    let (_, after) = app.admin("GET", "/api/v1/settings", None);
    assert_ne!(before, after);
    assert_eq!(after["reactivation"], "approval");
    assert_eq!(after["reactivation_behaviour"], "withdraw");
    assert_eq!(after["monthly_activation_quota"], 100);
    assert_eq!(after["automatic_update_handling"], false);
    assert_eq!(after["activation_mode"], "selected");
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings",
        &[
            ("reactivation", "allowed"),
            ("restore", "allowed"),
            ("reactivation_behaviour", "none"),
            ("activation_mode", "all"),
            ("blocking_period_days", "a week"),
        ],
    );
    assert_eq!(p.status, 400);
    let (_, unchanged) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(unchanged, after);
}

#[test]
fn the_portals_colours_and_columns_are_set_in_the_back_office() {
    let app = TestApp::start();
    let mut v = staff(&app, "admin", ADMIN_PW);
    let (ticket, _) = ticket_with(&app, "LOOK-1", "SNP-SINGLE", 1);
    let mut customer = Visitor::new(&app.base);
    assert_eq!(customer.login(&ticket).status, 303);
    let columns = |c: &mut Visitor| -> Vec<String> {
        let page = c.get("/portal/tickets").body;
        let mut seen: Vec<String> = vec![];
        for (i, _) in page.match_indices("data-col=\"") {
            let rest = &page[i + 10..];
            let name = rest[..rest.find('"').unwrap()].to_string();
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        seen
    };
    let configured = columns(&mut customer);
    assert!(configured.contains(&"expiry".to_string()), "{configured:?}");
    let css = |c: &mut Visitor| c.get("/portal/static/brand.css").body;
    assert!(css(&mut customer).contains("--brand: #1d4f73;"));

    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings/portal",
        &[
            ("color", "#AA3300"),
            ("accent_color", ""),
            ("columns", "state, name,license"),
        ],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    // At the portal's next page, without a restart.
    assert!(css(&mut customer).contains("--brand: #aa3300;"));
    assert!(
        css(&mut customer).contains("--accent: #e8a33d;"),
        "the configured accent"
    );
    assert_eq!(columns(&mut customer), vec!["state", "name", "license"]);
    // Bad values change nothing.
    for (name, value, says) in [
        ("color", "#12345", "not a colour"),
        ("columns", "name,price", "&quot;price&quot; is not one of"),
    ] {
        let mut fields = vec![
            ("color", "#AA3300"),
            ("accent_color", ""),
            ("columns", "state"),
        ];
        fields.retain(|(n, _)| *n != name);
        fields.insert(0, (name, value));
        let p = post(&mut v, "/admin/settings", "/admin/settings/portal", &fields);
        assert_eq!(p.status, 400, "{name}");
        assert!(p.body.contains(says), "{name}: {}", alert(&p));
    }
    assert_eq!(columns(&mut customer), vec!["state", "name", "license"]);
    // Sales may not change it.
    let sales_pw = app.add_user("sam", Role::Sales);
    let mut sam = staff(&app, "sam", &sales_pw);
    let p = post(
        &mut sam,
        "/admin/orders",
        "/admin/settings/portal",
        &[("color", "#000000")],
    );
    assert_eq!(p.status, 403);
    // Empty: the configuration's again.
    let p = post(
        &mut v,
        "/admin/settings",
        "/admin/settings/portal",
        &[("color", ""), ("accent_color", ""), ("columns", "")],
    );
    assert_eq!(p.status, 303, "{}", alert(&p));
    assert!(css(&mut customer).contains("--brand: #1d4f73;"));
    assert_eq!(columns(&mut customer), configured);
    assert_eq!(
        app.count("events WHERE action = 'settings.portal_look_changed'"),
        2
    );
}
