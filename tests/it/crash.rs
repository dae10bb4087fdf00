//! The server process is killed (SIGKILL) while containers activate and return licenses;
//! after a restart every container makes contact once, and then no license is in two
//! containers, none is lost, each license left in flight by the kill is settled, and each
//! license's history agrees with its state. And a server stopped by SIGTERM under load exits
//! soon, keeping every write it answered.
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use licentia::client::online::{self, Gateway};
use licentia::client::Container;
use rand::{Rng, SeedableRng};

use crate::activation::{new_act, FIRM};
use crate::harness::TestDb;

/// A port on loopback that nothing listens on.
pub fn free_port() -> u16 {
    // Below the kernel's range for port 0: a port bound and freed there may be given at once
    // to the next socket bound to port 0 (a test server's), and then something listens on it.
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if low <= 11_000 {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    loop {
        let port = rand::thread_rng().gen_range(10_000..low);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// libfaketime's library, to preload into a server whose wall clock must run elsewhere (the
/// `faketime` wrapper would be the child, and killing it would leave the server running).
pub fn faketime_library() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(|d| Some(d.ok()?.path().join("faketime/libfaketimeMT.so.1")))
        .find(|p| p.exists())
        .expect("libfaketime is not installed (scripts/install-deps.sh --test installs it)")
}

pub fn licentia(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_licentia"));
    c.env("LICENTIA_DATABASE_URL", &db.url)
        .env("LICENTIA_DATA_DIR", &db.dir)
        .env("LICENTIA_MASTER_KEY", "22".repeat(32))
        .env("LICENTIA_LOG", "error");
    c
}

fn serve(db: &TestDb, port: u16) -> Child {
    serve_with(db, port, &[])
}

/// A real `licentia serve` process on `port`, with extra `LICENTIA_*` settings.
pub fn serve_with(db: &TestDb, port: u16, env: &[(&str, &str)]) -> Child {
    let mut c = licentia(db);
    // The load comes from one address (as in the in-process servers of the harness).
    c.arg("serve")
        .env("LICENTIA_GATEWAY_TICKET_LOOKUPS_PER_MINUTE", "0")
        .envs(env.iter().copied());
    serve_command(c, port)
}

/// Starts `c` (a `licentia serve` command line) on `port` and waits until it answers.
pub fn serve_command(mut c: Command, port: u16) -> Child {
    let child = c
        .env("LICENTIA_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_killed_server_loses_no_license_and_puts_none_in_two_containers() {
    let db = TestDb::new();
    let out = licentia(&db).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("admin password (shown once): "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&db, port);

    let auth = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
        )
    };
    let order: serde_json::Value = ureq::post(&format!("{base}/api/v1/orders"))
        .set("Authorization", &auth)
        .send_json(
            serde_json::json!({"erp_order_id": "CRASH-1", "customer": {"external_id": "C-1"},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 24}]}),
        )
        .unwrap()
        .into_json()
        .unwrap();
    let ticket = order["ticket"].as_str().unwrap().to_string();
    let pool: Vec<i64> = order["lines"][0]["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();

    // One activation whose answer is lost: the update is issued and its license pending, but
    // the container never sees it. The kill cannot land between requests and leave nothing
    // in flight: this one is.
    let lost_order: serde_json::Value = ureq::post(&format!("{base}/api/v1/orders"))
        .set("Authorization", &auth)
        .send_json(
            serde_json::json!({"erp_order_id": "CRASH-LOST", "customer": {"external_id": "C-2"},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]}),
        )
        .unwrap()
        .into_json()
        .unwrap();
    let lost_id = lost_order["lines"][0]["licenses"][0].as_i64().unwrap();
    let mut lost_box = new_act(&Gateway::new(&base));
    {
        let request = lost_box
            .request(FIRM, licentia::client::unix_now())
            .unwrap();
        Gateway::new(&base)
            .activate(lost_order["ticket"].as_str().unwrap(), &[lost_id], &request)
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (base, ticket, pool, stop) =
                (base.clone(), ticket.clone(), pool.clone(), stop.clone());
            std::thread::spawn(move || {
                let gw = Gateway::new(&base);
                let mut rng = rand::rngs::StdRng::seed_from_u64(w);
                let mut boxes: Vec<Container> = (0..4).map(|_| new_act(&gw)).collect();
                let mut keep = |_: &Container| Ok(());
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    let c = &mut boxes[rng.gen_range(0..4)];
                    let held: Vec<i64> = c.firms[&FIRM].content.entries.keys().copied().collect();
                    let res = if !held.is_empty() && rng.gen_bool(0.4) {
                        online::deactivate(
                            &gw,
                            c,
                            FIRM,
                            &[held[rng.gen_range(0..held.len())]],
                            &mut keep,
                        )
                    } else {
                        let id = pool[rng.gen_range(0..pool.len())];
                        online::activate(&gw, c, &ticket, &[id], &mut keep)
                    };
                    if res.is_ok() {
                        done += 1;
                    }
                }
                (boxes, done)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut boxes = vec![lost_box];
    let mut round_trips = 0;
    for w in workers {
        let (b, n) = w.join().unwrap();
        boxes.extend(b);
        round_trips += n;
    }
    assert!(round_trips > 20, "the load ran ({round_trips} round trips)");

    // The licenses the kill left in flight: an update issued, its receipt not yet seen.
    let in_flight: Vec<i64> = {
        use licentia::store::schema::licenses;
        licenses::table
            .filter(licenses::state.eq_any(["pending", "returning"]))
            .select(licenses::id)
            .load(&mut db.connect())
            .unwrap()
    };
    assert!(
        in_flight.contains(&lost_id),
        "the activation whose answer was lost is in flight: {in_flight:?}"
    );
    // Restart; every container makes contact: lost receipts are confirmed, updates whose
    // answer was lost are issued again.
    let mut server = serve(&db, port);
    let gw = Gateway::new(&base);
    let mut keep = |_: &Container| Ok(());
    let mut repaired = 0;
    for c in boxes.iter_mut() {
        let before = c.firms[&FIRM].counter;
        if c.serial == licentia::protocol::NEW_SERIAL && c.firms[&FIRM].counter == 0 {
            // Never registered, or registered with an update it never saw: ask by key.
            if let Err(e) = online::update(&gw, c, &mut keep) {
                assert_eq!(e.code, "unknown_container", "{e}");
            }
        } else {
            online::update(&gw, c, &mut keep).unwrap();
        }
        repaired += usize::from(c.firms[&FIRM].counter != before);
    }
    eprintln!(
        "{round_trips} round trips before the kill, {} licenses left pending or returning; \
         {repaired} containers got an update at the next contact",
        in_flight.len()
    );
    // At least the container whose answer was lost got its update again, and holds the
    // license now.
    assert!(repaired >= 1, "no container was repaired");
    assert!(
        boxes[0].firms[&FIRM].content.entries.contains_key(&lost_id),
        "the lost update was issued again"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // No license in two containers.
    let mut holder: BTreeMap<i64, String> = BTreeMap::new();
    for c in &boxes {
        for id in c.firms[&FIRM].content.entries.keys() {
            if let Some(other) = holder.insert(*id, c.serial.clone()) {
                panic!("license {id} is in {other} and in {}", c.serial);
            }
        }
    }
    // The server agrees with the containers, and nothing is left half way.
    let mut conn = db.connect();
    use licentia::store::schema::{events, licenses};
    let rows: Vec<(i64, String, Option<String>)> = licenses::table
        .select((licenses::id, licenses::state, licenses::serial))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), pool.len() + 1, "no license lost");
    // Each license the kill left in flight is settled (the loop below checks how).
    let unsettled: Vec<&(i64, String, Option<String>)> = rows
        .iter()
        .filter(|(id, state, _)| {
            in_flight.contains(id) && !["activated", "available"].contains(&state.as_str())
        })
        .collect();
    assert!(unsettled.is_empty(), "{unsettled:?}");
    for (id, state, serial) in &rows {
        match holder.get(id) {
            Some(s) => assert_eq!(
                (state.as_str(), serial.as_ref()),
                ("activated", Some(s)),
                "license {id}"
            ),
            None => assert_eq!(
                (state.as_str(), serial.as_ref()),
                ("available", None),
                "license {id}"
            ),
        }
        let last: Option<(String, Option<String>)> = events::table
            .filter(events::license_id.eq(id))
            .filter(events::action.eq_any(["license.activated", "license.returned"]))
            .order(events::id.desc())
            .select((events::action, events::serial))
            .first(&mut conn)
            .optional()
            .unwrap();
        match (state.as_str(), last) {
            ("activated", Some((a, s))) => {
                assert_eq!((a.as_str(), s), ("license.activated", serial.clone()))
            }
            ("available", None) => {}
            ("available", Some((a, _))) => assert_eq!(a, "license.returned", "license {id}"),
            (s, l) => panic!("license {id}: {s} with last event {l:?}"),
        }
    }
    let report = licentia::service::audit::verify(&mut conn, &Default::default()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// SIGTERM on a server under load, whose outbox sender is stuck in a send to an SMTP server
/// that accepts and never answers (the case that held the exit for half a minute): it stops
/// accepting, answers or closes the requests in flight, stops its workers and exits 0 within
/// a few seconds, and every order it answered is in the database.
#[test]
fn sigterm_under_load_exits_soon_and_keeps_every_answered_write() {
    let db = TestDb::new();
    let out = licentia(&db).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("admin password (shown once): "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    // An SMTP server that takes connections and never says a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = mute.local_addr().unwrap().port().to_string();
    mute.set_nonblocking(true).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let smtp_seen = Arc::new(AtomicBool::new(false));
    let smtp = {
        let (done, seen) = (done.clone(), smtp_seen.clone());
        std::thread::spawn(move || {
            let mut held = vec![];
            while !done.load(Ordering::Relaxed) {
                match mute.accept() {
                    Ok((s, _)) => {
                        seen.store(true, Ordering::Relaxed);
                        held.push(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve_with(
        &db,
        port,
        &[
            ("LICENTIA_SMTP_HOST", "127.0.0.1"),
            ("LICENTIA_SMTP_PORT", &smtp_port),
            ("LICENTIA_SMTP_TIMEOUT_SECS", "30"),
        ],
    );
    let auth = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
        )
    };
    // Clients on keep-alive connections, each placing orders (each with a ticket mail) until
    // the server goes away; each keeps the orders it got an answer for.
    let clients: Vec<_> = (0..4)
        .map(|w| {
            let (base, auth, done) = (base.clone(), auth.clone(), done.clone());
            std::thread::spawn(move || {
                let agent = licentia::client::online::http_agent();
                let mut answered = vec![];
                for n in 0.. {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("TERM-{w}-{n}");
                    let res = agent
                        .post(&format!("{base}/api/v1/orders"))
                        .set("Authorization", &auth)
                        .send_json(serde_json::json!({"source": "shop", "erp_order_id": id,
                            "customer": {"external_id": "C-TERM", "email": "buyer@example.com"},
                            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]}));
                    match res {
                        Ok(r) if r.status() == 201 => answered.push(id),
                        Ok(r) => panic!("{id}: {}", r.status()),
                        // Refused or closed: the server is stopping.
                        Err(_) => break,
                    }
                }
                answered
            })
        })
        .collect();
    // One more keep-alive connection that sits idle.
    let idle = licentia::client::online::http_agent();
    idle.get(&format!("{base}/health")).call().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !smtp_seen.load(Ordering::Relaxed) {
        assert!(
            Instant::now() < deadline,
            "the outbox sender never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));

    let sent = Instant::now();
    assert_eq!(unsafe { libc::kill(server.id() as i32, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(40) {
            server.kill().unwrap();
            panic!("still running 40 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut answered = vec![];
    for c in clients {
        answered.extend(c.join().unwrap());
    }
    smtp.join().unwrap();
    eprintln!(
        "exit {status} {took:?} after SIGTERM; {} orders answered",
        answered.len()
    );
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(5), "{took:?} after SIGTERM");
    assert!(answered.len() >= 10, "the load ran: {}", answered.len());
    // Stopped accepting.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // Every order that was answered is in the database (durable before delivered).
    use licentia::store::schema::orders;
    let stored: std::collections::BTreeSet<String> = orders::table
        .filter(orders::source.eq("shop"))
        .select(orders::erp_order_id)
        .load::<String>(&mut db.connect())
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "answered but not stored: {missing:?}");
}
