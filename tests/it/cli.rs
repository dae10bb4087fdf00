use std::process::Command;

use crate::harness::TestDb;

pub(crate) fn licentia(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(args)
        .env("LICENTIA_DATABASE_URL", &db.url)
        .env("LICENTIA_DATA_DIR", &db.dir)
        .env("LICENTIA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_cli_seeds_orders_shows_tickets_and_verifies_the_history() {
    let db = TestDb::new();
    let (code, out, err) = licentia(&db, &["demo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin password (shown once): "), "{out}");
    let (_, again, _) = licentia(&db, &["demo"]);
    assert!(!again.contains("shown once"), "{again}");
    // The master key file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(db.dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (code, out, err) = licentia(
        &db,
        &[
            "order",
            "create",
            "--customer",
            "C-77",
            "--item",
            "SNP-SINGLE=2",
            "--item",
            "SNP-TRIAL-30=1",
            "--erp-order-id",
            "9000",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let ticket = out.trim().to_string();
    assert_eq!(ticket.len(), 29, "{out}");
    let (code, shown, _) = licentia(&db, &["ticket", "show", &ticket.to_lowercase()]);
    assert_eq!(code, 0);
    assert_eq!(shown.matches("  license ").count(), 3, "{shown}");
    assert!(shown.contains("C-77"));

    // The ticket mail again: C-77 has no address (refused, 4), then one.
    let resend = ["order", "resend-mail", "--erp-order-id", "9000"];
    let (code, _, err) = licentia(&db, &resend);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("has no e-mail address"), "{err}");
    let (code, _, err) = licentia(
        &db,
        &[
            "order",
            "create",
            "--customer",
            "C-78",
            "--email",
            "c78@example.com",
            "--item",
            "SNP-SINGLE=1",
            "--erp-order-id",
            "9001",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = licentia(&db, &["order", "resend-mail", "--erp-order-id", "9001"]);
    assert_eq!((code, out.trim()), (0, "queued"), "{err}");
    let (code, _, err) = licentia(&db, &["order", "resend-mail", "--erp-order-id", "9999"]);
    assert_eq!(code, 3, "{err}");

    let (code, _, err) = licentia(
        &db,
        &["order", "create", "--customer", "C-77", "--item", "NOPE=1"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unknown item: NOPE"), "{err}");
    let (code, _, err) = licentia(&db, &["ticket", "show", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAB"]);
    assert_eq!(code, 2, "{err}");

    // A ticket disabled and enabled again; the license and the history as JSON.
    let (code, out, err) = licentia(&db, &["ticket", "disable", &ticket, "--reason", "refund"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state disabled"), "{out}");
    let (code, out, err) = licentia(&db, &["ticket", "enable", &ticket]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("state active"), "{out}");
    let first: i64 = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("license "))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .parse()
        .unwrap();
    let (code, out, err) = licentia(&db, &["license", "show", &first.to_string()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["license"]["state"], "available", "{v}");
    assert_eq!(v["ticket"], ticket.as_str(), "{v}");
    let (code, out, err) = licentia(&db, &["audit", "history", "--ticket", &ticket]);
    assert_eq!(code, 0, "{err}");
    let events: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&["ticket.disabled", "ticket.enabled"]),
        "{actions:?}"
    );
    let (code, _, err) = licentia(&db, &["serial", "show", "130-0000000001"]);
    assert_eq!(code, 3, "{err}");

    // Customers: listed a page at a time; one with an order stays, one without goes.
    let (code, out, err) = licentia(&db, &["customer", "list", "--limit", "1"]);
    assert_eq!(code, 0, "{err}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1, "{page}");
    let (code, _, err) = licentia(&db, &["customer", "delete", "C-77"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("owns 3 license(s) on 1 ticket(s)"), "{err}");
    let (code, _, err) = licentia(&db, &["customer", "delete", "NOBODY"]);
    assert_eq!(code, 3, "{err}");

    let (code, out, _) = licentia(&db, &["user", "add", "erp-sap", "--role", "erp"]);
    assert_eq!(code, 0);
    assert!(out.contains("password: "));
    let (code, out, _) = licentia(&db, &["audit", "verify"]);
    assert_eq!(code, 0);
    assert!(out.contains("audit chain intact"), "{out}");

    let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(["migrate"])
        .env("LICENTIA_LISTN", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LICENTIA_LISTN"));
}

fn client(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The runtime as a customer's machine runs it: files offline, then online round trips.
#[test]
fn the_container_commands_activate_by_files_and_online_and_check_offline() {
    use crate::activation::{license, ticket_with, FIRM};
    let app = crate::harness::TestApp::start();
    let (ticket, ids) = ticket_with(&app, "CLI-1", "SNP-SINGLE", 2);
    let dir = app.db.dir.join("box");
    let d = dir.to_str().unwrap();
    let file = |name: &str| app.db.dir.join(name).to_str().unwrap().to_string();
    let traits: serde_json::Map<String, serde_json::Value> = crate::activation::traits()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    std::fs::write(file("traits.json"), serde_json::to_string(&traits).unwrap()).unwrap();
    let (code, out, err) = client(&[
        "container",
        "create",
        "--type",
        "act",
        "--dir",
        d,
        "--traits-file",
        &file("traits.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("act container new created"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("container.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the container file holds private keys");
    let (code, _, _) = client(&["container", "create", "--dir", d]);
    assert_eq!(code, 4, "a second container in the same place");

    // Offline: the template and every message travel as files.
    let template = ureq::get(&format!("{}/api/v1/gateway/template/{FIRM}", app.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    std::fs::write(file("template.json"), template).unwrap();
    let (code, _, err) = client(&[
        "container",
        "trust",
        "--dir",
        d,
        "--template",
        &file("template.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = client(&[
        "container",
        "request",
        "--dir",
        d,
        "--firm-code",
        &FIRM.to_string(),
        "--out",
        &file("req.lcr"),
    ]);
    assert_eq!(code, 0, "{err}");
    let update = ureq::post(&format!(
        "{}/api/v1/gateway/files/activate?ticket={ticket}&license={}",
        app.base, ids[0]
    ))
    .send_string(&std::fs::read_to_string(file("req.lcr")).unwrap())
    .unwrap()
    .into_string()
    .unwrap();
    std::fs::write(file("upd.lcu"), &update).unwrap();
    let (code, _, err) = client(&[
        "container",
        "apply",
        "--dir",
        d,
        &file("upd.lcu"),
        "--receipt-out",
        &file("rec.lcc"),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = client(&["container", "apply", "--dir", d, &file("upd.lcu")]);
    assert_eq!(code, 4, "a replayed update: {err}");
    assert!(err.contains("wrong_counter"), "{err}");
    assert_eq!(license(&app, ids[0]).0, "pending");
    let confirmed = ureq::post(&format!("{}/api/v1/gateway/files/receipt", app.base))
        .send_string(&std::fs::read_to_string(file("rec.lcc")).unwrap())
        .unwrap()
        .into_string()
        .unwrap();
    assert!(confirmed.contains(&ids[0].to_string()), "{confirmed}");
    assert_eq!(license(&app, ids[0]).0, "activated");

    let check = |features: &str, traits_file: &str| {
        client(&[
            "container",
            "check",
            "--dir",
            d,
            "--firm-code",
            &FIRM.to_string(),
            "--product-code",
            "1001",
            "--features",
            features,
            "--traits-file",
            traits_file,
        ])
    };
    let (code, out, err) = check("1", &file("traits.json"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("\"license_ids\": [\n    {}", ids[0])),
        "{out}"
    );
    let (code, _, err) = check("4", &file("traits.json"));
    assert_eq!(code, 6, "{err}");
    std::fs::write(
        file("other.json"),
        r#"{"machine_id":"x","hostname":"y","mac":"z","cpu":"c","disk":"d"}"#,
    )
    .unwrap();
    let (code, _, err) = check("1", &file("other.json"));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("fingerprint_mismatch"), "{err}");

    // Online: the second license, then a return; `list` shows what the container holds.
    let server = app.base.as_str();
    let (code, out, err) = client(&[
        "activate",
        "--dir",
        d,
        "--ticket",
        &ticket,
        "--license",
        &ids[1].to_string(),
        "--server",
        server,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"confirmed\": true"), "{out}");
    let (code, _, err) = client(&[
        "deactivate",
        "--dir",
        d,
        "--license",
        &ids[0].to_string(),
        "--server",
        server,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(license(&app, ids[0]), ("available".into(), None));
    let (_, out, _) = client(&["container", "list", "--dir", d]);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let held: Vec<i64> = listed["firms"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["license_id"].as_i64().unwrap())
        .collect();
    assert_eq!(held, vec![ids[1]]);
    let (code, out, _) = client(&["update", "--dir", d, "--server", server]);
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, _, err) = client(&[
        "activate",
        "--dir",
        d,
        "--ticket",
        &ticket,
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, 7, "{err}");
}

#[test]
fn the_cli_runs_reports_and_vendor_control() {
    let db = TestDb::new();
    assert_eq!(licentia(&db, &["demo"]).0, 0);
    let (code, _, err) = licentia(
        &db,
        &[
            "order",
            "create",
            "--customer",
            "C-5",
            "--item",
            "SNP-FLOAT-5=1",
            "--erp-order-id",
            "77",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, csv, err) = licentia(&db, &["report", "never-activated"]);
    assert_eq!(code, 0, "{err}");
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(&r.headers().unwrap()[0], "license_id");
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let id = rows[0][0].to_string();

    let (code, out, err) = licentia(
        &db,
        &[
            "license",
            "split",
            &id,
            "--quantity",
            "2",
            "--quantity",
            "3",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("licenses"), "{out}");
    let (code, _, err) = licentia(
        &db,
        &[
            "license",
            "split",
            &id,
            "--quantity",
            "1",
            "--quantity",
            "1",
        ],
    );
    assert_eq!(code, 4, "an already split license: {err}");

    let (code, _, err) = licentia(
        &db,
        &["blacklist", "add", "3-1234567", "--description", "stolen"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, json, _) = licentia(&db, &["report", "blacklist", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["rows"][0]["serial"], "3-1234567");
    assert_eq!(v["rows"][0]["description"], "stolen");
    let (code, _, _) = licentia(
        &db,
        &["blacklist", "add", "3-1234567", "--description", "again"],
    );
    assert_eq!(code, 4);
    let (code, _, err) = licentia(
        &db,
        &["blacklist", "remove", "3-1234567", "--reason", "found"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = licentia(&db, &["serial", "reset", "3-404"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = licentia(&db, &["report", "expiring", "--format", "xml"]);
    assert_ne!(code, 0);
    assert!(err.contains("xml"), "{err}");
    let (code, out, _) = licentia(&db, &["approval", "list"]);
    assert_eq!((code, out.trim()), (0, "[]"));
}

/// The benchmarks run their whole round trips against a server and print their figures; the
/// figures agree with what the server itself recorded (its history, its orders, its CPU
/// time), so a bench that miscounts fails here.
#[test]
fn the_benchmarks_complete_every_round_trip_and_print_their_figures() {
    let app = crate::harness::TestApp::start();
    // The output, and the server's CPU seconds over the whole run (setup included).
    let bench = |args: &[&str]| {
        let cpu_before = server_cpu_seconds(&app.base);
        let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
            .arg("bench")
            .args(args)
            .args(["--url", &app.base, "--password", crate::harness::ADMIN_PW])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (text, server_cpu_seconds(&app.base) - cpu_before)
    };
    // Round trips the server settled by a receipt: activations and returns in its history.
    let settled = || app.count("events WHERE action IN ('license.activated', 'license.returned')");
    let bench_orders = || app.count("orders WHERE source = 'bench'");
    let settled_before = settled();
    let (out, cpu) = bench(&[
        "activate",
        "--containers",
        "4",
        "--concurrency",
        "2",
        "--round-trips",
        "40",
    ]);
    assert!(out.contains("40 ok, 0 failed"), "{out}");
    assert_eq!(settled() - settled_before, 40, "{out}");
    assert!(
        out.contains("round trips/s") && out.contains("p99"),
        "{out}"
    );
    assert_rate_and_latency(&out, "round trips", 40);
    assert!(out.contains("Ed25519 verify"), "{out}");
    assert!(out.contains("cryptography of one round trip"), "{out}");
    assert_crypto_line(&out);
    assert_cpu_line(&out, "round trip", 40, cpu);
    // Each round trip is two writes (the activation or return, then its receipt).
    assert_writer_line(&out, "round trip", 2.0);
    // Every round trip ended with its receipt: nothing is left pending or returning.
    assert_eq!(
        app.count("licenses WHERE state IN ('pending', 'returning')"),
        0
    );
    assert!(app.count("licenses WHERE serial IS NOT NULL") <= 4);

    let orders_before = bench_orders();
    let (out, cpu) = bench(&["orders", "--concurrency", "2", "--count", "20"]);
    assert!(out.contains("20 ok, 0 failed"), "{out}");
    assert_eq!(bench_orders() - orders_before, 20, "{out}");
    assert!(out.contains("orders/s"), "{out}");
    assert_rate_and_latency(&out, "orders", 20);
    assert_cpu_line(&out, "order", 20, cpu);
    assert_writer_line(&out, "order", 1.0);

    // Open loop: round trip n is due n/rate seconds after the start, so 30 of them at 100/s
    // cannot end before 0.29 s, and the latency says where it counts from.
    let (out, _) = bench(&[
        "activate",
        "--containers",
        "4",
        "--concurrency",
        "2",
        "--round-trips",
        "30",
        "--rate",
        "100",
    ]);
    assert!(out.contains("30 ok, 0 failed"), "{out}");
    assert!(
        out.contains("(offered 100/s on a fixed schedule: open loop)"),
        "{out}"
    );
    assert!(out.contains("(counted from each one's due time)"), "{out}");
    assert!(run_seconds(&out) >= 0.29, "{out}");
    assert_rate_and_latency(&out, "round trips", 30);
    let (out, _) = bench(&["orders", "--count", "20", "--rate", "50"]);
    assert!(out.contains("20 ok, 0 failed"), "{out}");
    assert!(out.contains("(offered 50/s"), "{out}");
    assert!(run_seconds(&out) >= 0.38, "{out}");
    assert_rate_and_latency(&out, "orders", 20);

    // Heartbeats of 3 sessions for half a second, each one write; every seat released after.
    let seats_before = app.count("events WHERE action = 'cloud.seat_released'");
    let (out, cpu) = bench(&["cloud", "--concurrency", "3", "--seconds", "0.5"]);
    let ok: u32 = out
        .split(" ok, 0 failed")
        .next()
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no heartbeat count in {out}"));
    assert!(ok > 3, "{out}");
    assert!(run_seconds(&out) >= 0.5, "{out}");
    assert_rate_and_latency(&out, "heartbeats", ok);
    assert_cpu_line(&out, "heartbeat", ok, cpu);
    assert_writer_line(&out, "heartbeat", 1.0);
    assert!(out.contains("one durable 4 KiB write"), "{out}");
    assert_eq!(
        app.count("events WHERE action = 'cloud.seat_released'") - seats_before,
        3
    );

    // A rate that is not a positive number is refused before anything is sent.
    let orders = app.count("orders");
    for rate in ["0", "-5", "fast", "inf"] {
        let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
            .args(["bench", "orders", &format!("--rate={rate}"), "--count", "5"])
            .args(["--url", &app.base, "--password", crate::harness::ADMIN_PW])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rate}: {err}");
        assert!(err.contains("is not a positive number per second"), "{err}");
    }
    assert_eq!(app.count("orders"), orders);
}

/// The run's length from the first line of a benchmark's output ("... in 1.23 s ...").
fn run_seconds(out: &str) -> f64 {
    out.lines()
        .next()
        .and_then(|l| l.split(" in ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no run time in {out}"))
}

/// The benchmark's writer line: at least `writes` writes per operation (the server's own
/// background writes may add some), groups of at least one, and the times and busy share
/// in range.
fn assert_writer_line(out: &str, per: &str, writes: f64) {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("writer:"))
        .unwrap_or_else(|| panic!("no writer line in {out}"));
    let figures: Vec<f64> = line
        .split([' ', '%', ';', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    // writes per op, per group, queue ms, group ms, writers, busy %
    assert_eq!(figures.len(), 6, "{line}");
    assert!(line.contains(&format!("writes per {per}")), "{line}");
    assert!(figures[0] >= writes && figures[0] < writes + 1.0, "{line}");
    assert!(figures[1] >= 1.0, "{line}");
    assert!(figures[2] >= 0.0 && figures[3] > 0.0, "{line}");
    assert!(figures[4] >= 1.0, "{line}");
    assert!(figures[5] > 0.0 && figures[5] <= 100.0, "{line}");
}

/// The benchmark's line of CPU time per operation names a figure for the server (read from
/// its `/metrics`) and for the load generator; both did some work, and the server's figure
/// times `ops` fits in the server's CPU time over the whole bench run (`window` seconds,
/// which includes the bench's setup: the bench measures a part of it).
fn assert_cpu_line(out: &str, per: &str, ops: u32, window: f64) {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cpu per {per}: server ")))
        .unwrap_or_else(|| panic!("no cpu line in {out}"));
    let figures: Vec<f64> = line
        .split(" us")
        .filter_map(|part| part.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(figures.len(), 2, "{line}");
    assert!(figures.iter().all(|us| *us > 0.0), "{line}");
    // Printed to the microsecond: half of one per operation is rounding.
    let server_total = (figures[0] - 0.5).max(0.0) * f64::from(ops) / 1e6;
    assert!(
        server_total <= window + 0.001,
        "the server's {server_total:.4} s for {ops} {per}s is more than it spent in the \
         whole run ({window:.4} s): {line}"
    );
}

/// The rate is the operations over the run's time, and the latencies lie within the run.
fn assert_rate_and_latency(out: &str, per: &str, ops: u32) {
    let seconds = run_seconds(out);
    let rate: f64 = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("rate:")?
                .trim()
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no rate in {out}"));
    assert!(out.contains(&format!("{per}/s")), "{out}");
    // The run's time is printed to a hundredth of a second, the rate to one per second.
    let (low, high) = (
        f64::from(ops) / (seconds + 0.005),
        f64::from(ops) / (seconds - 0.005).max(0.001),
    );
    assert!(
        rate >= low.floor() - 0.5 && rate <= high.ceil() + 0.5,
        "rate {rate} for {ops} in {seconds} s: {out}"
    );
    let ms: Vec<f64> = out
        .lines()
        .find_map(|l| l.strip_prefix("latency:"))
        .unwrap_or_else(|| panic!("no latency in {out}"))
        .split(" ms")
        .filter_map(|part| part.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(ms.len(), 2, "{out}");
    assert!(
        ms[0] > 0.0 && ms[0] <= ms[1] && ms[1] <= seconds * 1000.0 + 10.0,
        "p50 {} ms, p99 {} ms in a {seconds} s run: {out}",
        ms[0],
        ms[1]
    );
}

/// The cryptography line's time per round trip is the sum the bench says it is, from the
/// rates in its ceiling list (3 verifications, 3.5 signatures, a seal and an open), and the
/// round trips/s it allows follow from it.
fn assert_crypto_line(out: &str) {
    let rate = |name: &str| -> f64 {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .and_then(|rest| rest.trim().split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} rate in {out}"))
    };
    let us = 3.0 * 1e6 / rate("Ed25519 verify")
        + 3.5 * 1e6 / rate("Ed25519 sign")
        + 1e6 / rate("X25519+HKDF+AES-GCM seal (1 KiB)")
        + 1e6 / rate("X25519+HKDF+AES-GCM open (1 KiB)");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("cryptography of one round trip: "))
        .unwrap_or_else(|| panic!("no cryptography line in {out}"));
    let printed: f64 = line.split(' ').next().unwrap().parse().unwrap();
    // The rates are printed rounded to one per second: a small relative error.
    assert!(
        (printed - us).abs() <= us * 0.01 + 1.0,
        "printed {printed} us, the rates give {us:.1} us: {line}"
    );
}

/// The server's CPU seconds so far, from its `/metrics`.
fn server_cpu_seconds(base: &str) -> f64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("process_cpu_seconds_total ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no process_cpu_seconds_total in /metrics"))
}

#[test]
fn the_cloud_commands_make_a_container_issue_a_credential_and_use_a_seat() {
    let app = crate::harness::TestApp::start();
    let (code, out, err) = licentia(
        &app.db,
        &[
            "order",
            "create",
            "--customer",
            "C-CLOUD",
            "--item",
            "SNP-SINGLE=1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let ticket = out.trim().to_string();
    let (code, out, err) = licentia(&app.db, &["cloud", "create", "--customer", "C-CLOUD"]);
    assert_eq!(code, 0, "{err}");
    let serial = out.trim().to_string();
    assert!(serial.starts_with("150-"), "{out}");
    let (code, out, err) = licentia(
        &app.db,
        &["cloud", "activate", &serial, "--ticket", &ticket],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"activated\""), "{out}");
    let file = app.db.dir.join("cloud-credential.pem");
    let path = file.to_str().unwrap();
    let (code, out, err) = licentia(&app.db, &["cloud", "credential", &serial, "--out", path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&serial), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // An existing file is not overwritten.
    let (code, _, _) = licentia(&app.db, &["cloud", "credential", &serial, "--out", path]);
    assert_eq!(code, 1);

    let user = ["--server", &app.base, "--credential", path];
    let firm = crate::activation::FIRM.to_string();
    let open = [
        &["cloud", "open"][..],
        &user[..],
        &[
            "--firm-code",
            &firm,
            "--product-code",
            "1001",
            "--station",
            "s1",
        ],
    ]
    .concat();
    let (code, out, err) = client(&open);
    assert_eq!(code, 0, "{err}");
    let lease: serde_json::Value = serde_json::from_str(&out).unwrap();
    let seat = lease["seat"].as_i64().unwrap().to_string();
    let (code, out, err) = client(&[&["cloud", "status"][..], &user[..]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"in_use\": 1"), "{out}");
    // SNP-SINGLE has one seat.
    let (code, _, err) = client(&open);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no_seat_free"), "{err}");
    let seat_args =
        |cmd: &'static str| [&["cloud", cmd][..], &user[..], &["--seat", &seat]].concat();
    let (code, _, err) = client(&seat_args("heartbeat"));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = client(&seat_args("release"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("released"), "{out}");
    let (code, _, err) = client(&seat_args("heartbeat"));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("lease_lost"), "{err}");
    // The client's own way to activate a ticket into its container.
    let (code, out, err) = licentia(
        &app.db,
        &[
            "order",
            "create",
            "--customer",
            "C-CLOUD",
            "--item",
            "SNP-SINGLE=1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out2, err) = client(
        &[
            &["cloud", "activate-ticket"][..],
            &user[..],
            &["--ticket", out.trim()],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out2.contains("\"activated\""), "{out2}");
    let (code, _, err) = licentia(&app.db, &["cloud", "revoke", &serial, "--reason", "stolen"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = client(&[&["cloud", "status"][..], &user[..]].concat());
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("revoked"), "{err}");
}
