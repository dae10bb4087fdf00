//! Licentia's production API as the bridge uses it (README "Production orders"): the
//! order's progress, the firm's license template, a dongle's update (`program`), its
//! receipt, a failed write; with the production line's user (role `production`).
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub enum ServerError {
    /// Not reachable, or answering 5xx / `busy`: try again later.
    Unavailable(String),
    /// Refused with its reason: the same again would be refused again.
    Refused {
        status: u16,
        code: String,
        message: String,
        /// The lock update a blacklisted dongle gets with its refusal.
        lock: Option<String>,
    },
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Unavailable(m) => write!(f, "server unavailable: {m}"),
            ServerError::Refused {
                status,
                code,
                message,
                ..
            } => write!(f, "{message} ({status} {code})"),
        }
    }
}

pub struct Server {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

/// A dongle's update, as `program` answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Programmed {
    pub update_id: i64,
    pub counter_from: i64,
    pub counter_to: i64,
    pub expires_at: String,
    pub update: String,
    pub slot: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderView {
    pub firm_code: i64,
    pub dongles: i64,
    pub programmed: i64,
    pub failed: i64,
    pub remaining: i64,
    pub complete: bool,
}

impl Server {
    pub fn new(base: &str, user: &str, password: &str) -> Server {
        use base64::Engine;
        Server {
            base: base.trim_end_matches('/').to_string(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(3))
                .timeout_read(Duration::from_secs(30))
                .timeout_write(Duration::from_secs(30))
                .build(),
        }
    }

    fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<Value, ServerError> {
        match r {
            Ok(resp) => {
                let text = resp
                    .into_string()
                    .map_err(|e| ServerError::Unavailable(format!("reading the answer: {e}")))?;
                serde_json::from_str(&text)
                    .map_err(|e| ServerError::Unavailable(format!("the answer is not JSON: {e}")))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let v: Value = resp
                    .into_string()
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                let code = v["error"]["code"]
                    .as_str()
                    .unwrap_or("http_error")
                    .to_string();
                let message = v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                if status >= 500 || status == 429 {
                    return Err(ServerError::Unavailable(format!(
                        "{message} ({status} {code})"
                    )));
                }
                Err(ServerError::Refused {
                    status,
                    code,
                    message,
                    lock: v["error"]["update"]["update"].as_str().map(str::to_string),
                })
            }
            Err(e) => Err(ServerError::Unavailable(e.to_string())),
        }
    }

    fn get(&self, path: &str) -> Result<Value, ServerError> {
        Self::answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Authorization", &self.auth)
                .call(),
        )
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, ServerError> {
        Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Authorization", &self.auth)
                .send_json(body),
        )
    }

    pub fn order(&self, id: i64) -> Result<OrderView, ServerError> {
        let v = self.get(&format!("/api/v1/production/orders/{id}"))?;
        serde_json::from_value(v)
            .map_err(|e| ServerError::Unavailable(format!("an order answer without {e}")))
    }

    /// The firm's license template, as JSON (the station gives it to each dongle).
    pub fn template(&self, firm_code: i64) -> Result<Value, ServerError> {
        self.get(&format!("/api/v1/gateway/template/{firm_code}"))
    }

    pub fn program(
        &self,
        order: i64,
        station: &str,
        request: &str,
    ) -> Result<Programmed, ServerError> {
        let v = self.post(
            &format!("/api/v1/production/orders/{order}/program"),
            json!({"station": station, "request": request}),
        )?;
        serde_json::from_value(v)
            .map_err(|e| ServerError::Unavailable(format!("a program answer without {e}")))
    }

    /// Uploads a dongle's receipt: whether its slot is programmed now.
    pub fn receipt(&self, order: i64, station: &str, receipt: &str) -> Result<bool, ServerError> {
        let v = self.post(
            &format!("/api/v1/production/orders/{order}/receipt"),
            json!({"station": station, "receipt": receipt}),
        )?;
        Ok(v["programmed"].as_bool().unwrap_or(false))
    }

    /// The receipt of a lock (a blacklisted dongle), through the gateway.
    pub fn lock_receipt(&self, receipt: &str) -> Result<(), ServerError> {
        self.post("/api/v1/gateway/receipt", json!({"receipt": receipt}))
            .map(|_| ())
    }

    pub fn failed(
        &self,
        order: i64,
        station: &str,
        serial: &str,
        written: bool,
        reason: &str,
    ) -> Result<(), ServerError> {
        self.post(
            &format!("/api/v1/production/orders/{order}/failed"),
            json!({"station": station, "serial": serial, "written": written, "reason": reason}),
        )
        .map(|_| ())
    }
}
