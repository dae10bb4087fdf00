//! Customers: the list (paged by key, searched), a customer's contact data (edited), their
//! tickets and their containers.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{done, field, form, param, query_escape, staff, tried, Admin_, Core_, BASE};
use crate::error::Error;
use crate::service::admin;
use crate::service::catalog::{self, CustomerData};
use crate::service::reports::{self, Report};

const PER_PAGE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/customers", web::get().to(list))
        .route("/customers/view", web::get().to(show))
        .route("/customers/view", web::post().to(save));
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    before: Option<i64>,
}

async fn list(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let q = tried!(
        admin,
        v,
        web::Query::<ListQuery>::from_query(req.query_string())
            .map_err(|e| Error::invalid("query", e.to_string()))
    );
    let page = tried!(
        admin,
        v,
        admin::customers(&core, &v.staff().actor, &q.q, q.before, PER_PAGE).await
    );
    let next = page
        .next
        .map(|n| format!("{BASE}/customers?q={}&before={n}", query_escape(&q.q)));
    admin.page(
        &v,
        StatusCode::OK,
        "customers.html",
        json!({"title": admin.text(v.lang, "customers.title"), "q": q.q,
            "customers": page.rows, "next": next, "first": q.before.is_some()}),
    )
}

async fn show(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let id = tried!(admin, v, param(&req, "id"));
    // The vendor's customers have none.
    let scope = param(&req, "scope").unwrap_or_default();
    let actor = &v.staff().actor;
    let customer = tried!(
        admin,
        v,
        catalog::get_customer(&core, actor, scope.clone(), id.to_string()).await
    );
    let tickets = tried!(
        admin,
        v,
        admin::customer_tickets(&core, actor, customer.id).await
    );
    let containers = tried!(
        admin,
        v,
        reports::run(
            &core,
            actor,
            Report::CustomerContainers {
                scope: scope.clone(),
                customer_id: id.to_string()
            }
        )
        .await
    );
    let containers = containers.to_json().rows;
    admin.page(
        &v,
        StatusCode::OK,
        "customer.html",
        json!({"title": format!("{} {}", admin.text(v.lang, "customers.customer"), customer.named()),
            "customer": customer, "tickets": tickets,
            "containers": containers}),
    )
}

async fn save(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = staff!(core, admin, req);
    let id = tried!(admin, v, param(&req, "id"));
    let scope = param(&req, "scope").unwrap_or_default();
    let f = form!(admin, v, req, body);
    let data = CustomerData {
        scope: scope.clone(),
        external_id: id.to_string(),
        name: Some(field(&f, "name").to_string()),
        email: Some(field(&f, "email").to_string()),
        locale: Some(field(&f, "locale").to_string()).filter(|l| !l.is_empty()),
    };
    tried!(
        admin,
        v,
        catalog::put_customer(&core, &v.staff().actor, data).await
    );
    let scope = match scope.as_str() {
        "" => String::new(),
        s => format!("&scope={}", query_escape(s)),
    };
    done(
        &format!("{BASE}/customers/view?id={}{scope}", query_escape(&id)),
        "customer_saved",
    )
}
