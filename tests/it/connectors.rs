//! Orders from shops and ERPs through `/connect/<name>`, with the shipped definitions and
//! fixtures, and the ERP write-back through a real HTTP server that is down, then up.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use licentia::domain::Role;
use serde_json::Value;

use crate::harness::{Scratch, TestApp};

pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/connectors");
pub(crate) const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/connectors");

pub(crate) fn send(
    method: &str,
    url: &str,
    body: Option<(&str, &[u8])>,
    auth: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = ureq::request(method, url);
    if let Some((u, p)) = auth {
        use base64::Engine;
        req = req.set(
            "Authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ),
        );
    }
    let res = match body {
        Some((ct, b)) => req.set("Content-Type", ct).send_bytes(b),
        None => req.call(),
    };
    match res {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

pub(crate) fn log(app: &TestApp, connector: &str) -> Value {
    let (s, v) = app.admin(
        "GET",
        &format!("/api/v1/connectors/log?connector={connector}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v
}

pub(crate) fn outcomes(app: &TestApp, connector: &str) -> Vec<String> {
    let mut o: Vec<String> = log(app, connector)["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["outcome"].as_str().unwrap().to_string())
        .collect();
    o.reverse();
    o
}

#[test]
fn the_generic_connector_answers_text_xml_and_json_and_makes_one_order_per_order_id() {
    let app = TestApp::start_with(|c| c.connectors_dir = SHIPPED.into());
    let pw = app.add_user("shop", Role::Erp);
    let base = format!("{}/connect/generic", app.base);
    let q = |order: &str, extra: &str| {
        format!(
            "{base}?user=shop&password={pw}&orderid={order}&customerid=C-77\
             &item_count=2&item1_id=SampleNotePad&item1_quantity=2&item2_id=SNP-FLOAT-5\
             &customer_name=Kim%20Kunde&customer_email=kim%40example.com{extra}"
        )
    };
    let (s, text) = send("GET", &q("G-1", ""), None, None);
    assert_eq!(s, 200, "{text}");
    let ticket = text.trim().to_string();
    assert_eq!(ticket.len(), 29, "{text}");
    let (_, t) = app.admin("GET", &format!("/api/v1/tickets/{ticket}"), None);
    let items: Vec<&str> = t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["SNP-SINGLE", "SNP-SINGLE", "SNP-FLOAT-5"]);
    assert_eq!(t["customer_id"], "C-77");

    // The same order again, as XML and as JSON, is the same ticket.
    let (s, xml) = send("GET", &q("G-1", "&format=xml"), None, None);
    assert_eq!(s, 200);
    assert!(xml.contains(&format!("<Ticket>{ticket}</Ticket>")), "{xml}");
    assert!(xml.contains("<Created>false</Created>"), "{xml}");
    let form = q("G-1", "&format=json");
    let (path, query) = form.split_once('?').unwrap();
    let (s, json) = send(
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", query.as_bytes())),
        None,
    );
    assert_eq!(s, 200, "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ticket"], ticket.as_str());
    assert_eq!(app.count("orders"), 1);
    assert_eq!(app.count("licenses"), 3);

    // A wrong password, an unknown product, a bad quantity: refused, nothing created.
    let (s, text) = send("GET", &q("G-2", "").replace(&pw, "wrong"), None, None);
    assert_eq!(s, 401, "{text}");
    assert!(text.starts_with("ERROR unauthenticated"), "{text}");
    let (s, text) = send(
        "GET",
        &q("G-3", "").replace("SNP-FLOAT-5", "NO-SUCH-SKU"),
        None,
        None,
    );
    assert_eq!(s, 404, "{text}");
    assert!(
        text.contains("unknown_item") && text.contains("NO-SUCH-SKU"),
        "{text}"
    );
    let (s, xml) = send(
        "GET",
        &q("G-4", "&format=xml").replace("item1_quantity=2", "item1_quantity=two"),
        None,
        None,
    );
    assert_eq!(s, 400, "{xml}");
    assert!(
        xml.contains("<LicentiaError code=\"invalid_input\">"),
        "{xml}"
    );
    assert!(xml.contains("item1_quantity"), "{xml}");
    let (s, text) = send("GET", &format!("{base}?user=shop"), None, None);
    assert_eq!(s, 400);
    assert!(text.contains("item_count"), "{text}");
    assert_eq!(app.count("orders"), 1);
    assert_eq!(app.count("licenses"), 3);

    // Every notification is on record with its outcome (the password never).
    assert_eq!(
        outcomes(&app, "generic"),
        [
            "order_created",
            "duplicate",
            "duplicate",
            "rejected",
            "rejected",
            "rejected",
            "rejected"
        ]
    );
    let l = log(&app, "generic");
    let rejected = &l["notifications"][2];
    assert!(
        rejected["detail"]
            .as_str()
            .unwrap()
            .contains("unknown_item"),
        "{l}"
    );
    let (s, _) = send(
        "GET",
        &format!("{}/connect/nosuchshop", app.base),
        None,
        None,
    );
    assert_eq!(s, 404);
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use licentia::store::schema::notifications;
        let mut c = app.db.connect();
        notifications::table
            .select(notifications::body)
            .load(&mut c)
            .unwrap()
    };
    assert!(
        stored.iter().all(|b| !b.contains(&pw)),
        "passwords are not recorded"
    );
    // Of a caller whose credentials fail, only the reference and the reason are kept; of a
    // known caller the notification too.
    let body_of = |reference: &str| -> String {
        use diesel::prelude::*;
        use licentia::store::schema::notifications;
        let mut c = app.db.connect();
        notifications::table
            .filter(notifications::reference.eq(reference))
            .select(notifications::body)
            .first(&mut c)
            .unwrap()
    };
    assert_eq!(body_of("G-2"), "");
    assert!(body_of("G-3").contains("NO-SUCH-SKU"));
}

/// A minimal HTTP server that answers 200 (or the given status) to every request and keeps
/// the bodies.
struct Receiver {
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn listen(listener: TcpListener) -> Receiver {
        Receiver::answering(listener, "200 OK")
    }

    /// `status` is the status line's rest, with any header lines after it.
    fn answering(listener: TcpListener, status: &'static str) -> Receiver {
        let bodies = Arc::new(Mutex::new(vec![]));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok() {
                    keep.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).to_string());
                }
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        Receiver { bodies }
    }
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The secrets the tests give the shipped shop definitions (which read them from the
/// environment).
const SECRETS: &[(&str, &str)] = &[
    ("FASTSPRING_WEBHOOK_SECRET", "fastspring-test-secret"),
    ("PADDLE_WEBHOOK_SECRET", "pdl_ntfset_test_secret"),
    ("LEMONSQUEEZY_WEBHOOK_SECRET", "lemon-test-secret"),
    ("TWOCHECKOUT_SECRET_KEY", "2checkout-test-key"),
];

/// The shipped definitions with the shops' secrets set.
pub(crate) fn shipped_with_secrets() -> Scratch {
    definitions_with_writeback(9)
}

/// The shipped definitions with the SAP write-back pointed at `port` on loopback and the
/// shops' secrets set.
fn definitions_with_writeback(port: u16) -> Scratch {
    let dir = Scratch::new("connectors");
    for f in std::fs::read_dir(SHIPPED).unwrap() {
        let p = f.unwrap().path();
        let mut text = std::fs::read_to_string(&p).unwrap().replace(
            "http://sap.example.com:8000/sap/bc/zlicentia/ticket",
            &format!("http://127.0.0.1:{port}/ticket"),
        );
        for (var, secret) in SECRETS {
            text = text.replace(
                &format!("secret_env = \"{var}\""),
                &format!("secret = \"{secret}\""),
            );
        }
        text = text.replace(
            "password_env = \"SAP_WRITEBACK_PASSWORD\"",
            "password = \"sap-test-password\"",
        );
        std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
    }
    dir
}

#[test]
fn a_sap_orders05_idoc_becomes_a_ticket_posted_back_once_when_the_erp_is_up_again() {
    let port = crate::crash::free_port(); // the ERP's endpoint is down
    let dir = definitions_with_writeback(port);
    let app = TestApp::start_with(|c| {
        c.connectors_dir = dir.display().to_string();
        c.mail_retry_secs = 1;
    });
    let pw = app.add_user("sap", Role::Erp);
    let url = format!("{}/connect/sap-orders05", app.base);
    let idoc = std::fs::read(format!("{FIXTURES}/sap-orders05.xml")).unwrap();
    let (s, xml) = send(
        "POST",
        &url,
        Some(("application/xml", &idoc)),
        Some(("sap", &pw)),
    );
    assert_eq!(s, 200, "{xml}");
    assert!(
        xml.contains("<OrderNumber>0000004711</OrderNumber>"),
        "{xml}"
    );
    let ticket = xml
        .split("<Ticket>")
        .nth(1)
        .and_then(|r| r.split("</Ticket>").next())
        .unwrap()
        .to_string();
    let (_, o) = app.admin("GET", "/api/v1/orders/sap/0000004711", None);
    assert_eq!(o["ticket"], ticket.as_str());
    assert_eq!(o["customer_id"], "0000100042");
    let lines: Vec<(String, i64)> = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["item_id"].as_str().unwrap().into(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, [("SNP-SINGLE".into(), 2), ("SNP-FLOAT-5".into(), 1)]);

    // The ERP sends it again: the same ticket, no second order, no second write-back.
    let (s, again) = send(
        "POST",
        &url,
        Some(("application/xml", &idoc)),
        Some(("sap", &pw)),
    );
    assert_eq!(s, 200);
    assert!(
        again.contains(&ticket) && again.contains("<Created>false</Created>"),
        "{again}"
    );
    assert_eq!(app.count("orders"), 1);

    // Down: the write-back waits, visibly.
    app.run_pending_workers();
    let l = log(&app, "sap-orders05");
    let wb = &l["writebacks"][0];
    assert_eq!(wb["state"], "queued", "{l}");
    assert!(wb["attempts"].as_i64().unwrap() >= 1, "{l}");
    assert!(!wb["last_error"].as_str().unwrap().is_empty(), "{l}");

    // Up: once its retry delay is over, it arrives, once.
    let receiver = Receiver::listen(TcpListener::bind(("127.0.0.1", port)).unwrap());
    app.make_due("writebacks");
    app.run_pending_workers();
    app.make_due("writebacks");
    app.run_pending_workers();
    let got = receiver.bodies();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains(&format!("<Ticket>{ticket}</Ticket>")),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains("<OrderNumber>0000004711</OrderNumber>"),
        "{}",
        got[0]
    );
    assert_eq!(got[0].matches("<License ").count(), 3, "{}", got[0]);
    assert_eq!(log(&app, "sap-orders05")["writebacks"][0]["state"], "sent");
}

#[test]
fn bad_idocs_are_refused_with_a_clear_error_and_create_nothing() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let pw = app.add_user("sap", Role::Erp);
    let url = format!("{}/connect/sap-orders05", app.base);
    let good = std::fs::read_to_string(format!("{FIXTURES}/sap-orders05.xml")).unwrap();
    let post = |body: &str, auth: Option<(&str, &str)>| {
        send(
            "POST",
            &url,
            Some(("application/xml", body.as_bytes())),
            auth,
        )
    };
    let sap = Some(("sap", pw.as_str()));
    let cases: Vec<(String, u16, &str)> = vec![
        (
            good.replacen(
                "<ORDERS05>",
                "<!DOCTYPE x [<!ENTITY big \"aaaa\">]><ORDERS05>",
                1,
            ),
            400,
            "DOCTYPE",
        ),
        (good.replace("</ORDERS05>", ""), 400, "not well-formed"),
        (
            good.replace("<MENGE>2.000</MENGE>", "<MENGE>1.5</MENGE>"),
            400,
            "whole number",
        ),
        (
            good.replace("<MENGE>2.000</MENGE>", "<MENGE>many</MENGE>"),
            400,
            "written as digits",
        ),
        // Not 10,000 licenses.
        (
            good.replace("<MENGE>2.000</MENGE>", "<MENGE>1e4</MENGE>"),
            400,
            "written as digits",
        ),
        // A second order number is refused, not "the last one wins".
        (
            good.replace(
                "<BELNR>0000004711</BELNR>",
                "<BELNR>0000004711</BELNR><BELNR>0000009999</BELNR>",
            ),
            400,
            "E1EDK01 BELNR appears twice",
        ),
        (
            good.replace("<MENGE>1</MENGE>", "<MENGE>1</MENGE><MENGE>100</MENGE>"),
            400,
            "E1EDP01 MENGE appears twice",
        ),
        (
            good.replace(
                "<IDOC BEGIN=\"1\">",
                &format!(
                    "<IDOC BEGIN=\"1\" {}>",
                    (0..40)
                        .map(|i| format!("xmlns:n{i}=\"urn:n{i}\""))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
            400,
            "more than 16 attributes",
        ),
        (
            good.replace("<PARVW>AG</PARVW>", "<PARVW>RE</PARVW>"),
            400,
            "sold-to",
        ),
        (
            good.replace("LIC-SNP-F05", "LIC-UNKNOWN"),
            404,
            "LIC-UNKNOWN",
        ),
        ("{\"not\": \"xml\"}".into(), 400, "ORDERS05"),
        (
            format!("{}{}", "<a>".repeat(40), "</a>".repeat(40)),
            400,
            "ORDERS05",
        ),
        (
            good.replace("<IDOC BEGIN=\"1\">", "<IDOC BEGIN=\"1\"><X>")
                .replace("</IDOC>", "</X></IDOC>")
                .replace("<X>", &"<X>".repeat(20))
                .replace("</X>", &"</X>".repeat(20)),
            400,
            "deeper",
        ),
    ];
    let mut cases = cases;
    cases.push((
        good.replace("Muster Maschinenbau GmbH", "Muster &unknown; GmbH"),
        400,
        "the entity &amp;unknown; is not accepted",
    ));
    for (body, status, says) in &cases {
        let (s, xml) = post(body, sap);
        assert_eq!(s, *status, "{says}: {xml}");
        assert!(
            xml.contains("<LicentiaError") && xml.contains(says),
            "{says}: {xml}"
        );
    }
    let (s, _) = post(&good, Some(("sap", "wrong")));
    assert_eq!(s, 401);
    let (s, _) = post(&good, None);
    assert_eq!(s, 401);
    assert_eq!(app.count("orders"), 0);
    assert_eq!(app.count("licenses"), 0);
    assert_eq!(app.count("writebacks"), 0);
    assert!(outcomes(&app, "sap-orders05")
        .iter()
        .all(|o| o == "rejected"));
    assert_eq!(outcomes(&app, "sap-orders05").len(), cases.len() + 2);
    // Predefined entities and character references are text.
    let amp = good.replace(
        "Muster Maschinenbau GmbH",
        "Meier &amp; S&#246;hne &lt;KG&gt;",
    );
    let (s, xml) = post(&amp, sap);
    assert_eq!(s, 200, "{xml}");
    // The ERP's customers live in its connector's scope, its source.
    let (_, c) = app.admin("GET", "/api/v1/customers/0000100042?scope=sap", None);
    assert_eq!(c["name"], "Meier & Söhne <KG>");
    // CDATA is text too; a control character is not XML.
    let cdata = good
        .replace(
            "<BELNR>0000004711</BELNR>",
            "<BELNR><![CDATA[0000004712]]></BELNR>",
        )
        .replace("Muster Maschinenbau GmbH", "<![CDATA[Meier & Söhne]]>");
    let (s, xml) = post(&cdata, sap);
    assert_eq!(s, 200, "{xml}");
    assert!(xml.contains("0000004712"), "{xml}");
    let (s, xml) = post(&good.replace("Muster Maschinenbau", "Muster&#7;"), sap);
    assert_eq!(s, 400, "{xml}");
    assert!(xml.contains("U+0007"), "{xml}");
}

#[test]
fn a_bad_definition_stops_the_start_naming_the_file_and_field() {
    let dir = Scratch::new("baddef");
    std::fs::write(
        dir.join("shop.toml"),
        "kind = \"generic\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let e = licentia::service::connectors::Connectors::load(dir.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("shop.toml") && e.contains("colour"), "{e}");
    std::fs::write(
        dir.join("shop.toml"),
        "kind = \"generic\"\n[writeback]\nurl = \"ftp://x\"\n",
    )
    .unwrap();
    let e = licentia::service::connectors::Connectors::load(dir.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("shop.toml") && e.contains("writeback"), "{e}");
    std::fs::write(dir.join("shop.toml"), "kind = \"telepathy\"\n").unwrap();
    let e = licentia::service::connectors::Connectors::load(dir.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("shop.toml") && e.contains("telepathy"), "{e}");
    // The shipped ones load.
    let shipped = licentia::service::connectors::Connectors::load(SHIPPED).unwrap();
    assert!(shipped.0.contains_key("generic") && shipped.0.contains_key("sap-orders05"));
}

fn hmac(md: openssl::hash::MessageDigest, key: &str, data: &[u8]) -> Vec<u8> {
    let key = openssl::pkey::PKey::hmac(key.as_bytes()).unwrap();
    let mut s = openssl::sign::Signer::new(md, &key).unwrap();
    s.update(data).unwrap();
    s.sign_to_vec().unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap()
        .trim()
        .to_string()
}

fn post_signed(
    app: &TestApp,
    connector: &str,
    ct: &str,
    body: &str,
    header: Option<(&str, String)>,
) -> (u16, String) {
    let mut req = ureq::post(&format!("{}/connect/{connector}", app.base)).set("Content-Type", ct);
    if let Some((h, v)) = header {
        req = req.set(h, &v);
    }
    match req.send_string(body) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// An order's items and customer as the ticket shows them.
fn order_of(app: &TestApp, source: &str, id: &str) -> (String, String, Vec<String>) {
    let (s, o) = app.admin("GET", &format!("/api/v1/orders/{source}/{id}"), None);
    assert_eq!(s, 200, "{o}");
    let (_, t) = app.admin(
        "GET",
        &format!("/api/v1/tickets/{}", o["ticket"].as_str().unwrap()),
        None,
    );
    let items = t["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item_id"].as_str().unwrap().to_string())
        .collect();
    (
        o["ticket"].as_str().unwrap().to_string(),
        o["customer_id"].as_str().unwrap().to_string(),
        items,
    )
}

#[test]
fn fastspring_webhooks_place_completed_orders_signed_with_the_secret() {
    use base64::Engine;
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let body = fixture("fastspring-order-completed.json");
    let sign = |b: &str, key: &str| {
        base64::engine::general_purpose::STANDARD.encode(hmac(
            openssl::hash::MessageDigest::sha256(),
            key,
            b.as_bytes(),
        ))
    };
    let good = Some(("X-FS-Signature", sign(&body, "fastspring-test-secret")));
    let (s, reply) = post_signed(&app, "fastspring", "application/json", &body, good.clone());
    assert_eq!(s, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["orders"][0]["order_id"], "FUR261123-1178-89118");
    let (ticket, customer, items) = order_of(&app, "fastspring", "FUR261123-1178-89118");
    assert_eq!(v["orders"][0]["ticket"], ticket.as_str());
    assert_eq!(customer, "uKj7izZ2RfKbAs9nnYYOqg");
    assert_eq!(items, ["SNP-SINGLE", "SNP-SINGLE", "SNP-FLOAT-5"]);
    let (_, c) = app.admin(
        "GET",
        "/api/v1/customers/uKj7izZ2RfKbAs9nnYYOqg?scope=fastspring",
        None,
    );
    assert_eq!(c["email"], "leonie@example.org");
    assert_eq!(c["name"], "Leonie Jansen");
    // Delivered again (a retry): one order.
    let (s, again) = post_signed(&app, "fastspring", "application/json", &body, good);
    assert_eq!(s, 200);
    assert!(
        again.contains(&ticket) && again.contains("\"created\":false"),
        "{again}"
    );
    assert_eq!(app.count("orders"), 1);
    // A wrong or missing signature, a changed body: refused, nothing created.
    let tampered = body.replace("\"quantity\":2", "\"quantity\":20");
    let right = sign(&body, "fastspring-test-secret");
    for (b, h) in [
        (
            &body,
            Some(("X-FS-Signature", sign(&body, "another-secret"))),
        ),
        (&body, None),
        (&tampered, Some(("X-FS-Signature", right))),
    ] {
        let (s, r) = post_signed(&app, "fastspring", "application/json", b, h);
        assert_eq!(s, 401, "{r}");
    }
    // An unknown product: an error for the shop to see, nothing created.
    let unknown = body
        .replace("FUR261123-1178-89118", "FUR-2")
        .replace("samplenotepad-floating-5", "no-such-product");
    let (s, r) = post_signed(
        &app,
        "fastspring",
        "application/json",
        &unknown,
        Some(("X-FS-Signature", sign(&unknown, "fastspring-test-secret"))),
    );
    assert_eq!(s, 404, "{r}");
    assert!(r.contains("no-such-product"), "{r}");
    // Not JSON.
    let junk = "{\"events\": [";
    let (s, r) = post_signed(
        &app,
        "fastspring",
        "application/json",
        junk,
        Some(("X-FS-Signature", sign(junk, "fastspring-test-secret"))),
    );
    assert_eq!(s, 400, "{r}");
    assert!(r.contains("not JSON"), "{r}");
    assert_eq!(app.count("orders"), 1);
    assert_eq!(app.count("licenses"), 3);
    assert_eq!(
        outcomes(&app, "fastspring"),
        [
            "order_created",
            "ignored",
            "duplicate",
            "ignored",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected"
        ]
    );
    // The three refused for their signature keep the order reference they claim.
    let log = log(&app, "fastspring");
    let refused: Vec<&Value> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["detail"].as_str().unwrap().starts_with("unauthenticated"))
        .collect();
    assert_eq!(refused.len(), 3, "{log}");
    for n in refused {
        assert_eq!(n["reference"], "FUR261123-1178-89118", "{n}");
    }
    // Each outcome says its kind once ("invalid_input: invalid body: …", never
    // "conflict: conflict: …").
    for n in log["notifications"].as_array().unwrap() {
        let detail = n["detail"].as_str().unwrap();
        if let Some((code, rest)) = detail.split_once(": ") {
            assert!(
                !rest.starts_with(&format!("{}: ", code.replace('_', " "))),
                "{detail}"
            );
        }
    }
}

#[test]
fn paddle_notifications_are_checked_for_signature_and_age() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let body = fixture("paddle-transaction-completed.json");
    let key = "pdl_ntfset_test_secret";
    let sign = |b: &str, ts: i64| {
        let h = hex::encode(hmac(
            openssl::hash::MessageDigest::sha256(),
            key,
            format!("{ts}:{b}").as_bytes(),
        ));
        ("Paddle-Signature", format!("ts={ts};h1={h}"))
    };
    let now = chrono::Utc::now().timestamp();
    let (s, reply) = post_signed(
        &app,
        "paddle",
        "application/json",
        &body,
        Some(sign(&body, now)),
    );
    assert_eq!(s, 200, "{reply}");
    let (ticket, customer, items) = order_of(&app, "paddle", "txn_01hv8wptq8987qeep44cyrewp9");
    assert!(reply.contains(&ticket), "{reply}");
    assert_eq!(customer, "ctm_01hv8wpts9ayvszz3bcwq7ffw6");
    assert_eq!(
        items,
        ["SNP-SINGLE", "SNP-SINGLE", "SNP-SINGLE", "SNP-FLOAT-5"]
    );
    // A signature from an hour ago (a replay) and a wrong one are refused.
    let (s, r) = post_signed(
        &app,
        "paddle",
        "application/json",
        &body,
        Some(sign(&body, now - 3600)),
    );
    assert_eq!(s, 403, "{r}");
    let (_, h) = sign(&body, now);
    let (s, _) = post_signed(
        &app,
        "paddle",
        "application/json",
        &body,
        Some(("Paddle-Signature", h.replace("h1=", "h1=0"))),
    );
    assert_eq!(s, 401);
    // Other events are acknowledged without an order.
    let refund = body
        .replace("transaction.completed", "transaction.updated")
        .replace("txn_01hv8wptq8987qeep44cyrewp9", "txn_2");
    let (s, r) = post_signed(
        &app,
        "paddle",
        "application/json",
        &refund,
        Some(sign(&refund, now)),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(app.count("orders"), 1);
    // A subscription renewal is not a new purchase.
    let renewal = body
        .replace(
            "\"origin\":\"web\"",
            "\"origin\":\"subscription_recurring\"",
        )
        .replace("txn_01hv8wptq8987qeep44cyrewp9", "txn_4");
    let (s, r) = post_signed(
        &app,
        "paddle",
        "application/json",
        &renewal,
        Some(sign(&renewal, now)),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(app.count("orders"), 1);
    // A quantity that is not a number.
    let bad = body
        .replace("\"quantity\":3", "\"quantity\":\"three\"")
        .replace("txn_01hv8wptq8987qeep44cyrewp9", "txn_3");
    let (s, r) = post_signed(
        &app,
        "paddle",
        "application/json",
        &bad,
        Some(sign(&bad, now)),
    );
    assert_eq!(s, 400, "{r}");
    assert!(r.contains("three"), "{r}");
    assert_eq!(app.count("orders"), 1);
}

#[test]
fn lemon_squeezy_orders_map_variants_and_refuse_a_bad_signature() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let body = fixture("lemonsqueezy-order-created.json");
    let sign = |b: &str| {
        (
            "X-Signature",
            hex::encode(hmac(
                openssl::hash::MessageDigest::sha256(),
                "lemon-test-secret",
                b.as_bytes(),
            )),
        )
    };
    let (s, reply) = post_signed(
        &app,
        "lemonsqueezy",
        "application/json",
        &body,
        Some(sign(&body)),
    );
    assert_eq!(s, 200, "{reply}");
    let (ticket, customer, items) = order_of(&app, "lemonsqueezy", "81234");
    assert!(reply.contains(&ticket));
    assert_eq!(customer, "550011");
    assert_eq!(items, ["SNP-SINGLE"]);
    let (s, _) = post_signed(
        &app,
        "lemonsqueezy",
        "application/json",
        &body,
        Some(sign(&body)),
    );
    assert_eq!(s, 200);
    assert_eq!(app.count("orders"), 1);
    let (s, _) = post_signed(
        &app,
        "lemonsqueezy",
        "application/json",
        &body,
        Some(("X-Signature", "00".repeat(32))),
    );
    assert_eq!(s, 401);
    let unknown = body
        .replace("\"variant_id\":101", "\"variant_id\":999")
        .replace("81234", "81235");
    let (s, r) = post_signed(
        &app,
        "lemonsqueezy",
        "application/json",
        &unknown,
        Some(sign(&unknown)),
    );
    assert_eq!(s, 404, "{r}");
    assert_eq!(app.count("orders"), 1);
    assert_eq!(
        outcomes(&app, "lemonsqueezy"),
        ["order_created", "duplicate", "rejected", "rejected"]
    );
}

/// 2Checkout's HMAC-MD5 source: each value with its byte length before it, empty as 0.
fn twocheckout_hash(values: &[&str], key: &str) -> String {
    let source: String = values
        .iter()
        .map(|v| {
            if v.is_empty() {
                "0".to_string()
            } else {
                format!("{}{v}", v.len())
            }
        })
        .collect();
    hex::encode(hmac(
        openssl::hash::MessageDigest::md5(),
        key,
        source.as_bytes(),
    ))
}

#[test]
fn twocheckout_ipn_places_complete_orders_and_answers_the_read_receipt() {
    let dir = shipped_with_secrets();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let key = "2checkout-test-key";
    let form = fixture("2checkout-ipn-complete.form");
    let sign = |form: &str| {
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(form).unwrap();
        let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
        format!("{form}&HASH={}", twocheckout_hash(&values, key))
    };
    let ct = "application/x-www-form-urlencoded";
    let (s, reply) = post_signed(&app, "2checkout", ct, &sign(&form), None);
    assert_eq!(s, 200, "{reply}");
    let (_, customer, items) = order_of(&app, "2checkout", "9211224053");
    assert_eq!(customer, "ana@example.ro");
    assert_eq!(items, ["SNP-SINGLE", "SNP-SINGLE", "SNP-FLOAT-5"]);
    // The read receipt: <EPAYMENT>DATE|HASH</EPAYMENT> over IPN_PID[0], IPN_PNAME[0],
    // IPN_DATE and DATE.
    let inner = reply
        .trim()
        .strip_prefix("<EPAYMENT>")
        .and_then(|r| r.strip_suffix("</EPAYMENT>"))
        .unwrap_or_else(|| panic!("{reply}"));
    let (date, hash) = inner.split_once('|').unwrap();
    assert_eq!(date.len(), 14);
    assert_eq!(
        hash,
        twocheckout_hash(&["4639321", "SampleNotePad", "20261123102215", date], key)
    );
    // The same IPN again: one order. Another status: acknowledged, no order.
    let (s, _) = post_signed(&app, "2checkout", ct, &sign(&form), None);
    assert_eq!(s, 200);
    let pending = form
        .replace("ORDERSTATUS=COMPLETE", "ORDERSTATUS=PENDING")
        .replace("9211224053", "9211224054");
    let (s, r) = post_signed(&app, "2checkout", ct, &sign(&pending), None);
    assert_eq!(s, 200, "{r}");
    assert!(r.contains("<EPAYMENT>"), "{r}");
    assert_eq!(app.count("orders"), 1);
    // A wrong hash, a changed field, a body that is not a form.
    let (s, _) = post_signed(
        &app,
        "2checkout",
        ct,
        &format!("{form}&HASH={}", "0".repeat(32)),
        None,
    );
    assert_eq!(s, 401);
    let (s, _) = post_signed(
        &app,
        "2checkout",
        ct,
        &sign(&form).replace("IPN_QTY%5B%5D=2", "IPN_QTY%5B%5D=9"),
        None,
    );
    assert_eq!(s, 401);
    // Signed, but without the order number.
    let (s, r) = post_signed(
        &app,
        "2checkout",
        ct,
        &sign(&form.replace("REFNO=9211224053&", "")),
        None,
    );
    assert_eq!(s, 400, "{r}");
    assert!(r.contains("invalid REFNO: is missing"), "{r}");
    assert_eq!(app.count("orders"), 1);
    assert_eq!(
        outcomes(&app, "2checkout"),
        [
            "order_created",
            "duplicate",
            "ignored",
            "rejected",
            "rejected",
            "rejected"
        ]
    );
}

#[test]
fn a_new_xml_shop_is_one_more_file_and_its_buyers_get_the_ticket_as_text() {
    let dir = Scratch::new("xmlshop");
    std::fs::write(
        dir.join("myshop.toml"),
        r#"kind = "shop"
description = "a shop that posts XML purchase notifications"
[items]
"SNP" = "SNP-SINGLE"
[shop]
format = "xml"
event = "@type"
events = ["purchase"]
order_id = "purchase.@id"
customer_id = "purchase.customer.@id"
customer_email = "purchase.customer.email"
customer_name = ["purchase.customer.first", "purchase.customer.last"]
items = "purchase.item"
item_product = "@product"
item_quantity = "@quantity"
reply = "text"
[shop.auth]
scheme = "hmac-sha256-hex"
header = "X-Shop-Signature"
secret = "xml-shop-secret"
"#,
    )
    .unwrap();
    let app = TestApp::start_with(|c| c.connectors_dir = dir.display().to_string());
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<notification type="purchase">
  <purchase id="P-100">
    <customer id="K-9"><email>max@example.com</email><first>Max</first><last>Muster</last></customer>
    <item product="SNP" quantity="2"/>
    <item product="SNP-FLOAT-5" quantity="1"/>
  </purchase>
</notification>"#;
    let sign = |b: &str| {
        (
            "X-Shop-Signature",
            hex::encode(hmac(
                openssl::hash::MessageDigest::sha256(),
                "xml-shop-secret",
                b.as_bytes(),
            )),
        )
    };
    let (s, text) = post_signed(&app, "myshop", "application/xml", body, Some(sign(body)));
    assert_eq!(s, 200, "{text}");
    let (ticket, customer, items) = order_of(&app, "myshop", "P-100");
    assert_eq!(text, format!("{ticket}\n"));
    assert_eq!(customer, "K-9");
    assert_eq!(items, ["SNP-SINGLE", "SNP-SINGLE", "SNP-FLOAT-5"]);
    for (bad, says) in [
        (
            body.replacen(
                "<notification",
                "<!DOCTYPE n [<!ENTITY e \"x\">]><notification",
                1,
            ),
            "DOCTYPE",
        ),
        (body.replace("</notification>", ""), "not closed"),
        (
            body.replace("id=\"P-100\"", "id=\"P-101\"")
                .replace("quantity=\"2\"", "quantity=\"-2\""),
            "-2",
        ),
    ] {
        let (s, t) = post_signed(&app, "myshop", "application/xml", &bad, Some(sign(&bad)));
        assert_eq!(s, 400, "{says}: {t}");
        assert!(t.starts_with("ERROR ") && t.contains(says), "{says}: {t}");
    }
    assert_eq!(app.count("orders"), 1);
}

#[test]
fn a_shop_without_its_secret_is_off_and_says_so() {
    // The shipped files read the secrets from the environment; none is set here.
    let app = TestApp::start_with(|c| c.connectors_dir = SHIPPED.into());
    let body = fixture("lemonsqueezy-order-created.json");
    let (s, r) = post_signed(
        &app,
        "lemonsqueezy",
        "application/json",
        &body,
        Some(("X-Signature", "00".into())),
    );
    assert_eq!(s, 403, "{r}");
    assert!(r.contains("LEMONSQUEEZY_WEBHOOK_SECRET"), "{r}");
    // The SAP connector likewise, until its write-back password is in the environment.
    let pw = app.add_user("sap", Role::Erp);
    let idoc = std::fs::read(format!("{FIXTURES}/sap-orders05.xml")).unwrap();
    let (s, r) = send(
        "POST",
        &format!("{}/connect/sap-orders05", app.base),
        Some(("application/xml", &idoc)),
        Some(("sap", &pw)),
    );
    assert_eq!(s, 403, "{r}");
    assert!(r.contains("SAP_WRITEBACK_PASSWORD"), "{r}");
    assert_eq!(app.count("orders"), 0);
}

/// A server whose SAP write-back posts to `port` (two attempts), the fixture IDoc placed
/// through it, once its write-back has been marked failed; and the definitions' folder, for
/// the test to remove.
fn idoc_until_its_write_back_failed(port: u16) -> (TestApp, Scratch) {
    let dir = definitions_with_writeback(port);
    let app = TestApp::start_with(|c| {
        c.connectors_dir = dir.display().to_string();
        c.mail_retry_secs = 1;
        c.writeback_max_attempts = 2;
    });
    let pw = app.add_user("sap", Role::Erp);
    let idoc = std::fs::read(format!("{FIXTURES}/sap-orders05.xml")).unwrap();
    let url = format!("{}/connect/sap-orders05", app.base);
    let (s, _) = send(
        "POST",
        &url,
        Some(("application/xml", &idoc)),
        Some(("sap", &pw)),
    );
    assert_eq!(s, 200);
    // The first attempt, then the second once the retry delay is over.
    app.run_pending_workers();
    app.make_due("writebacks");
    app.run_pending_workers();
    let l = log(&app, "sap-orders05");
    assert_eq!(l["writebacks"][0]["state"], "failed", "{l}");
    (app, dir)
}

#[test]
fn a_write_back_that_keeps_failing_is_marked_failed_and_can_be_requeued() {
    let port = crate::crash::free_port();
    let (app, _dir) = idoc_until_its_write_back_failed(port);
    let id = log(&app, "sap-orders05")["writebacks"][0]["id"]
        .as_i64()
        .unwrap();
    let receiver = Receiver::listen(TcpListener::bind(("127.0.0.1", port)).unwrap());
    app.make_due("writebacks");
    app.run_pending_workers();
    assert!(
        receiver.bodies().is_empty(),
        "a failed write-back waits for a person"
    );
    let path = format!("/api/v1/connectors/writebacks/{id}/requeue");
    let (s, v) = app.admin("POST", &path, None);
    assert_eq!(s, 200, "{v}");
    let (s, _) = app.admin("POST", &path, None);
    assert_eq!(s, 409);
    app.run_pending_workers();
    assert_eq!(receiver.bodies().len(), 1);
}

/// An ERP that answers the write-back with a redirect (a logon page, say) has not taken the
/// ticket: the redirect is not followed, the write-back is tried again and then marked
/// failed, and its log says why.
#[test]
fn a_write_back_answered_with_a_redirect_is_not_taken_as_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = Receiver::answering(listener, "302 Found\r\nLocation: /logon");
    let (app, _dir) = idoc_until_its_write_back_failed(port);
    let l = log(&app, "sap-orders05");
    let error = l["writebacks"][0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 302") && error.contains("Location: /logon"),
        "{l}"
    );
    // Two POSTs with the ticket, and no request to the redirect's target.
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies.iter().all(|b| b.contains("<Ticket>")), "{bodies:?}");
}
