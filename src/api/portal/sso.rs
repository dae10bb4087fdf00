//! Single sign-on's endpoints under `/portal/saml/`: our metadata, the start of a login,
//! the Assertion Consumer Service (the identity provider's POST: it carries no cookie of
//! ours, and no form token; the one-time request id and its RelayState bind it instead),
//! and single logout.
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::form::Form;
use super::views::{self, Cx, BASE};
use super::{local_path, see_other, visit, Core_, Portal, Portal_, SESSION_COOKIE};
use crate::error::Error;
use crate::saml::{Binding, Outgoing};
use crate::service::portal::sso::{self, AcsOutcome, SloOutcome};

/// `/portal/saml/metadata`: our signed metadata, for the identity provider's administrator.
pub async fn metadata(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let Some(s) = core.sso() else {
        let v = visit!(core, portal, req);
        return portal.refused_as(&v.cx, StatusCode::NOT_FOUND, "page_not_found");
    };
    match s.metadata() {
        Ok(xml) => HttpResponse::Ok()
            .content_type("application/samlmetadata+xml; charset=utf-8")
            .body(xml),
        Err(e) => {
            let v = visit!(core, portal, req);
            portal.refused(&v.cx, &e)
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// `redirect` or `post`; default: `saml_binding`.
    binding: Option<String>,
}

/// Sends the browser to the identity provider with a new login request.
pub async fn login(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<LoginQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let binding = match q.binding.as_deref() {
        None | Some("") => None,
        Some("redirect") => Some(Binding::Redirect),
        Some("post") => Some(Binding::Post),
        Some(_) => {
            return portal.refused(
                &v.cx,
                &Error::invalid("binding", "must be redirect or post"),
            )
        }
    };
    let next = local_path(q.next.as_deref());
    match sso::begin_login(&core, &next, binding).await {
        Ok(out) => send(&portal, &v.cx, out),
        Err(e) => portal.refused(&v.cx, &e),
    }
}

/// A message on its way to the identity provider: a redirect, or a page whose form posts it
/// (its security policy lets that one form go to the identity provider).
pub(super) fn send(portal: &Portal, cx: &Cx, out: Outgoing) -> HttpResponse {
    match out {
        Outgoing::Redirect(url) => see_other(&url),
        Outgoing::Post { url, fields } => {
            let title = portal.text(cx, "sso.post_title");
            // The pages' policy lets forms go to the identity provider
            // (`Portal::allow_form_targets`).
            portal.page(
                cx,
                StatusCode::OK,
                "sso_post.html",
                &title,
                views::sso_post(&url, &fields),
            )
        }
    }
}

fn form_of(req: &HttpRequest, body: &[u8]) -> crate::error::Result<Form> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Form::parse(ct, body)
}

/// A refusal of single sign-on: why, in the page's language (the reason itself is ours, not
/// an internal cause).
fn refused(portal: &Portal, cx: &Cx, e: &Error) -> HttpResponse {
    match e {
        Error::NotFound {
            kind: "customer", ..
        } => portal.refused_as(cx, StatusCode::FORBIDDEN, "sso_no_customer"),
        Error::NotAllowed(why) => {
            let mut r = views::portal_refusal(&portal.pages, cx.lang, "sso_refused");
            r["detail"] = serde_json::Value::String(why.clone());
            let title = r["title"].as_str().unwrap_or_default().to_string();
            let body = serde_json::json!({"heading": title});
            portal.page_with(
                cx,
                StatusCode::FORBIDDEN,
                "message.html",
                &title,
                body,
                Some(r),
                None,
            )
        }
        other => portal.refused(cx, other),
    }
}

/// The Assertion Consumer Service: the identity provider's answer (HTTP-POST).
pub async fn acs(core: Core_, portal: Portal_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match form_of(&req, &body) {
        Ok(f) => f,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let Some(response) = form.get("SAMLResponse") else {
        return refused(&portal, &v.cx, &Error::NotAllowed("no SAMLResponse".into()));
    };
    let relay = form.get("RelayState").unwrap_or("");
    match sso::consume(&core, response, relay).await {
        Ok(AcsOutcome::Started { token, next, .. }) => {
            let mut r = see_other(&next);
            r.headers_mut().append(
                header::SET_COOKIE,
                portal.cookie(SESSION_COOKIE, &token, portal.session_secs),
            );
            r
        }
        Ok(AcsOutcome::Restart) => see_other(&format!("{BASE}/saml/login")),
        Err(e) => refused(&portal, &v.cx, &e),
    }
}

/// Single logout by the Redirect binding (a LogoutRequest of the identity provider, or its
/// answer to ours).
pub async fn slo(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let v = visit!(core, portal, req);
    let outcome = sso::single_logout(&core, Some(req.query_string()), None).await;
    slo_done(&portal, &v.cx, outcome)
}

/// Single logout by the POST binding.
pub async fn slo_post(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let form = match form_of(&req, &body) {
        Ok(f) => f,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let relay = form.get("RelayState");
    let msg = match (form.get("SAMLRequest"), form.get("SAMLResponse")) {
        (Some(m), None) => ("SAMLRequest", m),
        (None, Some(m)) => ("SAMLResponse", m),
        _ => return refused(&portal, &v.cx, &Error::NotAllowed("no SAML message".into())),
    };
    let outcome = sso::single_logout(&core, None, Some((msg.0, msg.1, relay))).await;
    slo_done(&portal, &v.cx, outcome)
}

fn slo_done(portal: &Portal, cx: &Cx, outcome: crate::error::Result<SloOutcome>) -> HttpResponse {
    match outcome {
        Ok(SloOutcome::LoggedOut) => see_other(&format!("{BASE}/login?out=1")),
        Ok(SloOutcome::Answer(out)) => {
            let mut r = send(portal, cx, out);
            // This browser's session, if it had one here, ended with the others.
            r.headers_mut()
                .append(header::SET_COOKIE, portal.cookie(SESSION_COOKIE, "", 0));
            r
        }
        Err(e) => refused(portal, cx, &e),
    }
}
