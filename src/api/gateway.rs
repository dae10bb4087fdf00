//! The activation gateway under `/api/v1/gateway`: no vendor credentials. The ticket is the
//! credential for ticket info and activation; a container's signed request or receipt is
//! the credential for everything else. Online as JSON, offline as request/update/receipt
//! files posted and downloaded as they are.
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::openapi::{doc, route, Access, Routes};
use super::ApiError;
use crate::config::Config;
use crate::domain::Interface;
use crate::error::{Error, Result as CoreResult};
use crate::protocol::MAX_MESSAGE;
use crate::protocol::{ActivateRequest, Issued, ReactivateRequest, RestoreRequest, ReturnRequest};
use crate::service::Core;
use crate::service::{activation, lifecycle, portal};

type Res = Result<HttpResponse, ApiError>;
type Core_ = web::Data<Core>;
type Limiter_ = web::Data<TicketLimiter>;

fn ok<T: serde::Serialize>(v: T) -> Res {
    Ok(HttpResponse::Ok().json(v))
}

/// How often one client may name a ticket at the gateway on this node: a token bucket
/// refilled at `gateway_ticket_lookups_per_minute` (0: no limit) that holds at most
/// `BURST` lookups, so parallel guesses cannot run ahead of the failures the database
/// counts for every node (`portal::ticket_guard`). An IPv6 client is its /64 (it has the
/// whole prefix to pick addresses from), an IPv4-mapped address its IPv4 address.
pub struct TicketLimiter {
    per_minute: u32,
    proxies: Vec<IpAddr>,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Lookups one client may make at once before the rate holds it.
const BURST: f64 = 10.0;
/// Clients kept at most; when full, those idle a minute (whose buckets are full again) are
/// dropped, and if that frees too little, all are (memory stays bounded under a flood of
/// addresses; the database still counts failures).
const MAX_BUCKETS: usize = 100_000;

/// The client a bucket belongs to.
fn bucket_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl TicketLimiter {
    pub fn new(config: &Config) -> CoreResult<TicketLimiter> {
        Ok(TicketLimiter {
            per_minute: config.gateway_ticket_lookups_per_minute,
            proxies: config.trusted_proxy_list()?,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one lookup for `client`, or says when the next one is allowed.
    fn take(&self, client: IpAddr, now: Instant) -> CoreResult<()> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let per_sec = f64::from(self.per_minute) / 60.0;
        let capacity = BURST.min(f64::from(self.per_minute));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
            if buckets.len() >= MAX_BUCKETS * 9 / 10 {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(bucket_key(client)).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        Err(Error::RateLimited {
            retry_after: ((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64,
        })
    }
}

impl TicketLimiter {
    /// Runs a lookup that names `ticket` for the client of `req`: within the client's rate,
    /// not held back for failures, and an unknown ticket counted as a failure of the
    /// address and the ticket. The JSON gateway and the SOAP Depot both go through it.
    pub(crate) async fn naming<T>(
        &self,
        core: &Core,
        req: &HttpRequest,
        ticket: &str,
        lookup: impl Future<Output = CoreResult<T>>,
    ) -> CoreResult<T> {
        let client = super::client_addr(req, &self.proxies);
        self.take(client, Instant::now())?;
        portal::ticket_guard(core, client, ticket).await?;
        let out = lookup.await;
        if let Err(Error::NotFound { kind: "ticket", .. }) = &out {
            // The caller still learns that the ticket is unknown if the count cannot be
            // written.
            if let Err(e) = portal::ticket_failed(core, client, ticket).await {
                tracing::warn!(error = %e, "a failed ticket lookup was not counted");
            }
        }
        out
    }
}

async fn naming<T>(
    core: &Core,
    limiter: &TicketLimiter,
    req: &HttpRequest,
    ticket: &str,
    lookup: impl Future<Output = CoreResult<T>>,
) -> Result<T, ApiError> {
    Ok(limiter.naming(core, req, ticket, lookup).await?)
}

async fn ticket(core: Core_, lim: Limiter_, req: HttpRequest, code: web::Path<String>) -> Res {
    ok(naming(
        &core,
        &lim,
        &req,
        &code,
        activation::ticket_info(&core, &code),
    )
    .await?)
}
async fn template(core: Core_, firm_code: web::Path<i64>) -> Res {
    ok(activation::template(&core, firm_code.into_inner()).await?)
}
async fn activate(
    core: Core_,
    lim: Limiter_,
    req: HttpRequest,
    body: web::Json<ActivateRequest>,
) -> Res {
    let body = body.into_inner();
    let ticket = body.ticket.clone();
    let run = activation::activate(&core, Interface::Gateway, body);
    ok(naming(&core, &lim, &req, &ticket, run).await?)
}

async fn reactivate(
    core: Core_,
    lim: Limiter_,
    req: HttpRequest,
    body: web::Json<ReactivateRequest>,
) -> Res {
    let body = body.into_inner();
    let ticket = body.ticket.clone();
    let run = lifecycle::reactivate(&core, Interface::Gateway, body);
    ok(naming(&core, &lim, &req, &ticket, run).await?)
}
async fn restore(core: Core_, body: web::Json<RestoreRequest>) -> Res {
    ok(lifecycle::restore(&core, Interface::Gateway, body.into_inner()).await?)
}
async fn salt(core: Core_, serial: web::Path<String>) -> Res {
    ok(lifecycle::fingerprint_salt(&core, serial.into_inner()).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReceiptBody {
    receipt: String,
}
async fn receipt(core: Core_, body: web::Json<ReceiptBody>) -> Res {
    ok(activation::confirm_receipt(&core, Interface::Gateway, &body.receipt).await?)
}
async fn deactivate(core: Core_, body: web::Json<ReturnRequest>) -> Res {
    ok(activation::deactivate(&core, Interface::Gateway, body.into_inner()).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    request: String,
}
/// The update waiting for the container, if one is.
#[derive(Serialize, JsonSchema)]
struct Pending {
    update: Option<Issued>,
}
async fn updates(core: Core_, body: web::Json<RequestBody>) -> Res {
    let update = activation::pull_updates(&core, Interface::Gateway, &body.request).await?;
    ok(Pending { update })
}

/// A message file as the body: UTF-8 text, at most `MAX_MESSAGE` bytes.
fn file_text(body: &web::Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| Error::InvalidMessage("the file is not UTF-8 text".into()).into())
}

/// `license=1,2,3` in the query.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    ticket: Option<String>,
    #[serde(default)]
    license: String,
}

impl FileQuery {
    fn licenses(&self) -> Result<Vec<i64>, ApiError> {
        self.license
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim().parse::<i64>().map_err(|_| {
                    Error::invalid("license", format!("{s:?} is not a license id")).into()
                })
            })
            .collect()
    }
}

fn update_file(u: Issued) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"{}-{}-{}.lcu\"",
                u.serial, u.firm_code, u.counter_to
            ),
        ))
        .insert_header(("X-Licentia-Update-Id", u.update_id.to_string()))
        .body(u.update)
}

async fn file_activate(
    core: Core_,
    lim: Limiter_,
    req: HttpRequest,
    q: web::Query<FileQuery>,
    body: web::Bytes,
) -> Res {
    let ticket = q
        .ticket
        .clone()
        .ok_or_else(|| Error::invalid("ticket", "the query must name the ticket"))?;
    let body = ActivateRequest {
        ticket: ticket.clone(),
        licenses: q.licenses()?,
        request: file_text(&body)?.to_string(),
    };
    let run = activation::activate(&core, Interface::Files, body);
    Ok(update_file(naming(&core, &lim, &req, &ticket, run).await?))
}
async fn file_reactivate(
    core: Core_,
    lim: Limiter_,
    req: HttpRequest,
    q: web::Query<FileQuery>,
    body: web::Bytes,
) -> Res {
    let ticket = q
        .ticket
        .clone()
        .ok_or_else(|| Error::invalid("ticket", "the query must name the ticket"))?;
    let body = ReactivateRequest {
        ticket: ticket.clone(),
        licenses: q.licenses()?,
        request: file_text(&body)?.to_string(),
    };
    let run = lifecycle::reactivate(&core, Interface::Files, body);
    Ok(update_file(naming(&core, &lim, &req, &ticket, run).await?))
}
async fn file_return(core: Core_, q: web::Query<FileQuery>, body: web::Bytes) -> Res {
    let req = ReturnRequest {
        licenses: q.licenses()?,
        request: file_text(&body)?.to_string(),
    };
    Ok(update_file(
        activation::deactivate(&core, Interface::Files, req).await?,
    ))
}
async fn file_updates(core: Core_, body: web::Bytes) -> Res {
    match activation::pull_updates(&core, Interface::Files, file_text(&body)?).await? {
        Some(u) => Ok(update_file(u)),
        None => Ok(HttpResponse::NoContent().finish()),
    }
}
async fn file_receipt(core: Core_, body: web::Bytes) -> Res {
    ok(activation::confirm_receipt(&core, Interface::Files, file_text(&body)?).await?)
}

/// The gateway's routes: JSON online, message files offline.
pub fn routes() -> Routes {
    use crate::protocol::{Confirmed, Template, TicketInfo};
    let mut r = Routes::new("/api/v1/gateway", Access::Public);
    route!(r, get "/tickets/{code}" ticket,
        doc("A ticket's licenses, where they are and which may be returned")
            .answer::<TicketInfo>(200));
    route!(r, get "/template/{firm_code}" template,
        doc("The license template a new container of the firm starts from")
            .answer::<Template>(200));
    route!(r, post "/activate" activate,
        doc("Activate a ticket's licenses: the container's signed request in, its update out")
            .body::<ActivateRequest>().answer::<Issued>(200));
    route!(r, post "/receipt" receipt,
        doc("The container's receipt of an update").body::<ReceiptBody>()
            .answer::<Confirmed>(200));
    route!(r, post "/return" deactivate,
        doc("Return licenses: the update that removes them").body::<ReturnRequest>()
            .answer::<Issued>(200));
    route!(r, post "/reactivate" reactivate,
        doc("Re-activate licenses of a lost container into this one")
            .body::<ReactivateRequest>().answer::<Issued>(200));
    route!(r, post "/restore" restore,
        doc("Restore an act container's licenses on the same computer after a reinstall")
            .body::<RestoreRequest>().answer::<Issued>(200));
    route!(r, get "/containers/{serial}/salt" salt,
        doc("The salt an act container's fingerprint is hashed with, for a restore")
            .answer::<lifecycle::FingerprintSalt>(200));
    route!(r, post "/updates" updates,
        doc("The automatic updates waiting for the container (none: null)")
            .body::<RequestBody>().answer::<Pending>(200));
    route!(r, post "/files/activate" file_activate,
        doc("Activate offline: the request file in, the update file out")
            .query::<FileQuery>().text_body().file_answer(200));
    route!(r, post "/files/return" file_return,
        doc("Return offline: the request file in, the update file out")
            .query::<FileQuery>().text_body().file_answer(200));
    route!(r, post "/files/reactivate" file_reactivate,
        doc("Re-activate offline: the request file in, the update file out")
            .query::<FileQuery>().text_body().file_answer(200));
    route!(r, post "/files/updates" file_updates,
        doc("The waiting updates as a file (none: no content)").text_body()
            .file_answer(200).empty_answer(204));
    route!(r, post "/files/receipt" file_receipt,
        doc("A receipt file").text_body().answer::<Confirmed>(200));
    r
}

pub fn configure(cfg: &mut web::ServiceConfig, limiter: web::Data<TicketLimiter>) {
    cfg.service(
        routes()
            .scope()
            .app_data(limiter)
            .app_data(web::PayloadConfig::new(MAX_MESSAGE + 4096)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32) -> TicketLimiter {
        TicketLimiter {
            per_minute,
            proxies: vec![],
            buckets: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn a_client_gets_a_burst_then_the_rate_and_an_ipv6_client_is_its_64() {
        let l = limiter(30);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        for i in 0..10 {
            // Each from another address of the same /64.
            let other: IpAddr = format!("2001:db8:1:2::{:x}", i + 2).parse().unwrap();
            l.take(other, t0).unwrap();
        }
        match l.take(a, t0) {
            Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, 2),
            other => panic!("{other:?}"),
        }
        // Another /64 and an IPv4 client have their own; two seconds later one more.
        l.take("2001:db8:1:3::1".parse().unwrap(), t0).unwrap();
        l.take("192.0.2.1".parse().unwrap(), t0).unwrap();
        l.take(a, t0 + std::time::Duration::from_secs(2)).unwrap();
        assert!(l.take(a, t0 + std::time::Duration::from_secs(2)).is_err());
        // A mapped IPv4 address is that IPv4 client.
        assert_eq!(
            bucket_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert!(limiter(0).take(a, t0).is_ok());
    }

    #[test]
    fn a_flood_of_addresses_keeps_memory_bounded() {
        let l = limiter(60);
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 10) {
            let _ = l.take(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_BUCKETS);
    }
}
