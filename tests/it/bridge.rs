//! The dongle bridge end to end: `dongle-bridge run` against the real server, with simulated
//! stations (`dongle-bridge simulate`, each on a real pty) whose dongles are the client
//! runtime's dongle containers. The bridge binary is built with the workspace
//! (`cargo build --workspace`, as scripts/test.sh does). Pty tests run one at a time.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use licentia::client::online::Gateway;
use licentia::client::{unix_now, Container};
use licentia::domain::{ContainerType, Role};
use serde_json::{json, Value};

use crate::activation::{ticket_with, FIRM};
use crate::harness::{TestApp, TestDb};

const LINE: &str = "line";
const LINE_PW: &str = "line-password-123";

/// serialport's pty pairs are made one at a time, and the tests time their stations.
static PTY: Mutex<()> = Mutex::new(());

fn serial_guard() -> std::sync::MutexGuard<'static, ()> {
    PTY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bridge binary beside this test binary (target/debug/dongle-bridge).
fn bridge_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("dongle-bridge");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build --workspace; scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "licentia-bridge-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A simulated station: its process, its pty and its dongles' folder.
struct Sim {
    child: Child,
    path: String,
    dir: PathBuf,
    name: String,
}

impl Sim {
    fn start(name: &str, dir: &Path, dongles: usize, first: &str, extra: &[&str]) -> Sim {
        let path_file = dir.with_extension("path");
        let _ = std::fs::remove_file(&path_file);
        let child = Command::new(bridge_bin())
            .args([
                "simulate",
                "--station-id",
                name,
                "--slots",
                "2",
                "--swap-ms",
                "5",
            ])
            .arg("--dongle-dir")
            .arg(dir)
            .args(["--dongles", &dongles.to_string(), "--first-serial", first])
            .arg("--path-file")
            .arg(&path_file)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let path = loop {
            if let Ok(p) = std::fs::read_to_string(&path_file) {
                break p;
            }
            assert!(Instant::now() < until, "simulator {name} did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Sim {
            child,
            path,
            dir: dir.to_path_buf(),
            name: name.into(),
        }
    }

    fn arg(&self) -> String {
        format!("{}={}", self.name, self.path)
    }

    /// Every dongle of this station as it is now (its container file).
    fn dongles(&self) -> BTreeMap<String, Container> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| Container::exists(&e.path()))
            .map(|e| {
                let c = Container::load(&e.path()).unwrap();
                (c.serial.clone(), c)
            })
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bridge process writing its JSON lines to a file.
struct Bridge {
    child: Child,
}

impl Bridge {
    fn start(
        app_base: &str,
        order: i64,
        sims: &[&Sim],
        journal: &Path,
        out: &Path,
        extra: &[&str],
    ) -> Bridge {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        let mut cmd = Command::new(bridge_bin());
        cmd.args([
            "run",
            "--server",
            app_base,
            "--user",
            LINE,
            "--password",
            LINE_PW,
        ])
        .args(["--order", &order.to_string(), "--json"])
        .arg("--journal")
        .arg(journal)
        .args(extra)
        .stdout(log)
        .stderr(Stdio::inherit());
        for s in sims {
            cmd.args(["--station", &s.arg()]);
        }
        Bridge {
            child: cmd.spawn().unwrap(),
        }
    }

    /// Waits for the bridge to end by itself; its exit code.
    fn wait(&mut self, secs: u64) -> i32 {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("the bridge did not finish within {secs} s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no chance to tidy up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn start() -> TestApp {
    let app = TestApp::start();
    assert_eq!(app.add_user(LINE, Role::Production), LINE_PW);
    app
}

fn create(app: &TestApp, erp: &str, dongles: i64) -> Value {
    let (s, v) = app.admin(
        "POST",
        "/api/v1/production/orders",
        Some(json!({"erp_order_id": erp, "dongles": dongles,
            "lines": [{"item_id": "SNP-FLOAT-5", "quantity": 1}, {"item_id": "SNP-SINGLE", "quantity": 2}]})),
    );
    assert_eq!(s, 201, "{v}");
    v
}

fn view_at(base: &str, po: i64) -> Value {
    let (s, v) = crate::harness::call_at(
        base,
        "GET",
        &format!("/api/v1/production/orders/{po}"),
        Some((LINE, LINE_PW)),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v
}

/// Waits until the order shows at least `n` programmed dongles.
fn wait_programmed(base: &str, po: i64, n: i64, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = view_at(base, po);
        if v["programmed"].as_i64().unwrap() >= n {
            return;
        }
        assert!(
            Instant::now() < until,
            "not {n} programmed within {secs} s: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The order ended with every dongle programmed exactly once: each dongle that got a slot
/// holds exactly its slot's licenses (in the dongle and on the server, all activated), its
/// firm update counter is 1 (one update applied), and the server recorded one programming
/// per dongle.
fn check_programmed_once(
    app: &TestApp,
    po: i64,
    dongles: usize,
    sims: &[&Sim],
) -> BTreeSet<String> {
    let v = view_at(&app.base, po);
    assert_eq!(
        (
            v["programmed"].as_i64(),
            v["remaining"].as_i64(),
            v["assigned"].as_i64(),
            v["complete"].as_bool()
        ),
        (Some(dongles as i64), Some(0), Some(0), Some(true)),
        "{v}"
    );
    let slots: BTreeMap<String, i64> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["serial"].as_str().unwrap().to_string(),
                s["slot"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(slots.len(), dongles, "one dongle per slot");
    let mut all = BTreeSet::new();
    let mut programmed = BTreeSet::new();
    for sim in sims {
        for (serial, mut c) in sim.dongles() {
            let Some(f) = c.firms.get(&FIRM) else {
                continue;
            };
            if f.counter == 0 {
                continue;
            }
            assert!(
                slots.contains_key(&serial),
                "{serial} holds licenses but has no slot"
            );
            assert_eq!(f.counter, 1, "dongle {serial} was written more than once");
            let inside: BTreeSet<i64> = f.content.entries.keys().copied().collect();
            let (s, held) = app.admin("GET", &format!("/api/v1/containers/{serial}"), None);
            assert_eq!(s, 200, "{held}");
            let on_server: BTreeSet<i64> = held["licenses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    assert_eq!(l["state"], "activated", "{held}");
                    l["license_id"].as_i64().unwrap()
                })
                .collect();
            assert_eq!(inside, on_server, "dongle {serial}");
            assert_eq!(
                inside.len(),
                3,
                "the ordered licenses: one SNP-FLOAT-5 and two SNP-SINGLE"
            );
            for l in &inside {
                assert!(all.insert(*l), "license {l} in two dongles");
            }
            // The vendor's software finds them with no server.
            assert_eq!(c.check(FIRM, 1002, 1, &[], unix_now()).unwrap().quantity, 5);
            assert_eq!(
                c.check(FIRM, 1001, 1, &[], unix_now())
                    .unwrap()
                    .license_ids
                    .len(),
                2
            );
            programmed.insert(serial);
        }
    }
    assert_eq!(programmed.len(), dongles, "{programmed:?}");
    assert_eq!(programmed, slots.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(
        app.count("events WHERE action = 'production.dongle_programmed'"),
        dongles as i64,
        "one programming recorded per dongle"
    );
    programmed
}

#[test]
fn fifty_dongles_over_three_stations_are_each_programmed_once() {
    let _pty = serial_guard();
    let app = start();
    let po = create(&app, "PO-BRIDGE-50", 50);
    let id = po["production_order_id"].as_i64().unwrap();
    let root = tmp("fifty");
    let s1 = Sim::start("st-1", &root.join("st-1"), 17, "3-5100001", &[]);
    let s2 = Sim::start("st-2", &root.join("st-2"), 17, "3-5200001", &[]);
    let s3 = Sim::start("st-3", &root.join("st-3"), 16, "3-5300001", &[]);
    let out = root.join("bridge.jsonl");
    let started = Instant::now();
    let mut b = Bridge::start(
        &app.base,
        id,
        &[&s1, &s2, &s3],
        &root.join("journal"),
        &out,
        &["--until-complete"],
    );
    assert_eq!(b.wait(240), 0);
    let took = started.elapsed();
    check_programmed_once(&app, id, 50, &[&s1, &s2, &s3]);
    let v = view_at(&app.base, id);
    assert_eq!(v["failed"], 0, "{v}");
    let per_station: i64 = v["stations"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(per_station, 50, "{v}");
    // The JSON lines: one per dongle programmed, the order's totals, a last line.
    let l = lines(&out);
    let programmed: BTreeSet<&str> = l
        .iter()
        .filter(|e| e["event"] == "dongle_programmed")
        .map(|e| e["serial"].as_str().unwrap())
        .collect();
    assert_eq!(programmed.len(), 50);
    assert!(
        l.iter().any(|e| e["event"] == "order"),
        "the order's totals are reported"
    );
    let last = l.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["complete"].as_bool()),
        (Some("bridge_stopped"), Some(true)),
        "{last}"
    );
    eprintln!("50 dongles over 3 stations in {:.1} s", took.as_secs_f64());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn with_faults_every_dongle_is_still_programmed_exactly_once() {
    let _pty = serial_guard();
    let app = start();
    let dongles = 50;
    let po = create(&app, "PO-BRIDGE-FAULTS", dongles);
    let id = po["production_order_id"].as_i64().unwrap();
    let root = tmp("faults");
    // Line noise on every station; dongles pulled out mid-write on one, a slow station and
    // reboots on another.
    let s1 = Sim::start(
        "st-1",
        &root.join("st-1"),
        17,
        "3-6100001",
        &["--bad-crc", "10", "--unplug-every", "4"],
    );
    let s2 = Sim::start(
        "st-2",
        &root.join("st-2"),
        17,
        "3-6200001",
        &["--bad-crc", "10", "--reboot-every", "90"],
    );
    let s3 = Sim::start(
        "st-3",
        &root.join("st-3"),
        16,
        "3-6300001",
        &["--bad-crc", "10", "--unplug-every", "5", "--slow-ms", "5"],
    );
    let sims = [&s1, &s2, &s3];
    let journal = root.join("journal");
    let out = root.join("bridge.jsonl");
    let started = Instant::now();
    // Killed twice (SIGKILL) and started again on the same journal.
    for at in [8, 18] {
        let mut b = Bridge::start(&app.base, id, &sims, &journal, &out, &["--until-complete"]);
        wait_programmed(&app.base, id, at, 120);
        b.kill();
    }
    let mut b = Bridge::start(&app.base, id, &sims, &journal, &out, &["--until-complete"]);
    wait_programmed(&app.base, id, 28, 120);
    // The server goes away for 20 seconds and comes back on the same database and port.
    let addr = app.base.trim_start_matches("http://").to_string();
    let db: TestDb = app.stop();
    std::thread::sleep(Duration::from_secs(20));
    let app = TestApp::start_on(db, |c| c.listen = addr.clone());
    assert_eq!(b.wait(240), 0);
    let took = started.elapsed();
    check_programmed_once(&app, id, dongles as usize, &sims);
    let v = view_at(&app.base, id);
    // Dongles pulled out mid-write were reported (their slot freed) and programmed when
    // they came back.
    let failed = v["failed"].as_i64().unwrap();
    assert!(failed >= 2, "{v}");
    let l = lines(&out);
    assert!(
        l.iter().any(|e| e["event"] == "dongle_failed"
            && e["reason"].as_str().unwrap_or("").contains("(removed)")),
        "an unplugged dongle's failure was reported"
    );
    assert!(
        l.iter().any(|e| e["event"] == "station_rebooted"),
        "a station rebooted"
    );
    assert!(
        l.iter().any(
            |e| e["event"] == "order" && e["server"].as_str().unwrap_or("").starts_with("down")
        ),
        "the server's absence was seen"
    );
    // The journal's chain holds, and every receipt in it reached the server.
    let text = std::fs::read_to_string(&journal).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut prev = "licentia-dongle-bridge-journal-v1".to_string();
    for e in &entries {
        assert_eq!(e["prev"].as_str().unwrap(), prev);
        prev = e["hash"].as_str().unwrap().to_string();
    }
    let receipts = entries.iter().filter(|e| e["step"] == "receipt").count();
    let uploaded = entries.iter().filter(|e| e["step"] == "uploaded").count();
    assert_eq!(receipts, uploaded, "every receipt uploaded");
    assert!(receipts >= dongles as usize);
    eprintln!(
        "{dongles} dongles with faults in {:.1} s ({failed} failures reported)",
        took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(root);
}

/// A fresh dongle trusting `firm`, saved in `dir`.
fn dongle_in(app: &TestApp, dir: &Path, serial: &str, firm: i64) -> Container {
    let mut c = Container::create(ContainerType::Dongle, Some(serial.into()), &[], 0).unwrap();
    let t = Gateway::new(&app.base).template(firm).unwrap();
    c.trust(t.firm_code, &t.firm_name, &t.keys);
    c.save(&dir.join(serial)).unwrap();
    c
}

#[test]
fn dongles_of_another_firm_already_programmed_or_blacklisted_are_refused_with_their_reasons() {
    let _pty = serial_guard();
    let app = start();
    let gw = Gateway::new(&app.base);
    let root = tmp("refusals");
    let dir = root.join("st-1");
    std::fs::create_dir_all(&dir).unwrap();
    // A dongle of another firm.
    app.rt
        .block_on(licentia::service::firms::ensure(
            &app.core,
            &crate::harness::system(),
            6000020,
            "Second Firm",
        ))
        .unwrap();
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "OTHER-D", "name": "Other firm's dongle product", "kind": "license",
            "product_code": 3001, "firm_code": 6000020}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (ticket, ids) = ticket_with(&app, "T-OTHER", "OTHER-D", 1);
    let mut other = dongle_in(&app, &dir, "3-7000001", 6000020);
    let issued = gw
        .activate(&ticket, &ids, &other.request(6000020, unix_now()).unwrap())
        .unwrap();
    gw.receipt(&other.apply(&issued.update, unix_now()).unwrap().receipt)
        .unwrap();
    other.save(&dir.join("3-7000001")).unwrap();
    // One programmed already, in another production order.
    let first = create(&app, "PO-EARLIER", 1)["production_order_id"]
        .as_i64()
        .unwrap();
    let mut done = dongle_in(&app, &dir, "3-7000002", FIRM);
    let (s, v) = crate::harness::call_at(
        &app.base,
        "POST",
        &format!("/api/v1/production/orders/{first}/program"),
        Some((LINE, LINE_PW)),
        Some(json!({"station": "st-0", "request": done.request(FIRM, unix_now()).unwrap()})),
    );
    assert_eq!(s, 200, "{v}");
    let receipt = done
        .apply(v["update"].as_str().unwrap(), unix_now())
        .unwrap()
        .receipt;
    gw.receipt(&receipt).unwrap();
    done.save(&dir.join("3-7000002")).unwrap();
    // One on the blacklist.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/blacklist",
        Some(json!({"serial": "3-7000003", "description": "stolen batch"})),
    );
    assert_eq!(s, 201, "{v}");
    dongle_in(&app, &dir, "3-7000003", FIRM);

    let id = create(&app, "PO-REFUSALS", 2)["production_order_id"]
        .as_i64()
        .unwrap();
    let events = app.count("events WHERE action = 'production.dongle_refused'");
    // The three first, then two fresh dongles that are programmed.
    let sim = Sim::start("st-1", &dir, 2, "3-7000004", &[]);
    let out = root.join("bridge.jsonl");
    let mut b = Bridge::start(
        &app.base,
        id,
        &[&sim],
        &root.join("journal"),
        &out,
        &["--until-complete"],
    );
    assert_eq!(b.wait(120), 0);
    let l = lines(&out);
    let refused: BTreeMap<String, (String, String)> = l
        .iter()
        .filter(|e| e["event"] == "dongle_refused")
        .map(|e| {
            (
                e["serial"].as_str().unwrap().to_string(),
                (
                    e["code"].as_str().unwrap().to_string(),
                    e["reason"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(refused["3-7000001"].0, "not_allowed");
    assert_eq!(
        refused["3-7000001"].1,
        "not allowed: dongle 3-7000001 belongs to firm code 6000020"
    );
    assert_eq!(refused["3-7000002"].0, "not_allowed");
    assert_eq!(
        refused["3-7000002"].1,
        "not allowed: dongle 3-7000002 already holds licenses of firm code 6000010; recycle it first"
    );
    assert_eq!(refused["3-7000003"].0, "blacklisted", "{refused:?}");
    assert_eq!(
        app.count("events WHERE action = 'production.dongle_refused'"),
        events + 3
    );
    // Nothing of them changed: the other firm's dongle and the programmed one are as they
    // were; the blacklisted one got the lock and its receipt reached the server.
    let now = sim.dongles();
    assert_eq!(
        now["3-7000001"].firms.get(&FIRM).map_or(0, |f| f.counter),
        0
    );
    assert_eq!(now["3-7000001"].firms[&6000020].counter, 1);
    assert_eq!(now["3-7000002"].firms[&FIRM].counter, 1);
    assert!(
        now["3-7000003"].firms[&FIRM].content.locked,
        "the lock was written"
    );
    assert_eq!(
        app.count("events WHERE action = 'blacklist.lock_validated'"),
        1
    );
    // The fresh ones were programmed.
    let v = view_at(&app.base, id);
    assert_eq!(
        (v["programmed"].as_i64(), v["complete"].as_bool()),
        (Some(2), Some(true)),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(root);
}

/// `dongle-bridge bench`: dongles per minute per station at 115,200 baud and where the time
/// goes (BRIDGE_BENCH_DONGLES dongles, 5 by default, to keep the suite quick).
#[test]
fn the_benchmark_tells_dongles_per_minute_and_where_the_time_goes() {
    let _pty = serial_guard();
    let app = start();
    let n: i64 = std::env::var("BRIDGE_BENCH_DONGLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let id = create(&app, "PO-BENCH", n)["production_order_id"]
        .as_i64()
        .unwrap();
    let out = Command::new(bridge_bin())
        .args([
            "bench",
            "--server",
            &app.base,
            "--user",
            LINE,
            "--password",
            LINE_PW,
        ])
        .args(["--order", &id.to_string(), "--dongles", &n.to_string()])
        .args(["--baud", "115200"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("dongle bench:"))
        .collect();
    eprintln!("{}", report.join("\n"));
    assert!(
        report[0].starts_with(&format!(
            "dongle bench: {n} dongles on 1 station at 115200 baud"
        )),
        "{text}"
    );
    assert!(
        report[1].contains("dongles per minute per station"),
        "{text}"
    );
    for what in [
        "serial transfer",
        "server round trips",
        "dongle cryptography",
        "receipt uploads",
    ] {
        assert!(
            report.iter().any(|l| l.trim_start().starts_with(what)),
            "{what}: {text}"
        );
    }
    let v = view_at(&app.base, id);
    assert_eq!(
        (v["programmed"].as_i64(), v["complete"].as_bool()),
        (Some(n), Some(true)),
        "{v}"
    );
}
