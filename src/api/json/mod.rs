//! The JSON API under `/api/v1`, authenticated by HTTP Basic: the handlers here, the route
//! table with what the OpenAPI document says of each route in `routes`.
mod routes;

pub use routes::routes;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{report_stream, request_error, ApiError};
use crate::domain::{Actor, Interface, Settings, TicketState};
use crate::error::Error;
use crate::service::lifecycle::{self, BlacklistAdd, DecisionBody};
use crate::service::reports::{self, Report};
use crate::service::{
    activation, audit, catalog, jobs, mail, orders, production, users, webhooks, Core,
};

type Res = Result<HttpResponse, ApiError>;
type Core_ = web::Data<Core>;

/// The caller, from HTTP Basic credentials.
pub struct Caller(pub Actor);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let core = req.app_data::<Core_>().cloned();
        let header = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        Box::pin(async move {
            let core = core.ok_or_else(|| Error::internal("no core"))?;
            let (user, pass) = header
                .as_deref()
                .and_then(|h| h.strip_prefix("Basic "))
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
                .ok_or(Error::Unauthenticated)?;
            Ok(Caller(
                users::authenticate(&core, &user, &pass, Interface::Json).await?,
            ))
        })
    }
}

/// Answers of one or two fields that no service type carries.
#[derive(Serialize, JsonSchema)]
struct Queued {
    queued: bool,
}
#[derive(Serialize, JsonSchema)]
struct Assigned {
    assigned: bool,
}
#[derive(Serialize, JsonSchema)]
struct Blacklisted {
    blacklisted: bool,
}
#[derive(Serialize, JsonSchema)]
struct Removed {
    removed: bool,
}
#[derive(Serialize, JsonSchema)]
struct Deleted {
    deleted: bool,
}
/// The deleted customer's external id and the serials of the containers that lost their owner.
#[derive(Serialize, JsonSchema)]
struct CustomerDeleted {
    deleted: String,
    containers: Vec<String>,
}
/// The ids of the licenses the split made.
#[derive(Serialize, JsonSchema)]
struct Split {
    licenses: Vec<i64>,
}
/// The ids of the licenses the reset took out of the container.
#[derive(Serialize, JsonSchema)]
struct Reset {
    deleted: Vec<i64>,
}
#[derive(Serialize, JsonSchema)]
struct ConnectorLog {
    notifications: Vec<crate::service::connectors::NotificationView>,
    writebacks: Vec<crate::service::connectors::WriteBackView>,
}
#[derive(Serialize, JsonSchema)]
struct JobRun {
    job: String,
    detail: String,
}
/// The audit key's public half (hex) and the checkpoints it signed.
#[derive(Serialize, JsonSchema)]
struct Checkpoints {
    public_key: String,
    checkpoints: Vec<audit::Checkpoint>,
}
/// No checkpoint made: the newest one names the head already.
#[derive(Serialize, JsonSchema)]
struct NoCheckpoint {
    checkpoint: (),
    message: &'static str,
}

fn ok<T: serde::Serialize>(v: T) -> Res {
    Ok(HttpResponse::Ok().json(v))
}

fn created<T: serde::Serialize>(v: T) -> Res {
    Ok(HttpResponse::Created().json(v))
}

async fn list_items(core: Core_, c: Caller) -> Res {
    ok(catalog::list_items(&core, &c.0).await?)
}
async fn create_item(core: Core_, c: Caller, body: web::Json<catalog::NewItem>) -> Res {
    created(catalog::create_item(&core, &c.0, body.into_inner()).await?)
}
async fn get_item(core: Core_, c: Caller, id: web::Path<String>) -> Res {
    ok(catalog::get_item(&core, &c.0, id.into_inner()).await?)
}
async fn change_item(
    core: Core_,
    c: Caller,
    id: web::Path<String>,
    body: web::Json<catalog::ItemChange>,
) -> Res {
    ok(catalog::change_item(&core, &c.0, id.into_inner(), body.into_inner()).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CustomersQuery {
    /// Only this scope's customers (empty: the vendor's own); none: every scope's.
    scope: Option<String>,
    /// The external id of the last customer of the page before, of `after_scope`.
    after: Option<String>,
    after_scope: Option<String>,
    limit: Option<i64>,
}
async fn list_customers(core: Core_, c: Caller, q: web::Query<CustomersQuery>) -> Res {
    let q = q.into_inner();
    let page = catalog::CustomerPage {
        scope: q.scope,
        after: q.after,
        after_scope: q.after_scope,
        limit: q.limit,
    };
    ok(catalog::list_customers(&core, &c.0, page).await?)
}
/// `?scope=…` beside a customer's external id: whose id it is (none: the vendor's).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScopeQuery {
    #[serde(default)]
    scope: String,
}
async fn delete_customer(
    core: Core_,
    c: Caller,
    id: web::Path<String>,
    q: web::Query<ScopeQuery>,
) -> Res {
    let id = id.into_inner();
    let containers =
        catalog::delete_customer(&core, &c.0, q.into_inner().scope, id.clone()).await?;
    ok(CustomerDeleted {
        deleted: id,
        containers,
    })
}
async fn put_customer(core: Core_, c: Caller, body: web::Json<catalog::CustomerData>) -> Res {
    ok(catalog::put_customer(&core, &c.0, body.into_inner()).await?)
}
async fn get_customer(
    core: Core_,
    c: Caller,
    id: web::Path<String>,
    q: web::Query<ScopeQuery>,
) -> Res {
    ok(catalog::get_customer(&core, &c.0, q.into_inner().scope, id.into_inner()).await?)
}

async fn create_order(core: Core_, c: Caller, body: web::Json<orders::NewOrder>) -> Res {
    let view = orders::create_order(&core, &c.0, body.into_inner()).await?;
    if view.created {
        created(view)
    } else {
        ok(view)
    }
}
async fn get_order(core: Core_, c: Caller, p: web::Path<(String, String)>) -> Res {
    let (source, id) = p.into_inner();
    ok(orders::get_order(&core, &c.0, source, id).await?)
}
async fn add_to_order(
    core: Core_,
    c: Caller,
    p: web::Path<(String, String)>,
    body: web::Json<orders::AddToOrder>,
) -> Res {
    let (source, id) = p.into_inner();
    let view = orders::add_to_order(&core, &c.0, source, id, body.into_inner()).await?;
    if view.created {
        created(view)
    } else {
        ok(view)
    }
}

/// `PUT /tickets/{code}/state`: a customer's ticket disabled or enabled again.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TicketStateChange {
    state: TicketState,
    #[serde(default)]
    reason: String,
}
async fn set_ticket_state(
    core: Core_,
    c: Caller,
    code: web::Path<String>,
    body: web::Json<TicketStateChange>,
) -> Res {
    let b = body.into_inner();
    let enabled = match b.state {
        TicketState::Active => true,
        TicketState::Disabled => false,
        TicketState::Production => {
            return Err(Error::invalid(
                "state",
                "a ticket is set \"active\" or \"disabled\"; production tickets are made by \
                 production orders",
            )
            .into())
        }
    };
    ok(orders::set_ticket_enabled(&core, &c.0, &code, enabled, b.reason).await?)
}

async fn resend_ticket_mail(core: Core_, c: Caller, p: web::Path<(String, String)>) -> Res {
    let (source, id) = p.into_inner();
    orders::resend_ticket_mail_of(&core, &c.0, source, id).await?;
    Ok(HttpResponse::Accepted().json(Queued { queued: true }))
}

async fn create_production_order(
    core: Core_,
    c: Caller,
    body: web::Json<production::NewProductionOrder>,
) -> Res {
    let view = production::create(&core, &c.0, body.into_inner()).await?;
    if view.created {
        created(view)
    } else {
        ok(view)
    }
}
async fn get_production_order(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    ok(production::get(&core, &c.0, id.into_inner()).await?)
}
async fn cancel_production_order(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    ok(production::cancel(&core, &c.0, id.into_inner()).await?)
}
async fn program_dongle(
    core: Core_,
    c: Caller,
    id: web::Path<i64>,
    body: web::Json<production::ProgramRequest>,
) -> Res {
    ok(production::program(&core, &c.0, id.into_inner(), body.into_inner()).await?)
}
async fn dongle_receipt(
    core: Core_,
    c: Caller,
    id: web::Path<i64>,
    body: web::Json<production::ReceiptRequest>,
) -> Res {
    ok(production::receipt(&core, &c.0, id.into_inner(), body.into_inner()).await?)
}
async fn dongle_failed(
    core: Core_,
    c: Caller,
    id: web::Path<i64>,
    body: web::Json<production::FailedRequest>,
) -> Res {
    ok(production::failed(&core, &c.0, id.into_inner(), body.into_inner()).await?)
}
async fn recycle_dongle(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<production::RecycleRequest>,
) -> Res {
    ok(production::recycle(&core, &c.0, serial.into_inner(), body.into_inner()).await?)
}

async fn write_off_dongle(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<production::LostRequest>,
) -> Res {
    ok(production::write_off(&core, &c.0, serial.into_inner(), body.into_inner()).await?)
}

async fn get_ticket(core: Core_, c: Caller, code: web::Path<String>) -> Res {
    ok(orders::get_ticket(&core, &c.0, &code).await?)
}
async fn get_license(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    ok(orders::get_license(&core, &c.0, id.into_inner()).await?)
}

async fn get_container(core: Core_, c: Caller, serial: web::Path<String>) -> Res {
    ok(activation::get_container(&core, &c.0, serial.into_inner()).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PushLicense {
    license_id: i64,
}
async fn push_license(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<PushLicense>,
) -> Res {
    activation::push_license(&core, &c.0, serial.into_inner(), body.license_id).await?;
    Ok(HttpResponse::Accepted().json(Queued { queued: true }))
}

async fn withdraw(core: Core_, c: Caller, body: web::Json<lifecycle::WithdrawRequest>) -> Res {
    ok(lifecycle::withdraw(&core, &c.0, body.into_inner()).await?)
}
async fn replace(core: Core_, c: Caller, body: web::Json<lifecycle::ReplaceRequest>) -> Res {
    ok(lifecycle::replace(&core, &c.0, body.into_inner()).await?)
}
async fn split(core: Core_, c: Caller, body: web::Json<lifecycle::SplitRequest>) -> Res {
    let licenses = lifecycle::split(&core, &c.0, body.into_inner()).await?;
    ok(Split { licenses })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FirmQuery {
    firm_code: Option<i64>,
}
async fn reset(core: Core_, c: Caller, serial: web::Path<String>, q: web::Query<FirmQuery>) -> Res {
    let deleted = lifecycle::reset(&core, &c.0, serial.into_inner(), q.firm_code).await?;
    ok(Reset { deleted })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    customer_id: String,
    /// Whose customer id it is (none: the vendor's).
    #[serde(default)]
    customer_scope: String,
}
async fn assign(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<AssignBody>,
) -> Res {
    let body = body.into_inner();
    let (scope, customer) = (body.customer_scope, body.customer_id);
    lifecycle::assign(&core, &c.0, serial.into_inner(), scope, customer).await?;
    ok(Assigned { assigned: true })
}

async fn decide_manipulation(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<lifecycle::ManipulationDecision>,
) -> Res {
    let (serial, body) = (serial.into_inner(), body.into_inner());
    lifecycle::decide_manipulation(&core, &c.0, serial.clone(), body).await?;
    ok(activation::get_container(&core, &c.0, serial).await?)
}

async fn blacklist_add(core: Core_, c: Caller, body: web::Json<BlacklistAdd>) -> Res {
    lifecycle::blacklist_add(&core, &c.0, body.into_inner()).await?;
    created(Blacklisted { blacklisted: true })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    reason: String,
    firm_code: Option<i64>,
}
async fn blacklist_remove(
    core: Core_,
    c: Caller,
    serial: web::Path<String>,
    body: web::Json<RemoveBody>,
) -> Res {
    let b = body.into_inner();
    lifecycle::blacklist_remove(&core, &c.0, serial.into_inner(), b.firm_code, b.reason).await?;
    ok(Removed { removed: true })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StateQuery {
    state: Option<String>,
}
async fn list_approvals(core: Core_, c: Caller, q: web::Query<StateQuery>) -> Res {
    ok(lifecycle::list_approvals(&core, &c.0, q.into_inner().state).await?)
}
async fn approve(core: Core_, c: Caller, id: web::Path<i64>, body: web::Json<DecisionBody>) -> Res {
    ok(lifecycle::decide(&core, &c.0, id.into_inner(), true, body.into_inner().reason).await?)
}
async fn deny(core: Core_, c: Caller, id: web::Path<i64>, body: web::Json<DecisionBody>) -> Res {
    ok(lifecycle::decide(
        &core,
        &c.0,
        id.into_inner(),
        false,
        body.into_inner().reason,
    )
    .await?)
}

/// `GET /reports/{name}?…&format=csv|json`: the report's parameters are query parameters.
async fn report(
    core: Core_,
    c: Caller,
    name: web::Path<String>,
    q: web::Query<std::collections::HashMap<String, String>>,
) -> Res {
    let mut q = q.into_inner();
    let format = report_stream::Format::parse(q.remove("format").as_deref())?;
    let report = Report::parse(&name, &reports::Params::from_pairs(q)?)?;
    let (reading, first) = reports::Reading::first(&core, &c.0, report, reports::PAGE_ROWS).await?;
    Ok(report_stream::respond(core, reading, first, format)?)
}

async fn list_mail(core: Core_, c: Caller, q: web::Query<StateQuery>) -> Res {
    ok(mail::list(&core, &c.0, q.into_inner().state).await?)
}
async fn requeue_mail(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    mail::requeue(&core, &c.0, id.into_inner()).await?;
    ok(Queued { queued: true })
}
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConnectorQuery {
    connector: Option<String>,
}
async fn connector_log(core: Core_, c: Caller, q: web::Query<ConnectorQuery>) -> Res {
    let (notes, writebacks) =
        crate::service::connectors::list(&core, &c.0, q.into_inner().connector).await?;
    ok(ConnectorLog {
        notifications: notes,
        writebacks,
    })
}

async fn create_webhook(core: Core_, c: Caller, body: web::Json<webhooks::NewSubscription>) -> Res {
    created(webhooks::create(&core, &c.0, body.into_inner()).await?)
}
async fn list_webhooks(core: Core_, c: Caller) -> Res {
    ok(webhooks::list(&core, &c.0).await?)
}
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WebhookChange {
    active: bool,
}
async fn change_webhook(
    core: Core_,
    c: Caller,
    id: web::Path<i64>,
    body: web::Json<WebhookChange>,
) -> Res {
    ok(webhooks::set_active(&core, &c.0, id.into_inner(), body.active).await?)
}
async fn delete_webhook(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    webhooks::delete(&core, &c.0, id.into_inner()).await?;
    ok(Deleted { deleted: true })
}
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    webhook: Option<i64>,
    state: Option<String>,
}
async fn list_deliveries(core: Core_, c: Caller, q: web::Query<DeliveryQuery>) -> Res {
    let q = q.into_inner();
    ok(webhooks::deliveries(&core, &c.0, q.webhook, q.state).await?)
}
async fn requeue_delivery(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    webhooks::requeue(&core, &c.0, id.into_inner()).await?;
    ok(Queued { queued: true })
}

async fn requeue_writeback(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    crate::service::connectors::requeue_writeback(&core, &c.0, id.into_inner()).await?;
    ok(Queued { queued: true })
}

async fn list_jobs(core: Core_, c: Caller) -> Res {
    ok(jobs::list(&core, &c.0).await?)
}
async fn run_job(core: Core_, c: Caller, name: web::Path<String>) -> Res {
    let detail = jobs::run_now(&core, &c.0, &name).await?;
    ok(JobRun {
        job: name.into_inner(),
        detail,
    })
}

async fn get_settings(core: Core_, c: Caller) -> Res {
    ok(catalog::get_settings(&core, &c.0).await?)
}
async fn put_settings(core: Core_, c: Caller, body: web::Json<Settings>) -> Res {
    ok(catalog::put_settings(&core, &c.0, body.into_inner()).await?)
}

async fn list_users(core: Core_, c: Caller) -> Res {
    ok(users::list_users(&core, &c.0).await?)
}
async fn add_user(core: Core_, c: Caller, body: web::Json<users::NewUser>) -> Res {
    created(users::add_user(&core, &c.0, body.into_inner()).await?)
}
async fn change_user(
    core: Core_,
    c: Caller,
    name: web::Path<String>,
    body: web::Json<users::UserChange>,
) -> Res {
    ok(users::change_user(&core, &c.0, name.into_inner(), body.into_inner()).await?)
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    ticket: Option<String>,
    order_id: Option<i64>,
    serial: Option<String>,
    license_id: Option<i64>,
}

async fn history(core: Core_, c: Caller, q: web::Query<HistoryQuery>) -> Res {
    let q = q.into_inner();
    ok(audit::history(&core, &c.0, q.ticket, q.order_id, q.serial, q.license_id).await?)
}

async fn list_checkpoints(core: Core_, c: Caller) -> Res {
    let list = audit::checkpoints(&core, &c.0).await?;
    let key = audit::public_key(&core, &c.0).await?;
    ok(Checkpoints {
        public_key: key,
        checkpoints: list,
    })
}
async fn sign_checkpoint(core: Core_, c: Caller) -> Res {
    match audit::checkpoint(&core, &c.0).await? {
        Some(k) => created(k),
        None => ok(NoCheckpoint {
            checkpoint: (),
            message: "the newest checkpoint names the history's head already",
        }),
    }
}

async fn health(core: Core_) -> HttpResponse {
    match core.health().await {
        Ok(_) => {
            let warnings = core.health_warnings();
            for w in &warnings {
                tracing::warn!("health check: {w}");
            }
            let mut body = serde_json::json!({"status": "ok", "database": "ok"});
            if !warnings.is_empty() {
                body["warnings"] = serde_json::json!(warnings);
            }
            HttpResponse::Ok().json(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"status": "unavailable", "database": "error"}))
        }
    }
}

async fn metrics(core: Core_, m: web::Data<super::metrics::Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(m.render(core.stats(), core.writer_stats()))
}

/// The JSON extractor's limits and errors: a body over the limit is refused from its
/// Content-Length before it is read; malformed JSON names what was wrong.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError as J;
            match &err {
                J::OverflowKnownLength { .. } | J::Overflow { .. } => request_error(
                    "payload_too_large",
                    StatusCode::PAYLOAD_TOO_LARGE,
                    err.to_string(),
                ),
                J::ContentType => request_error(
                    "malformed_request",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Content-Type must be application/json".into(),
                ),
                J::Deserialize(e) => request_error(
                    "malformed_request",
                    StatusCode::BAD_REQUEST,
                    format!("malformed JSON: {e}"),
                ),
                _ => request_error(
                    "malformed_request",
                    StatusCode::BAD_REQUEST,
                    err.to_string(),
                ),
            }
        })
}

/// A query string or a path segment that does not parse (an unknown parameter, a number
/// that is not one) is a 400 in the same JSON error form as the rest, naming the part.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        request_error(
            "malformed_request",
            StatusCode::BAD_REQUEST,
            format!("query string: {err}"),
        )
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        request_error(
            "malformed_request",
            StatusCode::BAD_REQUEST,
            format!("path: {err}"),
        )
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .service(routes().scope());
}
