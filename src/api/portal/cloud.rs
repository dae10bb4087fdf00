//! The overview's cloud containers, for a customer's session: make one, activate a ticket's
//! licenses into it, download a new credential file, revoke the one in force.
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::views::BASE;
use super::{posted, see_other, visit, Core_, Portal_};
use crate::service::portal::cloud;

/// Where the overview shows the cloud containers.
fn back() -> HttpResponse {
    see_other(&format!("{BASE}/tickets#cloud"))
}

/// `POST /cloud`: a new cloud container.
pub async fn create(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    run(core, portal, req, body, None).await
}

/// `POST /cloud/{serial}/activate|credential|revoke`.
pub async fn act(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    run(core, portal, req, body, Some(path.into_inner())).await
}

async fn run(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
    target: Option<(String, String)>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let s = match v.ticket_session() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let form = match posted(&portal, &v, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some((serial, what)) = target else {
        return match cloud::create(&core, s).await {
            Ok(_) => back(),
            Err(e) => portal.refused(&v.cx, &e),
        };
    };
    let done = match what.as_str() {
        "activate" => cloud::activate(&core, s, &serial, form.get("ticket").unwrap_or(""))
            .await
            .map(|_| back()),
        "credential" => cloud::credential(&core, s, &serial).await.map(|f| {
            HttpResponse::Ok()
                .content_type("application/x-pem-file")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", f.file_name),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(f.content)
        }),
        "revoke" => cloud::revoke(&core, s, &serial).await.map(|_| back()),
        _ => return HttpResponse::NotFound().finish(),
    };
    done.unwrap_or_else(|e| portal.refused(&v.cx, &e))
}
