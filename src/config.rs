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
    /// Writer connections on PostgreSQL (SQLite has one writer).
    pub pg_writers: usize,
    pub workers: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// How long a verified password stays cached (seconds); 0 disables the cache.
    pub credential_cache_secs: u64,
}

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
            workers: 2,
            log_format: "text".into(),
            credential_cache_secs: 300,
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
            ("workers", Int),
            ("log_format", Str),
            ("credential_cache_secs", Int),
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

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Str,
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
}
