//! The use cases. Each takes the `Core`, an `Actor` and a request, and returns a `Result`.
pub mod activation;
pub mod audit;
pub mod catalog;
pub mod connectors;
pub mod demo;
pub mod firms;
pub mod jobs;
pub mod lifecycle;
pub mod mail;
pub mod orders;
mod queue;
pub mod reports;
pub mod users;
pub mod workers;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::error::Result;
use crate::store::{Db, DbOptions};

/// Counters the metrics endpoint reports.
#[derive(Default)]
pub struct Stats {
    pub orders_created: AtomicU64,
    pub tickets_created: AtomicU64,
    pub licenses_created: AtomicU64,
    pub updates_issued: AtomicU64,
    pub receipts_confirmed: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct Core {
    pub db: Db,
    pub config: Config,
    /// The firm made from the configuration on first start.
    pub default_firm: firms::Firm,
    pub credentials: users::CredentialCache,
    pub stats: Stats,
    pub master: std::sync::Arc<firms::MasterKey>,
    /// Opened firm signing keys by firm id (replaced when the firm's key id changes).
    pub signers: activation::SignerCache,
    /// The mail templates, checked at start.
    pub templates: mail::Templates,
    /// This process among the nodes sharing the database (claims mails and jobs).
    pub node: String,
    /// The shop and ERP connectors (`connectors/`), checked at start.
    pub connectors: connectors::Connectors,
}

impl Core {
    /// Opens the database (running migrations) and makes sure the configured firm exists.
    pub async fn open(config: Config) -> Result<Core> {
        let db = Db::open(
            &config.database_url,
            &DbOptions {
                pool_size: config.pool_size,
                writer_batch_max: config.writer_batch_max,
                pg_writers: config.pg_writers,
                pg_writer_batch_max: config.pg_writer_batch_max,
            },
        )?;
        let templates = mail::Templates::load(&config)?;
        let connectors = connectors::Connectors::load(&config.connectors_dir)?;
        let master = firms::MasterKey::load(&config)?;
        let default_firm =
            firms::ensure_firm(&db, &master, config.firm_code, &config.firm_name).await?;
        Ok(Core {
            credentials: users::CredentialCache::new(config.credential_cache_secs),
            db,
            config,
            default_firm,
            stats: Stats::default(),
            master: std::sync::Arc::new(master),
            signers: Default::default(),
            templates,
            node: node_name(),
            connectors,
        })
    }
}

fn node_name() -> String {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    format!("node-{}-{}", std::process::id(), hex::encode(b))
}

/// Now, in UTC, truncated to microseconds so that it reads back the same from both backends.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::Timelike;
    let t = chrono::Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1000 * 1000)
        .expect("valid nanosecond")
}
