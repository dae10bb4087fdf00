//! Prometheus text metrics: requests by route and status, latencies, and the domain counters.
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use crate::service::Stats;
use crate::service::WriterStats;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    by_route: Mutex<HashMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut map = self.by_route.lock().expect("metrics");
        let s = map
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    pub fn render(&self, stats: &Stats, writers: &WriterStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP licentia_http_requests_total HTTP requests by route and status.\n# TYPE licentia_http_requests_total counter\n");
        let map = self.by_route.lock().expect("metrics");
        let mut keys: Vec<_> = map.keys().cloned().collect();
        keys.sort();
        for k in &keys {
            let (m, r, s) = k;
            let _ = writeln!(
                out,
                "licentia_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {}",
                map[k].count
            );
        }
        out.push_str("# HELP licentia_http_request_duration_seconds Request latency.\n# TYPE licentia_http_request_duration_seconds histogram\n");
        let mut per_route: HashMap<(String, String), Series> = HashMap::new();
        for (k, s) in map.iter() {
            let agg = per_route.entry((k.0.clone(), k.1.clone())).or_default();
            agg.count += s.count;
            agg.sum += s.sum;
            for i in 0..BUCKETS.len() {
                agg.buckets[i] += s.buckets[i];
            }
        }
        let mut routes: Vec<_> = per_route.into_iter().collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        for ((m, r), s) in routes {
            let l = format!("method=\"{m}\",route=\"{r}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "licentia_http_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "licentia_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "licentia_http_request_duration_seconds_sum{{{l}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "licentia_http_request_duration_seconds_count{{{l}}} {}",
                s.count
            );
        }
        for (name, help, v) in [
            (
                "licentia_orders_created_total",
                "Orders created.",
                &stats.orders_created,
            ),
            (
                "licentia_tickets_created_total",
                "Tickets created.",
                &stats.tickets_created,
            ),
            (
                "licentia_licenses_created_total",
                "Licenses created.",
                &stats.licenses_created,
            ),
            (
                "licentia_updates_issued_total",
                "Container updates issued.",
                &stats.updates_issued,
            ),
            (
                "licentia_receipts_confirmed_total",
                "Container receipts that confirmed an update.",
                &stats.receipts_confirmed,
            ),
            (
                "licentia_db_writes_total",
                "Writes run by the writers (committed or rolled back).",
                &writers.writes,
            ),
            (
                "licentia_db_write_groups_total",
                "Group transactions run by the writers.",
                &writers.groups,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP licentia_db_writers Writer threads committing group transactions.\n\
             # TYPE licentia_db_writers gauge\nlicentia_db_writers {}",
            writers.writers
        );
        for (name, help, v) in [
            (
                "licentia_db_write_queue_seconds_total",
                "Time writes waited for a writer to begin their group, summed over writes.",
                &writers.queue_us,
            ),
            (
                "licentia_db_write_group_seconds_total",
                "Time writes spent in their group transaction until its commit, summed over writes.",
                &writers.in_group_us,
            ),
            (
                "licentia_db_writer_busy_seconds_total",
                "Time the writers spent in group transactions, summed over groups.",
                &writers.group_us,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {:.6}",
                v.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        let _ = writeln!(out, "# HELP process_cpu_seconds_total User and system CPU time of this process.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {:.6}", cpu_seconds());
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}");
        }
        out
    }
}

/// Resident set size of this process, from /proc (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// User and system CPU time this process (every thread of it) has used, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is zeroed plain data.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
