//! The back office in Chromium (`tests/browser/admin.cjs`): the flow the issue asks for, with
//! screenshots and axe-core; the test plays the containers and checks what the pages did.
use licentia::client::online::{self, Gateway};
use licentia::client::{CResult, Container};
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::activation::{license, new_act, ticket_with};
use crate::harness::{TestApp, ADMIN_PW};

fn keep(_: &Container) -> CResult<()> {
    Ok(())
}

/// The whole back office in Chromium: the admin logs in, makes an item and an order by
/// hand, withdraws a license, blacklists a container and sees its lock sent and validated
/// after the container's next contact, approves the re-activation a customer asked for in
/// the portal, downloads a report as CSV (the same as the JSON API's), sends a failed mail
/// again and subscribes a URL to events (its secret shown once; the deliveries wait for the
/// CRM, which is down, and the subscription is paused); a sales user is refused the blacklist and the users. Screenshots land in
/// `target/screenshots/portal/admin-*.png`; axe-core finds nothing serious.
#[test]
fn the_back_office_in_a_browser() {
    use crate::harness::SmtpSink;
    let started = std::time::SystemTime::now();
    let mut sink = SmtpSink::stopped();
    let app = TestApp::start_with(|c| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = sink.port;
        c.smtp_timeout_secs = 2;
        c.mail_max_attempts = 1;
        c.vendor_name = "Northwind Software".into();
    });
    let gw = Gateway::new(&app.base);
    // Licenses that expire in ten days, for the dashboard's weekly chart.
    let at = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "SNP-EXPIRING", "name": "Expiring", "product_code": 1001,
            "options": {"feature_map": 1, "expiration_time": at}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    ticket_with(&app, "BR-EXP", "SNP-EXPIRING", 3);
    let sales_pw = app.add_user("sam", Role::Sales);
    // A ticket mail that cannot be sent: failed after its one attempt.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(json!({"source": "shop", "erp_order_id": "M-1",
            "customer": {"external_id": "C-MAIL", "email": "late@example.com"},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    app.run_pending_workers();
    let (_, failed) = app.admin("GET", "/api/v1/mail?state=failed", None);
    let mail = failed[0]["id"].as_i64().expect("a failed mail");
    // The customer's license in container A, lost; B is the new computer. Re-activation
    // needs an approval.
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"reactivation": "approval"})),
    );
    assert_eq!(s, 200, "{v}");
    let (ticket, ids) = ticket_with(&app, "BR-1", "SNP-SINGLE", 1);
    let mut a = new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &ids, &mut keep).unwrap();
    let mut b = new_act(&gw);
    // Container C is stolen: the admin blacklists it.
    let (t2, ids2) = ticket_with(&app, "BR-2", "SNP-SINGLE", 1);
    let mut c = new_act(&gw);
    online::activate(&gw, &mut c, &t2, &ids2, &mut keep).unwrap();

    let case = json!({
        "admin_password": ADMIN_PW, "sales_password": sales_pw,
        "ticket": ticket, "license": ids[0], "lost": a.serial, "stolen": c.serial,
        "mail": mail,
        // The vendor's CRM, down while the test runs: nothing listens on this port.
        "webhook_url": format!("http://127.0.0.1:{}/crm", std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap().local_addr().unwrap().port()),
    });
    crate::portal::run_browser(&app, "admin.cjs", case, &mut |ask| {
        match ask["ask"].as_str().unwrap_or_default() {
            "request" => {
                let file = ask["file"].as_str().unwrap();
                let r = b
                    .request(crate::activation::FIRM, licentia::client::unix_now())
                    .map_err(|e| e.to_string())?;
                std::fs::write(file, r).map_err(|e| e.to_string())?;
                Ok(json!({"serial": b.serial}))
            }
            // A container's next contact: it takes what waits for it.
            "contact" => {
                let which = ask["container"].as_str().unwrap_or_default();
                let cont = match which {
                    "stolen" => &mut c,
                    "new" => &mut b,
                    other => return Err(format!("no container {other}")),
                };
                let got = online::update(&gw, cont, &mut keep).map_err(|e| e.to_string())?;
                let added: Vec<i64> = got.iter().flat_map(|r| r.added.clone()).collect();
                Ok(json!({"updates": got.len(), "added": added}))
            }
            // The downloaded CSV against the JSON API's report.
            "compare" => {
                let text = std::fs::read_to_string(ask["file"].as_str().unwrap())
                    .map_err(|e| e.to_string())?;
                let report = ask["report"].as_str().unwrap();
                let (s, json) = app.admin("GET", &format!("/api/v1/reports/{report}"), None);
                if s != 200 {
                    return Err(format!("JSON report {s}: {json}"));
                }
                let mut r = csv::Reader::from_reader(text.as_bytes());
                let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
                if header
                    != json["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                {
                    return Err(format!("columns {header:?} against {}", json["columns"]));
                }
                let rows: Vec<Vec<String>> = r
                    .records()
                    .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
                    .collect();
                let expected: Vec<Vec<String>> = json["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| {
                        header
                            .iter()
                            .map(|c| match &row[c] {
                                Value::Null => String::new(),
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .collect();
                if rows != expected || rows.is_empty() {
                    return Err(format!("CSV rows {rows:?} against JSON {expected:?}"));
                }
                Ok(json!({"rows": rows.len()}))
            }
            // The mail server is back.
            "smtp_up" => {
                sink.run();
                Ok(json!({}))
            }
            // The requeued mail goes out once.
            "mail_sent" => {
                let mails = sink.wait_for(1, 20);
                // The outbox says so once the server heard the SMTP server's answer.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                loop {
                    let (_, list) = app.admin("GET", "/api/v1/mail", None);
                    let m = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|m| m["id"] == ask["id"])
                        .cloned()
                        .ok_or("no such mail")?;
                    if m["state"] == "sent" || std::time::Instant::now() > until {
                        return Ok(json!({"state": m["state"], "delivered": mails.len()}));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            // An order after the subscription was made, and a try to deliver its event.
            "webhook_event" => {
                let (s, v) = app.admin(
                    "POST",
                    "/api/v1/orders",
                    Some(crate::harness::order(
                        "BR-HOOK",
                        "C-HOOK",
                        &[("SNP-SINGLE", 1)],
                    )),
                );
                if s != 201 {
                    return Err(format!("order {s}: {v}"));
                }
                app.run_pending_workers();
                let (_, d) = app.admin("GET", "/api/v1/webhook-deliveries", None);
                Ok(json!({"deliveries": d}))
            }
            other => Err(format!("unknown ask {other:?}")),
        }
    });
    // What the pages did is what the server holds.
    assert_eq!(
        license(&app, ids[0]),
        ("activated".into(), Some(b.serial.clone()))
    );
    assert_eq!(app.count("approvals WHERE state = 'approved'"), 1);
    assert_eq!(
        app.count("blacklist WHERE lock_validated_at IS NOT NULL"),
        1
    );
    assert_eq!(app.count("items WHERE item_id = 'BO-BROWSER'"), 1);
    assert_eq!(
        app.count("events WHERE action = 'license.withdrawn' AND interface = 'admin'"),
        1
    );
    crate::portal::assert_screenshots(
        started,
        &[
            "admin-login",
            "admin-dashboard",
            "admin-item",
            "admin-order",
            "admin-orders",
            "admin-blacklist",
            "admin-approvals",
            "admin-report",
            "admin-mail",
            "admin-webhooks",
            "admin-container",
            "admin-users",
            "admin-settings",
            "admin-history",
            "admin-dashboard-de",
        ],
    );
}
