//! Orders become tickets with one license per unit of quantity. Orders are idempotent: the
//! same source and ERP order id with the same lines returns the first result.
//!
//! Just over 800 lines, kept whole for now: an order and the ticket it makes share one
//! transaction and one view (`load_order`, `ticket_view`). The ticket's own operations (the
//! view, `set_ticket_enabled`, `license_with_ticket`, the ticket mail) are the part to move
//! into `service::tickets` when this file grows again.
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use super::catalog::{upsert_customer, CustomerData};
use super::{Core, Stats};
use crate::domain::ticket::TicketCode;
use crate::domain::{
    check_id, check_len, Actor, ItemKind, ItemOptions, LicenseState, Role, TicketState,
    UpdateEffect, MAX_LINES, MAX_QUANTITY, MAX_TEXT,
};
use crate::error::{Error, Result};
use crate::store::items::{self as item_store, ItemRow};
use crate::store::licenses::{self as license_store, Change, NewLicense};
use crate::store::orders::{self as order_store, NewLine};
use crate::store::tickets as ticket_store;
use crate::store::Conn;

const INITIAL_BATCH: &str = "initial";

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub item_id: String,
    pub quantity: i64,
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Who sent the order (`api`, `erp`, a shop's connector name …); scopes `erp_order_id`.
    #[serde(default = "api_source")]
    pub source: String,
    /// The ERP's or shop's order id. Without it the order cannot be recognised when re-sent.
    pub erp_order_id: Option<String>,
    pub customer: CustomerData,
    #[serde(default)]
    pub comment: String,
    pub lines: Vec<OrderLine>,
}

fn api_source() -> String {
    "api".into()
}

/// Appends lines to an existing order's ticket. `batch_key` makes the append itself
/// idempotent: the same key with the same lines returns the first result.
#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddToOrder {
    pub batch_key: Option<String>,
    pub lines: Vec<OrderLine>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct OrderView {
    pub order_id: i64,
    pub source: String,
    pub erp_order_id: String,
    pub customer_id: String,
    /// The scope of `customer_id`: empty for the vendor's customers, a connector's source.
    pub customer_scope: String,
    pub ticket: String,
    pub comment: String,
    pub created_by: String,
    pub created_at: chrono::NaiveDateTime,
    pub lines: Vec<LineView>,
    /// False when this answer repeats an earlier identical request.
    pub created: bool,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct LineView {
    pub batch_key: String,
    pub position: i32,
    pub item_id: String,
    pub quantity: i32,
    pub licenses: Vec<i64>,
}

fn check_lines(lines: &[OrderLine]) -> Result<()> {
    if lines.is_empty() {
        return Err(Error::invalid("lines", "an order needs at least one line"));
    }
    if lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "lines",
            format!("at most {MAX_LINES} lines"),
        ));
    }
    for (i, l) in lines.iter().enumerate() {
        check_id(&format!("lines[{i}].item_id"), &l.item_id)?;
        if l.quantity < 1 || l.quantity > MAX_QUANTITY as i64 {
            return Err(Error::invalid(
                format!("lines[{i}].quantity"),
                format!("between 1 and {MAX_QUANTITY}"),
            ));
        }
    }
    let total: i64 = lines.iter().map(|l| l.quantity).sum();
    if total > MAX_QUANTITY as i64 {
        return Err(Error::invalid(
            "lines",
            format!("at most {MAX_QUANTITY} licenses per request"),
        ));
    }
    Ok(())
}

impl NewOrder {
    fn validate(&mut self) -> Result<()> {
        check_id("source", &self.source)?;
        match &self.erp_order_id {
            Some(id) => check_id("erp_order_id", id)?,
            None => {
                self.erp_order_id = Some(format!("auto-{}", TicketCode::generate().as_stored()))
            }
        }
        check_len("comment", &self.comment, MAX_TEXT * 4)?;
        self.customer.validate()?;
        check_lines(&self.lines)
    }
}

const ORDER_ROLES: &[Role] = &[Role::Admin, Role::Sales, Role::Erp];

pub async fn create_order(core: &Core, actor: &Actor, req: NewOrder) -> Result<OrderView> {
    create_order_then(core, actor, req, |_, _| Ok(())).await
}

/// `create_order`, and `then` in the same transaction when the order is new (a connector
/// queues its ERP write-back there).
pub async fn create_order_then(
    core: &Core,
    actor: &Actor,
    req: NewOrder,
    then: impl FnMut(&mut Conn, &OrderView) -> Result<()> + Send + 'static,
) -> Result<OrderView> {
    actor.require(ORDER_ROLES, "create orders")?;
    Ok(place_order(core, actor, req, None, then).await?.0)
}

/// What an order request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Created,
    /// New lines went onto the existing order's ticket as the batch named.
    Appended,
    /// The request repeated one already carried out: nothing changed.
    Repeated,
}

/// An order, or new lines for it: the order's first request makes it, the same request
/// again changes nothing, and other lines for the same order (the same customer) are appended
/// to its ticket as the batch `batch_key` (that batch again changes nothing). The connectors'
/// way (an ERP or shop sends the original order id with what was ordered since); `then` runs
/// in the same transaction whenever something was written.
pub async fn create_or_append_then(
    core: &Core,
    actor: &Actor,
    req: NewOrder,
    batch_key: String,
    then: impl FnMut(&mut Conn, &OrderView) -> Result<()> + Send + 'static,
) -> Result<(OrderView, Placed)> {
    actor.require(ORDER_ROLES, "create orders")?;
    check_batch_key(&batch_key)?;
    place_order(core, actor, req, Some(batch_key), then).await
}

fn check_batch_key(k: &str) -> Result<()> {
    if k == INITIAL_BATCH {
        return Err(Error::invalid("batch_key", "'initial' is reserved"));
    }
    check_id("batch_key", k)
}

/// `create_order_then` for a caller that checked itself who may order what (the portal's
/// trials: a customer orders one license of a trial item, once); with `append`, other lines
/// for an existing order are appended as that batch (`create_or_append_then`).
pub(crate) async fn place_order(
    core: &Core,
    actor: &Actor,
    mut req: NewOrder,
    append: Option<String>,
    mut then: impl FnMut(&mut Conn, &OrderView) -> Result<()> + Send + 'static,
) -> Result<(OrderView, Placed)> {
    req.validate()?;
    let actor = actor.clone();
    let ticket_mail = super::mail::ticket_mail_for(&core.config, &req.source);
    let portal = core.config.portal_url.trim_end_matches('/').to_string();
    let view = core
        .db
        .write(move |c| {
            let erp_id = req.erp_order_id.clone().expect("validated");
            if let Some(order_id) = order_store::find(c, &req.source, &erp_id)? {
                let view = load_order(c, order_id, false)?;
                // The order found by its source and number names its customer: the same
                // external id in the request's scope, or in the vendor's (a customer both a
                // connector and the vendor's systems used before scopes stays the vendor's).
                let same_customer = view.customer_id == req.customer.external_id
                    && (view.customer_scope == req.customer.scope
                        || view.customer_scope.is_empty());
                if same_customer && lines_of(&view, INITIAL_BATCH) == req.lines {
                    return Ok((view, Placed::Repeated, 0));
                }
                if let (true, Some(batch)) = (same_customer, append.as_deref()) {
                    let (view, made) = append_lines(c, &actor, order_id, view, batch, &req.lines)?;
                    if made == 0 {
                        return Ok((view, Placed::Repeated, 0));
                    }
                    then(c, &view)?;
                    return Ok((view, Placed::Appended, made));
                }
                return Err(Error::OrderConflict(format!(
                    "order {erp_id} from {} exists with other lines or another customer; use add-to-order to append",
                    req.source
                )));
            }
            let resolved = resolve_items(c, &req.lines)?;
            let customer = upsert_customer(c, &req.customer)?;
            // 119 random bits: a collision is practically impossible, and if it happens the
            // unique index refuses it and the write runs again with a new code.
            let code = TicketCode::generate();
            let now = super::now();
            let ticket_id = ticket_store::insert(c, &code, customer.id, now)?;
            let order_id = order_store::insert(
                c,
                &order_store::NewOrder {
                    source: &req.source,
                    erp_order_id: &erp_id,
                    customer_id: customer.id,
                    ticket_id,
                    comment: &req.comment,
                    created_by: &actor.name,
                },
                now,
            )?;
            let made = insert_lines(c, &actor, order_id, ticket_id, INITIAL_BATCH, &resolved)?;
            if ticket_mail && !customer.email.is_empty() {
                let lines: Vec<serde_json::Value> = req
                    .lines
                    .iter()
                    .zip(&resolved)
                    .map(|(l, r)| serde_json::json!({"item_id": l.item_id, "name": r.name,
                        "quantity": l.quantity}))
                    .collect();
                super::mail::enqueue(c, super::mail::NewMail {
                    kind: "ticket",
                    recipient: &customer.email,
                    locale: &customer.locale,
                    params: serde_json::json!({"customer_name": customer.name,
                        "order_id": erp_id, "ticket": code.to_string(),
                        "ticket_url": format!("{portal}/tickets/{code}"), "licenses": lines}),
                    attachment: None,
                })?;
            }
            // The answer is built from what was just written: no reads after the inserts.
            let view = OrderView {
                order_id,
                source: req.source.clone(),
                erp_order_id: erp_id.clone(),
                customer_id: customer.external_id.clone(),
                customer_scope: customer.scope.clone(),
                ticket: code.to_string(),
                comment: req.comment.clone(),
                created_by: actor.name.clone(),
                created_at: now,
                lines: req
                    .lines
                    .iter()
                    .zip(&made)
                    .enumerate()
                    .map(|(i, (l, ids))| LineView {
                        batch_key: INITIAL_BATCH.into(),
                        position: i as i32 + 1,
                        item_id: l.item_id.clone(),
                        quantity: l.quantity as i32,
                        licenses: ids.clone(),
                    })
                    .collect(),
                created: true,
            };
            audit::record(&actor, Event {
                action: "order.created",
                order_id: Some(order_id),
                ticket: Some(code.as_stored()),
                details: serde_json::json!({"source": req.source, "erp_order_id": erp_id,
                    "customer": customer.external_id, "customer_scope": customer.scope,
                    "lines": req.lines, "licenses": made}),
                ..Default::default()
            })?;
            then(c, &view)?;
            let made = view.lines.iter().map(|l| l.licenses.len() as u64).sum();
            Ok((view, Placed::Created, made))
        })
        .await?;
    let (view, placed, made) = view;
    if placed == Placed::Created {
        Stats::add(&core.stats.orders_created, 1);
        Stats::add(&core.stats.tickets_created, 1);
    }
    Stats::add(&core.stats.licenses_created, made);
    Ok((view, placed))
}

/// Appends lines to the ticket of an existing order.
pub async fn add_to_order(
    core: &Core,
    actor: &Actor,
    source: String,
    erp_order_id: String,
    req: AddToOrder,
) -> Result<OrderView> {
    actor.require(ORDER_ROLES, "change orders")?;
    check_id("source", &source)?;
    check_id("erp_order_id", &erp_order_id)?;
    check_lines(&req.lines)?;
    let batch_key = match &req.batch_key {
        Some(k) => {
            check_batch_key(k)?;
            k.clone()
        }
        None => format!("add-{}", TicketCode::generate().as_stored()),
    };
    let actor = actor.clone();
    let (view, made) = core
        .db
        .write(move |c| {
            let order_id = order_store::find(c, &source, &erp_order_id)?
                .ok_or_else(|| Error::not_found("order", &erp_order_id))?;
            let existing = load_order(c, order_id, false)?;
            append_lines(c, &actor, order_id, existing, &batch_key, &req.lines)
        })
        .await?;
    Stats::add(&core.stats.licenses_created, made);
    Ok(view)
}

/// Appends `lines` to order `order_id` (read as `existing`) as the batch `batch_key`: the
/// order as it is then, and how many licenses were made (none: the batch was there with the
/// same lines; with other lines it is a conflict).
fn append_lines(
    c: &mut Conn,
    actor: &Actor,
    order_id: i64,
    existing: OrderView,
    batch_key: &str,
    lines: &[OrderLine],
) -> Result<(OrderView, u64)> {
    if existing.lines.iter().any(|l| l.batch_key == batch_key) {
        if lines_of(&existing, batch_key) == lines {
            return Ok((existing, 0));
        }
        return Err(Error::OrderConflict(format!(
            "batch {batch_key} of order {} exists with other lines",
            existing.erp_order_id
        )));
    }
    let resolved = resolve_items(c, lines)?;
    let ticket_id = order_store::ticket_of(c, order_id)?;
    let made = insert_lines(c, actor, order_id, ticket_id, batch_key, &resolved)?;
    audit::record(
        actor,
        Event {
            action: "order.lines_added",
            order_id: Some(order_id),
            ticket: Some(&existing.ticket.replace('-', "")),
            details: serde_json::json!({"batch_key": batch_key, "lines": lines,
                "licenses": made}),
            ..Default::default()
        },
    )?;
    let count = made.iter().map(|m| m.len() as u64).sum();
    Ok((load_order(c, order_id, true)?, count))
}

pub async fn get_order(
    core: &Core,
    actor: &Actor,
    source: String,
    erp_order_id: String,
) -> Result<OrderView> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read orders",
    )?;
    core.db
        .read(move |c| {
            let id = order_store::find(c, &source, &erp_order_id)?
                .ok_or_else(|| Error::not_found("order", &erp_order_id))?;
            load_order(c, id, false)
        })
        .await
}

/// Sends the ticket mail of order `order_id` again, to the customer's address as it is
/// now (the customer lost it, or it went to an old address), with every line of the order.
pub async fn resend_ticket_mail(core: &Core, actor: &Actor, order_id: i64) -> Result<()> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support],
        "send ticket mails",
    )?;
    let actor = actor.clone();
    let portal = core.config.portal_url.trim_end_matches('/').to_string();
    core.db
        .write(move |c| {
            let view = load_order(c, order_id, false)?;
            let (scope, id) = (&view.customer_scope, &view.customer_id);
            let customer = crate::store::customers::by_external_id(c, scope, id)?
                .ok_or_else(|| Error::not_found("customer", id))?;
            if customer.email.is_empty() {
                return Err(Error::Conflict(format!(
                    "customer {} has no e-mail address: add one first",
                    customer.external_id
                )));
            }
            let mut lines = vec![];
            for l in &view.lines {
                let item = item_store::by_item_id(c, &l.item_id)?;
                lines.push(serde_json::json!({"item_id": l.item_id, "name": item.name,
                    "quantity": l.quantity}));
            }
            let code = TicketCode::parse(&view.ticket)?;
            super::mail::enqueue(
                c,
                super::mail::NewMail {
                    kind: "ticket",
                    recipient: &customer.email,
                    locale: &customer.locale,
                    params: serde_json::json!({"customer_name": customer.name,
                    "order_id": view.erp_order_id, "ticket": code.to_string(),
                    "ticket_url": format!("{portal}/tickets/{code}"), "licenses": lines}),
                    attachment: None,
                },
            )?;
            audit::record(
                &actor,
                Event {
                    action: "order.ticket_mail_resent",
                    order_id: Some(order_id),
                    ticket: Some(code.as_stored()),
                    details: serde_json::json!({"recipient": customer.email}),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
}

/// `resend_ticket_mail` for the order an ERP or shop knows by its source and order id.
pub async fn resend_ticket_mail_of(
    core: &Core,
    actor: &Actor,
    source: String,
    erp_order_id: String,
) -> Result<()> {
    check_id("source", &source)?;
    check_id("erp_order_id", &erp_order_id)?;
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support],
        "send ticket mails",
    )?;
    let id = core
        .db
        .read(move |c| {
            order_store::find(c, &source, &erp_order_id)?
                .ok_or_else(|| Error::not_found("order", &erp_order_id))
        })
        .await?;
    resend_ticket_mail(core, actor, id).await
}

/// An order by Licentia's own id (the back office's links).
pub async fn get_order_by_id(core: &Core, actor: &Actor, order_id: i64) -> Result<OrderView> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read orders",
    )?;
    core.db.read(move |c| load_order(c, order_id, false)).await
}

fn lines_of(view: &OrderView, batch: &str) -> Vec<OrderLine> {
    view.lines
        .iter()
        .filter(|l| l.batch_key == batch)
        .map(|l| OrderLine {
            item_id: l.item_id.clone(),
            quantity: l.quantity as i64,
        })
        .collect()
}

struct Resolved {
    item_pk: i64,
    firm_id: i64,
    product_code: i64,
    options: String,
    quantity: i32,
    name: String,
    /// For an update item: what it does to each license it matches.
    effect: Option<UpdateEffect>,
}

fn resolve_items(c: &mut Conn, lines: &[OrderLine]) -> Result<Vec<Resolved>> {
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let ItemRow {
            pk: item_pk,
            firm_id,
            product_code,
            options,
            kind,
            active,
            name,
        } = item_store::by_item_id(c, &l.item_id)?;
        if !active {
            return Err(Error::invalid(
                format!("lines[{i}].item_id"),
                format!("item {} is not for sale", l.item_id),
            ));
        }
        if kind == ItemKind::Lock {
            return Err(Error::invalid(
                format!("lines[{i}].item_id"),
                "the lock item cannot be ordered",
            ));
        }
        let effect = if kind == ItemKind::Update {
            let o: ItemOptions = serde_json::from_str(&options)
                .map_err(|e| Error::internal(format!("item {} options: {e}", l.item_id)))?;
            Some(o.update.unwrap_or_default())
        } else {
            None
        };
        out.push(Resolved {
            item_pk,
            firm_id,
            product_code,
            options,
            quantity: l.quantity as i32,
            name,
            effect,
        });
    }
    Ok(out)
}

/// Inserts the lines and their licenses; returns the license ids of each line.
fn insert_lines(
    c: &mut Conn,
    actor: &Actor,
    order_id: i64,
    ticket_id: i64,
    batch: &str,
    resolved: &[Resolved],
) -> Result<Vec<Vec<i64>>> {
    let now = super::now();
    let mut made = Vec::with_capacity(resolved.len());
    for (pos, r) in resolved.iter().enumerate() {
        let line_id = order_store::insert_line(
            c,
            &NewLine {
                order_id,
                batch_key: batch,
                position: pos as i32 + 1,
                item_pk: r.item_pk,
                quantity: r.quantity,
            },
        )?;
        if let Some(effect) = &r.effect {
            apply_update_item(c, actor, ticket_id, pos, r, effect, now)?;
            made.push(vec![]);
            continue;
        }
        let mut ids = Vec::with_capacity(r.quantity as usize);
        let new = NewLicense {
            ticket_id,
            order_line_id: line_id,
            item_pk: r.item_pk,
            firm_id: r.firm_id,
            product_code: r.product_code,
            options: &r.options,
            state: LicenseState::Available,
            serial: None,
        };
        for _ in 0..r.quantity {
            ids.push(license_store::insert(c, &new, now)?);
        }
        made.push(ids);
    }
    Ok(made)
}

/// An update item line: every license of the ticket with the item's firm and product code
/// (not withdrawn) gets the effect, `quantity` times. A license in a container gets it by
/// automatic update (its entry no longer matches what the container confirmed).
fn apply_update_item(
    c: &mut Conn,
    actor: &Actor,
    ticket_id: i64,
    pos: usize,
    r: &Resolved,
    effect: &UpdateEffect,
    now: chrono::NaiveDateTime,
) -> Result<()> {
    let matching = license_store::matching_product(c, ticket_id, r.firm_id, r.product_code)?;
    if matching.is_empty() {
        return Err(Error::invalid(
            format!("lines[{pos}].item_id"),
            format!(
                "the update item matches no license with product code {} on this ticket",
                r.product_code
            ),
        ));
    }
    for l in matching {
        let mut o = l.options()?;
        effect.apply(&mut o, r.quantity as u32, now.and_utc());
        let options = serde_json::to_string(&o).expect("options");
        let set = Change {
            options: Some(&options),
            ..Change::default()
        };
        license_store::change(c, l.id, l.state, l.version, set, now)?;
        let id = l.id;
        audit::record(
            actor,
            Event {
                action: "license.updated",
                license_id: Some(id),
                details: serde_json::json!({"times": r.quantity, "effect": effect}),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

fn load_order(c: &mut Conn, order_id: i64, created: bool) -> Result<OrderView> {
    let o = order_store::get(c, order_id)?;
    Ok(OrderView {
        order_id: o.id,
        source: o.source,
        erp_order_id: o.erp_order_id,
        comment: o.comment,
        created_by: o.created_by,
        created_at: o.created_at,
        customer_id: o.customer_id,
        customer_scope: o.customer_scope,
        ticket: TicketCode::parse(&o.ticket)?.to_string(),
        lines: order_store::lines(c, order_id)?
            .into_iter()
            .map(|l| LineView {
                batch_key: l.batch_key,
                position: l.position,
                item_id: l.item_id,
                quantity: l.quantity,
                licenses: l.licenses,
            })
            .collect(),
        created,
    })
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct TicketView {
    pub ticket: String,
    pub state: String,
    pub customer_id: String,
    /// The scope of `customer_id`: empty for the vendor's customers, a connector's source.
    pub customer_scope: String,
    pub created_at: chrono::NaiveDateTime,
    pub orders: Vec<String>,
    pub licenses: Vec<LicenseView>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct LicenseView {
    pub license_id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub state: String,
    pub generation: i32,
    pub serial: Option<String>,
    pub options: serde_json::Value,
}

/// A ticket with its licenses (deleted ones have left it). The code is checked before the
/// database is asked.
pub async fn get_ticket(core: &Core, actor: &Actor, code: &str) -> Result<TicketView> {
    ticket_view(core, actor, code, None).await
}

/// Disables a customer's ticket, or enables it again. A disabled ticket activates,
/// re-activates and restores nothing, through every door, and says why; what is already in
/// containers stays there (withdraw licenses to take them back). Asking for the state the
/// ticket has changes and records nothing, so an ERP may send it again. A production
/// order's ticket is not a customer's and stays as it is.
pub async fn set_ticket_enabled(
    core: &Core,
    actor: &Actor,
    code: &str,
    enabled: bool,
    reason: String,
) -> Result<TicketView> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Erp],
        "disable or enable tickets",
    )?;
    check_len("reason", &reason, 1024)?;
    let ticket = TicketCode::parse(code)?;
    let who = actor.clone();
    core.db
        .write(move |c| {
            let id = ticket_store::id_of(c, &ticket)?;
            ticket_store::lock(c, id)?;
            let (_, state) = ticket_store::find(c, &ticket)?;
            let want = if enabled {
                TicketState::Active
            } else {
                TicketState::Disabled
            };
            if state == TicketState::Production {
                return Err(Error::NotAllowed(format!(
                    "ticket {ticket} is a production order's: it is neither disabled nor enabled"
                )));
            }
            if state == want {
                return Ok(());
            }
            ticket_store::set_state(c, id, want)?;
            audit::record(
                &who,
                Event {
                    action: if enabled {
                        "ticket.enabled"
                    } else {
                        "ticket.disabled"
                    },
                    ticket: Some(ticket.as_stored()),
                    details: serde_json::json!({ "reason": reason }),
                    ..Default::default()
                },
            )
        })
        .await?;
    ticket_view(core, actor, code, None).await
}

/// The ticket view; `keep` is a license listed even if deleted.
async fn ticket_view(
    core: &Core,
    actor: &Actor,
    code: &str,
    keep: Option<i64>,
) -> Result<TicketView> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read tickets",
    )?;
    let code = TicketCode::parse(code)?;
    core.db
        .read(move |c| {
            let t = ticket_store::by_code(c, &code)?;
            let orders = order_store::erp_ids_of_ticket(c, t.id)?;
            let licenses = license_store::listed_on_ticket(c, t.id, keep)?
                .into_iter()
                .map(|l| LicenseView {
                    license_id: l.id,
                    item_id: l.item_id,
                    firm_code: l.firm_code,
                    product_code: l.product_code,
                    state: l.state,
                    generation: l.generation,
                    serial: l.serial,
                    options: serde_json::from_str(&l.options).unwrap_or(serde_json::Value::Null),
                })
                .collect();
            Ok(TicketView {
                ticket: code.to_string(),
                state: t.state,
                customer_id: t.customer_id,
                customer_scope: t.customer_scope,
                created_at: t.created_at,
                orders,
                licenses,
            })
        })
        .await
}

/// One license and the code of the ticket it belongs to.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LicenseWithTicket {
    pub ticket: String,
    pub license: LicenseView,
}

/// One license with the ticket it belongs to.
pub async fn get_license(core: &Core, actor: &Actor, id: i64) -> Result<LicenseWithTicket> {
    let (ticket, license) = license_with_ticket(core, actor, id).await?;
    Ok(LicenseWithTicket { ticket, license })
}

/// One license (also a deleted one) and the code of the ticket it belongs to.
pub async fn license_with_ticket(
    core: &Core,
    actor: &Actor,
    id: i64,
) -> Result<(String, LicenseView)> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read licenses",
    )?;
    let ticket = core
        .db
        .read(move |c| license_store::ticket_code_of(c, id))
        .await?;
    let code = ticket.ok_or_else(|| Error::not_found("license", id))?;
    let view = ticket_view(core, actor, &code, Some(id)).await?;
    let lic = view
        .licenses
        .into_iter()
        .find(|l| l.license_id == id)
        .ok_or_else(|| Error::not_found("license", id))?;
    Ok((view.ticket, lic))
}
