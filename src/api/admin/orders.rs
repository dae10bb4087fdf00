//! Orders and items: the order list (paged by key, searched by ERP order id, customer or
//! ticket), an order made by hand in the four ways the seeds name, an order with its
//! ticket's licenses (withdraw some, add an item or one that replaces a license), and the
//! product items with every option.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{done, field, form, number, param, query_escape, staff, tried, Admin_, Core_, BASE};
use crate::api::portal::form::Form;
use crate::error::{Error, Result};
use crate::service::catalog::{self, CustomerData, ItemChange, NewItem};
use crate::service::lifecycle::{self, ReplaceRequest, WithdrawRequest};
use crate::service::orders::{self, AddToOrder, NewOrder, OrderLine};
use crate::service::{activation, admin};

const PER_PAGE: i64 = 50;
/// The item lines of the order form.
const FORM_LINES: usize = 3;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::get().to(list))
        .route("/orders", web::post().to(create))
        .route("/orders/new", web::get().to(new_page))
        .route("/orders/{id}", web::get().to(show))
        .route("/orders/{id}/withdraw", web::post().to(withdraw))
        .route("/orders/{id}/lines", web::post().to(add_line))
        .route("/orders/{id}/mail", web::post().to(resend))
        .route("/orders/{id}/ticket-state", web::post().to(ticket_state))
        .route("/items", web::get().to(items))
        .route("/items", web::post().to(create_item))
        .route("/items/new", web::get().to(item_new_page))
        .route("/items/view", web::get().to(item_page))
        .route("/items/view", web::post().to(change_item));
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
        admin::orders(&core, &v.staff().actor, &q.q, q.before, PER_PAGE).await
    );
    let next = page
        .next
        .map(|n| format!("{BASE}/orders?q={}&before={n}", query_escape(&q.q)));
    admin.page(
        &v,
        StatusCode::OK,
        "orders.html",
        json!({"title": admin.text(v.lang, "orders.title"), "q": q.q, "orders": page.rows,
            "next": next, "first": q.before.is_some()}),
    )
}

async fn new_page(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let items = tried!(admin, v, catalog::list_items(&core, &v.staff().actor).await);
    let items: Vec<_> = items.into_iter().filter(|i| i.active).collect();
    admin.page(
        &v,
        StatusCode::OK,
        "order_new.html",
        json!({"title": admin.text(v.lang, "order_new.title"), "items": items,
            "lines": (0..FORM_LINES).collect::<Vec<_>>()}),
    )
}

/// The item lines of a form: `item_id` and `quantity` fields in pairs; a line without an
/// item is left out.
fn lines(f: &Form) -> Result<Vec<OrderLine>> {
    let items: Vec<&str> = f.all("item_id").collect();
    let quantities: Vec<&str> = f.all("quantity").collect();
    let mut out = vec![];
    for (i, item) in items.iter().enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let q = quantities.get(i).map_or("1", |q| q.trim());
        let quantity = q
            .parse()
            .map_err(|_| Error::invalid("quantity", format!("{q:?} is not a whole number")))?;
        out.push(OrderLine {
            item_id: item.to_string(),
            quantity,
        });
    }
    if out.is_empty() {
        return Err(Error::invalid("item_id", "choose at least one item"));
    }
    Ok(out)
}

/// Appends lines to the ticket of order `id`.
async fn append(
    core: &Core_,
    actor: &crate::domain::Actor,
    id: i64,
    lines: Vec<OrderLine>,
) -> Result<orders::OrderView> {
    let o = orders::get_order_by_id(core, actor, id).await?;
    orders::add_to_order(
        core,
        actor,
        o.source,
        o.erp_order_id,
        AddToOrder {
            batch_key: None,
            lines,
        },
    )
    .await
}

/// Makes the order as the form's way says: a new ticket; the ticket of another order; an
/// existing ticket; or a new ticket whose licenses go to an assigned container as
/// automatic updates.
async fn place(core: &Core_, actor: &crate::domain::Actor, f: &Form) -> Result<i64> {
    let lines = lines(f)?;
    let way = field(f, "way");
    match way {
        "order" => {
            let id = number::<i64>(f, "order_id")?
                .ok_or_else(|| Error::invalid("order_id", "give the order's number"))?;
            Ok(append(core, actor, id, lines).await?.order_id)
        }
        "ticket" => {
            let id = admin::order_of_ticket(core, actor, field(f, "ticket")).await?;
            Ok(append(core, actor, id, lines).await?.order_id)
        }
        "new" | "container" => {
            let serial = field(f, "serial");
            let (scope, customer_id) = if way == "container" {
                // Everything the pushes need is checked before the order is made.
                actor.require(
                    &[crate::domain::Role::Admin, crate::domain::Role::Support],
                    "push licenses to containers",
                )?;
                let c = activation::get_container(core, actor, serial.to_string()).await?;
                if c.state != "active" {
                    return Err(Error::Conflict(format!(
                        "container {serial} is {}: it takes no licenses",
                        c.state
                    )));
                }
                let kind = crate::domain::ContainerType::parse(&c.kind)?;
                for line in &lines {
                    let item = catalog::get_item(core, actor, line.item_id.clone()).await?;
                    if !item.options.container_types.contains(&kind) {
                        return Err(Error::NotAllowed(format!(
                            "item {} cannot go into a {} container",
                            item.item_id, c.kind
                        )));
                    }
                    if kind == crate::domain::ContainerType::Cloud
                        && !c.firms.iter().any(|f| f.firm_code == item.firm_code)
                    {
                        return Err(Error::NotAllowed(format!(
                            "item {} is of firm code {}, which cloud container {serial} does not hold",
                            item.item_id, item.firm_code
                        )));
                    }
                }
                let id = c.customer_id.ok_or_else(|| {
                    Error::Conflict(format!(
                        "container {serial} is assigned to no customer: assign it first"
                    ))
                })?;
                (c.customer_scope, id)
            } else {
                (String::new(), field(f, "customer_id").to_string())
            };
            let opt = |name| Some(field(f, name).to_string()).filter(|s| !s.is_empty());
            let order = orders::create_order(
                core,
                actor,
                NewOrder {
                    source: "backoffice".into(),
                    erp_order_id: opt("erp_order_id"),
                    customer: CustomerData {
                        scope,
                        external_id: customer_id,
                        name: opt("customer_name"),
                        email: opt("customer_email"),
                        locale: None,
                    },
                    comment: field(f, "comment").to_string(),
                    lines,
                },
            )
            .await?;
            if way == "container" {
                for l in order.lines.iter().flat_map(|l| &l.licenses) {
                    activation::push_license(core, actor, serial.to_string(), *l)
                        .await
                        .map_err(|e| {
                            Error::Conflict(format!(
                                "order {} was made, but its license {l} could not go to {serial} \
                                 (push it from the container's page): {}",
                                order.order_id,
                                e.public_message()
                            ))
                        })?;
                }
            }
            Ok(order.order_id)
        }
        other => Err(Error::invalid(
            "way",
            format!("{other:?}: choose new, order, ticket or container"),
        )),
    }
}

async fn create(core: Core_, admin: Admin_, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let id = tried!(admin, v, place(&core, &v.staff().actor, &f).await);
    done(&format!("{BASE}/orders/{id}"), "order_saved")
}

async fn show(core: Core_, admin: Admin_, req: HttpRequest, id: web::Path<i64>) -> HttpResponse {
    let v = staff!(core, admin, req);
    let actor = &v.staff().actor;
    let order = tried!(admin, v, orders::get_order_by_id(&core, actor, *id).await);
    let ticket = tried!(
        admin,
        v,
        orders::get_ticket(&core, actor, &order.ticket).await
    );
    let items = tried!(admin, v, catalog::list_items(&core, actor).await);
    let items: Vec<_> = items.into_iter().filter(|i| i.active).collect();
    // The licenses of this order's lines first, with the line's item.
    let mine: Vec<i64> = order
        .lines
        .iter()
        .flat_map(|l| l.licenses.clone())
        .collect();
    let licenses: Vec<Value> = ticket
        .licenses
        .iter()
        .map(|l| {
            json!({"license_id": l.license_id, "item_id": l.item_id, "state": l.state,
                "serial": l.serial, "generation": l.generation,
                "this_order": mine.contains(&l.license_id),
                "withdrawable": l.state != "deleted" && l.state != "withdrawing"})
        })
        .collect();
    admin.page(
        &v,
        StatusCode::OK,
        "order.html",
        json!({"title": format!("{} {}", admin.text(v.lang, "order.title"), order.order_id),
            "order": order, "ticket": ticket.ticket, "ticket_state": ticket.state,
            "licenses": licenses, "items": items}),
    )
}

async fn withdraw(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let licenses = tried!(admin, v, f.licenses());
    if licenses.is_empty() {
        return admin.refused(
            &v,
            &Error::invalid("license", "check the licenses to withdraw"),
        );
    }
    let req = WithdrawRequest {
        licenses,
        reason: field(&f, "reason").to_string(),
    };
    tried!(
        admin,
        v,
        lifecycle::withdraw(&core, &v.staff().actor, req).await
    );
    done(&format!("{BASE}/orders/{id}"), "withdrawn")
}

/// Adds an item to the order's ticket, or a license of an item that replaces one of them.
async fn add_line(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let actor = &v.staff().actor;
    let result = match number::<i64>(&f, "replaces") {
        Ok(Some(license_id)) => lifecycle::replace(
            &core,
            actor,
            ReplaceRequest {
                license_id,
                item_id: field(&f, "item_id").to_string(),
            },
        )
        .await
        .map(|_| ()),
        Ok(None) => match lines(&f) {
            Ok(l) => append(&core, actor, *id, l).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    tried!(admin, v, result);
    done(&format!("{BASE}/orders/{id}"), "line_added")
}

async fn resend(
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
        orders::resend_ticket_mail(&core, &v.staff().actor, *id).await
    );
    done(&format!("{BASE}/orders/{id}"), "mail_queued")
}

/// The order's ticket disabled, or enabled again (`state` is `disabled` or `active`).
async fn ticket_state(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let actor = &v.staff().actor;
    let enabled = match field(&f, "state") {
        "active" => Ok(true),
        "disabled" => Ok(false),
        other => Err(Error::invalid(
            "state",
            format!("{other:?} is not active or disabled"),
        )),
    };
    let enabled = tried!(admin, v, enabled);
    let reason = field(&f, "reason").to_string();
    let result = async {
        let order = orders::get_order_by_id(&core, actor, *id).await?;
        orders::set_ticket_enabled(&core, actor, &order.ticket, enabled, reason).await
    };
    tried!(admin, v, result.await);
    let notice = if enabled {
        "ticket_enabled"
    } else {
        "ticket_disabled"
    };
    done(&format!("{BASE}/orders/{id}"), notice)
}

async fn items(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let items = tried!(admin, v, catalog::list_items(&core, &v.staff().actor).await);
    admin.page(
        &v,
        StatusCode::OK,
        "items.html",
        json!({"title": admin.text(v.lang, "items.title"), "items": items}),
    )
}

fn item_form(admin: &Admin_, v: &super::Visit, mut item: Value) -> HttpResponse {
    // The options left out when they have their default, as the form shows them.
    for (k, default) in [
        ("trial", json!(false)),
        ("lease_seconds", Value::Null),
        ("check_in_days", Value::Null),
        ("seat_counting", json!("per_access")),
        (
            "activation_limit",
            json!({"activations": null, "days": null}),
        ),
        (
            "update",
            json!({"extend_expiration_days": null, "extend_maintenance_days": null,
                "add_features": null, "add_quantity": null, "add_units": null}),
        ),
    ] {
        if item["options"].get(k).is_none_or(Value::is_null) {
            item["options"][k] = default;
        }
    }
    let title = match item["item_id"].as_str() {
        Some(id) => format!("{} {id}", admin.text(v.lang, "item.title")),
        None => admin.text(v.lang, "item.new"),
    };
    admin.page(
        v,
        StatusCode::OK,
        "item.html",
        json!({"title": title, "item": item,
            "container_types": ["act", "dongle", "cloud"],
            "policies": ["allowed", "after_blocking_period", "approval", "never"],
            "behaviours": ["none", "blacklist", "withdraw"]}),
    )
}

async fn item_new_page(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let options = serde_json::to_value(crate::domain::ItemOptions::default()).expect("options");
    item_form(
        &admin,
        &v,
        json!({"item_id": null, "name": "", "kind": "license", "version": null,
            "firm_code": null, "product_code": null, "options": options, "active": true}),
    )
}

async fn item_page(core: Core_, admin: Admin_, req: HttpRequest) -> HttpResponse {
    let v = staff!(core, admin, req);
    let id = tried!(admin, v, param(&req, "id"));
    let item = tried!(
        admin,
        v,
        catalog::get_item(&core, &v.staff().actor, id).await
    );
    item_form(&admin, &v, serde_json::to_value(item).expect("item"))
}

/// How a field of the item form becomes a value of its options.
enum Kind {
    /// A whole number; empty leaves it out.
    Number,
    Text,
    /// A check box.
    Flag,
    /// A choice; empty (as the settings say) leaves it out.
    Choice,
    /// A date and time (`datetime-local`, taken as UTC).
    Time,
    /// Check boxes of one name: a list.
    List,
    /// Yes, no or empty (as the settings say).
    YesNo,
}

/// Every option the form shows, by the name it has in `ItemOptions` (a dot: nested).
const OPTIONS: &[(&str, Kind)] = &[
    ("container_types", Kind::List),
    ("license_quantity", Kind::Number),
    ("feature_map", Kind::Number),
    ("expiration_time", Kind::Time),
    ("usage_period_days", Kind::Number),
    ("activation_time", Kind::Time),
    ("unit_counter", Kind::Number),
    ("maintenance_period_days", Kind::Number),
    ("check_in_days", Kind::Number),
    ("text", Kind::Text),
    ("user_data", Kind::Text),
    ("protected_data", Kind::Text),
    ("deactivation_allowed", Kind::YesNo),
    ("reactivation", Kind::Choice),
    ("reactivation_behaviour", Kind::Choice),
    ("blocking_period_days", Kind::Number),
    ("self_service_count", Kind::Number),
    ("update.extend_expiration_days", Kind::Number),
    ("update.extend_maintenance_days", Kind::Number),
    ("update.add_features", Kind::Number),
    ("update.add_quantity", Kind::Number),
    ("update.add_units", Kind::Number),
    ("trial", Kind::Flag),
    ("lease_seconds", Kind::Number),
    ("seat_counting", Kind::Choice),
    ("activation_limit.activations", Kind::Number),
    ("activation_limit.days", Kind::Number),
];

/// The item options a form gives, checked as the JSON API checks them (the message names
/// the option).
fn options_of(f: &Form, kind: &str) -> Result<crate::domain::ItemOptions> {
    let mut out = Map::new();
    for (name, k) in OPTIONS {
        let raw = field(f, name);
        let value = match k {
            Kind::Number if raw.is_empty() => continue,
            Kind::Number => json!(raw
                .parse::<u64>()
                .map_err(|_| Error::invalid(*name, format!("{raw:?} is not a whole number")))?),
            Kind::Text => json!(raw),
            Kind::Flag => json!(!raw.is_empty()),
            Kind::Choice | Kind::YesNo if raw.is_empty() => continue,
            Kind::Choice => json!(raw),
            Kind::YesNo => json!(raw == "yes"),
            Kind::Time if raw.is_empty() => continue,
            Kind::Time => {
                let t = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
                    .map_err(|_| {
                        Error::invalid(*name, format!("{raw:?} is not a date and time"))
                    })?;
                json!(t.and_utc().to_rfc3339())
            }
            Kind::List => json!(f.all(name).collect::<Vec<_>>()),
        };
        match name.split_once('.') {
            Some((outer, inner)) => {
                let o = out.entry(outer).or_insert_with(|| json!({}));
                o[inner] = value;
            }
            None => {
                out.insert(name.to_string(), value);
            }
        }
    }
    // The update effect belongs to update items; an empty one is none.
    if kind != "update"
        || out
            .get("update")
            .is_some_and(|u| u.as_object().is_some_and(|o| o.values().all(|v| v == 0)))
    {
        out.remove("update");
    }
    if let Some(limit) = out.get("activation_limit") {
        if limit.as_object().is_some_and(|o| o.len() < 2) {
            return Err(Error::invalid(
                "activation_limit",
                "give both the number of activations and the days, or neither",
            ));
        }
    }
    serde_json::from_value(Value::Object(out)).map_err(|e| Error::invalid("options", e.to_string()))
}

async fn create_item(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let f = form!(admin, v, req, body);
    let kind = field(&f, "kind");
    let options = tried!(admin, v, options_of(&f, kind));
    let kind = tried!(
        admin,
        v,
        serde_json::from_value(json!(kind))
            .map_err(|_| Error::invalid("kind", format!("{kind:?}: choose license or update")))
    );
    let product_code = tried!(admin, v, number::<i64>(&f, "product_code"));
    let new = NewItem {
        item_id: field(&f, "item_id").to_string(),
        name: field(&f, "name").to_string(),
        kind,
        firm_code: tried!(admin, v, number::<i64>(&f, "firm_code")),
        product_code: tried!(
            admin,
            v,
            product_code.ok_or_else(|| Error::invalid("product_code", "give the product code"))
        ),
        options,
    };
    let item = tried!(
        admin,
        v,
        catalog::create_item(&core, &v.staff().actor, new).await
    );
    done(
        &format!("{BASE}/items/view?id={}", query_escape(&item.item_id)),
        "item_saved",
    )
}

async fn change_item(
    core: Core_,
    admin: Admin_,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let v = staff!(core, admin, req);
    let id = tried!(admin, v, param(&req, "id"));
    let f = form!(admin, v, req, body);
    let options = tried!(admin, v, options_of(&f, field(&f, "kind")));
    let version = tried!(admin, v, number::<i32>(&f, "version"));
    let change = ItemChange {
        version: tried!(
            admin,
            v,
            version.ok_or_else(|| Error::invalid("version", "missing"))
        ),
        name: Some(field(&f, "name").to_string()),
        options: Some(options),
        active: Some(!field(&f, "active").is_empty()),
    };
    let item = tried!(
        admin,
        v,
        catalog::change_item(&core, &v.staff().actor, id, change).await
    );
    done(
        &format!("{BASE}/items/view?id={}", query_escape(&item.item_id)),
        "item_saved",
    )
}
