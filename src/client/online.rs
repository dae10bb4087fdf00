//! Round trips against a Licentia server's JSON gateway (`/api/v1/gateway`).
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{cerr, hashed_traits, unix_now, Applied, CResult, ClientError, Container};
use crate::protocol::{
    ActivateRequest, Confirmed, Issued, ReactivateRequest, RestoreRequest, ReturnRequest, Template,
    TicketInfo, Trait,
};

pub struct Gateway {
    base: String,
    agent: ureq::Agent,
}

/// An HTTP client with timeouts per connect, read and write rather than one for the whole
/// call: ureq sets a whole-call deadline on the socket again before every read (two system
/// calls each, about a dozen per call).
pub fn http_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(30))
        .timeout_write(Duration::from_secs(30))
        .build()
}

impl Gateway {
    pub fn new(server: &str) -> Gateway {
        Gateway {
            base: format!("{}/api/v1/gateway", server.trim_end_matches('/')),
            agent: http_agent(),
        }
    }

    pub(super) fn answer<T: DeserializeOwned>(
        r: Result<ureq::Response, ureq::Error>,
    ) -> CResult<T> {
        match r {
            // Read whole, then parse: serde_json reading byte by byte from the socket
            // reader costs more than the rest of the answer's handling.
            Ok(resp) => {
                let text = resp.into_string().map_err(|e| {
                    cerr("unreachable", format!("reading the server's answer: {e}"))
                })?;
                serde_json::from_str(&text).map_err(|e| {
                    cerr(
                        "bad_answer",
                        format!("the server's answer is not JSON: {e}"),
                    )
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let v: Value = resp
                    .into_string()
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                let mut e = cerr(
                    v["error"]["code"].as_str().unwrap_or("http_error"),
                    v["error"]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                );
                e.update = v["error"]["update"]["update"].as_str().map(str::to_string);
                Err(e)
            }
            Err(e) => Err(cerr("unreachable", format!("cannot reach the server: {e}"))),
        }
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: impl Serialize) -> CResult<T> {
        Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .send_json(body),
        )
    }

    pub fn ticket(&self, code: &str) -> CResult<TicketInfo> {
        Self::answer(
            self.agent
                .get(&format!("{}/tickets/{code}", self.base))
                .call(),
        )
    }
    pub fn template(&self, firm_code: i64) -> CResult<Template> {
        Self::answer(
            self.agent
                .get(&format!("{}/template/{firm_code}", self.base))
                .call(),
        )
    }
    pub fn activate(&self, ticket: &str, licenses: &[i64], request: &str) -> CResult<Issued> {
        self.post(
            "/activate",
            ActivateRequest {
                ticket: ticket.into(),
                licenses: licenses.to_vec(),
                request: request.into(),
            },
        )
    }
    pub fn receipt(&self, receipt: &str) -> CResult<Confirmed> {
        self.post("/receipt", json!({"receipt": receipt}))
    }
    pub fn reactivate(&self, ticket: &str, licenses: &[i64], request: &str) -> CResult<Issued> {
        self.post(
            "/reactivate",
            ReactivateRequest {
                ticket: ticket.into(),
                licenses: licenses.to_vec(),
                request: request.into(),
            },
        )
    }
    pub fn salt(&self, serial: &str) -> CResult<String> {
        let v: Value = Self::answer(
            self.agent
                .get(&format!("{}/containers/{serial}/salt", self.base))
                .call(),
        )?;
        v["salt"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| cerr("bad_answer", "the server's answer has no salt"))
    }
    pub fn restore(&self, old_serial: &str, request: &str, traits: &[Trait]) -> CResult<Issued> {
        self.post(
            "/restore",
            RestoreRequest {
                old_serial: old_serial.into(),
                request: request.into(),
                traits: traits.to_vec(),
            },
        )
    }
    pub fn deactivate(&self, licenses: &[i64], request: &str) -> CResult<Issued> {
        self.post(
            "/return",
            ReturnRequest {
                licenses: licenses.to_vec(),
                request: request.into(),
            },
        )
    }
    pub fn updates(&self, request: &str) -> CResult<Option<Issued>> {
        let v: Value = self.post("/updates", json!({"request": request}))?;
        if v["update"].is_null() {
            Ok(None)
        } else {
            serde_json::from_value(v["update"].clone())
                .map(Some)
                .map_err(|e| cerr("bad_answer", e.to_string()))
        }
    }
}

/// The outcome of an online round trip.
#[derive(Debug, serde::Serialize)]
pub struct RoundTrip {
    pub serial: String,
    pub firm_code: i64,
    pub update_id: i64,
    pub counter: u64,
    pub added: Vec<i64>,
    pub changed: Vec<i64>,
    pub deleted: Vec<i64>,
    pub confirmed: bool,
}

/// Applies an issued update, keeps the container (through `persist`, before the receipt
/// leaves) and sends the receipt. A receipt lost on the way is made good by the next contact.
pub fn finish(
    gw: &Gateway,
    c: &mut Container,
    issued: Issued,
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    let Applied {
        serial,
        firm_code,
        update_id,
        counter,
        receipt,
    } = c.apply(&issued.update, unix_now())?;
    persist(c)?;
    gw.receipt(&receipt)?;
    Ok(RoundTrip {
        serial,
        firm_code,
        update_id,
        counter,
        added: issued.added,
        changed: issued.changed,
        deleted: issued.deleted,
        confirmed: true,
    })
}

/// A refusal that brought the lock update (the container is blacklisted): the lock is
/// applied and confirmed first, then the refusal is returned.
fn lock_first(
    gw: &Gateway,
    c: &mut Container,
    r: CResult<Issued>,
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<Issued> {
    match r {
        Err(ClientError {
            code,
            message,
            update: Some(update),
        }) => {
            let applied = c.apply(&update, unix_now())?;
            persist(c)?;
            gw.receipt(&applied.receipt)?;
            Err(cerr(&code, message))
        }
        other => other,
    }
}

/// Makes sure the container trusts the firm (fetching its license template if not).
pub fn ensure_trust(gw: &Gateway, c: &mut Container, firm_code: i64) -> CResult<()> {
    if !c.firms.contains_key(&firm_code) {
        let t = gw.template(firm_code)?;
        c.trust_template(&t);
    }
    Ok(())
}

/// The firm code of the ticket's licenses named (or of its first, with none named), with
/// the firm's license template trusted.
fn ticket_firm(gw: &Gateway, c: &mut Container, ticket: &str, licenses: &[i64]) -> CResult<i64> {
    let info = gw.ticket(ticket)?;
    let firm_code = info
        .licenses
        .iter()
        .find(|l| licenses.is_empty() || licenses.contains(&l.license_id))
        .map(|l| l.firm_code)
        .ok_or_else(|| cerr("not_found", "the ticket has no such license"))?;
    ensure_trust(gw, c, firm_code)?;
    Ok(firm_code)
}

/// The whole activation: ticket info, license template (new firm), request, update,
/// apply, receipt. Automatic updates waiting for the container come in the same update.
pub fn activate(
    gw: &Gateway,
    c: &mut Container,
    ticket: &str,
    licenses: &[i64],
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    ticket_round_trip(gw, c, ticket, licenses, persist, Gateway::activate)
}

/// A round trip for licenses of a ticket: `call` is the gateway's activate or reactivate.
fn ticket_round_trip(
    gw: &Gateway,
    c: &mut Container,
    ticket: &str,
    licenses: &[i64],
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
    call: fn(&Gateway, &str, &[i64], &str) -> CResult<Issued>,
) -> CResult<RoundTrip> {
    let firm_code = ticket_firm(gw, c, ticket, licenses)?;
    let request = c.request(firm_code, unix_now())?;
    let issued = lock_first(gw, c, call(gw, ticket, licenses, &request), persist)?;
    finish(gw, c, issued, persist)
}

/// Re-activates licenses of a ticket that sit in a lost container into this one.
pub fn reactivate(
    gw: &Gateway,
    c: &mut Container,
    ticket: &str,
    licenses: &[i64],
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    ticket_round_trip(gw, c, ticket, licenses, persist, Gateway::reactivate)
}

/// Restores the licenses of `old_serial`, an `act` container this computer had before a
/// reinstall, into this new container: the server checks the machine traits against the
/// old container's fingerprint.
pub fn restore(
    gw: &Gateway,
    c: &mut Container,
    old_serial: &str,
    firm_code: i64,
    traits: &[(String, String)],
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    ensure_trust(gw, c, firm_code)?;
    let hashed = hashed_traits(&gw.salt(old_serial)?, traits);
    let request = c.request(firm_code, unix_now())?;
    let issued = lock_first(gw, c, gw.restore(old_serial, &request, &hashed), persist)?;
    finish(gw, c, issued, persist)
}

/// Borrows a seat of a cloud container's license (`firm_code`, `product_code`, the
/// feature bits) into container `c` for `days` days: the server makes a license for the
/// borrow that expires with it, and this round trip applies it and confirms the receipt.
/// It comes back with `deactivate`, like any license.
#[allow(clippy::too_many_arguments)]
pub fn borrow(
    gw: &Gateway,
    cloud: &super::cloud::Cloud,
    c: &mut Container,
    firm_code: i64,
    product_code: i64,
    features: u32,
    days: u32,
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    ensure_trust(gw, c, firm_code)?;
    let request = c.request(firm_code, unix_now())?;
    let asked = crate::protocol::cloud::BorrowRequest {
        firm_code,
        product_code,
        features,
        days,
        request,
    };
    let issued = lock_first(gw, c, cloud.borrow(&asked), persist)?;
    finish(gw, c, issued, persist)
}

/// Returns licenses to the server.
pub fn deactivate(
    gw: &Gateway,
    c: &mut Container,
    firm_code: i64,
    licenses: &[i64],
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<RoundTrip> {
    let request = c.request(firm_code, unix_now())?;
    let issued = lock_first(gw, c, gw.deactivate(licenses, &request), persist)?;
    finish(gw, c, issued, persist)
}

/// Pulls the automatic updates waiting for the container, for every firm it holds.
pub fn update(
    gw: &Gateway,
    c: &mut Container,
    persist: &mut dyn FnMut(&Container) -> CResult<()>,
) -> CResult<Vec<RoundTrip>> {
    let mut done = vec![];
    let firms: Vec<i64> = c.firms.keys().copied().collect();
    for firm_code in firms {
        let request = c.request(firm_code, unix_now())?;
        if let Some(issued) = gw.updates(&request)? {
            done.push(finish(gw, c, issued, persist)?);
        }
    }
    Ok(done)
}
