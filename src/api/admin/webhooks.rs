//! Outbound event subscriptions: the list with pause, resume and delete, a form that makes
//! one (its secret is shown on the answer, this once), and the newest deliveries with
//! requeue for the failed ones.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{done, field, form, staff, tried, Admin, Admin_, Core_, Visit, BASE};
use crate::error::Error;
use crate::service::webhooks::{self, NewSubscription};
use crate::service::Core;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(add))
        .route("/webhooks/{id}/{action}", web::post().to(change))
        .route("/webhook-deliveries/{id}/requeue", web::post().to(requeue));
}

/// The page, with `made` (a subscription just made, with its secret) when there is one.
async fn page(core: &Core, admin: &Admin, v: &Visit, made: Value) -> HttpResponse {
    let actor = &v.staff().actor;
    let hooks = tried!(admin, v, webhooks::list(core, actor).await);
    let deliveries = tried!(
        admin,
        v,
        webhooks::deliveries(core, actor, None, None).await
    );
    admin.page(
        v,
        StatusCode::OK,
        "webhooks.html",
        json!({"title": admin.text(v.lang, "webhooks.title"), "hooks": hooks,
            "deliveries": deliveries.into_iter().take(100).collect::<Vec<_>>(),
            "made": made, "families": webhooks::FAMILIES}),
    )
}

async fn list(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    page(&core, &admin, &v, Value::Null).await
}

/// Makes a subscription and answers the page with its secret (not a redirect: the secret is
/// shown this once and never travels in an address).
async fn add(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let sub = NewSubscription {
        url: field(&f, "url").to_string(),
        events: field(&f, "events")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        description: field(&f, "description").to_string(),
    };
    let made = tried!(
        admin,
        v,
        webhooks::create(&core, &v.staff().actor, sub).await
    );
    page(&core, &admin, &v, json!(made)).await
}

async fn change(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let _ = form!(admin, v, req, body);
    let (id, action) = path.into_inner();
    let actor = &v.staff().actor;
    let notice = match action.as_str() {
        "pause" | "resume" => {
            let active = action == "resume";
            tried!(
                admin,
                v,
                webhooks::set_active(&core, actor, id, active).await
            );
            if active {
                "webhook_resumed"
            } else {
                "webhook_paused"
            }
        }
        "delete" => {
            tried!(admin, v, webhooks::delete(&core, actor, id).await);
            "webhook_deleted"
        }
        _ => return admin.refused(&v, &Error::not_found("page", req.path())),
    };
    done(&format!("{BASE}/webhooks"), notice)
}

async fn requeue(
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
        webhooks::requeue(&core, &v.staff().actor, *id).await
    );
    done(&format!("{BASE}/webhooks"), "requeued")
}
