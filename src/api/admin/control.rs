//! Containers, the blacklist and the approval queue: what support looks at and decides.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{done, field, form, number, query_escape, staff, tried, Admin_, Core_, BASE};
use crate::error::Error;
use crate::service::lifecycle::{self, BlacklistAdd};
use crate::service::{activation, admin};

const PER_PAGE: i64 = 100;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers", web::get().to(container))
        .route("/containers/{serial}/push", web::post().to(push))
        .route("/containers/{serial}/reset", web::post().to(reset))
        .route("/containers/{serial}/customer", web::post().to(assign))
        .route(
            "/containers/{serial}/decision",
            web::post().to(decide_manipulation),
        )
        .route("/blacklist", web::get().to(blacklist))
        .route("/blacklist", web::post().to(blacklist_add))
        .route(
            "/blacklist/{serial}/remove",
            web::post().to(blacklist_remove),
        )
        .route("/approvals", web::get().to(approvals))
        .route("/approvals/{id}/{decision}", web::post().to(decide));
}

#[derive(serde::Deserialize)]
struct SerialQuery {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    all: String,
    before: Option<i64>,
}

fn serial_query(req: &HttpRequest) -> SerialQuery {
    web::Query::<SerialQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or(SerialQuery {
            serial: String::new(),
            all: String::new(),
            before: None,
        })
}

/// A container's details (or the form that asks for its serial).
async fn container(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let serial = serial_query(&req).serial.trim().to_string();
    let title = admin.text(v.lang, "container.title");
    if serial.is_empty() {
        return admin.page(
            &v,
            StatusCode::OK,
            "container.html",
            json!({"title": title, "serial": "", "container": null, "details": null,
                "listed": []}),
        );
    }
    let actor = &v.staff().actor;
    let c = tried!(
        admin,
        v,
        activation::get_container(&core, actor, serial.clone()).await
    );
    let details = tried!(
        admin,
        v,
        admin::container_details(&core, actor, serial.clone()).await
    );
    // Support sees whether it is blacklisted; sales may not read the blacklist.
    let listed = admin::blacklist(&core, actor, Some(serial.clone()), false, None, 10)
        .await
        .map(|p| p.rows)
        .unwrap_or_default();
    admin.page(
        &v,
        StatusCode::OK,
        "container.html",
        json!({"title": format!("{title} {serial}"), "serial": serial, "container": c,
            "details": details, "listed": listed}),
    )
}

fn container_path(serial: &str) -> String {
    format!("{BASE}/containers?serial={}", query_escape(serial))
}

async fn push(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    serial: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let license = tried!(admin, v, number::<i64>(&f, "license_id"));
    let license = tried!(
        admin,
        v,
        license.ok_or_else(|| Error::invalid("license_id", "give the license to push"))
    );
    tried!(
        admin,
        v,
        activation::push_license(&core, &v.staff().actor, serial.to_string(), license).await
    );
    done(&container_path(&serial), "pushed")
}

async fn reset(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    serial: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let firm = tried!(admin, v, number::<i64>(&f, "firm_code"));
    tried!(
        admin,
        v,
        lifecycle::reset(&core, &v.staff().actor, serial.to_string(), firm).await
    );
    done(&container_path(&serial), "reset")
}

async fn assign(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    serial: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    tried!(
        admin,
        v,
        lifecycle::assign(
            &core,
            &v.staff().actor,
            serial.to_string(),
            field(&f, "customer_scope").to_string(),
            field(&f, "customer_id").to_string()
        )
        .await
    );
    done(&container_path(&serial), "assigned")
}

async fn decide_manipulation(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    serial: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let decision = tried!(admin, v, lifecycle::Decision::parse(field(&f, "decision")));
    let req = lifecycle::ManipulationDecision {
        decision,
        reason: field(&f, "reason").to_string(),
        firm_code: None,
    };
    tried!(
        admin,
        v,
        lifecycle::decide_manipulation(&core, &v.staff().actor, serial.to_string(), req).await
    );
    done(&container_path(&serial), "resynchronising")
}

async fn blacklist(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let q = serial_query(&req);
    let serial = Some(q.serial.trim().to_string()).filter(|s| !s.is_empty());
    let all = !q.all.is_empty();
    let page = tried!(
        admin,
        v,
        admin::blacklist(
            &core,
            &v.staff().actor,
            serial.clone(),
            all,
            q.before,
            PER_PAGE
        )
        .await
    );
    let serial = serial.unwrap_or_default();
    let here = format!(
        "{BASE}/blacklist?serial={}&all={}",
        query_escape(&serial),
        if all { "1" } else { "" }
    );
    admin.page(
        &v,
        StatusCode::OK,
        "blacklist.html",
        json!({"title": admin.text(v.lang, "blacklist.title"), "entries": page.rows,
            "serial": serial, "all": all,
            "next": page.next.map(|n| format!("{here}&before={n}")),
            "first": q.before.map(|_| here)}),
    )
}

async fn blacklist_add(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let add = BlacklistAdd {
        serial: field(&f, "serial").to_string(),
        description: field(&f, "description").to_string(),
        firm_code: tried!(admin, v, number::<i64>(&f, "firm_code")),
    };
    tried!(
        admin,
        v,
        lifecycle::blacklist_add(&core, &v.staff().actor, add).await
    );
    done(&format!("{BASE}/blacklist"), "blacklisted")
}

async fn blacklist_remove(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    serial: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let firm = tried!(admin, v, number::<i64>(&f, "firm_code"));
    tried!(
        admin,
        v,
        lifecycle::blacklist_remove(
            &core,
            &v.staff().actor,
            serial.to_string(),
            firm,
            field(&f, "reason").to_string()
        )
        .await
    );
    done(&format!("{BASE}/blacklist"), "unlisted")
}

#[derive(serde::Deserialize)]
struct StateQuery {
    state: Option<String>,
}

async fn approvals(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let state = web::Query::<StateQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().state)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "open".into());
    let state = (state != "all").then_some(state);
    let list = tried!(
        admin,
        v,
        lifecycle::list_approvals(&core, &v.staff().actor, state.clone()).await
    );
    admin.page(
        &v,
        StatusCode::OK,
        "approvals.html",
        json!({"title": admin.text(v.lang, "approvals.title"), "approvals": list,
            "state": state.unwrap_or_else(|| "all".into()),
            "states": ["open", "approved", "denied", "all"]}),
    )
}

async fn decide(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    p: web::Path<(i64, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let (id, decision) = p.into_inner();
    let approve = match decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return admin.refused(&v, &Error::not_found("page", req.path())),
    };
    tried!(
        admin,
        v,
        lifecycle::decide(
            &core,
            &v.staff().actor,
            id,
            approve,
            field(&f, "reason").to_string()
        )
        .await
    );
    done(
        &format!("{BASE}/approvals"),
        if approve { "approved" } else { "denied" },
    )
}
