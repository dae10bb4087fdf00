//! One typed configuration: defaults, then a TOML file, then `LICENTIA_*` environment
//! variables. Unknown keys are an error naming the key.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A value that never prints.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<secret>"
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://path`, a bare path, or `postgres://…`.
    pub database_url: String,
    /// Where the SQLite file and the master key file live by default.
    pub data_dir: PathBuf,
    pub listen: String,
    /// Base URL the server is reached at (for links and WSDL addresses).
    pub public_url: String,
    /// Hex of 32 bytes; seals the firms' private keys. Unset: `<data_dir>/master.key` (0600).
    pub master_key: Secret,
    pub firm_code: i64,
    pub firm_name: String,
    pub max_body_bytes: usize,
    pub pool_size: u32,
    pub writer_batch_max: usize,
    /// Writer connections on PostgreSQL (SQLite has one writer). Groups append the history
    /// one at a time (under its head's row lock), so more writers mostly wait for each other:
    /// two cost PostgreSQL about an eighth less CPU per activation round trip than three.
    pub pg_writers: usize,
    /// Most writes in one group transaction on PostgreSQL, where every statement is a round
    /// trip: bounded groups spread the writes over the writers and keep the slowest answer
    /// short (one writer with a long group while the other idles made the slow tail).
    pub pg_writer_batch_max: usize,
    pub workers: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// How long a verified password stays cached (seconds); 0 disables the cache.
    pub credential_cache_secs: u64,
    /// SMTP server for the outbox; empty: mails are kept queued and not sent.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: String,
    pub smtp_user: String,
    pub smtp_password: Secret,
    pub smtp_timeout_secs: u64,
    /// The sender of every mail, `Name <address>` or an address.
    pub mail_from: String,
    /// The vendor's name in mails (default: `firm_name`).
    pub vendor_name: String,
    /// The customer portal (default: `<public_url>/portal`); ticket mails link to it.
    pub portal_url: String,
    pub logo_url: String,
    /// Where approval requests are mailed; empty: no mail.
    pub support_email: String,
    /// A folder with templates that replace the built-in ones of the same name.
    pub mail_templates_dir: String,
    /// Attempts before a mail is marked failed.
    pub mail_max_attempts: u32,
    /// The first retry delay (seconds); it doubles with each attempt, up to an hour.
    pub mail_retry_secs: u64,
    /// Order sources (comma separated) whose orders send no ticket mail.
    pub ticket_mail_skip_sources: String,
    /// Cron expressions (with seconds) of the scheduled jobs; empty switches a job off.
    pub job_expiry_report: String,
    pub job_never_activated_report: String,
    pub job_outbox: String,
    pub job_housekeeping: String,
    pub job_audit_checkpoint: String,
    pub expiry_report_days: u32,
    /// Recipients (comma separated) of the reports.
    pub report_recipients: String,
    /// One expiry report per customer instead of one per firm code.
    pub expiry_report_per_customer: bool,
    /// The largest attachment a report mail carries (bytes of the file, compressed above
    /// 64 KiB); a larger report is mailed as a link to download it.
    pub report_attachment_max_bytes: u64,
    /// How long a report mail's link downloads the report.
    pub report_link_days: u32,
    /// The folder with the connector definitions (one TOML file each); missing: none.
    pub connectors_dir: String,
    /// Attempts before an ERP write-back is marked failed (delays as for mails).
    pub writeback_max_attempts: u32,
    /// Attempts before a webhook delivery is marked failed (and its subscription's next
    /// event is sent).
    pub webhook_max_attempts: u32,
    /// The first retry delay of a webhook delivery (seconds); it doubles, up to an hour.
    pub webhook_retry_secs: u64,
    /// How long a receiver may take to answer a delivery (seconds).
    pub webhook_timeout_secs: u64,
    /// A folder whose portal templates, message catalogues and style sheet replace the
    /// built-in ones of the same name (`templates/portal/`).
    pub portal_templates_dir: String,
    /// The vendor's colours in the portal (`#rrggbb`): the header and buttons, and the
    /// highlights (the current step of a transfer).
    pub portal_color: String,
    pub portal_accent_color: String,
    /// The columns of the license overview, in order (comma separated).
    pub portal_columns: String,
    /// How long a portal session lasts from its login.
    pub portal_session_minutes: u32,
    /// A back office session ends after this many minutes without a request …
    pub admin_idle_minutes: u32,
    /// … and this many hours after its login however busy it is.
    pub admin_session_hours: u32,
    /// Failed portal logins within the window that hold back a client address or a ticket.
    pub portal_login_limit: u32,
    pub portal_login_window_secs: u64,
    /// The port of the local helper (`licentia container serve-local`) on the customer's
    /// computer that the portal's pages use for online transfers; 0: offline transfer only.
    pub portal_local_helper_port: u16,
    /// Whether visitors may register in the portal with their e-mail address (a link by
    /// mail proves it); a registered customer signs in the same way and may take trials.
    pub portal_self_registration: bool,
    /// Ticket lookups (ticket info, activation, re-activation) one client address may make
    /// at the gateway per minute on each node; 0: no limit.
    pub gateway_ticket_lookups_per_minute: u32,
    /// Addresses of reverse proxies (comma separated) whose `X-Forwarded-For` names the
    /// client; other peers are the client themselves.
    pub trusted_proxies: String,
    /// SAML single sign-on: the identity provider's metadata, a file or an http(s) URL;
    /// empty: single sign-on is off.
    pub saml_idp_metadata: String,
    /// Our entity id (default: `<portal_url>/saml/metadata`).
    pub saml_entity_id: String,
    /// PEM files of our signing key and its certificate; both unset: made on first start in
    /// `<data_dir>/saml/`.
    pub saml_sp_key: String,
    pub saml_sp_cert: String,
    /// How the login request travels: `redirect` or `post`.
    pub saml_binding: String,
    /// Whether a login the identity provider starts (an unsolicited response) starts one of
    /// ours; off: it is refused.
    pub saml_idp_initiated: bool,
    /// The attributes holding the customer number (the customer's external id), the e-mail
    /// address and the name.
    pub saml_attr_customer: String,
    pub saml_attr_email: String,
    pub saml_attr_name: String,
    /// Whether a first login naming an unknown customer number creates that customer.
    pub saml_create_customers: bool,
    /// How far the identity provider's clock may be off ours.
    pub saml_clock_skew_secs: u32,
    /// How long a login request waits for its answer.
    pub saml_request_minutes: u32,
}

/// The columns the license overview can show.
pub const PORTAL_COLUMNS: &[&str] = &[
    "name",
    "item",
    "license",
    "quantity",
    "activated_on",
    "container",
    "state",
    "expiry",
    "features",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: String::new(),
            data_dir: PathBuf::from("data"),
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            master_key: Secret::default(),
            firm_code: 6_000_010,
            firm_name: "My Software Company".into(),
            max_body_bytes: 256 * 1024,
            pool_size: 8,
            writer_batch_max: 256,
            pg_writers: 2,
            pg_writer_batch_max: 16,
            workers: 2,
            log_format: "text".into(),
            credential_cache_secs: 300,
            smtp_host: String::new(),
            smtp_port: 25,
            smtp_security: "none".into(),
            smtp_user: String::new(),
            smtp_password: Secret::default(),
            smtp_timeout_secs: 10,
            mail_from: "licenses@localhost".into(),
            vendor_name: String::new(),
            portal_url: String::new(),
            logo_url: String::new(),
            support_email: String::new(),
            mail_templates_dir: String::new(),
            mail_max_attempts: 8,
            mail_retry_secs: 30,
            ticket_mail_skip_sources: String::new(),
            job_expiry_report: "0 0 6 * * Mon".into(),
            job_never_activated_report: "0 0 6 1 * *".into(),
            job_outbox: "*/30 * * * * *".into(),
            job_housekeeping: "0 30 3 * * *".into(),
            job_audit_checkpoint: "0 0 * * * *".into(),
            expiry_report_days: 30,
            report_recipients: String::new(),
            expiry_report_per_customer: false,
            report_attachment_max_bytes: 5_000_000,
            report_link_days: 7,
            connectors_dir: "connectors".into(),
            writeback_max_attempts: 20,
            webhook_max_attempts: 15,
            webhook_retry_secs: 10,
            webhook_timeout_secs: 10,
            portal_templates_dir: String::new(),
            portal_color: "#1d4f73".into(),
            portal_accent_color: "#e8a33d".into(),
            portal_columns: "name,quantity,activated_on,container,state,expiry,features".into(),
            portal_session_minutes: 120,
            admin_idle_minutes: 30,
            admin_session_hours: 12,
            portal_login_limit: 5,
            portal_login_window_secs: 900,
            portal_local_helper_port: crate::client::local::DEFAULT_PORT,
            portal_self_registration: false,
            gateway_ticket_lookups_per_minute: 120,
            saml_idp_metadata: String::new(),
            saml_entity_id: String::new(),
            saml_sp_key: String::new(),
            saml_sp_cert: String::new(),
            saml_binding: "redirect".into(),
            saml_idp_initiated: false,
            saml_attr_customer: "customer_number".into(),
            saml_attr_email: "email".into(),
            saml_attr_name: "name".into(),
            saml_create_customers: false,
            saml_clock_skew_secs: 120,
            saml_request_minutes: 10,
            trusted_proxies: String::new(),
        }
    }
}

impl Config {
    /// Loads `file` (if given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::from_parts(file, &env)
    }

    pub fn from_parts(file: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let mut table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    Error::invalid("config", format!("cannot read {}: {e}", p.display()))
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| Error::invalid("config", format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        let known = Config::keys();
        for (k, v) in env {
            let Some(key) = k.strip_prefix("LICENTIA_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let Some(kind) = known.iter().find(|(n, _)| *n == key).map(|(_, t)| *t) else {
                return Err(Error::invalid(k.as_str(), "unknown configuration variable"));
            };
            let value = match kind {
                Kind::Int => toml::Value::Integer(
                    v.parse()
                        .map_err(|_| Error::invalid(k.as_str(), "must be a whole number"))?,
                ),
                Kind::Str => toml::Value::String(v.clone()),
                Kind::Bool => toml::Value::Boolean(match v.as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(Error::invalid(k.as_str(), "must be true or false")),
                }),
            };
            table.insert(key, value);
        }
        let mut cfg: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::invalid("config", e.message().to_string()))?;
        cfg.check()?;
        if cfg.database_url.is_empty() {
            cfg.database_url = format!("sqlite://{}", cfg.data_dir.join("licentia.db").display());
        }
        if cfg.public_url.is_empty() {
            cfg.public_url = format!("http://{}", cfg.listen);
        }
        if cfg.vendor_name.is_empty() {
            cfg.vendor_name = cfg.firm_name.clone();
        }
        if cfg.portal_url.is_empty() {
            cfg.portal_url = format!("{}/portal", cfg.public_url.trim_end_matches('/'));
        }
        Ok(cfg)
    }

    fn keys() -> Vec<(&'static str, Kind)> {
        use Kind::*;
        vec![
            ("database_url", Str),
            ("data_dir", Str),
            ("listen", Str),
            ("public_url", Str),
            ("master_key", Str),
            ("firm_code", Int),
            ("firm_name", Str),
            ("max_body_bytes", Int),
            ("pool_size", Int),
            ("writer_batch_max", Int),
            ("pg_writers", Int),
            ("pg_writer_batch_max", Int),
            ("workers", Int),
            ("log_format", Str),
            ("credential_cache_secs", Int),
            ("smtp_host", Str),
            ("smtp_port", Int),
            ("smtp_security", Str),
            ("smtp_user", Str),
            ("smtp_password", Str),
            ("smtp_timeout_secs", Int),
            ("mail_from", Str),
            ("vendor_name", Str),
            ("portal_url", Str),
            ("logo_url", Str),
            ("support_email", Str),
            ("mail_templates_dir", Str),
            ("mail_max_attempts", Int),
            ("mail_retry_secs", Int),
            ("ticket_mail_skip_sources", Str),
            ("job_expiry_report", Str),
            ("job_never_activated_report", Str),
            ("job_outbox", Str),
            ("job_housekeeping", Str),
            ("job_audit_checkpoint", Str),
            ("expiry_report_days", Int),
            ("report_recipients", Str),
            ("expiry_report_per_customer", Bool),
            ("report_attachment_max_bytes", Int),
            ("report_link_days", Int),
            ("connectors_dir", Str),
            ("writeback_max_attempts", Int),
            ("webhook_max_attempts", Int),
            ("webhook_retry_secs", Int),
            ("webhook_timeout_secs", Int),
            ("portal_templates_dir", Str),
            ("portal_color", Str),
            ("portal_accent_color", Str),
            ("portal_columns", Str),
            ("portal_session_minutes", Int),
            ("admin_idle_minutes", Int),
            ("admin_session_hours", Int),
            ("portal_login_limit", Int),
            ("portal_login_window_secs", Int),
            ("portal_local_helper_port", Int),
            ("portal_self_registration", Bool),
            ("gateway_ticket_lookups_per_minute", Int),
            ("trusted_proxies", Str),
            ("saml_idp_metadata", Str),
            ("saml_entity_id", Str),
            ("saml_sp_key", Str),
            ("saml_sp_cert", Str),
            ("saml_binding", Str),
            ("saml_idp_initiated", Bool),
            ("saml_attr_customer", Str),
            ("saml_attr_email", Str),
            ("saml_attr_name", Str),
            ("saml_create_customers", Bool),
            ("saml_clock_skew_secs", Int),
            ("saml_request_minutes", Int),
        ]
    }

    fn check(&self) -> Result<()> {
        if !(1..=2_147_483_647).contains(&self.firm_code) {
            return Err(Error::invalid("firm_code", "between 1 and 2147483647"));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::invalid(
                "listen",
                "must be an address like 127.0.0.1:8080",
            ));
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            return Err(Error::invalid("log_format", "must be text or json"));
        }
        if self.max_body_bytes < 1024 || self.pool_size == 0 || self.workers == 0 {
            return Err(Error::invalid(
                "config",
                "max_body_bytes >= 1024, pool_size and workers >= 1",
            ));
        }
        if !["none", "starttls", "tls"].contains(&self.smtp_security.as_str()) {
            return Err(Error::invalid(
                "smtp_security",
                "must be none, starttls or tls",
            ));
        }
        if let Err(e) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(Error::invalid(
                "mail_from",
                format!("{:?} is not a mail address: {e}", self.mail_from),
            ));
        }
        if !(1..=60).contains(&self.smtp_timeout_secs) {
            // A send must end well within the two-minute claim on a mail.
            return Err(Error::invalid("smtp_timeout_secs", "between 1 and 60"));
        }
        if self.webhook_max_attempts == 0 || self.webhook_retry_secs == 0 {
            return Err(Error::invalid(
                "webhook_max_attempts",
                "webhook_max_attempts and webhook_retry_secs must be at least 1",
            ));
        }
        if !(1..=60).contains(&self.webhook_timeout_secs) {
            // A delivery must end well within the two-minute claim on it.
            return Err(Error::invalid("webhook_timeout_secs", "between 1 and 60"));
        }
        if self.writeback_max_attempts == 0 {
            return Err(Error::invalid("writeback_max_attempts", "at least 1"));
        }
        if self.mail_max_attempts == 0 || self.mail_retry_secs == 0 {
            return Err(Error::invalid(
                "mail_max_attempts",
                "mail_max_attempts and mail_retry_secs must be at least 1",
            ));
        }
        if !(1..=3650).contains(&self.expiry_report_days) {
            return Err(Error::invalid("expiry_report_days", "between 1 and 3650"));
        }
        if self.report_attachment_max_bytes < 1024 {
            return Err(Error::invalid(
                "report_attachment_max_bytes",
                "at least 1024 (a report larger than this is mailed as a link)",
            ));
        }
        if !(1..=365).contains(&self.report_link_days) {
            return Err(Error::invalid("report_link_days", "between 1 and 365"));
        }
        for (key, expr) in [
            ("job_expiry_report", &self.job_expiry_report),
            (
                "job_never_activated_report",
                &self.job_never_activated_report,
            ),
            ("job_outbox", &self.job_outbox),
            ("job_housekeeping", &self.job_housekeeping),
            ("job_audit_checkpoint", &self.job_audit_checkpoint),
        ] {
            if !expr.trim().is_empty() {
                <cron::Schedule as std::str::FromStr>::from_str(expr).map_err(|e| {
                    Error::invalid(key, format!("{expr:?} is not a cron expression: {e}"))
                })?;
            }
        }
        self.check_portal()?;
        if !self.master_key.0.is_empty()
            && hex::decode(&self.master_key.0).map(|k| k.len()) != Ok(32)
        {
            return Err(Error::invalid(
                "master_key",
                "must be 64 hex characters (32 bytes)",
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The portal's settings: colours as `#rrggbb` (they go into a style sheet), known
    /// columns, a logo that is an http(s) URL (its origin goes into the pages' security
    /// policy), bounded session and login limits, proxies that are addresses.
    fn check_portal(&self) -> Result<()> {
        for (key, value) in [
            ("portal_color", &self.portal_color),
            ("portal_accent_color", &self.portal_accent_color),
        ] {
            if parse_color(value).is_none() {
                return Err(Error::invalid(
                    key,
                    format!("{value:?} is not a colour like #1d4f73"),
                ));
            }
        }
        let columns = self.portal_column_list();
        if columns.is_empty() {
            return Err(Error::invalid("portal_columns", "name at least one column"));
        }
        if let Some(bad) = columns.iter().find(|c| !PORTAL_COLUMNS.contains(c)) {
            return Err(Error::invalid(
                "portal_columns",
                format!("{bad:?} is not one of {}", PORTAL_COLUMNS.join(", ")),
            ));
        }
        if !self.logo_url.is_empty() && url_origin(&self.logo_url).is_none() {
            return Err(Error::invalid(
                "logo_url",
                format!("{:?} is not an http(s) URL", self.logo_url),
            ));
        }
        if !(5..=7 * 24 * 60).contains(&self.portal_session_minutes) {
            return Err(Error::invalid(
                "portal_session_minutes",
                "between 5 and 10080 (a week)",
            ));
        }
        if !(1..=24 * 60).contains(&self.admin_idle_minutes) {
            return Err(Error::invalid(
                "admin_idle_minutes",
                "between 1 and 1440 (a day)",
            ));
        }
        if !(1..=7 * 24).contains(&self.admin_session_hours) {
            return Err(Error::invalid(
                "admin_session_hours",
                "between 1 and 168 (a week)",
            ));
        }
        if !(1..=1000).contains(&self.portal_login_limit) {
            return Err(Error::invalid("portal_login_limit", "between 1 and 1000"));
        }
        if !(1..=7 * 86_400).contains(&self.portal_login_window_secs) {
            return Err(Error::invalid(
                "portal_login_window_secs",
                "between 1 and 604800 (a week)",
            ));
        }
        self.trusted_proxy_list()?;
        self.check_saml()
    }

    /// Single sign-on's settings (the metadata itself is read at start, by the core).
    fn check_saml(&self) -> Result<()> {
        if !["redirect", "post"].contains(&self.saml_binding.as_str()) {
            return Err(Error::invalid("saml_binding", "must be redirect or post"));
        }
        if self.saml_clock_skew_secs > 600 {
            return Err(Error::invalid(
                "saml_clock_skew_secs",
                "at most 600 (ten minutes)",
            ));
        }
        if !(1..=60).contains(&self.saml_request_minutes) {
            return Err(Error::invalid("saml_request_minutes", "between 1 and 60"));
        }
        for (key, v) in [
            ("saml_attr_customer", &self.saml_attr_customer),
            ("saml_attr_email", &self.saml_attr_email),
            ("saml_attr_name", &self.saml_attr_name),
        ] {
            if v.trim().is_empty() {
                return Err(Error::invalid(key, "name the attribute"));
            }
        }
        Ok(())
    }

    /// The configured overview columns, in order.
    pub fn portal_column_list(&self) -> Vec<&str> {
        self.portal_columns
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxy_list(&self) -> Result<Vec<std::net::IpAddr>> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse().map_err(|_| {
                    Error::invalid("trusted_proxies", format!("{p:?} is not an IP address"))
                })
            })
            .collect()
    }

    /// Whether customers reach the server over https (the portal's cookies are then Secure).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `#rrggbb` as its three bytes.
pub fn parse_color(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let b = hex::decode(hex).ok()?;
    Some([b[0], b[1], b[2]])
}

/// The origin (`https://host[:port]`) of an http(s) URL, or none if it is not one or holds
/// characters that have no place in a security policy.
pub fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if host.is_empty() || !host.chars().all(ok) || !url.chars().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    if url.contains(['\'', '"', ';', ',', '<', '>']) {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Str,
    Bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_run_without_a_file() {
        let c = Config::from_parts(None, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite://data"));
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("licentia-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9000\"\npool_size = 3\n").unwrap();
        let c = Config::from_parts(Some(&f), &env(&[("LICENTIA_POOL_SIZE", "5")])).unwrap();
        assert_eq!((c.listen.as_str(), c.pool_size), ("127.0.0.1:9000", 5));
        std::fs::write(&f, "lisen = \"x\"\n").unwrap();
        let e = Config::from_parts(Some(&f), &[]).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn unknown_or_bad_environment_names_the_variable() {
        let e = Config::from_parts(None, &env(&[("LICENTIA_PORTT", "1")])).unwrap_err();
        assert!(e.to_string().contains("LICENTIA_PORTT"));
        let e = Config::from_parts(None, &env(&[("LICENTIA_POOL_SIZE", "many")])).unwrap_err();
        assert!(e.to_string().contains("LICENTIA_POOL_SIZE"));
        let e = Config::from_parts(None, &env(&[("LICENTIA_MASTER_KEY", "abc")])).unwrap_err();
        assert!(e.to_string().contains("master_key"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config {
            master_key: Secret("00".repeat(32)),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("abab"));
    }

    #[test]
    fn mail_and_job_settings_are_checked() {
        for (k, v, says) in [
            ("LICENTIA_JOB_EXPIRY_REPORT", "every monday", "cron"),
            ("LICENTIA_SMTP_SECURITY", "ssl", "starttls"),
            ("LICENTIA_MAIL_FROM", "not an address", "mail address"),
            (
                "LICENTIA_EXPIRY_REPORT_PER_CUSTOMER",
                "maybe",
                "true or false",
            ),
        ] {
            let e = Config::from_parts(None, &env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
        let c = Config::from_parts(
            None,
            &env(&[
                ("LICENTIA_JOB_OUTBOX", ""),
                ("LICENTIA_EXPIRY_REPORT_PER_CUSTOMER", "true"),
                ("LICENTIA_FIRM_NAME", "ACME"),
            ]),
        )
        .unwrap();
        assert!(c.job_outbox.is_empty() && c.expiry_report_per_customer);
        assert_eq!(c.vendor_name, "ACME");
        assert_eq!(c.portal_url, "http://127.0.0.1:8080/portal");
    }

    #[test]
    fn portal_settings_are_checked() {
        for (k, v, says) in [
            ("LICENTIA_PORTAL_COLOR", "blue", "#1d4f73"),
            ("LICENTIA_PORTAL_ACCENT_COLOR", "#12345", "#1d4f73"),
            (
                "LICENTIA_PORTAL_COLUMNS",
                "name,price",
                "\"price\" is not one of",
            ),
            ("LICENTIA_PORTAL_COLUMNS", " , ", "at least one column"),
            ("LICENTIA_LOGO_URL", "javascript:alert(1)", "http(s) URL"),
            (
                "LICENTIA_LOGO_URL",
                "https://cdn.example.com/a.png; script-src *",
                "http(s) URL",
            ),
            ("LICENTIA_PORTAL_SESSION_MINUTES", "1", "between 5"),
            ("LICENTIA_PORTAL_LOGIN_LIMIT", "0", "between 1"),
            (
                "LICENTIA_TRUSTED_PROXIES",
                "10.0.0.1, proxy.local",
                "not an IP address",
            ),
        ] {
            let e = Config::from_parts(None, &env(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
        let c = Config::from_parts(
            None,
            &env(&[
                ("LICENTIA_PORTAL_COLUMNS", "state, name"),
                ("LICENTIA_TRUSTED_PROXIES", "10.0.0.1, ::1"),
                ("LICENTIA_LOGO_URL", "https://cdn.example.com:8443/logo.svg"),
                ("LICENTIA_PUBLIC_URL", "https://licenses.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(c.portal_column_list(), vec!["state", "name"]);
        assert_eq!(c.trusted_proxy_list().unwrap().len(), 2);
        assert_eq!(
            url_origin(&c.logo_url).as_deref(),
            Some("https://cdn.example.com:8443")
        );
        assert!(c.is_https());
    }
}
