//! `licentia bench orders`: creates orders over HTTP from C concurrent clients (as fast as
//! they are answered, or on a fixed schedule of `--rate` per second) and prints
//! the rate, latencies, the server's resident memory, the CPU time each order cost the
//! server and the load generator, and where the server's writes spent their time.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::protocol::crypto;

mod cloud;
mod pages;
mod scale;
pub use cloud::{run_cloud, CloudBench};
pub use pages::{run_pages, PagesBench};
pub use scale::{run_scale, ScaleBench};

pub struct OrderBench {
    pub url: String,
    pub concurrency: usize,
    pub count: usize,
    /// Orders per second on a fixed schedule (open loop); `None`: each client sends its
    /// next order as soon as the last one is answered (closed loop).
    pub rate: Option<f64>,
    pub user: String,
    pub password: String,
    pub item: String,
}

pub struct BenchReport {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The offered rate of an open-loop run.
    pub offered: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// CPU time per operation, in microseconds of one core: the server's (from its
    /// `/metrics`) and this load generator's.
    pub server_cpu_us: Option<f64>,
    pub generator_cpu_us: f64,
    /// The server's writers during the run (from its `/metrics`).
    pub writer: Option<WriterFigures>,
}

/// What the server's writers did during a run.
pub struct WriterFigures {
    pub writers: f64,
    pub writes: f64,
    pub groups: f64,
    /// Mean over writes, in milliseconds.
    pub queue_ms: f64,
    pub in_group_ms: f64,
    /// Share of the run's time the writers were in a group transaction (0 to 1).
    pub busy: f64,
}

/// The writer counters of a `/metrics` text, in the order of `WriterFigures`' sums.
const WRITER_METRICS: [&str; 5] = [
    "licentia_db_writes_total",
    "licentia_db_write_groups_total",
    "licentia_db_write_queue_seconds_total",
    "licentia_db_write_group_seconds_total",
    "licentia_db_writer_busy_seconds_total",
];

impl BenchReport {
    /// The rate and latency lines; `per` names the operation in the plural.
    fn rate_lines(&self, per: &str) -> String {
        let (offered, from) = match self.offered {
            Some(r) => (
                format!(" (offered {r:.0}/s on a fixed schedule: open loop)"),
                " (counted from each one's due time)",
            ),
            None => (String::new(), ""),
        };
        format!(
            "rate:          {:.0} {per}/s{offered}\nlatency:       p50 {:.2} ms, p99 {:.2} ms{from}",
            self.ok as f64 / self.seconds,
            self.p50_ms,
            self.p99_ms
        )
    }

    /// The rate, latency, memory, CPU and writer lines (no line end after the last); `per`
    /// names the operation, `plural` its plural.
    fn figure_lines(&self, per: &str, plural: &str) -> String {
        let memory = match self.server_rss_mib {
            Some(m) => format!("server memory: {m:.1} MiB resident"),
            None => "server memory: not reported".to_string(),
        };
        format!(
            "{}\n{memory}\n{}\n{}",
            self.rate_lines(plural),
            self.cpu_line(per),
            self.writer_line(per)
        )
    }

    fn cpu_line(&self, per: &str) -> String {
        let server = self
            .server_cpu_us
            .map_or("not reported".to_string(), |us| format!("{us:.0} us"));
        format!(
            "cpu per {per}: server {server}, load generator {:.0} us (one core's time; \
             a PostgreSQL server's own processes are not counted)",
            self.generator_cpu_us
        )
    }

    fn writer_line(&self, per: &str) -> String {
        let Some(w) = &self.writer else {
            return "writer:        not reported".into();
        };
        format!(
            "writer:        {:.2} writes per {per}, {:.1} per group; a write waited {:.2} ms for a \
             writer, then {:.2} ms in its group until the commit; {} {}, {:.0}% busy",
            w.writes / self.ok.max(1) as f64,
            w.writes / w.groups.max(1.0),
            w.queue_ms,
            w.in_group_ms,
            w.writers,
            if w.writers == 1.0 { "writer" } else { "writers" },
            w.busy * 100.0
        )
    }
}

/// When each operation of a run is due. Closed loop: as soon as a client is free. Open loop:
/// operation `n` at `n / rate` seconds after the start, whether or not the server kept up;
/// its latency is counted from then, so the time it waited for a free client counts too.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: Option<f64>,
}

impl Schedule {
    fn from_now(rate: Option<f64>) -> Schedule {
        Schedule {
            start: Instant::now(),
            rate,
        }
    }

    /// Waits until operation `n` is due and returns the instant its latency counts from.
    fn due(&self, n: u64) -> Instant {
        let Some(rate) = self.rate else {
            return Instant::now();
        };
        let at = self.start + Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        at
    }
}

/// The server's counters (CPU time, writers) and this process's CPU time when a run
/// started.
struct RunMark {
    server: Option<f64>,
    writer: Option<Vec<f64>>,
    here: f64,
}

impl RunMark {
    fn now(url: &str) -> RunMark {
        let m = server_metrics(url).unwrap_or_default();
        RunMark {
            server: metric(&m, "process_cpu_seconds_total"),
            writer: writer_counters(&m),
            here: crate::api::metrics::cpu_seconds(),
        }
    }
}

fn writer_counters(metrics: &str) -> Option<Vec<f64>> {
    WRITER_METRICS.iter().map(|n| metric(metrics, n)).collect()
}

/// The writers' figures between two readings of their counters, over `seconds`.
fn writer_figures(before: &[f64], after: &[f64], writers: f64, seconds: f64) -> WriterFigures {
    let d: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let writes = d[0].max(1.0);
    WriterFigures {
        writers,
        writes: d[0],
        groups: d[1],
        queue_ms: d[2] / writes * 1e3,
        in_group_ms: d[3] / writes * 1e3,
        busy: d[4] / (seconds * writers.max(1.0)),
    }
}

fn server_metrics(url: &str) -> Option<String> {
    ureq::get(&format!("{url}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
}

/// The value of metric `name` (one without labels) in a `/metrics` text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse::<f64>()
            .ok()
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "orders:        {} ok, {} failed in {:.2} s",
            self.ok, self.failed, self.seconds
        )?;
        write!(f, "{}", self.figure_lines("order", "orders"))
    }
}

pub fn run_orders(b: &OrderBench) -> anyhow::Result<BenchReport> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.password))
    );
    let run = format!(
        "bench-{}",
        std::process::id() as u64 * 1_000_000 + Instant::now().elapsed().subsec_nanos() as u64
    );
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mark = RunMark::now(&b.url);
    let schedule = Schedule::from_now(b.rate);
    let started = schedule.start;
    let mut handles = vec![];
    for _ in 0..b.concurrency.max(1) {
        let (url, auth, run, item) = (b.url.clone(), auth.clone(), run.clone(), b.item.clone());
        let (next, failed, count) = (next.clone(), failed.clone(), b.count as u64);
        handles.push(std::thread::spawn(move || {
            let agent = crate::client::online::http_agent();
            let mut lat = vec![];
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let body = serde_json::json!({
                    "source": "bench", "erp_order_id": format!("{run}-{n}"),
                    "customer": {"external_id": format!("bench-customer-{}", n % 100)},
                    "lines": [{"item_id": item, "quantity": 1}]
                });
                let t = schedule.due(n);
                let res = agent
                    .post(&format!("{url}/api/v1/orders"))
                    .set("Authorization", &auth)
                    .send_json(body);
                match res {
                    Ok(r) if r.status() == 201 => lat.push(t.elapsed()),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = vec![];
    for h in handles {
        lat.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a bench client panicked"))?,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(summarize(
        lat,
        failed.load(Ordering::Relaxed),
        seconds,
        &b.url,
        mark,
        b.rate,
    ))
}

fn summarize(
    mut lat: Vec<Duration>,
    failed: u64,
    seconds: f64,
    url: &str,
    mark: RunMark,
    offered: Option<f64>,
) -> BenchReport {
    let here = crate::api::metrics::cpu_seconds();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let metrics = server_metrics(url).unwrap_or_default();
    let ops = lat.len().max(1) as f64;
    let server_cpu = metric(&metrics, "process_cpu_seconds_total");
    BenchReport {
        server_rss_mib: metric(&metrics, "process_resident_memory_bytes").map(|b| b / 1048576.0),
        server_cpu_us: mark
            .server
            .zip(server_cpu)
            .map(|(before, after)| (after - before) / ops * 1e6),
        generator_cpu_us: (here - mark.here) / ops * 1e6,
        writer: mark
            .writer
            .zip(writer_counters(&metrics))
            .zip(metric(&metrics, "licentia_db_writers"))
            .map(|((before, after), writers)| writer_figures(&before, &after, writers, seconds)),
        ok: lat.len() as u64,
        failed,
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        offered,
    }
}

pub struct ActivateBench {
    pub url: String,
    pub containers: usize,
    pub concurrency: usize,
    pub round_trips: usize,
    /// Round trips per second on a fixed schedule (open loop), as in `OrderBench`.
    pub rate: Option<f64>,
    pub user: String,
    pub password: String,
    pub item: String,
}

pub struct ActivateReport {
    pub round_trips: BenchReport,
    pub ceiling: Vec<(&'static str, f64)>,
    /// One core's time for the cryptography of one round trip, in microseconds.
    pub crypto_us: f64,
    pub cores: usize,
}

impl std::fmt::Display for ActivateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.round_trips;
        writeln!(
            f,
            "round trips:   {} ok, {} failed in {:.2} s (request -> update -> apply -> receipt)",
            r.ok, r.failed, r.seconds
        )?;
        writeln!(f, "{}", r.figure_lines("round trip", "round trips"))?;
        write!(f, "ceiling (one core of this machine):")?;
        for (name, rate) in &self.ceiling {
            write!(f, "\n  {name:<34} {rate:>9.0} /s")?;
        }
        write!(
            f,
            "\ncryptography of one round trip: {:.0} us of one core (server: 2 verifications, \
             1.5 signatures, 1 seal; container: 2 signatures, 1 verification, 1 open), \
             so at most {:.0} round trips/s on this machine's {} cores for it alone",
            self.crypto_us,
            self.cores as f64 * 1e6 / self.crypto_us,
            self.cores
        )
    }
}

/// Simulated `act` containers (in memory) activate and return one license each in turn,
/// every time the whole round trip through the JSON gateway.
pub fn run_activate(b: &ActivateBench) -> anyhow::Result<ActivateReport> {
    use crate::client::online::{self, Gateway};
    use crate::client::Container;
    use crate::domain::ContainerType;

    let concurrency = b.concurrency.max(1);
    let containers = b.containers.max(concurrency);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.password))
    );
    let order: serde_json::Value = ureq::post(&format!("{}/api/v1/orders", b.url))
        .set("Authorization", &auth)
        .send_json(serde_json::json!({
            "source": "bench",
            "erp_order_id": format!("bench-activate-{}-{}", std::process::id(),
                crate::client::unix_now()),
            "customer": {"external_id": "bench-activate"},
            "lines": [{"item_id": b.item, "quantity": containers}],
        }))?
        .into_json()?;
    let ticket = order["ticket"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no ticket in {order}"))?
        .to_string();
    let gw = Gateway::new(&b.url);
    let info = gw.ticket(&ticket)?;
    let lics: Vec<(i64, i64)> = info
        .licenses
        .iter()
        .map(|l| (l.license_id, l.firm_code))
        .collect();
    let template = gw.template(lics.first().map(|l| l.1).unwrap_or_default())?;
    let traits: Vec<(String, String)> = (0..5)
        .map(|i| (format!("t{i}"), format!("bench-{i}")))
        .collect();
    // Every client's containers are made before the clock starts.
    let mut clients = vec![];
    for w in 0..concurrency {
        let mut boxes = vec![];
        for (license, _) in lics.iter().skip(w).step_by(concurrency) {
            let mut c = Container::create(ContainerType::Act, None, &traits, 2)?;
            c.trust(template.firm_code, &template.firm_name, &template.keys);
            boxes.push((c, *license, false));
        }
        clients.push(boxes);
    }
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mark = RunMark::now(&b.url);
    let schedule = Schedule::from_now(b.rate);
    let started = schedule.start;
    let mut handles = vec![];
    for mut boxes in clients {
        let (url, ticket, firm_code) = (b.url.clone(), ticket.clone(), template.firm_code);
        let (next, failed, total) = (next.clone(), failed.clone(), b.round_trips as u64);
        handles.push(std::thread::spawn(
            move || -> anyhow::Result<Vec<Duration>> {
                let gw = Gateway::new(&url);
                let mut lat = vec![];
                let mut keep = |_: &Container| Ok(());
                'run: loop {
                    for (c, license, held) in boxes.iter_mut() {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            break 'run;
                        }
                        let t = schedule.due(n);
                        let res = if *held {
                            online::deactivate(&gw, c, firm_code, &[*license], &mut keep)
                        } else {
                            let req = c.request(firm_code, crate::client::unix_now())?;
                            gw.activate(&ticket, &[*license], &req)
                                .and_then(|issued| online::finish(&gw, c, issued, &mut keep))
                        };
                        match res {
                            Ok(_) => {
                                *held = !*held;
                                lat.push(t.elapsed());
                            }
                            Err(e) => {
                                if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                                    eprintln!("round trip failed: {e}");
                                }
                            }
                        }
                    }
                }
                Ok(lat)
            },
        ));
    }
    let mut lat: Vec<Duration> = vec![];
    for h in handles {
        lat.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a bench client panicked"))??,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = summarize(
        lat,
        failed.load(Ordering::Relaxed),
        seconds,
        &b.url,
        mark,
        b.rate,
    );
    let ceiling = crypto_ceiling(0.3);
    // Each benchmark round trip, averaged over an activation and a return: the server
    // verifies the request and the receipt, signs the update (and the added entry, every
    // other time) and seals it; the container signs its request and its receipt, opens the
    // update and verifies it.
    let per = |name: &str| {
        ceiling
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, rate)| 1e6 / rate)
    };
    let crypto_us = 3.0 * per("Ed25519 verify")
        + 3.5 * per("Ed25519 sign")
        + per("X25519+HKDF+AES-GCM seal (1 KiB)")
        + per("X25519+HKDF+AES-GCM open (1 KiB)");
    Ok(ActivateReport {
        round_trips: report,
        ceiling,
        crypto_us,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Raw figures of this machine's protocol cryptography, for the benchmark's ceiling.
fn crypto_ceiling(seconds: f64) -> Vec<(&'static str, f64)> {
    let key = crypto::SigningKey::generate();
    let msg = [7u8; 512];
    let sig = key.sign(&msg);
    let public = key.public();
    let agree = crypto::AgreementKey::generate();
    let agree_pub = agree.public();
    let sealed = crypto::seal(&[0u8; 1024], b"aad", &agree_pub).expect("seal");
    let raw = key.raw();
    let run = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..50 {
                f();
            }
            n += 50;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    vec![
        ("Ed25519 sign", run(&mut || drop(key.sign(&msg)))),
        (
            "Ed25519 verify",
            run(&mut || drop(crypto::verify(&public, &msg, &sig))),
        ),
        (
            "X25519+HKDF+AES-GCM seal (1 KiB)",
            run(&mut || drop(crypto::seal(&[0u8; 1024], b"aad", &agree_pub))),
        ),
        (
            "X25519+HKDF+AES-GCM open (1 KiB)",
            run(&mut || drop(crypto::open(&sealed, b"aad", &agree))),
        ),
        (
            "HKDF-SHA256",
            run(&mut || {
                std::hint::black_box(crypto::hkdf_sha256(b"salt", b"ikm", b"info"));
            }),
        ),
        (
            "Ed25519 key from raw bytes",
            run(&mut || drop(crypto::SigningKey::from_raw(&raw))),
        ),
        (
            "Ed25519 public key from raw bytes",
            run(&mut || {
                let raw: &[u8; 32] = public.as_slice().try_into().expect("32 bytes");
                std::hint::black_box(ed25519_dalek::VerifyingKey::from_bytes(raw)).ok();
            }),
        ),
    ]
}
