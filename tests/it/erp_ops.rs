//! The operations ERPs asked for beside orders: a ticket disabled and enabled again, a
//! license, a container and their history read, customers listed a page at a time and
//! deleted; through the JSON API and through zeep reading our WSDL (the CLI's are in
//! `cli.rs`).
use licentia::client::online::{self, Gateway};
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with, FIRM};
use crate::harness::TestApp;
use crate::soap::{fault, zeep_at};

fn keep(_: &licentia::client::Container) -> licentia::client::CResult<()> {
    Ok(())
}

fn sales(app: &TestApp, who: (&str, &str), op: &str, args: Value) -> Value {
    zeep_at(app, "Sales", "SalesSoap11", who, op, args)
}

fn admin(app: &TestApp, who: (&str, &str), op: &str, args: Value) -> Value {
    zeep_at(app, "Admin", "AdminSoap12", who, op, args)
}

#[test]
fn a_disabled_ticket_activates_nothing_until_it_is_enabled_again() {
    let app = TestApp::start();
    let erp = app.add_user("erp", Role::Erp);
    let support = app.add_user("sup", Role::Support);
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "D-1", "SNP-SINGLE", 2);
    let mut first = new_act(&gw);
    online::activate(&gw, &mut first, &ticket, &[ids[0]], &mut keep).unwrap();

    // The order was refunded: the ERP disables the ticket over SOAP.
    let args = json!({"Ticket": ticket, "Reason": "order refunded"});
    let v = sales(&app, ("erp", &erp), "DisableTicket", args.clone());
    assert_eq!(v["ok"]["State"], "disabled", "{v}");
    assert_eq!(v["ok"]["License"].as_array().unwrap().len(), 2, "{v}");
    let events = app.count("events");
    // Sent again: nothing changes, nothing is recorded twice.
    let again = sales(&app, ("erp", &erp), "DisableTicket", args);
    assert_eq!(again["ok"]["State"], "disabled", "{again}");
    assert_eq!(app.count("events"), events);
    // Support reads tickets but does not disable them.
    let refused = sales(
        &app,
        ("sup", &support),
        "EnableTicket",
        json!({"Ticket": ticket}),
    );
    assert!(fault(&refused).contains("forbidden"), "{refused}");

    // The wizard's ticket lookup says so before it tries anything.
    let (s, info) = crate::harness::call_at(
        &app.base,
        "GET",
        &format!("/api/v1/gateway/tickets/{ticket}"),
        None,
        None,
    );
    assert_eq!(
        (s, info["state"].as_str()),
        (200, Some("disabled")),
        "{info}"
    );

    // Nothing is activated from it, and the refusal says why; what is in a container stays.
    let mut second = new_act(&gw);
    let e = online::activate(&gw, &mut second, &ticket, &[ids[1]], &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");
    assert!(e.message.contains("disabled by the vendor"), "{e}");
    assert_eq!(license(&app, ids[1]), ("available".into(), None));
    assert_eq!(license(&app, ids[0]).0, "activated");
    // The whole ticket, as the wizard asks for it, likewise.
    let e = online::activate(&gw, &mut second, &ticket, &[], &mut keep).unwrap_err();
    assert_eq!(e.code, "not_allowed", "{e}");

    // The JSON API takes "active" or "disabled", nothing else, and names unknown tickets.
    let path = format!("/api/v1/tickets/{ticket}/state");
    for (body, status) in [
        (json!({"state": "production"}), 400),
        (json!({"state": "paused"}), 400),
        (json!({"state": "active", "colour": "red"}), 400),
        (json!({"state": "active", "reason": "x".repeat(1025)}), 400),
    ] {
        let (s, v) = app.admin("PUT", &path, Some(body.clone()));
        assert_eq!(s, status, "{body}: {v}");
    }
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/tickets/AAAAA-AAAAA-AAAAA-AAAAA-AAAAA/state",
        Some(json!({"state": "active"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_ticket")),
        "{v}"
    );
    assert_eq!(app.count("events"), events);

    // Enabled again: the license goes where it was asked for.
    let (s, v) = app.admin(
        "PUT",
        &path,
        Some(json!({"state": "active", "reason": "paid after all"})),
    );
    assert_eq!((s, v["state"].as_str()), (200, Some("active")), "{v}");
    online::activate(&gw, &mut second, &ticket, &[ids[1]], &mut keep).unwrap();
    assert_eq!(
        license(&app, ids[1]),
        ("activated".into(), Some(second.serial.clone()))
    );

    // Both decisions are in the ticket's history, with who and why.
    let admin_pw = app.add_user("boss", Role::Admin);
    let h = admin(
        &app,
        ("boss", &admin_pw),
        "GetHistory",
        json!({"Ticket": ticket}),
    );
    let list = h["ok"].as_array().expect("events");
    let of = |action: &str| {
        list.iter()
            .find(|e| e["Action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {h}"))
    };
    assert_eq!(of("ticket.disabled")["Actor"], "erp");
    assert!(of("ticket.disabled")["Details"]
        .as_str()
        .unwrap()
        .contains("order refunded"));
    assert!(of("ticket.enabled")["Details"]
        .as_str()
        .unwrap()
        .contains("paid after all"));

    // A production order's ticket is not a customer's: neither disabled nor enabled.
    let (s, po) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(json!({"erp_order_id": "P-1", "dongles": 1,
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{po}");
    let (s, v) = app.admin(
        "PUT",
        &format!("/api/v1/tickets/{}/state", po["ticket"].as_str().unwrap()),
        Some(json!({"state": "disabled"})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("not_allowed")),
        "{v}"
    );
}

#[test]
fn zeep_reads_a_license_a_container_and_their_history() {
    let app = TestApp::start();
    let erp = app.add_user("erp", Role::Erp);
    let support = app.add_user("sup", Role::Support);
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "R-1", "SNP-SINGLE", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap();

    let v = sales(
        &app,
        ("erp", &erp),
        "GetLicense",
        json!({"LicenseId": ids[0]}),
    );
    let got = &v["ok"];
    assert_eq!(got["Ticket"], ticket.as_str(), "{v}");
    assert_eq!(got["License"]["State"], "activated", "{v}");
    assert_eq!(got["License"]["Serial"], c.serial.as_str(), "{v}");
    assert_eq!(got["License"]["FirmCode"], FIRM, "{v}");
    assert_eq!(got["Generation"], 1, "{v}");
    let unknown = sales(
        &app,
        ("erp", &erp),
        "GetLicense",
        json!({"LicenseId": 999_999}),
    );
    assert!(fault(&unknown).contains("unknown_license"), "{unknown}");

    // The container as support sees it (and the JSON API shows the same).
    let v = admin(
        &app,
        ("sup", &support),
        "GetContainer",
        json!({"Serial": c.serial}),
    );
    let got = &v["ok"];
    assert_eq!(got["Type"], "act", "{v}");
    assert_eq!(got["State"], "active", "{v}");
    assert_eq!(got["Firm"][0]["FirmCode"], FIRM, "{v}");
    assert_eq!(got["License"][0]["LicenseId"], ids[0], "{v}");
    let (s, json) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(s, 200);
    assert_eq!(
        got["Firm"][0]["Counter"], json["firms"][0]["counter"],
        "{v} {json}"
    );
    assert_eq!(
        got["Firm"][0]["Digest"], json["firms"][0]["digest"],
        "{v} {json}"
    );
    let unknown = admin(
        &app,
        ("sup", &support),
        "GetContainer",
        json!({"Serial": "130-0000000001"}),
    );
    assert!(fault(&unknown).contains("unknown_container"), "{unknown}");
    let bad = admin(
        &app,
        ("sup", &support),
        "GetContainer",
        json!({"Serial": "not a serial"}),
    );
    assert!(fault(&bad).contains("unknown_container"), "{bad}");
    // The ERP reads licenses, not containers or the history.
    let refused = admin(
        &app,
        ("erp", &erp),
        "GetContainer",
        json!({"Serial": c.serial}),
    );
    assert!(fault(&refused).contains("forbidden"), "{refused}");
    let refused = admin(
        &app,
        ("erp", &erp),
        "GetHistory",
        json!({"LicenseId": ids[0]}),
    );
    assert!(fault(&refused).contains("forbidden"), "{refused}");

    // The license's history: made by the order, activated into the container, chained.
    let v = admin(
        &app,
        ("sup", &support),
        "GetHistory",
        json!({"LicenseId": ids[0]}),
    );
    let list = v["ok"].as_array().expect("events");
    let actions: Vec<&str> = list.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"license.activated"), "{actions:?}");
    assert!(list.iter().all(|e| e["LicenseId"] == ids[0]), "{v}");
    assert!(
        list.iter().all(|e| e["Hash"].as_str().unwrap().len() == 64),
        "{v}"
    );
    // The same events as the JSON API's.
    let (_, json) = app.admin(
        "GET",
        &format!("/api/v1/history?license_id={}", ids[0]),
        None,
    );
    let json_ids: Vec<i64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let soap_ids: Vec<i64> = list
        .iter()
        .map(|e| e["EventId"].as_i64().unwrap())
        .collect();
    assert_eq!(soap_ids, json_ids);
    // And the container's, by serial.
    let v = admin(
        &app,
        ("sup", &support),
        "GetHistory",
        json!({"Serial": c.serial}),
    );
    assert!(
        v["ok"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["Serial"] == c.serial.as_str()),
        "{v}"
    );
}

#[test]
fn customers_are_listed_a_page_at_a_time_and_deleted_only_while_they_own_nothing() {
    let app = TestApp::start();
    let sales_pw = app.add_user("sam", Role::Sales);
    let support = app.add_user("sup", Role::Support);
    for id in ["K-1", "K-2", "K-3"] {
        let (s, v) = app.admin(
            "PUT",
            "/api/v1/customers",
            Some(json!({"external_id": id, "name": format!("Customer {id}")})),
        );
        assert_eq!(s, 200, "{v}");
    }
    let (ticket, ids) = ticket_with(&app, "K-ORDER", "SNP-SINGLE", 1);
    let owner = {
        let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
        t["customer_id"].as_str().unwrap().to_string()
    };

    // Pages: each starts after the last one of the page before.
    let page = |q: &str| {
        let (s, v) = app.admin("GET", &format!("/api/v1/customers{q}"), None);
        assert_eq!(s, 200, "{q}: {v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["external_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = page("");
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(page("?limit=2"), all[..2]);
    assert_eq!(page(&format!("?limit=2&after={}", all[1])), all[2..]);
    for (q, status) in [
        ("?limit=0", 400),
        ("?limit=1001", 400),
        ("?after=NOBODY", 404),
    ] {
        let (s, v) = app.admin("GET", &format!("/api/v1/customers{q}"), None);
        assert_eq!(s, status, "{q}: {v}");
    }
    let v = admin(
        &app,
        ("sup", &support),
        "ListCustomers",
        json!({"After": all[0], "Limit": 2}),
    );
    let listed: Vec<&str> = v["ok"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ExternalId"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        all[1..3].iter().map(String::as_str).collect::<Vec<_>>()
    );

    // A customer with an order stays: the fault says what they own; nothing changes.
    let events = app.count("events");
    let refused = admin(
        &app,
        ("sam", &sales_pw),
        "DeleteCustomer",
        json!({"ExternalId": owner}),
    );
    assert!(fault(&refused).contains("not_allowed"), "{refused}");
    assert!(
        fault(&refused).contains("owns 1 license(s) on 1 ticket(s)"),
        "{refused}"
    );
    assert_eq!(app.count("customers"), 4);
    // Support reads customers but does not delete them.
    let refused = admin(
        &app,
        ("sup", &support),
        "DeleteCustomer",
        json!({"ExternalId": "K-1"}),
    );
    assert!(fault(&refused).contains("forbidden"), "{refused}");
    assert_eq!(app.count("events"), events);

    // A container assigned to K-2 belongs to nobody once K-2 is deleted.
    let gw = Gateway::new(&app.base);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &ticket, &ids, &mut keep).unwrap();
    let (s, v) = app.admin(
        "PUT",
        &format!("/api/v1/containers/{}/customer", c.serial),
        Some(json!({"customer_id": "K-2"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.admin("DELETE", "/api/v1/customers/K-2", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["containers"], json!([c.serial]), "{v}");
    let (_, cont) = app.admin("GET", &format!("/api/v1/containers/{}", c.serial), None);
    assert_eq!(cont["customer_id"], Value::Null, "{cont}");
    let (s, v) = app.admin("GET", "/api/v1/customers/K-2", None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("unknown_customer"))
    );

    // Over SOAP, and a second time: unknown.
    let v = admin(
        &app,
        ("sam", &sales_pw),
        "DeleteCustomer",
        json!({"ExternalId": "K-1"}),
    );
    assert_eq!(v["ok"]["ExternalId"], "K-1", "{v}");
    let again = admin(
        &app,
        ("sam", &sales_pw),
        "DeleteCustomer",
        json!({"ExternalId": "K-1"}),
    );
    assert!(fault(&again).contains("unknown_customer"), "{again}");
    assert_eq!(page(""), vec!["K-3".to_string(), owner]);
    let (_, h) = app.admin("GET", "/api/v1/history", None);
    let deleted = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "customer.deleted")
        .count();
    assert_eq!(deleted, 2);
}
