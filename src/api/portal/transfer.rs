//! The offline transfer's pages: the first step of each operation (activate, return,
//! re-activate, automatic updates: choose and upload the request file), then the two steps
//! they share (download the update file, upload the receipt file).
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::form::Form;
use super::views::{self, BASE};
use super::{
    posted, see_other, visit, visitor_token, Core_, Cx, Portal_, Visit, LOGIN_COOKIE,
    SESSION_COOKIE,
};
use crate::domain::ContainerType;
use crate::error::Error;
use crate::service::portal::{
    self, ActivateForm, ReactivateForm, RestoreForm, ReturnForm, UpdatesOutcome,
};

/// Which first step a ticket page is.
#[derive(Clone, Copy)]
enum Operation {
    Activate(Option<ContainerType>),
    Return,
    Reactivate,
}

/// A ticket's first-step page, with the refusal of a form just posted.
async fn ticket_page(
    core: &Core_,
    portal: &Portal_,
    v: &Visit,
    code: &str,
    op: Operation,
    error: Option<&Error>,
) -> HttpResponse {
    let s = match v.ticket_session() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let groups = match portal::overview(core, s, Some(code)).await {
        Ok(g) => g,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let g = &groups[0];
    let (p, lang) = (&portal.pages, v.cx.lang);
    let (name, title, body) = match op {
        Operation::Activate(b) => (
            "activate.html",
            "activate.title",
            views::activate(p, lang, g, b),
        ),
        Operation::Return => ("return.html", "return.title", views::deactivate(p, lang, g)),
        Operation::Reactivate => (
            "reactivate.html",
            "reactivate.title",
            views::reactivate(p, lang, g),
        ),
    };
    let status = error.map_or(StatusCode::OK, crate::api::status_of);
    let error = error.map(|e| views::refusal(p, lang, e));
    let title = portal.text(&v.cx, title);
    portal.page_with(&v.cx, status, name, &title, body, error, None)
}

#[derive(Deserialize)]
pub struct BindingQuery {
    binding: Option<String>,
}

pub async fn activate_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<BindingQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let op = Operation::Activate(views::binding_of(q.binding.as_deref()));
    ticket_page(&core, &portal, &v, &code, op, None).await
}

pub async fn return_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    ticket_page(&core, &portal, &v, &code, Operation::Return, None).await
}

pub async fn reactivate_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    ticket_page(&core, &portal, &v, &code, Operation::Reactivate, None).await
}

/// The uploaded file `name` (a request or receipt), which the form requires.
fn uploaded(form: &Form, name: &str) -> Result<String, Error> {
    form.file_text(name)?
        .ok_or_else(|| Error::invalid(name, "choose the file to upload"))
}

/// Runs the first step of a ticket's operation: on success the transfer goes on with its
/// second step; a refusal shows on the same page.
async fn first_step(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: String,
    body: web::Bytes,
    op: Operation,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match posted(&portal, &v, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let s = match v.ticket_session() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let op = match op {
        Operation::Activate(_) => Operation::Activate(views::binding_of(form.get("binding"))),
        other => other,
    };
    let result = async {
        let licenses = form.licenses()?;
        let request = uploaded(&form, "request")?;
        let ticket = code.clone();
        match op {
            Operation::Activate(binding) => {
                let f = ActivateForm {
                    ticket,
                    binding,
                    licenses,
                    request,
                };
                portal::activate(&core, s, f).await
            }
            Operation::Return => {
                portal::deactivate(
                    &core,
                    s,
                    ReturnForm {
                        ticket,
                        licenses,
                        request,
                    },
                )
                .await
            }
            Operation::Reactivate => {
                let conditions_accepted = form.get("accept") == Some("yes");
                let f = ReactivateForm {
                    ticket,
                    licenses,
                    request,
                    conditions_accepted,
                };
                portal::reactivate(&core, s, f).await
            }
        }
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("{BASE}/transfer")),
        Err(e) => ticket_page(&core, &portal, &v, &code, op, Some(&e)).await,
    }
}

pub async fn activate(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    first_step(
        core,
        portal,
        req,
        code.into_inner(),
        body,
        Operation::Activate(None),
    )
    .await
}

pub async fn deactivate(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    first_step(
        core,
        portal,
        req,
        code.into_inner(),
        body,
        Operation::Return,
    )
    .await
}

pub async fn reactivate(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    first_step(
        core,
        portal,
        req,
        code.into_inner(),
        body,
        Operation::Reactivate,
    )
    .await
}

#[derive(Deserialize)]
pub struct StepQuery {
    step: Option<String>,
}

/// The transfer's page for step `step`, with the refusal of a receipt just posted.
fn transfer_at(
    portal: &Portal_,
    v: &Visit,
    receipt_step: bool,
    error: Option<&Error>,
) -> HttpResponse {
    let Some(t) = v.session.as_ref().and_then(|s| s.flow.as_ref()) else {
        let heading = portal.text(&v.cx, "transfer.none");
        let body = serde_json::json!({"heading": heading});
        return portal.page(&v.cx, StatusCode::NOT_FOUND, "message.html", &heading, body);
    };
    let step = match (&t.done, receipt_step) {
        (Some(_), _) => 4,
        (None, true) => 3,
        (None, false) => 2,
    };
    let title = portal.text(&v.cx, &format!("transfer.kind_{}", t.kind.as_str()));
    let status = error.map_or(StatusCode::OK, crate::api::status_of);
    let error = error.map(|e| views::refusal(&portal.pages, v.cx.lang, e));
    let body = views::transfer(&portal.pages, v.cx.lang, t, step);
    portal.page_with(&v.cx, status, "transfer.html", &title, body, error, None)
}

pub async fn transfer_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<StepQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    transfer_at(&portal, &v, q.step.as_deref() == Some("receipt"), None)
}

/// The second step's file: the update, as the gateway names it.
pub async fn update_file(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let v = visit!(core, portal, req);
    match v.session.as_ref().and_then(|s| s.flow.as_ref()) {
        Some(t) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", t.file_name()),
            ))
            .body(t.update.clone()),
        None => transfer_at(&portal, &v, false, None),
    }
}

pub async fn receipt(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match posted(&portal, &v, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let Some(s) = &v.session else {
        return transfer_at(&portal, &v, true, None);
    };
    let result = match uploaded(&form, "receipt") {
        Ok(text) => portal::confirm_receipt(&core, s, text).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("{BASE}/transfer")),
        Err(e) => transfer_at(&portal, &v, true, Some(&e)),
    }
}

#[derive(Deserialize)]
pub struct SerialQuery {
    #[serde(default)]
    serial: String,
}

/// A page open to anyone (automatic updates, restore: the container's signed request is
/// the credential); a visitor without a session gets a form token of their own.
#[allow(clippy::too_many_arguments)]
fn open_page(
    portal: &Portal_,
    req: &HttpRequest,
    mut cx: Cx,
    name: &str,
    title: &str,
    body: serde_json::Value,
    error: Option<&Error>,
    notice: Option<String>,
) -> HttpResponse {
    let mut fresh = None;
    if !cx.logged_in {
        let (token, new) = visitor_token(req);
        cx.csrf = token.clone();
        fresh = new.then_some(token);
    }
    let title = portal.text(&cx, title);
    let status = error.map_or(StatusCode::OK, crate::api::status_of);
    let error = error.map(|e| views::refusal(&portal.pages, cx.lang, e));
    let mut r = portal.page_with(&cx, status, name, &title, body, error, notice);
    if let Some(token) = fresh {
        r.headers_mut().append(
            header::SET_COOKIE,
            portal.cookie(LOGIN_COOKIE, &token, 86_400),
        );
    }
    r
}

fn updates_form(
    portal: &Portal_,
    req: &HttpRequest,
    cx: Cx,
    serial: &str,
    error: Option<&Error>,
    notice: Option<String>,
) -> HttpResponse {
    let body = serde_json::json!({"serial": serial});
    open_page(
        portal,
        req,
        cx,
        "updates.html",
        "updates.title",
        body,
        error,
        notice,
    )
}

/// On to the transfer's second step, with the cookie of a session made just now.
fn to_transfer(portal: &Portal_, token: Option<String>) -> HttpResponse {
    let mut r = see_other(&format!("{BASE}/transfer"));
    if let Some(token) = token {
        r.headers_mut().append(
            header::SET_COOKIE,
            portal.cookie(SESSION_COOKIE, &token, portal.session_secs),
        );
    }
    r
}

pub async fn updates_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<SerialQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    updates_form(&portal, &req, v.cx, &q.serial, None, None)
}

pub async fn updates(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match posted(&portal, &v, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let serial = form.get("serial").unwrap_or("").trim().to_string();
    let result = match uploaded(&form, "request") {
        Ok(request) => portal::pull_updates(&core, v.session.as_ref(), &serial, request).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(UpdatesOutcome::Waiting { token, .. }) => to_transfer(&portal, token),
        Ok(UpdatesOutcome::Nothing { serial }) => {
            let notice = portal
                .text(&v.cx, "updates.nothing")
                .replace("{serial}", &serial);
            updates_form(&portal, &req, v.cx, &serial, None, Some(notice))
        }
        Err(e) => updates_form(&portal, &req, v.cx, &serial, Some(&e), None),
    }
}

/// The restore page: the old container's serial first; once it is known, the salt this
/// computer's traits are hashed with and the form for the request and traits files.
async fn restore_form(
    core: &Core_,
    portal: &Portal_,
    req: &HttpRequest,
    cx: Cx,
    serial: &str,
    error: Option<&Error>,
) -> HttpResponse {
    let serial = serial.trim();
    let mut body = serde_json::json!({"serial": serial, "salt": null, "firm_code": null});
    let mut lookup = None;
    if !serial.is_empty() {
        match portal::restore_salt(core, serial).await {
            Ok((salt, firm_code)) => {
                body["salt"] = salt.into();
                body["firm_code"] = firm_code.into();
            }
            Err(e) => lookup = Some(e),
        }
    }
    let error = error.or(lookup.as_ref());
    open_page(
        portal,
        req,
        cx,
        "restore.html",
        "restore.title",
        body,
        error,
        None,
    )
}

pub async fn restore_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<SerialQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    restore_form(&core, &portal, &req, v.cx, &q.serial, None).await
}

pub async fn restore(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match posted(&portal, &v, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let old_serial = form.get("serial").unwrap_or("").trim().to_string();
    let result = match (uploaded(&form, "request"), uploaded(&form, "traits")) {
        (Ok(request), Ok(traits)) => {
            let f = RestoreForm {
                old_serial: old_serial.clone(),
                request,
                traits,
            };
            portal::restore(&core, v.session.as_ref(), f).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok((_, token)) => to_transfer(&portal, token),
        Err(e) => restore_form(&core, &portal, &req, v.cx, &old_serial, Some(&e)).await,
    }
}
