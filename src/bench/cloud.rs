//! `licentia bench cloud`: C sessions each hold a seat of one floating license in a cloud
//! container and send heartbeats as fast as they are answered (closed loop) for a given
//! time; prints heartbeats/s, p50/p99, the CPU time a heartbeat cost the server and the
//! load generator, the writers' figures, and this machine's ceiling for one durable write.
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::{summarize, BenchReport, RunMark};
use crate::client::cloud::{Cloud, Credential};
use crate::protocol::cloud::OpenRequest;

pub struct CloudBench {
    pub url: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub user: String,
    pub password: String,
}

pub struct CloudReport {
    pub heartbeats: BenchReport,
    pub sessions: usize,
    /// Durable 4 KiB writes (write + fdatasync) per second in this directory.
    pub fsync_per_s: f64,
}

impl std::fmt::Display for CloudReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.heartbeats;
        writeln!(
            f,
            "heartbeats:    {} ok, {} failed in {:.2} s ({} sessions, each holding a seat)",
            r.ok, r.failed, r.seconds, self.sessions
        )?;
        writeln!(f, "{}", r.figure_lines("heartbeat", "heartbeats"))?;
        write!(
            f,
            "ceiling:       one durable 4 KiB write (write + fdatasync) here: {:.0}/s; a heartbeat \
             is one write, so without group commit that would be the most",
            self.fsync_per_s
        )
    }
}

/// Durable 4 KiB writes per second in the current directory, over about half a second.
fn fsync_rate() -> anyhow::Result<f64> {
    let path = std::env::temp_dir().join(format!("licentia-bench-fsync-{}", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    let block = [7u8; 4096];
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_millis(500) {
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = f64::from(n) / started.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Makes an item of `seats` seats, orders it, makes a cloud container for the bench's
/// customer, activates the license into it and issues a credential file (PEM).
fn set_up(b: &CloudBench, seats: usize) -> anyhow::Result<(i64, i64, String)> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.password))
    );
    let call = |method: &str, path: &str, body: Value| -> anyhow::Result<Value> {
        let r = ureq::request(method, &format!("{}/api/v1{path}", b.url))
            .set("Authorization", &auth)
            .send_json(body)
            .map_err(|e| match e {
                ureq::Error::Status(s, r) => {
                    anyhow::anyhow!(
                        "{method} {path}: {s} {}",
                        r.into_string().unwrap_or_default()
                    )
                }
                other => anyhow::anyhow!("{method} {path}: {other}"),
            })?;
        Ok(r.into_json()?)
    };
    let run = format!("{}-{}", std::process::id(), crate::client::unix_now());
    let item = format!("BENCH-CLOUD-{run}");
    // A product code of its own per run, so that the license opened is this run's.
    let product_code = 900_000 + (crate::client::unix_now() % 100_000);
    call("PUT", "/customers", json!({"external_id": "bench-cloud"}))?;
    let made = call(
        "POST",
        "/items",
        json!({"item_id": item, "name": "Bench cloud seats", "product_code": product_code,
            "options": {"license_quantity": seats, "feature_map": 1,
                "container_types": ["cloud"], "lease_seconds": 900}}),
    )?;
    let firm_code = made["firm_code"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no firm code in {made}"))?;
    let order = call(
        "POST",
        "/orders",
        json!({"source": "bench", "erp_order_id": format!("bench-cloud-{run}"),
            "customer": {"external_id": "bench-cloud"},
            "lines": [{"item_id": item, "quantity": 1}]}),
    )?;
    let container = call(
        "POST",
        "/cloud/containers",
        json!({"customer": "bench-cloud"}),
    )?;
    let serial = container["serial"].as_str().unwrap_or_default().to_string();
    call(
        "POST",
        &format!("/cloud/containers/{serial}/licenses"),
        json!({"ticket": order["ticket"]}),
    )?;
    let file = call(
        "POST",
        &format!("/cloud/containers/{serial}/credentials"),
        json!({"reason": "bench"}),
    )?;
    let pem = file["content"].as_str().unwrap_or_default().to_string();
    Ok((firm_code, product_code, pem))
}

pub fn run_cloud(b: &CloudBench) -> anyhow::Result<CloudReport> {
    let sessions = b.concurrency.max(1);
    let (firm_code, product_code, pem) = set_up(b, sessions)?;
    // Every session has its token and its seat before the clock starts.
    let mut clients = vec![];
    for i in 0..sessions {
        let cloud = Cloud::new(&b.url, Credential::from_bytes(pem.as_bytes(), None)?);
        let lease = cloud.open(&OpenRequest {
            firm_code,
            product_code,
            features: 1,
            station: format!("bench-{i}"),
        })?;
        clients.push((cloud, lease.seat));
    }
    let failed = Arc::new(AtomicU64::new(0));
    let mark = RunMark::now(&b.url);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(b.seconds);
    let mut handles = vec![];
    for (cloud, seat) in clients {
        let failed = failed.clone();
        handles.push(std::thread::spawn(move || {
            let mut lat = vec![];
            while Instant::now() < until {
                let t = Instant::now();
                match cloud.heartbeat(seat) {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (cloud, seat, lat)
        }));
    }
    let mut lat = vec![];
    let mut done = vec![];
    for h in handles {
        let (cloud, seat, l) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a bench client panicked"))?;
        lat.extend(l);
        done.push((cloud, seat));
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = summarize(
        lat,
        failed.load(Ordering::Relaxed),
        seconds,
        &b.url,
        mark,
        None,
    );
    for (cloud, seat) in done {
        cloud.release(seat)?;
    }
    Ok(CloudReport {
        heartbeats: report,
        sessions,
        fsync_per_s: fsync_rate()?,
    })
}
