//! Orders from shops and ERPs through `/connect/<name>`, with the shipped definitions and
//! fixtures, and the ERP write-back through a real HTTP server that is down, then up.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use licentia::domain::Role;
use serde_json::Value;

use crate::harness::TestApp;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/connectors");
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/connectors");

fn send(
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

fn log(app: &TestApp, connector: &str) -> Value {
    let (s, v) = app.admin(
        "GET",
        &format!("/api/v1/connectors/log?connector={connector}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v
}

fn outcomes(app: &TestApp, connector: &str) -> Vec<String> {
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
}

/// A minimal HTTP server that answers 200 to every POST and keeps the bodies.
struct Receiver {
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn listen(listener: TcpListener) -> Receiver {
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
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver { bodies }
    }
    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The shipped definitions with the SAP write-back pointed at `port` on loopback.
fn definitions_with_writeback(port: u16) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "licentia-connectors-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(SHIPPED).unwrap() {
        let p = f.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap().replace(
            "http://sap.example.com:8000/sap/bc/zlicentia/ticket",
            &format!("http://127.0.0.1:{port}/ticket"),
        );
        std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
    }
    dir
}

#[test]
fn a_sap_orders05_idoc_becomes_a_ticket_posted_back_once_when_the_erp_is_up_again() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // the ERP's endpoint is down
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
    std::thread::sleep(Duration::from_millis(2500));
    let l = log(&app, "sap-orders05");
    let wb = &l["writebacks"][0];
    assert_eq!(wb["state"], "queued", "{l}");
    assert!(wb["attempts"].as_i64().unwrap() >= 1, "{l}");
    assert!(!wb["last_error"].as_str().unwrap().is_empty(), "{l}");

    // Up: it arrives, once.
    let receiver = Receiver::listen(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.bodies().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
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
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_idocs_are_refused_with_a_clear_error_and_create_nothing() {
    let app = TestApp::start_with(|c| c.connectors_dir = SHIPPED.into());
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
            "not a number",
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
}

#[test]
fn a_bad_definition_stops_the_start_naming_the_file_and_field() {
    let dir = std::env::temp_dir().join(format!("licentia-baddef-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
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
    std::fs::remove_dir_all(dir).unwrap();
}
