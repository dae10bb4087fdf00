//! Webhook subscriptions and their deliveries. A subscription reads the history after its
//! cursor; the events of its kinds become deliveries in the transaction that moves the
//! cursor. Deliveries are a queue like the outbox (`super::queue`), except that only the
//! oldest pending delivery of an active subscription is due: a subscription's events leave
//! one at a time, in the history's order.
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{webhook_deliveries as d, webhooks as w};
use super::Conn;
use crate::domain::QueueState;
use crate::error::Result;

/// The deliveries as a queue.
pub struct Deliveries;

/// What sending a claimed delivery needs (the URL and key are read from its subscription).
#[derive(Debug, Queryable)]
pub struct DeliveryToSend {
    pub webhook_id: i64,
    pub event_id: i64,
    pub kind: String,
    pub body: String,
}

super::queue::queue_table!(
    Deliveries,
    webhook_deliveries,
    DeliveryToSend,
    (webhook_id, event_id, kind, body),
    "NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
       WHERE e.webhook_id = webhook_deliveries.webhook_id AND e.id < webhook_deliveries.id \
       AND e.state IN ('queued', 'sending')) \
     AND EXISTS (SELECT 1 FROM webhooks s \
       WHERE s.id = webhook_deliveries.webhook_id AND s.active)"
);

/// A subscription to make.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub events: &'a str,
    pub secret: &'a str,
    pub description: &'a str,
    pub created_by: &'a str,
}

/// Makes a subscription that starts after event `head` (the history's last); its id.
pub fn insert(c: &mut Conn, h: &NewWebhook, head: i64, now: NaiveDateTime) -> Result<i64> {
    Ok(diesel::insert_into(w::table)
        .values((
            w::url.eq(h.url),
            w::events.eq(h.events),
            w::secret.eq(h.secret),
            w::description.eq(h.description),
            w::active.eq(true),
            w::cursor_event_id.eq(head),
            w::created_by.eq(h.created_by),
            w::created_at.eq(now),
        ))
        .returning(w::id)
        .get_result(c)?)
}

/// A subscription as vendor staff see it (without its key).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = w)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub description: String,
    pub active: bool,
    /// The last history event it has looked at.
    pub cursor_event_id: i64,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// Every subscription, oldest first.
pub fn all(c: &mut Conn) -> Result<Vec<WebhookView>> {
    Ok(w::table
        .select(WebhookView::as_select())
        .order(w::id.asc())
        .load(c)?)
}

pub fn get(c: &mut Conn, id: i64) -> Result<Option<WebhookView>> {
    Ok(w::table
        .filter(w::id.eq(id))
        .select(WebhookView::as_select())
        .first(c)
        .optional()?)
}

/// Where and with which key (sealed under the master key) a subscription's deliveries are
/// sent.
pub fn target(c: &mut Conn, id: i64) -> Result<Option<(String, String)>> {
    Ok(w::table
        .filter(w::id.eq(id))
        .select((w::url, w::secret))
        .first(c)
        .optional()?)
}

/// Pauses or resumes a subscription; false if there is none. A paused one still queues
/// its events (nothing is missed) but sends none.
pub fn set_active(c: &mut Conn, id: i64, active: bool) -> Result<bool> {
    Ok(diesel::update(w::table.filter(w::id.eq(id)))
        .set(w::active.eq(active))
        .execute(c)?
        > 0)
}

/// Deletes a subscription with its deliveries; false if there is none.
pub fn delete(c: &mut Conn, id: i64) -> Result<bool> {
    diesel::delete(d::table.filter(d::webhook_id.eq(id))).execute(c)?;
    Ok(diesel::delete(w::table.filter(w::id.eq(id))).execute(c)? > 0)
}

/// Moves subscription `id`'s cursor from `from` to `to`; false when it is no longer at
/// `from` (another node moved it first: the events are queued there).
pub fn advance(c: &mut Conn, id: i64, from: i64, to: i64) -> Result<bool> {
    Ok(diesel::update(
        w::table
            .filter(w::id.eq(id))
            .filter(w::cursor_event_id.eq(from)),
    )
    .set(w::cursor_event_id.eq(to))
    .execute(c)?
        > 0)
}

/// Queues the delivery of event `event_id` to subscription `webhook_id`, due at once.
pub fn queue(c: &mut Conn, webhook_id: i64, event_id: i64, kind: &str, body: &str) -> Result<()> {
    let now = super::db_now(c)?;
    diesel::insert_into(d::table)
        .values((
            d::webhook_id.eq(webhook_id),
            d::event_id.eq(event_id),
            d::kind.eq(kind),
            d::body.eq(body),
            d::state.eq(QueueState::Queued.as_str()),
            d::attempts.eq(0),
            d::next_attempt_at.eq(now),
            d::last_error.eq(""),
            d::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// A delivery as vendor staff see it (without its body).
#[derive(schemars::JsonSchema, Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = d)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub kind: String,
    #[diesel(deserialize_as = String)]
    pub state: QueueState,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// The newest `limit` deliveries, of one subscription or of all, in `state` or in any.
pub fn newest(
    c: &mut Conn,
    webhook_id: Option<i64>,
    state: Option<QueueState>,
    limit: i64,
) -> Result<Vec<DeliveryView>> {
    let mut q = d::table.select(DeliveryView::as_select()).into_boxed();
    if let Some(id) = webhook_id {
        q = q.filter(d::webhook_id.eq(id));
    }
    if let Some(s) = state {
        q = q.filter(d::state.eq(s.as_str()));
    }
    Ok(q.order(d::id.desc()).limit(limit).load(c)?)
}
