//! `licentia bench …`: benchmarks against a running server (a client: no configuration,
//! no database).
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Create orders over HTTP and print orders/s, p50/p99 and server memory.
    Orders {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 20000)]
        count: usize,
        /// Send orders on a fixed schedule of this many per second (open loop) instead of
        /// each client's next one as soon as its last is answered; latency then counts from
        /// each order's due time.
        #[arg(long, value_parser = positive_rate)]
        rate: Option<f64>,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "SNP-SINGLE")]
        item: String,
    },
    /// Drive simulated containers through online round trips (request, update, apply,
    /// receipt; activate and return in turn) and print round trips/s, p50/p99 and the
    /// machine's raw signing and encryption rates.
    Activate {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 64)]
        containers: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 20000)]
        round_trips: usize,
        /// Start round trips on a fixed schedule of this many per second (open loop), at
        /// most `concurrency` in flight, instead of each client's next one as soon as its
        /// last ended; latency then counts from each round trip's due time.
        #[arg(long, value_parser = positive_rate)]
        rate: Option<f64>,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "SNP-SINGLE")]
        item: String,
    },
    /// Sessions each holding a seat of a cloud container's floating license send heartbeats
    /// as fast as they are answered; prints heartbeats/s, p50/p99, CPU per heartbeat and the
    /// machine's ceiling for one durable write. Makes its own item, order, cloud container
    /// and credential.
    Cloud {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Sessions (seats) sending heartbeats at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Log in to the back office and open its pages (order list first page, a page deep by
    /// key, searches, customers, blacklist, outbox, dashboard) `rounds` times each; prints
    /// p50/p99, bytes and server CPU per page. Fill the database first (`bench orders`).
    Pages {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Read the large reports (time to first byte, total, bytes, rows, the server's peak
    /// memory) and look up licenses, tickets, customers, containers and orders drawn from
    /// all of them (p50/p99, server CPU per lookup). Fill the database first
    /// (`licentia demo --licenses N`).
    Scale {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Lookups of each kind.
        #[arg(long, default_value_t = 500)]
        lookups: usize,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

/// A benchmark's offered rate: a positive, finite number per second.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{s}' is not a positive number per second")),
    }
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Scale {
            url,
            lookups,
            user,
            password,
        } => {
            let b = licentia::bench::ScaleBench {
                url,
                user,
                password,
                lookups,
            };
            println!(
                "{}",
                super::blocking(move || licentia::bench::run_scale(&b)).await?
            );
        }
        BenchCmd::Pages {
            url,
            rounds,
            user,
            password,
        } => {
            let b = licentia::bench::PagesBench {
                url,
                user,
                password,
                rounds,
            };
            println!(
                "{}",
                super::blocking(move || licentia::bench::run_pages(&b)).await?
            );
        }
        BenchCmd::Orders {
            url,
            concurrency,
            count,
            rate,
            user,
            password,
            item,
        } => {
            let b = licentia::bench::OrderBench {
                url,
                concurrency,
                count,
                rate,
                user,
                password,
                item,
            };
            println!(
                "{}",
                super::blocking(move || licentia::bench::run_orders(&b)).await?
            );
        }
        BenchCmd::Activate {
            url,
            containers,
            concurrency,
            round_trips,
            rate,
            user,
            password,
            item,
        } => {
            let b = licentia::bench::ActivateBench {
                url,
                containers,
                concurrency,
                round_trips,
                rate,
                user,
                password,
                item,
            };
            println!(
                "{}",
                super::blocking(move || licentia::bench::run_activate(&b)).await?
            );
        }
        BenchCmd::Cloud {
            url,
            concurrency,
            seconds,
            user,
            password,
        } => {
            let b = licentia::bench::CloudBench {
                url,
                concurrency,
                seconds,
                user,
                password,
            };
            println!(
                "{}",
                super::blocking(move || licentia::bench::run_cloud(&b)).await?
            );
        }
    }
    Ok(())
}
