//! Logging in with tickets, logging out, and the visitor's choice of language.
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::form::Form;
use super::views::{self, Cx, BASE};
use super::{
    cookie, local_path, posted, see_other, token_matches, visit, visitor_token, Core_, Portal,
    Portal_, LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE,
};

use crate::service::portal::{self, LoginOutcome};

/// `/portal`: the licenses, or the login.
pub async fn root(core: Core_, portal: Portal_, req: HttpRequest) -> HttpResponse {
    let v = visit!(core, portal, req);
    if v.cx.has_tickets {
        see_other(&format!("{BASE}/tickets"))
    } else {
        see_other(&format!("{BASE}/login"))
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    ticket: String,
    next: Option<String>,
    /// Shown after a logout.
    out: Option<String>,
}

/// What the login page shows besides its form.
#[derive(Default)]
pub(super) struct LoginView<'a> {
    pub ticket: &'a str,
    /// Where to go after the login.
    pub next: &'a str,
    /// Held back until (shown), for a ticket or (none) the address.
    pub held: Option<(String, Option<String>)>,
    pub error: Option<serde_json::Value>,
    pub notice: Option<String>,
}

/// The login page (also where a ticket mail's link lands when there is no session).
pub(super) fn login_form(
    portal: &Portal,
    req: &HttpRequest,
    mut cx: Cx,
    status: StatusCode,
    view: LoginView,
) -> HttpResponse {
    let (token, fresh) = visitor_token(req);
    cx.csrf = token.clone();
    let title = portal.text(&cx, "login.title");
    let mut r = portal.page_with(
        &cx,
        status,
        "login.html",
        &title,
        views::login(
            view.ticket,
            view.next,
            view.held,
            portal.sso,
            portal.registration,
        ),
        view.error,
        view.notice,
    );
    if fresh {
        // Lives as long as a login page may reasonably stay open.
        let c = portal.cookie(LOGIN_COOKIE, &token, 86_400);
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub async fn login_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<LoginQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let next = local_path(q.next.as_deref());
    if v.cx.has_tickets && q.ticket.is_empty() && q.out.is_none() {
        return see_other(&next);
    }
    let notice = q
        .out
        .as_ref()
        .map(|_| portal.text(&v.cx, "login.logged_out"));
    let view = LoginView {
        ticket: &q.ticket,
        next: &next,
        notice,
        ..LoginView::default()
    };
    login_form(&portal, &req, v.cx, StatusCode::OK, view)
}

pub async fn login(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let form = match Form::parse(ct, &body) {
        Ok(f) => f,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let ticket = form.get("ticket").unwrap_or("").to_string();
    let next = local_path(form.get("next"));
    // No session to bind the token to yet: it must match the login page's cookie.
    let expected = cookie(&req, LOGIN_COOKIE).unwrap_or_default();
    if !token_matches(form.get("csrf").unwrap_or(""), &expected) {
        tracing::warn!("portal login without its form's token refused");
        let view = LoginView {
            ticket: &ticket,
            next: &next,
            error: Some(views::portal_refusal(&portal.pages, v.cx.lang, "csrf")),
            ..LoginView::default()
        };
        return login_form(&portal, &req, v.cx, StatusCode::FORBIDDEN, view);
    }
    let client = portal.client(&req);
    match portal::ticket_login(&core, client, &ticket).await {
        Ok(LoginOutcome::Started { token, session }) => {
            // A session from before (another ticket) ends: one browser, one session.
            if let Some(old) = &v.session {
                if let Err(e) = portal::end_session(&core, old).await {
                    tracing::warn!(cause = %e, "ending the previous portal session");
                }
            }
            let mut r = see_other(&next);
            let headers = r.headers_mut();
            headers.append(
                header::SET_COOKIE,
                portal.cookie(SESSION_COOKIE, &token, portal.session_secs),
            );
            headers.append(header::SET_COOKIE, portal.cookie(LOGIN_COOKIE, "", 0));
            tracing::info!(tickets = session.tickets().len(), "portal login");
            r
        }
        Ok(LoginOutcome::HeldBack {
            until,
            ticket: held,
        }) => {
            let view = LoginView {
                ticket: &ticket,
                next: &next,
                held: Some((views::when(v.cx.lang, until), held)),
                ..LoginView::default()
            };
            login_form(&portal, &req, v.cx, StatusCode::TOO_MANY_REQUESTS, view)
        }
        Err(e) => {
            let view = LoginView {
                ticket: &ticket,
                next: &next,
                error: Some(views::refusal(&portal.pages, v.cx.lang, &e)),
                ..LoginView::default()
            };
            login_form(&portal, &req, v.cx, crate::api::status_of(&e), view)
        }
    }
}

pub async fn logout(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    if let Err(r) = posted(&portal, &v, &req, &body) {
        return *r;
    }
    // A single sign-on session also ends at the identity provider (single logout): the
    // browser goes there with our logout request and comes back with its answer.
    let to_idp = match &v.session {
        Some(s) => match portal::sso::logout(&core, s).await {
            Ok(out) => out,
            Err(e) => return portal.refused(&v.cx, &e),
        },
        None => None,
    };
    let mut r = match to_idp {
        Some(out) => super::sso::send(&portal, &v.cx, out),
        None => see_other(&format!("{BASE}/login?out=1")),
    };
    r.headers_mut()
        .append(header::SET_COOKIE, portal.cookie(SESSION_COOKIE, "", 0));
    r
}

#[derive(Deserialize)]
pub struct LanguageQuery {
    lang: String,
    next: Option<String>,
}

/// Keeps the visitor's language for a year and goes back to the page.
pub async fn language(portal: Portal_, q: web::Query<LanguageQuery>) -> HttpResponse {
    let mut r = see_other(&local_path(q.next.as_deref()));
    if super::pages::LANGUAGES.contains(&q.lang.as_str()) {
        r.headers_mut().append(
            header::SET_COOKIE,
            portal.cookie(LANG_COOKIE, &q.lang, 365 * 86_400),
        );
    }
    r
}
