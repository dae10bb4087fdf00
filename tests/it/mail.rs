//! Ticket mails through a real SMTP server, the outbox across an SMTP outage, scheduled
//! report mails, and the scheduler's one run per scheduled time across nodes.
use std::time::{Duration, Instant};

use diesel::prelude::*;
use licentia::config::Config;
use licentia::store::Conn;
use serde_json::{json, Value};

use crate::activation::FIRM;
use crate::harness::{SmtpSink, TestApp};

fn with_smtp(sink: &SmtpSink) -> impl FnOnce(&mut Config) + '_ {
    move |c: &mut Config| {
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = sink.port;
        c.smtp_timeout_secs = 2;
        c.mail_retry_secs = 1;
        c.mail_from = "Licentia Test <licenses@vendor.example>".into();
        c.vendor_name = "Sample Vendor".into();
        c.portal_url = "https://portal.vendor.example".into();
        c.ticket_mail_skip_sources = "erp".into();
    }
}

fn new_order(app: &TestApp, source: &str, erp: &str, email: &str, locale: &str) -> Value {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(json!({"source": source, "erp_order_id": erp,
            "customer": {"external_id": format!("C-{erp}"), "name": "Kim Kunde",
                "email": email, "locale": locale},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 2},
                      {"item_id": "SNP-FLOAT-5", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    v
}

fn part<'a>(mail: &'a Value, content_type: &str) -> &'a str {
    mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .and_then(|p| p["text"].as_str())
        .unwrap_or_else(|| panic!("no {content_type} part in {mail}"))
}

fn outbox(app: &TestApp, state: &str) -> Vec<Value> {
    let (s, v) = app.admin("GET", &format!("/api/v1/mail?state={state}"), None);
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn the_ticket_mail_arrives_in_the_customers_language_in_both_formats() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(with_smtp(&sink));
    let de = new_order(&app, "shop", "M-1", "kim@example.de", "de-DE");
    let en = new_order(&app, "shop", "M-2", "pat@example.com", "en");
    // ERP orders send no ticket mail here (ticket_mail_skip_sources).
    new_order(&app, "erp", "M-3", "erp@example.com", "en");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let to = |m: &Value| m["to"][0].as_str().unwrap().to_string();
    let de_mail = mails.iter().find(|m| to(m) == "kim@example.de").unwrap();
    let en_mail = mails.iter().find(|m| to(m) == "pat@example.com").unwrap();

    let ticket = de["ticket"].as_str().unwrap();
    assert_eq!(
        de_mail["subject"],
        format!("Ihre Lizenzen von Sample Vendor: Ticket {ticket}")
    );
    assert_eq!(de_mail["from"], "licenses@vendor.example");
    let text = part(de_mail, "text/plain");
    assert!(text.contains("Guten Tag Kim Kunde"), "{text}");
    assert!(text.contains(ticket), "{text}");
    assert!(
        text.contains("2 x SampleNotePad single user (SNP-SINGLE)"),
        "{text}"
    );
    assert!(
        text.contains("1 x SampleNotePad 5 floating users (SNP-FLOAT-5)"),
        "{text}"
    );
    assert!(text.contains(&format!("https://portal.vendor.example/tickets/{ticket}")));
    let html = part(de_mail, "text/html");
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(
        html.contains(&format!("<strong>{ticket}</strong>")),
        "{html}"
    );
    assert!(html.contains("SNP-FLOAT-5"), "{html}");

    let ticket = en["ticket"].as_str().unwrap();
    assert!(en_mail["subject"]
        .as_str()
        .unwrap()
        .starts_with("Your licenses from Sample Vendor"));
    let text = part(en_mail, "text/plain");
    assert!(
        text.contains("Hello Kim Kunde") && text.contains(ticket),
        "{text}"
    );
    assert!(part(en_mail, "text/html").contains("<html lang=\"en\">"));

    // The outbox shows both as sent; nothing else was queued.
    assert_eq!(outbox(&app, "sent").len(), 2);
    assert_eq!(app.count("outbox"), 2);

    // Each mail has its own Message-ID, fixed when it was queued: sent again (as after a
    // crash between the SMTP server's acceptance and the outbox's record of it), the copy
    // carries the same one, so a mail client or support desk can drop it.
    let ids: Vec<String> = mails
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert!(
            id.starts_with("<licentia.") && id.ends_with("@vendor.example>"),
            "{id}"
        );
    }
    assert_ne!(ids[0], ids[1]);
    diesel::sql_query("UPDATE outbox SET state = 'queued'")
        .execute(&mut app.db.connect())
        .unwrap();
    app.make_due("outbox");
    app.run_pending_workers();
    let again = sink.mails();
    assert_eq!(again.len(), 4, "{again:?}");
    let mut first: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut copies: Vec<&str> = again[2..]
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    first.sort_unstable();
    copies.sort_unstable();
    assert_eq!(first, copies);
    // Support may read it, sales may not.
    let pw = app.add_user("sam", licentia::domain::Role::Sales);
    let (s, _) = app.call("GET", "/api/v1/mail", Some(("sam", &pw)), None);
    assert_eq!(s, 403);
}

#[test]
fn with_smtp_down_the_outbox_keeps_every_mail_and_delivers_each_once() {
    let mut sink = SmtpSink::stopped();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.mail_max_attempts = 20;
    });
    let t0 = Instant::now();
    let tickets: Vec<String> = (0..5)
        .map(|i| {
            let v = new_order(
                &app,
                "shop",
                &format!("D-{i}"),
                &format!("c{i}@example.com"),
                "en",
            );
            v["ticket"].as_str().unwrap().to_string()
        })
        .collect();
    // Order creation does not wait for the mail server.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    app.run_pending_workers();
    let queued = outbox(&app, "queued");
    assert_eq!(queued.len(), 5, "{queued:?}");
    for m in &queued {
        assert!(m["attempts"].as_i64().unwrap() >= 1, "{m}");
        assert!(!m["last_error"].as_str().unwrap().is_empty(), "{m}");
        // Due again after the retry delay, not at once.
        assert!(
            m["next_attempt_at"].as_str().unwrap() > m["created_at"].as_str().unwrap(),
            "{m}"
        );
    }

    sink.run();
    app.make_due("outbox");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 5, "{mails:?}");
    // Nothing is due any more: no mail goes twice.
    app.make_due("outbox");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 5, "each mail once");
    for t in &tickets {
        assert_eq!(
            mails
                .iter()
                .filter(|m| m["subject"].as_str().unwrap().contains(t))
                .count(),
            1,
            "{t}"
        );
    }
    assert_eq!(outbox(&app, "sent").len(), 5);
}

#[test]
fn a_mail_that_keeps_failing_is_marked_failed_and_can_be_requeued() {
    let mut sink = SmtpSink::stopped();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.mail_max_attempts = 2;
    });
    let v = new_order(&app, "shop", "F-1", "late@example.com", "en");
    app.run_pending_workers();
    app.make_due("outbox");
    app.run_pending_workers();
    let failed = outbox(&app, "failed");
    assert_eq!(failed[0]["attempts"], 2);
    assert!(
        failed[0]["last_error"].as_str().unwrap().len() > 3,
        "{failed:?}"
    );
    let id = failed[0]["id"].as_i64().unwrap();
    sink.run();
    app.make_due("outbox");
    app.run_pending_workers();
    assert!(sink.mails().is_empty(), "a failed mail waits for a person");
    let (s, _) = app.admin("POST", &format!("/api/v1/mail/{id}/requeue"), None);
    assert_eq!(s, 200);
    let (s, v2) = app.admin("POST", &format!("/api/v1/mail/{id}/requeue"), None);
    assert_eq!(s, 409, "{v2}");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0]["subject"]
        .as_str()
        .unwrap()
        .contains(v["ticket"].as_str().unwrap()));
    // The history (and so the webhooks) says what became of the ticket mail: given up with
    // the reason, requeued, then sent.
    let ticket = v["ticket"].as_str().unwrap();
    let (_, h) = app.admin("GET", &format!("/api/v1/history?ticket={ticket}"), None);
    let mail_events: Vec<(&str, &Value)> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] != "order.created")
        .map(|e| (e["action"].as_str().unwrap(), &e["details"]))
        .collect();
    assert_eq!(mail_events.len(), 2, "{h}");
    assert_eq!(mail_events[0].0, "mail.failed");
    let failed: Value = serde_json::from_str(mail_events[0].1.as_str().unwrap()).unwrap();
    assert_eq!(failed["mail_id"], id);
    assert_eq!(failed["recipient"], "late@example.com");
    assert!(failed["error"].as_str().unwrap().len() > 3, "{failed}");
    assert_eq!(mail_events[1].0, "ticket.mailed");
}

/// An item of product 1001 that expires `days` from now.
fn expiring_item(app: &TestApp, id: &str, days: i64) {
    let at = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": id, "name": id, "firm_code": FIRM, "product_code": 1001,
            "options": {"feature_map": 1, "expiration_time": at}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
}

#[test]
fn the_expiry_job_mails_a_csv_of_exactly_the_licenses_that_expire() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.ticket_mail_skip_sources = "erp,shop".into();
        c.job_expiry_report = "*/2 * * * * *".into();
        c.expiry_report_days = 30;
        c.report_recipients = "finance@vendor.example, support@vendor.example".into();
    });
    expiring_item(&app, "SOON-10", 10);
    expiring_item(&app, "LATER-60", 60);
    let soon = new_order_of(
        &app,
        "E-1",
        &[("SOON-10", 2), ("LATER-60", 1), ("SNP-SINGLE", 1)],
    );
    let mails = sink.wait_for(2, 15);
    assert!(mails.len() >= 2, "{mails:?}");
    let first = &mails[0];
    assert!(first["subject"]
        .as_str()
        .unwrap()
        .contains("2 license(s) of firm code 6000010 expire"));
    let att = first["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["filename"].as_str().is_some_and(|f| f.ends_with(".csv")))
        .unwrap_or_else(|| panic!("no CSV attachment: {first}"));
    let csv_text = att["text"].as_str().unwrap();
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let id_col = header.iter().position(|h| h == "license_id").unwrap();
    let item_col = header.iter().position(|h| h == "item_id").unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let mut listed: Vec<i64> = rows.iter().map(|r| r[id_col].parse().unwrap()).collect();
    listed.sort();
    assert_eq!(
        listed, soon[0],
        "exactly the licenses that expire within 30 days"
    );
    assert!(rows.iter().all(|r| &r[item_col] == "SOON-10"));
    let recipients: Vec<&str> = mails[..2]
        .iter()
        .map(|m| m["to"][0].as_str().unwrap())
        .collect();
    assert!(
        recipients.contains(&"finance@vendor.example"),
        "{recipients:?}"
    );
    assert!(
        recipients.contains(&"support@vendor.example"),
        "{recipients:?}"
    );
    // The runs are recorded.
    let (_, jobs) = app.admin("GET", "/api/v1/jobs", None);
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "expiry_report")
        .unwrap();
    assert_eq!(job["last_outcome"], "ok", "{job}");
}

/// An order from source `erp`; the license ids of each line.
pub(crate) fn new_order_of(app: &TestApp, erp: &str, lines: &[(&str, i64)]) -> Vec<Vec<i64>> {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order(erp, "C-EXP", lines)),
    );
    assert_eq!(s, 201, "{v}");
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["licenses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn two_server_processes_run_each_scheduled_time_once_and_a_missed_run_once_on_start() {
    use crate::crash::{free_port, licentia, serve_with};
    let db = crate::harness::TestDb::new();
    assert!(licentia(&db)
        .arg("migrate")
        .output()
        .unwrap()
        .status
        .success());
    let every_second = [("LICENTIA_JOB_HOUSEKEEPING", "* * * * * *")];
    let mut servers = [
        serve_with(&db, free_port(), &every_second),
        serve_with(&db, free_port(), &every_second),
    ];
    std::thread::sleep(Duration::from_millis(5500));
    let stopped = chrono::Utc::now().naive_utc();
    for s in servers.iter_mut() {
        s.kill().unwrap();
        s.wait().unwrap();
    }
    #[derive(QueryableByName, Debug)]
    struct Run {
        #[diesel(sql_type = diesel::sql_types::Timestamp)]
        scheduled_at: chrono::NaiveDateTime,
        #[diesel(sql_type = diesel::sql_types::Text)]
        outcome: String,
    }
    let mut c = db.connect();
    let runs: Vec<Run> = diesel::sql_query(
        "SELECT scheduled_at, outcome FROM job_runs WHERE job = 'housekeeping' \
         ORDER BY scheduled_at",
    )
    .load(&mut c)
    .unwrap();
    assert!(runs.len() >= 4, "{runs:?}");
    // One run per second, none missing, none twice (the table's key would refuse a second
    // row), each finished but the one the kill may have cut.
    for w in runs.windows(2) {
        assert_eq!(
            (w[1].scheduled_at - w[0].scheduled_at).num_seconds(),
            1,
            "{runs:?}"
        );
    }
    assert!(
        runs.iter()
            .filter(|r| r.scheduled_at < stopped - chrono::Duration::seconds(1))
            .all(|r| r.outcome == "ok"),
        "{runs:?}"
    );
    drop(c);
    let app = TestApp::start_on(db, |c| {
        c.master_key = licentia::config::Secret("22".repeat(32));
    });
    let mut c = app.db.connect();

    // A node that starts after a long pause runs a missed job once, for the latest time.
    use chrono::Timelike;
    use licentia::store::schema::job_runs;
    let long_ago = chrono::Utc::now().naive_utc() - chrono::Duration::hours(3);
    diesel::insert_into(job_runs::table)
        .values((
            job_runs::job.eq("never_activated_report"),
            job_runs::scheduled_at.eq(long_ago.with_nanosecond(0).unwrap()),
            job_runs::node.eq("gone"),
            job_runs::started_at.eq(long_ago),
            job_runs::outcome.eq("ok"),
            job_runs::detail.eq(""),
        ))
        .execute(&mut c)
        .unwrap();
    // A run cut off by a node that stopped during it (still "running" two hours later).
    let cut = chrono::Utc::now().naive_utc() - chrono::Duration::hours(2);
    diesel::insert_into(job_runs::table)
        .values((
            job_runs::job.eq("never_activated_report"),
            job_runs::scheduled_at.eq(cut.with_nanosecond(0).unwrap()),
            job_runs::node.eq("dead"),
            job_runs::started_at.eq(cut),
            job_runs::outcome.eq("running"),
            job_runs::detail.eq(""),
        ))
        .execute(&mut c)
        .unwrap();
    let started = chrono::Utc::now().naive_utc();
    let late = app.second_node_with(|c| {
        c.job_housekeeping = String::new();
        c.job_never_activated_report = "0 * * * * *".into();
    });
    // Its scheduler's first step takes the cut-off run back and runs the catch-up.
    late.run_pending_workers();
    let times: Vec<chrono::NaiveDateTime> = job_runs::table
        .filter(job_runs::job.eq("never_activated_report"))
        .filter(job_runs::node.ne("gone"))
        .filter(job_runs::node.ne("dead"))
        .filter(job_runs::scheduled_at.le(started))
        .select(job_runs::scheduled_at)
        .load(&mut c)
        .unwrap();
    drop(late);
    let dead: i64 = job_runs::table
        .filter(job_runs::node.eq("dead"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(dead, 0, "the cut-off run was taken back");
    // One catch-up run (not 180), for the last whole minute before the start.
    assert_eq!(times.len(), 1, "{times:?}");
    assert_eq!(times[0].second(), 0);
    assert!(chrono::Utc::now().naive_utc() - times[0] < chrono::Duration::seconds(75));
}

#[test]
fn an_approval_request_is_mailed_to_support() {
    use licentia::client::online::{self, Gateway};
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.ticket_mail_skip_sources = "erp".into();
        c.support_email = "support@vendor.example".into();
    });
    let (s, v) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"self_service_count": 0})),
    );
    assert_eq!(s, 200, "{v}");
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = crate::activation::ticket_with(&app, "AP-1", "SNP-SINGLE", 1);
    let mut a = crate::activation::new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &ids, &mut |_| Ok(())).unwrap();
    let mut b = crate::activation::new_act(&gw);
    let e = online::reactivate(&gw, &mut b, &ticket, &ids, &mut |_| Ok(())).unwrap_err();
    assert_eq!(e.code, "approval_required");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["to"][0], "support@vendor.example");
    let text = part(&mails[0], "text/plain");
    assert!(
        text.contains(&a.serial) && text.contains("self-service"),
        "{text}"
    );
    assert!(text.contains("licentia approval approve"), "{text}");
}

#[test]
fn with_two_nodes_each_mail_is_sent_once() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(with_smtp(&sink));
    let node = app.second_node();
    let tickets: Vec<String> = (0..12)
        .map(|i| {
            let v = new_order(
                &app,
                "shop",
                &format!("N-{i}"),
                &format!("n{i}@example.com"),
                "en",
            );
            v["ticket"].as_str().unwrap().to_string()
        })
        .collect();
    // Both nodes' outbox senders have been looking all along; now each sends what is left
    // (a mail the other node is sending is not due for it).
    app.run_pending_workers();
    node.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 12, "{mails:?}");
    for t in &tickets {
        let n = mails
            .iter()
            .filter(|m| m["subject"].as_str().unwrap().contains(t.as_str()))
            .count();
        assert_eq!(n, 1, "{t}");
    }
    drop(node);
}

/// Nodes share the database but not a clock. A node whose clock runs five minutes ahead
/// (a separate `licentia serve` under libfaketime) does not take over a mail another node is
/// still sending: the two-minute lease runs on the database's clock. It takes the mail over
/// once that lease has run out.
#[test]
fn a_node_whose_clock_runs_ahead_takes_over_a_mail_only_when_its_lease_ran_out() {
    if crate::harness::backend() != "postgres" {
        // Not a pass: the run shows it was skipped and why.
        crate::harness::skip(
            "a_node_whose_clock_runs_ahead_takes_over_a_mail_only_when_its_lease_ran_out",
            "several nodes share a PostgreSQL database; run with TEST_BACKEND=postgres",
        );
        return;
    }
    // This node has no SMTP server, so the ticket mail stays in the outbox.
    let app = TestApp::start();
    let v = new_order(&app, "shop", "SKEW-1", "skew@example.com", "en");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let mut c = app.db.connect();
    let Conn::Pg(pg) = &mut c else { unreachable!() };
    // Another node is sending it, for the next 100 seconds of the database's clock.
    let taken = diesel::sql_query(
        "UPDATE outbox SET state = 'sending', claimed_by = 'node-a', \
         claimed_until = (clock_timestamp() AT TIME ZONE 'UTC') + interval '100 seconds'",
    )
    .execute(pg)
    .unwrap();
    assert_eq!(taken, 1);

    let sink = SmtpSink::start();
    let port = crate::crash::free_port();
    let faketime = crate::crash::faketime_library();
    let mut ahead = std::process::Command::new(env!("CARGO_BIN_EXE_licentia"));
    ahead
        .arg("serve")
        .env("LD_PRELOAD", faketime)
        .env("FAKETIME", "+5m")
        // A wrong wall clock; its monotonic clock (timers) is right, as on a real node.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("LICENTIA_DATABASE_URL", &app.db.url)
        .env("LICENTIA_DATA_DIR", app.db.dir.join("node-ahead"))
        .env("LICENTIA_MASTER_KEY", "11".repeat(32))
        .env("LICENTIA_LOG", "error")
        .env("LICENTIA_SMTP_HOST", "127.0.0.1")
        .env("LICENTIA_SMTP_PORT", sink.port.to_string())
        .env("LICENTIA_SMTP_TIMEOUT_SECS", "2")
        .env(
            "LICENTIA_MAIL_FROM",
            "Licentia Test <licenses@vendor.example>",
        );
    let mut node = crate::crash::serve_command(ahead, port);
    let state = |pg: &mut diesel::PgConnection| -> (String, Option<String>) {
        use licentia::store::schema::outbox;
        outbox::table
            .select((outbox::state, outbox::claimed_by))
            .first(pg)
            .unwrap()
    };
    // Its mail worker looks every half second: give it a few looks.
    std::thread::sleep(Duration::from_secs(3));
    let early = (sink.mails().len(), state(pg));
    // The lease runs out on the database's clock: now the node takes the mail over.
    diesel::sql_query(
        "UPDATE outbox SET claimed_until = (clock_timestamp() AT TIME ZONE 'UTC') \
         - interval '1 second'",
    )
    .execute(pg)
    .unwrap();
    let mails = sink.wait_for(1, 15);
    let late = state(pg);
    let _ = node.kill();
    let _ = node.wait();
    assert_eq!(
        early,
        (0, ("sending".to_string(), Some("node-a".to_string()))),
        "the mail was taken over while its lease ran"
    );
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0]["subject"].as_str().unwrap().contains(&ticket),
        "{mails:?}"
    );
    assert_eq!(late.0, "sent");
    assert_ne!(late.1.as_deref(), Some("node-a"));
}

#[test]
fn the_expiry_report_per_customer_sends_one_csv_per_customer() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.ticket_mail_skip_sources = "erp".into();
        c.job_expiry_report = String::new();
        c.expiry_report_per_customer = true;
        c.report_recipients = "finance@vendor.example".into();
    });
    expiring_item(&app, "SOON-5", 5);
    for (erp, cust, qty) in [("PC-1", "C-A", 1), ("PC-2", "C-B", 2)] {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(crate::harness::order(erp, cust, &[("SOON-5", qty)])),
        );
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = app.admin("POST", "/api/v1/jobs/expiry_report/run", None);
    assert_eq!(s, 200, "{v}");
    app.run_pending_workers();
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for (cust, rows) in [("C-A", 1), ("C-B", 2)] {
        let m = mails
            .iter()
            .find(|m| {
                m["subject"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("(customer {cust})"))
            })
            .unwrap_or_else(|| panic!("no mail for {cust}: {mails:?}"));
        let csv_part = m["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["filename"].as_str().is_some_and(|f| f.contains(cust)))
            .unwrap();
        let text = csv_part["text"].as_str().unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.records().count(), rows, "{text}");
    }
}

#[test]
fn a_failing_run_is_recorded_and_the_scheduler_goes_on() {
    use licentia::store::schema::{job_runs, licenses};
    let app = TestApp::start_with(|c| c.job_expiry_report = "* * * * * *".into());
    expiring_item(&app, "SOON-3", 3);
    let ids = new_order_of(&app, "JF-1", &[("SOON-3", 1)]);
    let mut c = app.db.connect();
    let good: String = licenses::table
        .filter(licenses::id.eq(ids[0][0]))
        .select(licenses::options)
        .first(&mut c)
        .unwrap();
    // A damaged row makes the report fail (JSON still, as the database insists, but not
    // license options: a quantity that is no number).
    let mut damaged: serde_json::Value = serde_json::from_str(&good).unwrap();
    damaged["license_quantity"] = "lots".into();
    diesel::update(licenses::table.filter(licenses::id.eq(ids[0][0])))
        .set(licenses::options.eq(damaged.to_string()))
        .execute(&mut c)
        .unwrap();
    let failed = |c: &mut licentia::store::Conn| -> Vec<String> {
        job_runs::table
            .filter(job_runs::job.eq("expiry_report"))
            .filter(job_runs::outcome.eq("failed"))
            .select(job_runs::detail)
            .load(c)
            .unwrap()
    };
    assert!(wait_until(10, || failed(&mut c).len() >= 2));
    assert!(
        failed(&mut c)[0].contains("license"),
        "{:?}",
        failed(&mut c)
    );
    diesel::update(licenses::table.filter(licenses::id.eq(ids[0][0])))
        .set(licenses::options.eq(&good))
        .execute(&mut c)
        .unwrap();
    let ok = |c: &mut licentia::store::Conn| -> i64 {
        job_runs::table
            .filter(job_runs::job.eq("expiry_report"))
            .filter(job_runs::outcome.eq("ok"))
            .count()
            .get_result(c)
            .unwrap()
    };
    assert!(wait_until(10, || ok(&mut c) >= 1), "the scheduler went on");
    let (_, jobs) = app.admin("GET", "/api/v1/jobs", None);
    assert!(jobs.to_string().contains("expiry_report"));
}

/// The ticket mail sent again through the JSON API (the back office and the CLI call the
/// same service): to the customer's address as it is now, once per call, recorded; refused
/// for a customer without an address, an unknown order and the erp role.
#[test]
fn the_ticket_mail_is_sent_again_on_request() {
    let sink = SmtpSink::start();
    let app = TestApp::start_with(with_smtp(&sink));
    let v = new_order(&app, "shop", "R-1", "first@example.com", "en");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    app.run_pending_workers();
    assert_eq!(sink.wait_for(1, 20).len(), 1);
    // The customer has a new address; the mail goes there.
    let (s, c) = app.admin(
        "PUT",
        "/api/v1/customers",
        Some(json!({"external_id": "C-R-1", "email": "second@example.com"})),
    );
    assert_eq!(s, 200, "{c}");
    let (s, r) = app.admin("POST", "/api/v1/orders/shop/R-1/ticket-mail", None);
    assert_eq!(s, 202, "{r}");
    app.run_pending_workers();
    let mails = sink.wait_for(2, 20);
    assert_eq!(mails.len(), 2);
    let again = mails
        .iter()
        .find(|m| m["to"].to_string().contains("second@example.com"))
        .unwrap_or_else(|| panic!("{mails:?}"));
    assert!(
        again["subject"].as_str().unwrap().contains(&ticket),
        "{again}"
    );
    assert_eq!(
        app.count("events WHERE action = 'order.ticket_mail_resent'"),
        1
    );
    let (s, e) = app.admin("POST", "/api/v1/orders/shop/NOPE/ticket-mail", None);
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("unknown_order")),
        "{e}"
    );
    let erp = app.add_user("erpy", licentia::domain::Role::Erp);
    let (s, _) = app.call(
        "POST",
        "/api/v1/orders/shop/R-1/ticket-mail",
        Some(("erpy", &erp)),
        None,
    );
    assert_eq!(s, 403);
    assert_eq!(app.count("outbox"), 2);
}

/// The never-activated report of a generated database, mailed by its job run now: the
/// mails that arrived.
fn mailed_report(app: &TestApp, sink: &SmtpSink) -> Vec<Value> {
    let (s, v) = app.admin("POST", "/api/v1/jobs/never_activated_report/run", None);
    assert_eq!(s, 200, "{v}");
    let mails = sink.wait_for(1, 15);
    assert_eq!(mails.len(), 1, "{mails:?}");
    mails
}

/// The never-activated report as CSV from the JSON API: what a mail must carry.
fn never_activated_csv(app: &TestApp) -> String {
    let (s, v) = app.call(
        "GET",
        "/api/v1/reports/never-activated?format=csv",
        Some(("admin", crate::harness::ADMIN_PW)),
        None,
    );
    assert_eq!(s, 200);
    v.as_str().unwrap().to_string()
}

#[test]
fn a_large_report_goes_compressed_and_one_too_large_as_a_link_to_download_signed_in() {
    use std::io::Read;
    // Compressed: more than 64 KiB of CSV, less than the largest attachment once gzipped.
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.report_recipients = "finance@vendor.example".into();
    });
    app.rt
        .block_on(licentia::service::generate::fill(&app.core, 3000, 5))
        .unwrap();
    let whole = never_activated_csv(&app);
    assert!(whole.len() > 64 * 1024, "{} bytes", whole.len());
    let mail = &mailed_report(&app, &sink)[0];
    let gz = mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == "application/gzip")
        .unwrap_or_else(|| panic!("no compressed attachment: {mail}"));
    assert!(
        gz["filename"].as_str().unwrap().ends_with(".csv.gz"),
        "{gz}"
    );
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        gz["data"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        bytes.len() < whole.len() / 3,
        "{} bytes compressed",
        bytes.len()
    );
    let mut csv = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut csv)
        .unwrap();
    assert_eq!(csv, whole, "the whole report, as the API gives it");
    drop(app);

    // Too large even so: the mail says how many rows and links to them.
    let sink = SmtpSink::start();
    let app = TestApp::start_with(|c| {
        with_smtp(&sink)(c);
        c.report_recipients = "finance@vendor.example".into();
        c.report_attachment_max_bytes = 4096;
        c.public_url = "https://licenses.vendor.example".into();
    });
    app.rt
        .block_on(licentia::service::generate::fill(&app.core, 3000, 5))
        .unwrap();
    let whole = never_activated_csv(&app);
    let mail = &mailed_report(&app, &sink)[0];
    let parts = mail["parts"].as_array().unwrap();
    assert!(
        parts.iter().all(|p| p["filename"].is_null()),
        "no attachment: {mail}"
    );
    let text = part(mail, "text/plain");
    let rows = whole.lines().count() - 1;
    assert!(
        text.contains(&format!("too many to attach: {rows} row(s)")),
        "{text}"
    );
    let at = text
        .find("https://licenses.vendor.example/admin/downloads/")
        .unwrap_or_else(|| panic!("no link: {text}"));
    let link =
        &text[at + "https://licenses.vendor.example".len()..][.."/admin/downloads/".len() + 64];
    // Not signed in: the login first, back to the link after.
    let p = crate::portal::Visitor::new(&app.base).get(link);
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(
        p.location.starts_with("/admin/login?next="),
        "{}",
        p.location
    );
    let mut staff = crate::admin::staff(&app, "admin", crate::harness::ADMIN_PW);
    let p = staff.get(link);
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(
        p.body, whole,
        "the mail's rows, as the report gave them when it was mailed"
    );
    // A token that is not one, and a link past its days.
    let mut wrong = link.to_string();
    wrong.replace_range(
        wrong.len() - 1..,
        if link.ends_with('0') { "1" } else { "0" },
    );
    assert_eq!(staff.get(&wrong).status, 404);
    diesel::sql_query("UPDATE report_downloads SET expires_at = '2000-01-01 00:00:00'")
        .execute(&mut app.db.connect())
        .unwrap();
    let p = staff.get(link);
    assert!(
        p.status >= 400 && p.body.contains("expired"),
        "{}: {}",
        p.status,
        p.body
    );
}
