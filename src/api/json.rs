//! The JSON API under `/api/v1`, authenticated by HTTP Basic.
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::{request_error, ApiError};
use crate::domain::{Actor, Interface, Settings};
use crate::error::Error;
use crate::service::{activation, audit, catalog, orders, users, Core};

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

async fn list_customers(core: Core_, c: Caller) -> Res {
    ok(catalog::list_customers(&core, &c.0).await?)
}
async fn put_customer(core: Core_, c: Caller, body: web::Json<catalog::CustomerData>) -> Res {
    ok(catalog::put_customer(&core, &c.0, body.into_inner()).await?)
}
async fn get_customer(core: Core_, c: Caller, id: web::Path<String>) -> Res {
    ok(catalog::get_customer(&core, &c.0, id.into_inner()).await?)
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

async fn get_ticket(core: Core_, c: Caller, code: web::Path<String>) -> Res {
    ok(orders::get_ticket(&core, &c.0, &code).await?)
}
async fn get_license(core: Core_, c: Caller, id: web::Path<i64>) -> Res {
    ok(orders::get_license(&core, &c.0, id.into_inner()).await?)
}

async fn get_container(core: Core_, c: Caller, serial: web::Path<String>) -> Res {
    ok(activation::get_container(&core, &c.0, serial.into_inner()).await?)
}

#[derive(Deserialize)]
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
    Ok(HttpResponse::Accepted().json(serde_json::json!({"queued": true})))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    ticket: Option<String>,
    order_id: Option<i64>,
}

async fn history(core: Core_, c: Caller, q: web::Query<HistoryQuery>) -> Res {
    let q = q.into_inner();
    ok(audit::history(&core, &c.0, q.ticket, q.order_id).await?)
}

async fn health(core: Core_) -> HttpResponse {
    match core.db.ping().await {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "ok"})),
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
        .body(m.render(&core.stats))
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .service(
            web::scope("/api/v1")
                .route("/items", web::get().to(list_items))
                .route("/items", web::post().to(create_item))
                .route("/items/{item_id}", web::get().to(get_item))
                .route("/items/{item_id}", web::patch().to(change_item))
                .route("/customers", web::get().to(list_customers))
                .route("/customers", web::put().to(put_customer))
                .route("/customers/{external_id}", web::get().to(get_customer))
                .route("/orders", web::post().to(create_order))
                .route("/orders/{source}/{erp_order_id}", web::get().to(get_order))
                .route(
                    "/orders/{source}/{erp_order_id}/lines",
                    web::post().to(add_to_order),
                )
                .route("/tickets/{code}", web::get().to(get_ticket))
                .route("/licenses/{id}", web::get().to(get_license))
                .route("/containers/{serial}", web::get().to(get_container))
                .route(
                    "/containers/{serial}/licenses",
                    web::post().to(push_license),
                )
                .route("/settings", web::get().to(get_settings))
                .route("/settings", web::put().to(put_settings))
                .route("/users", web::get().to(list_users))
                .route("/users", web::post().to(add_user))
                .route("/users/{username}", web::patch().to(change_user))
                .route("/history", web::get().to(history)),
        );
}
