//! The activation gateway under `/api/v1/gateway`: no vendor credentials. The ticket is the
//! credential for ticket info and activation; a container's signed request or receipt is
//! the credential for everything else. Online as JSON, offline as request/update/receipt
//! files posted and downloaded as they are.
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::ApiError;
use crate::domain::Interface;
use crate::error::Error;
use crate::protocol::MAX_MESSAGE;
use crate::protocol::{ActivateRequest, Issued, ReactivateRequest, RestoreRequest, ReturnRequest};
use crate::service::Core;
use crate::service::{activation, lifecycle};

type Res = Result<HttpResponse, ApiError>;
type Core_ = web::Data<Core>;

fn ok<T: serde::Serialize>(v: T) -> Res {
    Ok(HttpResponse::Ok().json(v))
}

async fn ticket(core: Core_, code: web::Path<String>) -> Res {
    ok(activation::ticket_info(&core, &code).await?)
}
async fn template(core: Core_, firm_code: web::Path<i64>) -> Res {
    ok(activation::template(&core, firm_code.into_inner()).await?)
}
async fn activate(core: Core_, body: web::Json<ActivateRequest>) -> Res {
    ok(activation::activate(&core, Interface::Gateway, body.into_inner()).await?)
}

async fn reactivate(core: Core_, body: web::Json<ReactivateRequest>) -> Res {
    ok(lifecycle::reactivate(&core, Interface::Gateway, body.into_inner()).await?)
}
async fn restore(core: Core_, body: web::Json<RestoreRequest>) -> Res {
    ok(lifecycle::restore(&core, Interface::Gateway, body.into_inner()).await?)
}
async fn salt(core: Core_, serial: web::Path<String>) -> Res {
    ok(lifecycle::fingerprint_salt(&core, serial.into_inner()).await?)
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    request: String,
}
async fn updates(core: Core_, body: web::Json<RequestBody>) -> Res {
    let u = activation::pull_updates(&core, Interface::Gateway, &body.request).await?;
    ok(serde_json::json!({ "update": u }))
}

/// A message file as the body: UTF-8 text, at most `MAX_MESSAGE` bytes.
fn file_text(body: &web::Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| Error::InvalidMessage("the file is not UTF-8 text".into()).into())
}

/// `license=1,2,3` in the query.
#[derive(Deserialize)]
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

async fn file_activate(core: Core_, q: web::Query<FileQuery>, body: web::Bytes) -> Res {
    let ticket = q
        .ticket
        .clone()
        .ok_or_else(|| Error::invalid("ticket", "the query must name the ticket"))?;
    let req = ActivateRequest {
        ticket,
        licenses: q.licenses()?,
        request: file_text(&body)?.to_string(),
    };
    Ok(update_file(
        activation::activate(&core, Interface::Files, req).await?,
    ))
}
async fn file_reactivate(core: Core_, q: web::Query<FileQuery>, body: web::Bytes) -> Res {
    let ticket = q
        .ticket
        .clone()
        .ok_or_else(|| Error::invalid("ticket", "the query must name the ticket"))?;
    let req = ReactivateRequest {
        ticket,
        licenses: q.licenses()?,
        request: file_text(&body)?.to_string(),
    };
    Ok(update_file(
        lifecycle::reactivate(&core, Interface::Files, req).await?,
    ))
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/gateway")
            .app_data(web::PayloadConfig::new(MAX_MESSAGE + 4096))
            .route("/tickets/{code}", web::get().to(ticket))
            .route("/template/{firm_code}", web::get().to(template))
            .route("/activate", web::post().to(activate))
            .route("/receipt", web::post().to(receipt))
            .route("/return", web::post().to(deactivate))
            .route("/reactivate", web::post().to(reactivate))
            .route("/restore", web::post().to(restore))
            .route("/containers/{serial}/salt", web::get().to(salt))
            .route("/updates", web::post().to(updates))
            .route("/files/activate", web::post().to(file_activate))
            .route("/files/return", web::post().to(file_return))
            .route("/files/reactivate", web::post().to(file_reactivate))
            .route("/files/updates", web::post().to(file_updates))
            .route("/files/receipt", web::post().to(file_receipt)),
    );
}
