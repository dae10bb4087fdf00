//! Self-registration by e-mail (the form, the link's page, its confirmation) and taking a
//! trial license. The registration's pages are routed only when `portal_self_registration`
//! is on (trials also show to single sign-on sessions, whose customer is known).
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::form::Form;
use super::views::{self, Cx, BASE};
use super::{
    cookie, posted, see_other, token_matches, visit, visitor_token, Core_, Portal, Portal_,
    LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::service::portal::{self, register};

/// The registration form and the link's page: template and the text of their title.
const FORM: (&str, &str) = ("register.html", "register.title");
const VERIFY: (&str, &str) = ("register_verify.html", "register.verify_title");

/// A page for a visitor without a session: its forms carry the visitor's token (the cookie
/// is set if the visitor had none).
fn visitor_page(
    portal: &Portal,
    req: &HttpRequest,
    mut cx: Cx,
    status: StatusCode,
    (name, title_key): (&str, &str),
    body: serde_json::Value,
    error: Option<serde_json::Value>,
) -> HttpResponse {
    let (token, fresh) = visitor_token(req);
    cx.csrf = token.clone();
    let title = portal.text(&cx, title_key);
    let mut r = portal.page_with(&cx, status, name, &title, body, error, None);
    if fresh {
        let c = portal.cookie(LOGIN_COOKIE, &token, 86_400);
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// The form's token checked against the visitor's cookie (there is no session to bind it
/// to); the form, or the page that says it expired.
fn visitor_form(
    portal: &Portal,
    cx: &Cx,
    req: &HttpRequest,
    body: &[u8],
) -> Result<Form, Box<HttpResponse>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let form = Form::parse(ct, body).map_err(|e| Box::new(portal.refused(cx, &e)))?;
    let expected = cookie(req, LOGIN_COOKIE).unwrap_or_default();
    if !token_matches(form.get("csrf").unwrap_or(""), &expected) {
        tracing::warn!(path = %req.path(), "portal form without its token refused");
        return Err(Box::new(portal.refused_as(
            cx,
            StatusCode::FORBIDDEN,
            "csrf",
        )));
    }
    Ok(form)
}

/// `/portal/register`: the form.
pub async fn page(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let v = visit!(core, portal, req);
    let body = views::register("", "", None);
    visitor_page(&portal, &req, v.cx, StatusCode::OK, FORM, body, None)
}

/// The form sent: a link by mail (the answer is the same for any address).
pub async fn request(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match visitor_form(&portal, &v.cx, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let email = form.get("email").unwrap_or("").trim().to_string();
    let name = form.get("name").unwrap_or("").to_string();
    let client = portal.client(&req);
    match register::request(&core, client, &email, &name, v.cx.lang).await {
        Ok(register::RegisterOutcome::Sent) => {
            let title = portal.text(&v.cx, "register.sent_title");
            let notice = portal
                .text(&v.cx, "register.sent")
                .replace("{email}", &email);
            portal.page_with(
                &v.cx,
                StatusCode::OK,
                "message.html",
                &title,
                serde_json::json!({"heading": title}),
                None,
                Some(notice),
            )
        }
        Ok(register::RegisterOutcome::HeldBack { until }) => {
            let body = views::register(&email, &name, Some(views::when(v.cx.lang, until)));
            let status = StatusCode::TOO_MANY_REQUESTS;
            visitor_page(&portal, &req, v.cx, status, FORM, body, None)
        }
        Err(e) => {
            let error = Some(views::refusal(&portal.pages, v.cx.lang, &e));
            let body = views::register(&email, &name, None);
            let status = crate::api::status_of(&e);
            visitor_page(&portal, &req, v.cx, status, FORM, body, error)
        }
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    token: String,
}

/// The mail's link: a page with one button. Opening the link changes nothing (a mail
/// scanner that fetches links takes nothing); the customer's click does.
pub async fn verify_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<VerifyQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let body = serde_json::json!({"token": q.token});
    visitor_page(&portal, &req, v.cx, StatusCode::OK, VERIFY, body, None)
}

/// The click: the address is proven and the customer signed in.
pub async fn verify(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match visitor_form(&portal, &v.cx, &req, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match register::complete(&core, form.get("token").unwrap_or("")).await {
        Ok((token, _session)) => {
            if let Some(old) = &v.session {
                if let Err(e) = portal::end_session(&core, old).await {
                    tracing::warn!(cause = %e, "ending the previous portal session");
                }
            }
            let mut r = see_other(&format!("{BASE}/tickets"));
            let headers = r.headers_mut();
            headers.append(
                header::SET_COOKIE,
                portal.cookie(SESSION_COOKIE, &token, portal.session_secs),
            );
            headers.append(header::SET_COOKIE, portal.cookie(LOGIN_COOKIE, "", 0));
            r
        }
        Err(e) => portal.refused(&v.cx, &e),
    }
}

/// Takes a trial license for the session's customer and shows its ticket.
pub async fn take_trial(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
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
    match register::take_trial(&core, s, form.get("item").unwrap_or("")).await {
        Ok(ticket) => see_other(&format!("{BASE}/tickets/{ticket}?trial=1")),
        Err(e) => portal.refused(&v.cx, &e),
    }
}
