//! `licentia bench scale`: how a running server holds up with the licenses it has (fill it
//! first with `licentia demo --licenses N`). Reads the never-activated report as CSV and as
//! JSON and the expiring report, printing for each the time to the first byte, the whole
//! time, bytes, rows, and the server's peak resident memory while it was sent (sampled from
//! its `/metrics`). Then looks up licenses, tickets, customers, containers and orders drawn
//! evenly from the reports (a sample over all of them, not the first rows), and pages of
//! the customer list by key, printing p50/p99 and the server's CPU per lookup.
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rand::{Rng, SeedableRng};

use super::{metric, server_metrics};

pub struct ScaleBench {
    pub url: String,
    pub user: String,
    pub password: String,
    /// Lookups of each kind.
    pub lookups: usize,
}

pub struct ReportFigures {
    pub name: String,
    pub first_byte_ms: f64,
    pub seconds: f64,
    pub bytes: u64,
    pub rows: u64,
    pub peak_rss_mib: Option<f64>,
}

pub struct LookupFigures {
    pub name: &'static str,
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_cpu_us: Option<f64>,
}

pub struct ScaleReport {
    pub reports: Vec<ReportFigures>,
    pub lookups: Vec<LookupFigures>,
    pub rss_before_mib: Option<f64>,
}

impl std::fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |m: Option<f64>| m.map_or("-".to_string(), |m| format!("{m:.1}"));
        writeln!(
            f,
            "server resident before: {} MiB",
            mib(self.rss_before_mib)
        )?;
        writeln!(
            f,
            "{:<26} {:>12} {:>9} {:>10} {:>10} {:>14}",
            "report", "first byte ms", "total s", "MiB", "rows", "peak RSS MiB"
        )?;
        for r in &self.reports {
            writeln!(
                f,
                "{:<26} {:>12.1} {:>9.2} {:>10.1} {:>10} {:>14}",
                r.name,
                r.first_byte_ms,
                r.seconds,
                r.bytes as f64 / 1048576.0,
                r.rows,
                mib(r.peak_rss_mib)
            )?;
        }
        writeln!(
            f,
            "{:<26} {:>8} {:>9} {:>9} {:>12}",
            "lookup", "count", "p50 ms", "p99 ms", "server µs"
        )?;
        for l in &self.lookups {
            writeln!(
                f,
                "{:<26} {:>8} {:>9.2} {:>9.2} {:>12}",
                l.name,
                l.count,
                l.p50_ms,
                l.p99_ms,
                l.server_cpu_us
                    .map_or("-".to_string(), |c| format!("{c:.0}"))
            )?;
        }
        Ok(())
    }
}

/// What a lookup asks for, drawn from the reports' rows.
#[derive(Clone, Default)]
struct Sample {
    license: String,
    ticket: String,
    serial: String,
    customer: String,
}

/// Keeps `n` rows drawn evenly from however many pass (reservoir sampling).
struct Reservoir {
    keep: Vec<Sample>,
    seen: u64,
    n: usize,
    rng: rand::rngs::StdRng,
}

impl Reservoir {
    fn new(n: usize) -> Reservoir {
        Reservoir {
            keep: Vec::with_capacity(n),
            seen: 0,
            n,
            rng: rand::rngs::StdRng::seed_from_u64(7),
        }
    }
    fn offer(&mut self, s: impl FnOnce() -> Sample) {
        self.seen += 1;
        if self.keep.len() < self.n {
            self.keep.push(s());
        } else {
            let at = self.rng.gen_range(0..self.seen);
            if (at as usize) < self.n {
                self.keep[at as usize] = s();
            }
        }
    }
}

/// The server's resident memory, sampled until `stop`, the highest seen.
fn watch_memory(url: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Option<f64>> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut peak: Option<f64> = None;
        while !stop.load(Ordering::SeqCst) {
            if let Some(rss) =
                server_metrics(&url).and_then(|m| metric(&m, "process_resident_memory_bytes"))
            {
                peak = Some(peak.map_or(rss, |p: f64| p.max(rss)));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        peak.map(|b| b / 1048576.0)
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run_scale(b: &ScaleBench) -> anyhow::Result<ScaleReport> {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.password))
    );
    let agent = ureq::AgentBuilder::new().build();
    let rss_before_mib = server_metrics(&b.url)
        .and_then(|m| metric(&m, "process_resident_memory_bytes"))
        .map(|b| b / 1048576.0);
    let mut reports = vec![];
    let waiting = Arc::new(Mutex::new(Reservoir::new(b.lookups)));
    let activated = Arc::new(Mutex::new(Reservoir::new(b.lookups)));
    for (name, path) in [
        ("never-activated (CSV)", "never-activated?format=csv"),
        ("never-activated (JSON)", "never-activated"),
        ("expiring 365 days (CSV)", "expiring?days=365&format=csv"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch_memory(&b.url, stop.clone());
        let started = Instant::now();
        let resp = agent
            .get(&format!("{}/api/v1/reports/{path}", b.url))
            .set("Authorization", &auth)
            .call()
            .map_err(|e| anyhow::anyhow!("report {path}: {e}"))?;
        let mut body = resp.into_reader();
        let mut first_byte = None;
        let mut buf = vec![0u8; 64 * 1024];
        let (mut bytes, mut rows) = (0u64, 0u64);
        // CSV rows are kept for the lookups: the line being read, across reads.
        let mut line = Vec::new();
        let sample_into = match path {
            p if p.starts_with("never") && p.ends_with("csv") => Some(waiting.clone()),
            p if p.starts_with("expiring") => Some(activated.clone()),
            _ => None,
        };
        let mut header = true;
        // JSON rows: objects opened right after `[` or `,`.
        let (mut prev, mut after_comma_or_bracket, mut objects) = (0u8, false, 0u64);
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            first_byte.get_or_insert_with(|| started.elapsed());
            bytes += n as u64;
            for &c in &buf[..n] {
                if c == b'{' && after_comma_or_bracket {
                    objects += 1;
                }
                after_comma_or_bracket = (c == b',' || c == b'[') && prev != b'\\';
                prev = c;
                if c != b'\n' {
                    line.push(c);
                    continue;
                }
                if !std::mem::take(&mut header) {
                    rows += 1;
                    if let Some(r) = &sample_into {
                        let text = String::from_utf8_lossy(&line);
                        let cells: Vec<&str> = text.trim_end().split(',').collect();
                        // license_id, ticket, …, serial (8th), …, customer_id (14th).
                        if cells.len() >= 14
                            && (cells[7].is_empty() != path.starts_with("expiring"))
                        {
                            r.lock().unwrap().offer(|| Sample {
                                license: cells[0].into(),
                                ticket: cells[1].into(),
                                serial: cells[7].into(),
                                customer: cells[13].into(),
                            });
                        }
                    }
                }
                line.clear();
            }
        }
        if !path.contains("csv") {
            rows = objects;
        }
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::SeqCst);
        let peak = watcher.join().unwrap_or(None);
        reports.push(ReportFigures {
            name: name.to_string(),
            first_byte_ms: first_byte.unwrap_or_default().as_secs_f64() * 1e3,
            seconds,
            bytes,
            rows,
            peak_rss_mib: peak,
        });
    }
    let waiting = std::mem::replace(&mut *waiting.lock().unwrap(), Reservoir::new(0)).keep;
    let activated = std::mem::replace(&mut *activated.lock().unwrap(), Reservoir::new(0)).keep;
    if waiting.is_empty() || activated.is_empty() {
        anyhow::bail!(
            "the reports name too few licenses to look up: fill the database first \
             (licentia demo --licenses N)"
        );
    }
    // Each kind of lookup over the sample, with the server's CPU for the kind.
    let get = |path: &str| -> anyhow::Result<String> {
        agent
            .get(&format!("{}/api/v1{path}", b.url))
            .set("Authorization", &auth)
            .call()
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?
            .into_string()
            .map_err(Into::into)
    };
    let erp_of = |ticket_json: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(ticket_json).ok()?;
        v["orders"][0].as_str().map(str::to_string)
    };
    let mut erp_ids = vec![];
    for s in waiting.iter().take(b.lookups) {
        if let Some(e) = erp_of(&get(&format!("/tickets/{}", s.ticket))?) {
            erp_ids.push(e);
        }
    }
    let mut lookups = vec![];
    let kinds: Vec<(&'static str, Vec<String>)> = vec![
        (
            "ticket",
            waiting
                .iter()
                .map(|s| format!("/tickets/{}", s.ticket))
                .collect(),
        ),
        (
            "license",
            waiting
                .iter()
                .map(|s| format!("/licenses/{}", s.license))
                .collect(),
        ),
        (
            "customer",
            waiting
                .iter()
                .map(|s| format!("/customers/{}", s.customer))
                .collect(),
        ),
        (
            "container",
            activated
                .iter()
                .map(|s| format!("/containers/{}", s.serial))
                .collect(),
        ),
        (
            "order by ERP id",
            erp_ids
                .iter()
                .map(|e| format!("/orders/demo/{e}"))
                .collect(),
        ),
        (
            "customer list page by key",
            waiting
                .iter()
                .map(|s| format!("/customers?limit=50&after={}", s.customer))
                .collect(),
        ),
        (
            "ticket-licenses report",
            waiting
                .iter()
                .map(|s| format!("/reports/ticket-licenses?ticket={}", s.ticket))
                .collect(),
        ),
    ];
    for (name, paths) in kinds {
        let before = server_metrics(&b.url).and_then(|m| metric(&m, "process_cpu_seconds_total"));
        let mut ms = Vec::with_capacity(paths.len());
        for p in &paths {
            let t = Instant::now();
            get(p)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let after = server_metrics(&b.url).and_then(|m| metric(&m, "process_cpu_seconds_total"));
        ms.sort_by(f64::total_cmp);
        lookups.push(LookupFigures {
            name,
            count: ms.len(),
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
            server_cpu_us: before
                .zip(after)
                .map(|(a, z)| (z - a) / ms.len().max(1) as f64 * 1e6),
        });
    }
    Ok(ScaleReport {
        reports,
        lookups,
        rss_before_mib,
    })
}
