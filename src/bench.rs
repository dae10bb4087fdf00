//! `licentia bench orders`: creates orders over HTTP from C concurrent clients and prints
//! the rate, latencies and the server's resident memory.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

pub struct OrderBench {
    pub url: String,
    pub concurrency: usize,
    pub count: usize,
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
    pub server_rss_mib: Option<f64>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "orders:        {} ok, {} failed in {:.2} s",
            self.ok, self.failed, self.seconds
        )?;
        writeln!(
            f,
            "rate:          {:.0} orders/s",
            self.ok as f64 / self.seconds
        )?;
        writeln!(
            f,
            "latency:       p50 {:.2} ms, p99 {:.2} ms",
            self.p50_ms, self.p99_ms
        )?;
        match self.server_rss_mib {
            Some(m) => write!(f, "server memory: {m:.1} MiB resident"),
            None => write!(f, "server memory: not reported"),
        }
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
    let started = Instant::now();
    let mut handles = vec![];
    for _ in 0..b.concurrency.max(1) {
        let (url, auth, run, item) = (b.url.clone(), auth.clone(), run.clone(), b.item.clone());
        let (next, failed, count) = (next.clone(), failed.clone(), b.count as u64);
        handles.push(std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build();
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
                let t = Instant::now();
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
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let server_rss_mib = ureq::get(&format!("{}/metrics", b.url))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map(|b| b / 1048576.0);
    Ok(BenchReport {
        ok: lat.len() as u64,
        failed: failed.load(Ordering::Relaxed),
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        server_rss_mib,
    })
}
