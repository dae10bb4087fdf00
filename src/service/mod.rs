//! The use cases. Each takes the `Core`, an `Actor` and a request, and returns a `Result`.
pub mod activation;
pub mod admin;
pub mod audit;
pub mod catalog;
pub mod cloud;
pub mod connectors;
pub mod demo;
pub mod firms;
pub mod generate;
pub mod jobs;
pub mod lifecycle;
pub mod mail;
pub mod orders;
pub mod portal;
pub mod production;
mod queue;
pub mod report_mail;
pub mod reports;
pub mod users;
pub mod webhooks;
pub mod workers;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::error::Result;
pub use crate::store::WriterStats;
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

/// The core every front door shares: the database, the configuration and what is opened
/// once at start. Its fields are the services' own; a front door asks through the methods
/// below or calls a service function.
pub struct Core {
    db: Db,
    config: Config,
    /// The firm made from the configuration on first start.
    default_firm: firms::Firm,
    credentials: users::CredentialCache,
    stats: Stats,
    master: std::sync::Arc<firms::MasterKey>,
    /// Opened firm signing keys by firm id (replaced when the firm's key id changes).
    signers: activation::SignerCache,
    /// The mail templates, checked at start.
    templates: mail::Templates,
    /// This process among the nodes sharing the database (claims mails and jobs).
    node: String,
    /// The shop and ERP connectors (`connectors/`), checked at start.
    connectors: connectors::Connectors,
    /// Single sign-on for the portal, when an identity provider is configured.
    sso: Option<portal::sso::Sso>,
}

impl Core {
    /// The configuration the core was opened with (checked at start).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the database answers (the health check).
    pub async fn health(&self) -> Result<()> {
        self.db.ping().await
    }

    /// What the health check warns of without failing: SAML certificates that expire within
    /// 30 days (or did).
    pub fn health_warnings(&self) -> Vec<String> {
        self.sso
            .as_ref()
            .map(|s| s.expiry_warnings(now()))
            .unwrap_or_default()
    }

    /// Single sign-on, if it is set up.
    pub fn sso(&self) -> Option<&portal::sso::Sso> {
        self.sso.as_ref()
    }

    /// What this process counted (orders, tickets, licenses, updates, receipts).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What the database writers did (for `/metrics` and the benchmarks).
    pub fn writer_stats(&self) -> &WriterStats {
        &self.db.writer_stats
    }

    /// The connector at `/connect/<name>`, if it is there and set up.
    pub fn connector(&self, name: &str) -> Result<&crate::connectors::definition::Definition> {
        self.connectors.get(name)
    }

    /// Opens the database (running migrations) and makes sure the configured firm exists.
    pub async fn open(config: Config) -> Result<Core> {
        // Before the database: IdP metadata without a signing certificate stops the start.
        let sso = portal::sso::Sso::load(&config)?;
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
            sso,
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
