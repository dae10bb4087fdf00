//! Outbound events: subscriptions through the JSON API, deliveries to a real HTTP receiver
//! that is down for a while (each event arrives once, signed, in the history's order),
//! failures held in order, given up and requeued, pauses, two nodes, and refusals.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use licentia::client::online::{self, Gateway};
use licentia::client::{unix_now, Container};
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::activation::{new_act, ticket_with, FIRM};
use crate::harness::{call_at, order, SmtpSink, TestApp};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn event_id(&self) -> i64 {
        self.json()["id"].as_i64().unwrap()
    }
}

/// An HTTP server on loopback that answers every request with `status` (changeable) and
/// keeps what it was sent while it answered 2xx.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn on(listener: TcpListener, status: u16) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(vec![]));
        let status = Arc::new(AtomicU16::new(status));
        let (keep, answer) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).unwrap_or(0) == 0 {
                    continue;
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                let mut headers = BTreeMap::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    continue;
                }
                let status = answer.load(Ordering::SeqCst);
                if (200..300).contains(&status) {
                    keep.lock().unwrap().push(Got {
                        path,
                        headers,
                        body: String::from_utf8_lossy(&body).to_string(),
                    });
                }
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status} Whatever\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { port, status, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Waits (up to 20 s) until `n` requests arrived.
    fn wait_for(&self, n: usize) -> Vec<Got> {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn subscribe(app: &TestApp, url: &str, events: &[&str]) -> Value {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/webhooks",
        Some(json!({"url": url, "events": events, "description": "CRM"})),
    );
    assert_eq!(s, 201, "{v}");
    v
}

fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = app.admin("GET", &format!("/api/v1/webhook-deliveries{query}"), None);
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn hmac_hex(key: &str, data: &str) -> String {
    let k = openssl::pkey::PKey::hmac(key.as_bytes()).unwrap();
    let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k).unwrap();
    s.update(data.as_bytes()).unwrap();
    hex::encode(s.sign_to_vec().unwrap())
}

/// Checks a delivery's signature as a receiver would: the HMAC of "t.body" with the secret,
/// and a timestamp of now.
fn assert_signed(g: &Got, secret: &str) {
    let sig = &g.headers["licentia-signature"];
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|r| r.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature header {sig:?}"));
    assert_eq!(v1, hmac_hex(secret, &format!("{t}.{}", g.body)), "{sig}");
    let t: i64 = t.parse().unwrap();
    assert!((t - unix_now() as i64).abs() < 300, "timestamp {t}");
    assert_ne!(v1, hmac_hex("another secret", &format!("{t}.{}", g.body)));
}

fn keep(_: &Container) -> licentia::client::CResult<()> {
    Ok(())
}

#[test]
fn every_event_arrives_once_signed_and_in_order_after_the_receiver_was_down() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = sink.port;
        c.webhook_retry_secs = 1;
    });
    // The receiver's port, with nothing listening yet: the CRM is down.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = subscribe(
        &app,
        &format!("http://127.0.0.1:{port}/licentia/events"),
        &["license.*", "order.created", "ticket.mailed", "license.*"],
    );
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{hook}");
    assert_eq!(hook["events"], "license.*,order.created,ticket.mailed");
    assert_eq!(hook["active"], true);
    let (_, list) = app.admin("GET", "/api/v1/webhooks", None);
    assert_eq!(list[0]["id"], hook["id"]);
    assert!(
        !list.to_string().contains(&secret),
        "the secret is shown once"
    );

    // An order, a ticket mail, and a license that is activated, returned and activated
    // elsewhere; a ticket disabled (not subscribed).
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = ticket_with(&app, "WH-1", "SNP-SINGLE", 1);
    let (mut a, mut b) = (new_act(&gw), new_act(&gw));
    online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
    online::deactivate(&gw, &mut a, FIRM, &ids, &mut keep).unwrap();
    online::activate(&gw, &mut b, &ticket, &ids, &mut keep).unwrap();
    let (s, v) = app.admin(
        "PUT",
        &format!("/api/v1/tickets/{ticket}/state"),
        Some(json!({"state": "disabled", "reason": "refund"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(sink.wait_for(1, 20).len(), 1);
    app.run_pending_workers();

    let queued = deliveries(&app, "");
    assert!(queued.len() >= 6, "{queued:?}");
    assert!(
        queued
            .iter()
            .all(|d| d["state"] == "queued" || d["state"] == "sending"),
        "{queued:?}"
    );
    // The oldest was tried and failed; the later ones wait behind it.
    let oldest = queued.last().unwrap();
    assert!(oldest["attempts"].as_i64().unwrap() >= 1, "{oldest}");
    assert!(
        !oldest["last_error"].as_str().unwrap().is_empty(),
        "{oldest}"
    );
    assert!(queued[..queued.len() - 1]
        .iter()
        .all(|d| d["attempts"] == 0));

    // The CRM is up again.
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), 200);
    app.make_due("webhook_deliveries");
    let got = receiver.wait_for(queued.len());
    app.run_pending_workers();
    std::thread::sleep(Duration::from_millis(700));
    let got_now = receiver.got();
    assert_eq!(got_now.len(), got.len(), "nothing arrives twice");
    assert_eq!(got.len(), queued.len());

    // In the history's order, each once, with the kinds subscribed to and nothing else.
    let (_, history) = app.admin("GET", "/api/v1/history", None);
    let expected: Vec<(i64, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let a = e["action"].as_str().unwrap();
            a.starts_with("license.") || a == "order.created" || a == "ticket.mailed"
        })
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    let arrived: Vec<(i64, String)> = got
        .iter()
        .map(|g| (g.event_id(), g.json()["type"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(arrived, expected);
    let kinds: Vec<&str> = arrived.iter().map(|(_, k)| k.as_str()).collect();
    for k in [
        "order.created",
        "ticket.mailed",
        "license.activated",
        "license.returned",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    assert!(!kinds.contains(&"ticket.disabled"));
    let activated: Vec<&Got> = got
        .iter()
        .filter(|g| g.json()["type"] == "license.activated")
        .collect();
    assert_eq!(activated.len(), 2);
    assert_eq!(activated[0].json()["serial"], a.serial);
    assert_eq!(activated[1].json()["serial"], b.serial);
    for g in &got {
        assert_eq!(g.path, "/licentia/events");
        assert_eq!(g.headers["content-type"], "application/json");
        assert_eq!(g.headers["licentia-event"], g.json()["type"]);
        assert_eq!(g.headers["licentia-delivery"], g.event_id().to_string());
        assert_signed(g, &secret);
        let body = g.json();
        if body["type"].as_str().unwrap().starts_with("license.") {
            assert_eq!(body["license_id"], ids[0], "{body}");
        } else {
            assert_eq!(body["ticket"], ticket.as_str(), "{body}");
        }
        assert!(body["at"].as_str().unwrap().ends_with('Z'), "{body}");
    }
    let mailed = got
        .iter()
        .find(|g| g.json()["type"] == "ticket.mailed")
        .unwrap()
        .json();
    assert_eq!(mailed["details"]["recipient"], "buyer@example.com");
    assert_eq!(mailed["details"]["kind"], "ticket");
    assert!(deliveries(&app, "?state=sent").len() == got.len());
    assert!(deliveries(&app, "").iter().all(|d| d["state"] == "sent"));
}

#[test]
fn a_refused_event_holds_back_the_next_until_it_is_given_up_and_can_be_sent_again() {
    // Retries wait 30 s: the test makes them due when it wants them.
    let app = TestApp::start_with(|c| {
        c.webhook_max_attempts = 2;
        c.webhook_retry_secs = 30;
    });
    let receiver = Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), 503);
    let hook = subscribe(
        &app,
        &format!("http://127.0.0.1:{}/hook", receiver.port),
        &["order.*"],
    );
    let id = hook["id"].as_i64().unwrap();
    for n in 1..=2 {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(order(&format!("HOLD-{n}"), "C-HOLD", &[("SNP-SINGLE", 1)])),
        );
        assert_eq!(s, 201, "{v}");
    }
    app.run_pending_workers();
    let d = deliveries(&app, &format!("?webhook={id}"));
    assert_eq!(d.len(), 2, "{d:?}");
    let (second, first) = (&d[0], &d[1]);
    assert_eq!(first["state"], "queued", "{first}");
    assert!(
        first["last_error"].as_str().unwrap().contains("503"),
        "{first}"
    );
    assert_eq!(second["attempts"], 0, "{second}");

    // The second attempt fails too: the first is given up, then the second is tried.
    app.make_due("webhook_deliveries");
    app.run_pending_workers();
    let d = deliveries(&app, &format!("?webhook={id}"));
    assert_eq!(d[1]["state"], "failed", "{d:?}");
    assert_eq!(d[1]["attempts"], 2);
    assert!(d[0]["attempts"].as_i64().unwrap() >= 1, "{d:?}");

    // The receiver is fixed; the second arrives, the first only when requeued.
    receiver.answer(200);
    app.make_due("webhook_deliveries");
    app.run_pending_workers();
    let got = receiver.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].json()["details"]["erp_order_id"],
        "HOLD-2",
        "{}",
        got[0].body
    );
    let first_id = d[1]["id"].as_i64().unwrap();
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/webhook-deliveries/{first_id}/requeue"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    app.run_pending_workers();
    let got = receiver.wait_for(2);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["details"]["erp_order_id"], "HOLD-1");
    // Only a failed delivery is requeued; an unknown one is not found.
    let (s, v) = app.admin(
        "POST",
        &format!("/api/v1/webhook-deliveries/{first_id}/requeue"),
        None,
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is sent, not failed"));
    let (s, _) = app.admin("POST", "/api/v1/webhook-deliveries/999999/requeue", None);
    assert_eq!(s, 404);

    // Paused: events are queued and kept, sent on resume.
    let (s, v) = app.admin(
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"active": false})),
    );
    assert_eq!((s, &v["active"]), (200, &json!(false)), "{v}");
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("HOLD-3", "C-HOLD", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201);
    app.run_pending_workers();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(receiver.got().len(), 2);
    assert_eq!(deliveries(&app, "?state=queued").len(), 1);
    let (s, _) = app.admin(
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"active": true})),
    );
    assert_eq!(s, 200);
    app.run_pending_workers();
    assert_eq!(
        receiver.wait_for(3)[2].json()["details"]["erp_order_id"],
        "HOLD-3"
    );

    // The history says who subscribed, paused, requeued.
    let (_, h) = app.admin("GET", "/api/v1/history", None);
    let actions: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("webhook."))
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.delivery_requeued",
            "webhook.paused",
            "webhook.resumed"
        ]
    );

    // Deleted: its deliveries go with it.
    let (s, _) = app.admin("DELETE", &format!("/api/v1/webhooks/{id}"), None);
    assert_eq!(s, 200);
    assert_eq!(app.count("webhook_deliveries"), 0);
    let (s, _) = app.admin(
        "GET",
        &format!("/api/v1/webhook-deliveries?webhook={id}"),
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = app.admin("DELETE", &format!("/api/v1/webhooks/{id}"), None);
    assert_eq!(s, 404);
}

#[test]
fn subscriptions_that_cannot_work_are_refused_saying_why_and_only_admins_make_them() {
    let app = TestApp::start();
    for (body, says) in [
        (
            json!({"url": "ftp://crm.example/x", "events": ["*"]}),
            "http:// or https://",
        ),
        (json!({"url": "not a url", "events": ["*"]}), "not a URL"),
        (
            json!({"url": "https://crm:s3cret@crm.example/x", "events": ["*"]}),
            "must not hold credentials",
        ),
        (
            json!({"url": "http://crm.example/x", "events": []}),
            "at least one kind",
        ),
        (
            json!({"url": "http://crm.example/x", "events": ["licence.activated"]}),
            "not a family",
        ),
        (
            json!({"url": "http://crm.example/x", "events": ["license.Activated"]}),
            "lowercase",
        ),
        (
            json!({"url": "http://crm.example/x", "events": ["*"], "secret": "mine"}),
            "unknown field",
        ),
        (
            json!({"url": "http://crm.example/x", "events": "license.*"}),
            "sequence",
        ),
    ] {
        let (s, v) = app.admin("POST", "/api/v1/webhooks", Some(body.clone()));
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    assert_eq!(app.count("webhooks"), 0);
    let pw = app.add_user("support1", Role::Support);
    let (s, v) = call_at(
        &app.base,
        "POST",
        "/api/v1/webhooks",
        Some(("support1", &pw)),
        Some(json!({"url": "http://crm.example/x", "events": ["*"]})),
    );
    assert_eq!(s, 403, "{v}");
    let (s, _) = call_at(
        &app.base,
        "GET",
        "/api/v1/webhooks",
        Some(("support1", &pw)),
        None,
    );
    assert_eq!(s, 200, "support reads them");
    let (s, _) = app.admin(
        "PATCH",
        "/api/v1/webhooks/4242",
        Some(json!({"active": false})),
    );
    assert_eq!(s, 404);
}

#[test]
fn two_nodes_send_each_event_once() {
    let app = TestApp::start();
    let receiver = Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), 200);
    let hook = subscribe(
        &app,
        &format!("http://127.0.0.1:{}/", receiver.port),
        &["order.created"],
    );
    let secret = hook["secret"].as_str().unwrap().to_string();
    let node = app.second_node();
    for n in 0..12 {
        let (s, _) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(order(&format!("TWO-{n}"), "C-TWO", &[("SNP-SINGLE", 1)])),
        );
        assert_eq!(s, 201);
    }
    std::thread::scope(|s| {
        s.spawn(|| node.run_pending_workers());
        app.run_pending_workers();
    });
    let got = receiver.wait_for(12);
    std::thread::sleep(Duration::from_millis(700));
    let got_after = receiver.got();
    assert_eq!(got_after.len(), 12, "each once: {:?}", got.len());
    let ids: Vec<i64> = got_after.iter().map(Got::event_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "in order, none twice");
    for g in &got_after {
        assert_signed(g, &secret);
    }
    drop(node);

    // Housekeeping deletes deliveries sent more than 30 days ago, and only those.
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE webhook_deliveries SET sent_at = '2000-01-01 00:00:00' \
         WHERE id IN (SELECT id FROM webhook_deliveries ORDER BY id LIMIT 5)",
    )
    .execute(&mut app.db.connect())
    .unwrap();
    let (s, v) = app.admin("POST", "/api/v1/jobs/housekeeping/run", None);
    assert_eq!(s, 200, "{v}");
    assert!(
        v.to_string()
            .contains("5 webhook delivery(ies) sent more than 30 days ago"),
        "{v}"
    );
    assert_eq!(app.count("webhook_deliveries"), 7);
}

#[test]
fn the_back_office_makes_pauses_and_deletes_subscriptions_and_says_what_it_refuses() {
    use crate::admin::{alert, post, staff};
    use crate::harness::ADMIN_PW;
    let app = TestApp::start();
    let mut admin = staff(&app, "admin", ADMIN_PW);
    let p = post(
        &mut admin,
        "/admin/webhooks",
        "/admin/webhooks",
        &[
            ("url", "gopher://crm.example/x"),
            ("events", "*"),
            ("description", ""),
        ],
    );
    assert_eq!(p.status, 400);
    assert!(alert(&p).contains("http:// or https://"), "{}", alert(&p));
    let p = post(
        &mut admin,
        "/admin/webhooks",
        "/admin/webhooks",
        &[
            ("url", "https://crm.example/hook"),
            ("events", "licence.*"),
            ("description", ""),
        ],
    );
    assert_eq!(p.status, 400);
    assert!(alert(&p).contains("not a family"), "{}", alert(&p));
    assert_eq!(app.count("webhooks"), 0);

    // Made: the answer shows the secret, the list afterwards does not.
    let p = post(
        &mut admin,
        "/admin/webhooks",
        "/admin/webhooks",
        &[
            ("url", "https://crm.example/hook"),
            ("events", "order.created, license.*"),
            ("description", "CRM"),
        ],
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let at = p
        .body
        .find("id=\"made_secret\"")
        .expect("the secret is shown");
    let secret: String = p.body[at..]
        .split("value=\"")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert_eq!(secret.len(), 64, "{secret}");
    let (_, list) = app.admin("GET", "/api/v1/webhooks", None);
    assert_eq!(list[0]["events"], "order.created,license.*");
    let id = list[0]["id"].as_i64().unwrap();
    let page = admin.get("/admin/webhooks");
    assert!(page.body.contains("https://crm.example/hook"));
    assert!(!page.body.contains(&secret), "shown once");

    // Support reads the page but is offered no changes, and a change by form is refused.
    let pw = app.add_user("sue", Role::Support);
    let mut sue = staff(&app, "sue", &pw);
    let p = sue.get("/admin/webhooks");
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("/pause\""), "no pause button for support");
    let p = post(
        &mut sue,
        "/admin/webhooks",
        &format!("/admin/webhooks/{id}/delete"),
        &[],
    );
    assert_eq!(p.status, 403);

    let p = post(
        &mut admin,
        "/admin/webhooks",
        &format!("/admin/webhooks/{id}/pause"),
        &[],
    );
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, list) = app.admin("GET", "/api/v1/webhooks", None);
    assert_eq!(list[0]["active"], false);
    let p = post(
        &mut admin,
        "/admin/webhooks",
        &format!("/admin/webhooks/{id}/explode"),
        &[],
    );
    assert_eq!(p.status, 404);
    let p = post(
        &mut admin,
        "/admin/webhooks",
        &format!("/admin/webhooks/{id}/delete"),
        &[],
    );
    assert_eq!(p.status, 303);
    assert_eq!(app.count("webhooks"), 0);
    let p = post(
        &mut admin,
        "/admin/webhooks",
        "/admin/webhook-deliveries/77/requeue",
        &[],
    );
    assert_eq!(p.status, 404);
}
