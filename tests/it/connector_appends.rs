//! What an ERP or a shop set up for License Central sends without changing anything but the
//! host name: the GenericConnector's call as the seeds write it (`GenericConnector.php`, an
//! empty `orderid`), and later lines for an order appended to its ticket by the same order
//! id, from the GenericConnector and from IDocs, a resend changing nothing.
use licentia::domain::Role;
use serde_json::Value;

use crate::connectors::{log, outcomes, send, shipped_with_secrets, FIXTURES};
use crate::harness::TestApp;

fn licenses_of(app: &TestApp, ticket: &str) -> Vec<String> {
    let (s, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    assert_eq!(s, 200, "{t}");
    t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_generic_connector_call_of_license_central_works_as_written_and_appends_by_order_id() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let pw = app.add_user("sales", Role::Sales);
    // The seeds' call, with only the host name changed: an empty orderid is a new order
    // each time.
    let seed = format!(
        "{}/GenericConnector.php?user=sales&password={pw}&orderid=&customerid=20201216\
         &item_count=1&item1_id=SNP-201-000-01-100&item1_quantity=1",
        app.base
    );
    let (s, first) = send("GET", &seed, None, None);
    assert_eq!(s, 200, "{first}");
    let (s, second) = send("GET", &seed, None, None);
    assert_eq!(s, 200, "{second}");
    assert_ne!(first.trim(), second.trim(), "two orders, two tickets");
    assert_eq!(app.count("orders"), 2);
    assert_eq!(licenses_of(&app, first.trim()), ["SNP-SINGLE"]);
    // Under any folder, as a shop's configured URL may have one; posted as a form too.
    let (path, query) = seed.split_once('?').unwrap();
    let (s, third) = send(
        "POST",
        &path.replace("/GenericConnector.php", "/lc/GenericConnector.php"),
        Some(("application/x-www-form-urlencoded", query.as_bytes())),
        None,
    );
    assert_eq!(s, 200, "{third}");
    assert_eq!(app.count("orders"), 3);

    // An order id: the first call makes the order; later lines go onto its ticket.
    let call = |order: &str, customer: &str, item: &str, q: i64| {
        let url = format!(
            "{}/connect/generic?user=sales&password={pw}&orderid={order}&customerid={customer}\
             &item_count=1&item1_id={item}&item1_quantity={q}&format=json",
            app.base
        );
        let (s, body) = send("GET", &url, None, None);
        (
            s,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)),
        )
    };
    let (s, v) = call("W-1", "C-W", "SampleNotePad", 1);
    assert_eq!((s, &v["created"]), (200, &Value::Bool(true)), "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let (s, v) = call("W-1", "C-W", "SampleNotePad-Floating-5", 2);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ticket"], ticket.as_str(), "the same ticket");
    assert_eq!(
        licenses_of(&app, &ticket),
        ["SNP-SINGLE", "SNP-FLOAT-5", "SNP-FLOAT-5"]
    );
    // Sent again (the shop retried): nothing changes; nor for the first lines.
    let (s, v) = call("W-1", "C-W", "SampleNotePad-Floating-5", 2);
    assert_eq!((s, &v["created"]), (200, &Value::Bool(false)), "{v}");
    let (s, _) = call("W-1", "C-W", "SampleNotePad", 1);
    assert_eq!(s, 200);
    assert_eq!(licenses_of(&app, &ticket).len(), 3);
    // The same order id for another customer is a conflict, and changes nothing.
    let (s, v) = call("W-1", "C-OTHER", "SampleNotePad", 5);
    assert_eq!(s, 409, "{v}");
    assert_eq!(licenses_of(&app, &ticket).len(), 3);
    let o = outcomes(&app, "generic");
    assert_eq!(
        o[o.len() - 5..],
        [
            "order_created",
            "lines_added",
            "duplicate",
            "duplicate",
            "rejected"
        ],
        "{o:?}"
    );
    let (_, order) = app.admin("GET", "/api/v1/orders/generic/W-1", None);
    assert_eq!(order["lines"].as_array().unwrap().len(), 2, "{order}");
}

#[test]
fn an_idoc_with_a_new_number_for_an_order_appends_and_its_resend_changes_nothing() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let pw = app.add_user("sap", Role::Erp);
    let url = format!("{}/connect/sap-orders05", app.base);
    let first = std::fs::read_to_string(format!("{FIXTURES}/sap-orders05.xml")).unwrap();
    let post = |body: &str| {
        send(
            "POST",
            &url,
            Some(("application/xml", body.as_bytes())),
            Some(("sap", &pw)),
        )
    };
    let (s, xml) = post(&first);
    assert_eq!(s, 200, "{xml}");
    let (_, o) = app.admin("GET", "/api/v1/orders/sap/0000004711", None);
    let ticket = o["ticket"].as_str().unwrap().to_string();
    assert_eq!(licenses_of(&app, &ticket).len(), 3);
    let writebacks = app.count("writebacks");

    // A change of the order (a new IDoc for the same BELNR) with one more line.
    let change = first
        .replace(
            "<DOCNUM>0000000000123456</DOCNUM>",
            "<DOCNUM>0000000000123457</DOCNUM>",
        )
        .replace("<MENGE>2.000</MENGE>", "<MENGE>4.000</MENGE>");
    // The write-backs whose ticket lists `n` licenses.
    let posted_licenses = |app: &TestApp, n: i64| {
        app.count(&format!(
            "writebacks WHERE (LENGTH(body) - LENGTH(REPLACE(body, '<License ', ''))) / 9 = {n}"
        ))
    };
    assert_eq!(posted_licenses(&app, 3), 1);
    let (s, xml) = post(&change);
    assert_eq!(s, 200, "{xml}");
    assert!(xml.contains(&ticket), "{xml}");
    assert_eq!(licenses_of(&app, &ticket).len(), 3 + 5);
    assert_eq!(posted_licenses(&app, 8), 1);
    // The ERP learns the ticket again, with every license: its write-back is due again.
    assert_eq!(app.count("writebacks"), writebacks);
    let wb = |what: &str| {
        app.count(&format!(
            "writebacks WHERE state = 'queued' AND body LIKE '%{what}%'"
        ))
    };
    assert_eq!(wb(&ticket), 1);
    let (_, v) = app.admin("GET", "/api/v1/connectors/log?connector=sap-orders05", None);
    assert_eq!(v["writebacks"].as_array().unwrap().len(), 1, "{v}");
    // Both IDocs sent again: nothing more.
    for body in [&first, &change] {
        let (s, xml) = post(body);
        assert_eq!(s, 200, "{xml:?}");
    }
    assert_eq!(licenses_of(&app, &ticket).len(), 8);
    assert_eq!(app.count("orders"), 1);
    assert_eq!(app.count("writebacks"), writebacks);
    let o = outcomes(&app, "sap-orders05");
    assert_eq!(
        o,
        ["order_created", "lines_added", "duplicate", "duplicate"],
        "{}",
        log(&app, "sap-orders05")
    );
}
