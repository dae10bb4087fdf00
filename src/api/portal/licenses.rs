//! The license overview (all tickets of the session, or one: where a ticket mail's link
//! lands), a license's history, splitting a license, and the license template a new
//! container is made with.
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::login::{login_form, LoginView};
use super::views::{self, Cx, BASE};
use super::{posted, see_other, visit, Core_, Portal_, Visit};
use crate::error::Error;
use crate::service::{activation, portal};

#[derive(Deserialize)]
pub struct OverviewQuery {
    /// Licenses a split just made (shown as a notice).
    split: Option<String>,
    /// A trial license was just taken onto this ticket (shown as a notice).
    trial: Option<String>,
}

pub async fn overview(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    q: web::Query<OverviewQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let s = match v.ticket_session() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let trials = match portal::register::trials(&core, s).await {
        Ok(t) => t,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let cloud = match portal::cloud::containers(&core, s).await {
        Ok(c) => c,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    match portal::overview(&core, s, None).await {
        Ok(groups) => {
            let notice = split_notice(&portal, &v.cx, q.split.as_deref());
            let title = portal.text(&v.cx, "overview.title");
            let mut body = views::overview(
                &portal.pages,
                v.cx.lang,
                &groups,
                &portal.columns(&core).await,
            );
            body["trials"] = views::trials(&portal.pages, v.cx.lang, &trials);
            body["cloud_enabled"] = serde_json::json!(s.customer_id.is_some());
            body["cloud"] = serde_json::json!(cloud);
            portal.page_with(
                &v.cx,
                StatusCode::OK,
                "overview.html",
                &title,
                body,
                None,
                notice,
            )
        }
        Err(e) => portal.refused(&v.cx, &e),
    }
}

fn split_notice(portal: &super::Portal, cx: &Cx, split: Option<&str>) -> Option<String> {
    let ids = split?;
    // Only ids, as a split names them: nothing else of the address reaches the page.
    ids.split(',')
        .all(|i| i.trim().parse::<i64>().is_ok())
        .then(|| {
            portal
                .text(cx, "overview.split_done")
                .replace("{licenses}", ids)
        })
}

/// A ticket's overview: the link of the ticket mail. Without a session that holds the
/// ticket, the login page with the ticket filled in, coming back here.
pub async fn ticket(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<OverviewQuery>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let held = v.session.as_ref().and_then(|s| s.ticket(&code).ok());
    let Some(s) = v.session.as_ref().filter(|_| held.is_some()) else {
        let next = req.path().to_string();
        let view = LoginView {
            ticket: &code,
            next: &next,
            ..LoginView::default()
        };
        return login_form(&portal, &req, v.cx, StatusCode::OK, view);
    };
    match portal::overview(&core, s, Some(&code)).await {
        Ok(groups) => {
            let notice = split_notice(&portal, &v.cx, q.split.as_deref()).or_else(|| {
                q.trial.as_ref().map(|_| {
                    let shown = groups.first().map(|g| g.ticket.as_str()).unwrap_or("");
                    portal.text(&v.cx, "trial.done").replace("{ticket}", shown)
                })
            });
            let title = portal.text(&v.cx, "overview.title");
            let body = views::overview(
                &portal.pages,
                v.cx.lang,
                &groups,
                &portal.columns(&core).await,
            );
            portal.page_with(
                &v.cx,
                StatusCode::OK,
                "overview.html",
                &title,
                body,
                None,
                notice,
            )
        }
        Err(e) => portal.refused(&v.cx, &e),
    }
}

pub async fn history(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    id: web::Path<i64>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    let s = match v.ticket_session() {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match portal::license_history(&core, s, *id).await {
        Ok(h) => {
            let title = portal
                .text(&v.cx, "history.title")
                .replace("{license}", &id.to_string());
            let body = views::history(&portal.pages, v.cx.lang, &h);
            portal.page(&v.cx, StatusCode::OK, "history.html", &title, body)
        }
        Err(e) => portal.refused(&v.cx, &e),
    }
}

/// The split form of a license (its values: the history's read of the license).
async fn split_form(
    core: &Core_,
    portal: &Portal_,
    v: &Visit,
    id: i64,
    quantities: &str,
    error: Option<&Error>,
) -> HttpResponse {
    let s = v.session.as_ref().expect("a ticket session");
    let h = match portal::license_history(core, s, id).await {
        Ok(h) => h,
        Err(e) => return portal.refused(&v.cx, &e),
    };
    let title = portal.text(&v.cx, "split.title");
    let body = views::split(&portal.pages, v.cx.lang, &h.license, quantities);
    let status = error.map_or(StatusCode::OK, crate::api::status_of);
    let error = error.map(|e| views::refusal(&portal.pages, v.cx.lang, e));
    portal.page_with(&v.cx, status, "split.html", &title, body, error, None)
}

pub async fn split_page(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    id: web::Path<i64>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    if let Err(r) = v.ticket_session() {
        return *r;
    }
    split_form(&core, &portal, &v, *id, "", None).await
}

fn quantities(text: &str) -> Result<Vec<u32>, Error> {
    text.split(',')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| {
            q.parse::<u32>()
                .map_err(|_| Error::invalid("quantities", format!("{q:?} is not a quantity")))
        })
        .collect()
}

pub async fn split(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
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
    let text = form.get("quantities").unwrap_or("").to_string();
    let result = match quantities(&text) {
        Ok(q) => portal::split(&core, s, *id, q).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(ids) => {
            let ticket = portal::license_history(&core, s, ids[0])
                .await
                .map(|h| h.license.ticket)
                .unwrap_or_default();
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            see_other(&format!("{BASE}/tickets/{ticket}?split={}", list.join(",")))
        }
        Err(e) => split_form(&core, &portal, &v, *id, &text, Some(&e)).await,
    }
}

/// The license template of a firm, as a file: what `licentia container trust` reads to
/// make a container that knows the firm's keys.
pub async fn template(
    core: Core_,
    portal: Portal_,
    req: HttpRequest,
    firm_code: web::Path<i64>,
) -> HttpResponse {
    let v = visit!(core, portal, req);
    match activation::template(&core, *firm_code).await {
        Ok(t) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{firm_code}-template.json\""),
            ))
            .body(serde_json::to_string_pretty(&t).unwrap_or_default()),
        Err(e) => portal.refused(&v.cx, &e),
    }
}
