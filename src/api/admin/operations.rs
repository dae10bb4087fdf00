//! The dashboard, reports (a table, and CSV to download), the mail outbox and connector
//! write-backs (requeue), scheduled jobs (run now), users and roles, the global settings,
//! and the history with its chain verified.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::charts::{self, Series};
use super::{done, field, form, number, param, query_escape, staff, tried, Admin_, Core_, BASE};
use crate::api::portal::form::Form;
use crate::api::report_stream;
use crate::domain::{Role, Settings};
use crate::error::{Error, Result};
use crate::service::reports::{self, Params, Report};
use crate::service::{admin, audit, catalog, connectors, jobs, mail, report_mail, users};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::get().to(report_list))
        .route("/reports/{name}", web::get().to(report))
        .route("/reports/{name}/csv", web::get().to(report_csv))
        .route("/downloads/{token}", web::get().to(download))
        .route("/mail", web::get().to(outbox))
        .route("/mail/{id}/requeue", web::post().to(requeue_mail))
        .route(
            "/writebacks/{id}/requeue",
            web::post().to(requeue_writeback),
        )
        .route("/jobs", web::get().to(job_list))
        .route("/jobs/{name}/run", web::post().to(run_job))
        .route("/users", web::get().to(user_list))
        .route("/users", web::post().to(add_user))
        .route("/users/change", web::post().to(change_user))
        .route("/settings", web::get().to(settings_page))
        .route("/settings", web::post().to(save_settings))
        .route("/settings/portal", web::post().to(save_portal_look))
        .route("/history", web::get().to(history));
}

pub async fn dashboard(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let d = tried!(admin, v, admin::dashboard(&core, &v.staff().actor).await);
    let t = |k: &str| admin.text(v.lang, &format!("dashboard.{k}"));
    let (act, ret, re) = (t("activations"), t("returns"), t("reactivations"));
    let days_svg = charts::bars(
        &t("per_day"),
        640.0,
        &d.days
            .iter()
            .map(|d| d.day[5..].to_string())
            .collect::<Vec<_>>(),
        &[
            Series {
                name: &act,
                color: "#1d4f73",
            },
            Series {
                name: &ret,
                color: "#e8a33d",
            },
            Series {
                name: &re,
                color: "#7a3e9d",
            },
        ],
        &d.days
            .iter()
            .map(|d| vec![d.activations, d.returns, d.reactivations])
            .collect::<Vec<_>>(),
    );
    let expiring = t("expiring");
    let weeks_svg = charts::bars(
        &t("expiring_per_week"),
        360.0,
        &d.expiring
            .iter()
            .map(|(w, _)| w[5..].to_string())
            .collect::<Vec<_>>(),
        &[Series {
            name: &expiring,
            color: "#a3201b",
        }],
        &d.expiring.iter().map(|(_, n)| vec![*n]).collect::<Vec<_>>(),
    );
    let quota: Vec<Value> = d
        .quota
        .iter()
        .map(|(firm, used, of)| {
            let of = (*of > 0).then_some(*of);
            json!({"firm_code": firm, "used": used, "quota": of,
                "svg": charts::gauge(&format!("{} {firm}", t("quota")), *used, of)})
        })
        .collect();
    admin.page(
        &v,
        StatusCode::OK,
        "dashboard.html",
        json!({"title": t("title"), "d": d, "days_svg": days_svg, "weeks_svg": weeks_svg,
            "quota": quota}),
    )
}

/// The parameters each report takes, as the report pages ask for them.
const REPORT_PARAMS: &[(&str, &[&str])] = &[
    ("container-licenses", &["serial"]),
    ("expiring", &["days"]),
    ("customer-containers", &["customer_id"]),
    ("ticket-licenses", &["ticket"]),
    ("license-history", &["license_id"]),
    ("blacklist", &[]),
    ("never-activated", &[]),
    ("activations", &[]),
    ("production", &[]),
    ("duplicates", &[]),
    ("cloud-seats", &[]),
    ("cloud-use", &["days"]),
    ("check-in", &[]),
    ("units", &[]),
];

async fn report_list(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let list: Vec<Value> = Report::NAMES
        .iter()
        .map(|n| {
            let params = REPORT_PARAMS
                .iter()
                .find(|(r, _)| r == n)
                .map_or(&[][..], |(_, p)| *p);
            json!({"name": n, "params": params})
        })
        .collect();
    admin.page(
        &v,
        StatusCode::OK,
        "reports.html",
        json!({"title": admin.text(v.lang, "reports.title"), "reports": list, "table": null}),
    )
}

/// The report of the request, opened with its first page of at most `rows` rows: its name
/// and its parameters from the query (empty ones left out, so a form's blank field takes the
/// default).
async fn open_report(
    core: &Core_,
    actor: &crate::domain::Actor,
    req: &HttpRequest,
    name: &str,
    rows: i64,
) -> Result<(reports::Reading, Vec<Vec<Value>>)> {
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| Error::invalid("query", e.to_string()))?
        .into_inner()
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && k != "notice");
    let report = Report::parse(name, &Params::from_pairs(q)?)?;
    reports::Reading::first(core, actor, report, rows).await
}

/// Rows a report page shows (the CSV has all).
const SHOWN_ROWS: usize = 500;

async fn report(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let (reading, first) = tried!(
        admin,
        v,
        open_report(&core, &v.staff().actor, &req, &name, SHOWN_ROWS as i64 + 1).await
    );
    let cut = first.len() > SHOWN_ROWS || reading.more();
    let rows: Vec<Vec<String>> = first
        .iter()
        .take(SHOWN_ROWS)
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let csv = match req.query_string() {
        "" => format!("{BASE}/reports/{name}/csv"),
        q => format!("{BASE}/reports/{name}/csv?{q}"),
    };
    let params = REPORT_PARAMS
        .iter()
        .find(|(r, _)| *r == name.as_str())
        .map_or(&[][..], |(_, p)| *p);
    admin.page(
        &v,
        StatusCode::OK,
        "reports.html",
        json!({"title": format!("{} {name}", admin.text(v.lang, "reports.report")),
            "reports": [],
            "table": {"name": reading.name, "columns": reading.columns, "rows": rows,
                "total": first.len(), "cut": cut, "csv": csv, "params": params}}),
    )
}

/// The whole report as CSV, sent as it is read.
async fn report_csv(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let (reading, first) = tried!(
        admin,
        v,
        open_report(&core, &v.staff().actor, &req, &name, reports::PAGE_ROWS).await
    );
    tried!(
        admin,
        v,
        report_stream::respond(core, reading, first, report_stream::Format::Csv)
    )
}

/// A report mailed as a link (too large to attach): the mail's rows as CSV, sent as they
/// are read, to staff signed in, until the link expires.
async fn download(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let (reading, first) = tried!(
        admin,
        v,
        report_mail::open_download(&core, &v.staff().actor, &token).await
    );
    tried!(
        admin,
        v,
        report_stream::respond(core, reading, first, report_stream::Format::Csv)
    )
}

#[derive(serde::Deserialize)]
struct StateQuery {
    state: Option<String>,
    before: Option<i64>,
}

async fn outbox(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let q = tried!(
        admin,
        v,
        web::Query::<StateQuery>::from_query(req.query_string())
            .map_err(|e| Error::invalid("query", e.to_string()))
    );
    let state = q.state.clone().filter(|s| !s.is_empty());
    let actor = &v.staff().actor;
    let mails = tried!(
        admin,
        v,
        admin::outbox(&core, actor, state.clone(), q.before, 100).await
    );
    let here = format!("{BASE}/mail?state={}", state.as_deref().unwrap_or(""));
    let (notes, writebacks) = tried!(admin, v, connectors::list(&core, actor, None).await);
    admin.page(
        &v,
        StatusCode::OK,
        "mail.html",
        json!({"title": admin.text(v.lang, "mail.title"), "mails": mails.rows,
            "next": mails.next.map(|n| format!("{here}&before={n}")),
            "first": q.before.map(|_| here.clone()),
            "state": state.unwrap_or_default(),
            "states": ["queued", "sending", "sent", "failed"],
            "notifications": notes.into_iter().take(100).collect::<Vec<_>>(),
            "writebacks": writebacks.into_iter().take(100).collect::<Vec<_>>()}),
    )
}

async fn requeue_mail(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let _ = form!(admin, v, req, body);
    tried!(admin, v, mail::requeue(&core, &v.staff().actor, *id).await);
    done(&format!("{BASE}/mail"), "requeued")
}

async fn requeue_writeback(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let _ = form!(admin, v, req, body);
    tried!(
        admin,
        v,
        connectors::requeue_writeback(&core, &v.staff().actor, *id).await
    );
    done(&format!("{BASE}/mail"), "requeued")
}

async fn job_list(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let list = tried!(admin, v, jobs::list(&core, &v.staff().actor).await);
    admin.page(
        &v,
        StatusCode::OK,
        "jobs.html",
        json!({"title": admin.text(v.lang, "jobs.title"), "jobs": list}),
    )
}

async fn run_job(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let _ = form!(admin, v, req, body);
    tried!(
        admin,
        v,
        jobs::run_now(&core, &v.staff().actor, &name).await
    );
    done(&format!("{BASE}/jobs"), "job_run")
}

async fn user_list(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let list = tried!(admin, v, users::list_users(&core, &v.staff().actor).await);
    admin.page(
        &v,
        StatusCode::OK,
        "users.html",
        json!({"title": admin.text(v.lang, "users.title"), "users": list,
            "roles": ["admin", "sales", "support", "erp", "production"]}),
    )
}

fn role(f: &Form) -> Result<Option<Role>> {
    match field(f, "role") {
        "" => Ok(None),
        r => Role::parse(r).map(Some),
    }
}

async fn add_user(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let role = tried!(admin, v, role(&f));
    let new = users::NewUser {
        username: field(&f, "username").to_string(),
        password: f.get("password").unwrap_or("").to_string(),
        role: tried!(
            admin,
            v,
            role.ok_or_else(|| Error::invalid("role", "choose a role"))
        ),
    };
    if new.password.chars().count() < 8 {
        return admin.refused(&v, &Error::invalid("password", "at least 8 characters"));
    }
    tried!(
        admin,
        v,
        users::add_user(&core, &v.staff().actor, new).await
    );
    done(&format!("{BASE}/users"), "user_saved")
}

async fn change_user(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let name = tried!(admin, v, param(&req, "name"));
    let f = form!(admin, v, req, body);
    let password = Some(f.get("password").unwrap_or("").to_string()).filter(|p| !p.is_empty());
    if password.as_ref().is_some_and(|p| p.chars().count() < 8) {
        return admin.refused(&v, &Error::invalid("password", "at least 8 characters"));
    }
    let change = users::UserChange {
        password,
        role: tried!(admin, v, role(&f)),
        active: Some(!field(&f, "active").is_empty()),
    };
    tried!(
        admin,
        v,
        users::change_user(&core, &v.staff().actor, name, change).await
    );
    done(&format!("{BASE}/users"), "user_saved")
}

async fn settings_page(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let s = tried!(
        admin,
        v,
        catalog::get_settings(&core, &v.staff().actor).await
    );
    let look = tried!(admin, v, admin::portal_look(&core).await);
    let cfg = core.config();
    admin.page(
        &v,
        StatusCode::OK,
        "settings.html",
        json!({"title": admin.text(v.lang, "settings.title"), "s": s, "look": look,
            "configured": {"color": cfg.portal_color, "accent_color": cfg.portal_accent_color,
                "columns": cfg.portal_columns},
            "all_columns": crate::config::PORTAL_COLUMNS.join(", "),
            "policies": ["allowed", "after_blocking_period", "approval", "never"],
            "behaviours": ["none", "blacklist", "withdraw"],
            "modes": ["all", "selected"]}),
    )
}

/// The settings a form gives: every field of `Settings` (check boxes for the switches).
fn settings_of(f: &Form) -> Result<Settings> {
    let flag = |n: &str| json!(!field(f, n).is_empty());
    let num = |n: &'static str| -> Result<Value> { Ok(json!(number::<u32>(f, n)?.unwrap_or(0))) };
    let lock = field(f, "lock_item");
    let honeypot = field(f, "honeypot_item");
    let s = json!({
        "deactivation_allowed": flag("deactivation_allowed"),
        "reactivation_behaviour": field(f, "reactivation_behaviour"),
        "blocking_period_days": num("blocking_period_days")?,
        "self_service_count": num("self_service_count")?,
        "lock_item": (!lock.is_empty()).then_some(lock),
        "honeypot_item": (!honeypot.is_empty()).then_some(honeypot),
        "automatic_update_handling": flag("automatic_update_handling"),
        "duplicate_check": flag("duplicate_check"),
        "erp_may_blacklist": flag("erp_may_blacklist"),
        "monthly_activation_quota": num("monthly_activation_quota")?,
        "single_container": flag("single_container"),
        "activation_mode": field(f, "activation_mode"),
        "fingerprint_tolerance": num("fingerprint_tolerance")?,
        "update_validity_days": num("update_validity_days")?,
        "reactivation": field(f, "reactivation"),
        "restore": field(f, "restore"),
    });
    serde_json::from_value(s).map_err(|e| Error::invalid("settings", e.to_string()))
}

async fn save_settings(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let s = tried!(admin, v, settings_of(&f));
    tried!(
        admin,
        v,
        catalog::put_settings(&core, &v.staff().actor, s).await
    );
    done(&format!("{BASE}/settings"), "settings_saved")
}

async fn save_portal_look(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let look = admin::PortalLook {
        color: field(&f, "color").to_string(),
        accent_color: field(&f, "accent_color").to_string(),
        columns: field(&f, "columns").to_string(),
    };
    tried!(
        admin,
        v,
        admin::set_portal_look(&core, &v.staff().actor, look).await
    );
    done(&format!("{BASE}/settings"), "settings_saved")
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    order_id: String,
    #[serde(default)]
    license_id: String,
    /// Walk the whole chain (it reads every event: asked for, not done on every view).
    #[serde(default)]
    verify: String,
}

async fn history(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let q = tried!(
        admin,
        v,
        web::Query::<HistoryQuery>::from_query(req.query_string())
            .map_err(|e| Error::invalid("query", e.to_string()))
    );
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let number = |name: &'static str, text: &str| -> Result<Option<i64>> {
        opt(text)
            .map(|o| {
                o.parse::<i64>()
                    .map_err(|_| Error::invalid(name, format!("{o:?} is not a number")))
            })
            .transpose()
    };
    let order_id = tried!(admin, v, number("order_id", &q.order_id));
    let license_id = tried!(admin, v, number("license_id", &q.license_id));
    let actor = &v.staff().actor;
    let asked = opt(&q.ticket).is_some()
        || opt(&q.serial).is_some()
        || order_id.is_some()
        || license_id.is_some();
    let events = if asked {
        tried!(
            admin,
            v,
            audit::history(
                &core,
                actor,
                opt(&q.ticket),
                order_id,
                opt(&q.serial),
                license_id
            )
            .await
        )
    } else {
        vec![]
    };
    let chain = if q.verify.is_empty() {
        None
    } else {
        Some(tried!(admin, v, audit::verify_chain(&core, actor).await))
    };
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({"id": e.id, "at": e.at, "actor": e.actor, "interface": e.interface,
                "action": e.action, "order_id": e.order_id, "ticket": e.ticket,
                "license_id": e.license_id, "serial": e.serial, "details": e.details})
        })
        .collect();
    admin.page(
        &v,
        StatusCode::OK,
        "history.html",
        json!({"title": admin.text(v.lang, "history.title"), "events": events,
            "q": {"ticket": q.ticket, "serial": q.serial, "order_id": q.order_id,
                "license_id": q.license_id},
            "asked": asked, "chain": chain,
            "self": format!("{BASE}/history?ticket={}&serial={}&order_id={}&license_id={}",
                query_escape(&q.ticket), query_escape(&q.serial), query_escape(&q.order_id),
                query_escape(&q.license_id))}),
    )
}
