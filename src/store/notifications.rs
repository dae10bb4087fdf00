//! The connector log: every notification a connector received, with what became of it.
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::notifications;
use super::Conn;
use crate::domain::NotificationOutcome;
use crate::error::Result;

/// Records a notification as received; its id.
pub fn insert_received(
    c: &mut Conn,
    connector: &str,
    reference: &str,
    body: &str,
    now: NaiveDateTime,
) -> Result<i64> {
    Ok(diesel::insert_into(notifications::table)
        .values((
            notifications::connector.eq(connector),
            notifications::reference.eq(reference),
            notifications::received_at.eq(now),
            notifications::outcome.eq(NotificationOutcome::Received.as_str()),
            notifications::detail.eq(""),
            notifications::body.eq(body),
        ))
        .returning(notifications::id)
        .get_result(c)?)
}

/// Records what became of notification `id`, and the ticket it made or found.
pub fn set_outcome(
    c: &mut Conn,
    id: i64,
    outcome: NotificationOutcome,
    detail: &str,
    ticket: Option<&str>,
) -> Result<()> {
    diesel::update(notifications::table.filter(notifications::id.eq(id)))
        .set((
            notifications::outcome.eq(outcome.as_str()),
            notifications::detail.eq(detail),
            notifications::ticket.eq(ticket),
        ))
        .execute(c)?;
    Ok(())
}

/// A notification as support sees it (without its body).
#[derive(schemars::JsonSchema, Debug, Serialize, Queryable)]
pub struct NotificationView {
    pub id: i64,
    pub connector: String,
    pub reference: String,
    pub received_at: NaiveDateTime,
    #[diesel(deserialize_as = String)]
    pub outcome: NotificationOutcome,
    pub detail: String,
    pub ticket: Option<String>,
}

/// The newest `limit` notifications, of `connector` or of any.
pub fn newest(c: &mut Conn, connector: Option<&str>, limit: i64) -> Result<Vec<NotificationView>> {
    let mut q = notifications::table
        .select((
            notifications::id,
            notifications::connector,
            notifications::reference,
            notifications::received_at,
            notifications::outcome,
            notifications::detail,
            notifications::ticket,
        ))
        .into_boxed();
    if let Some(n) = connector {
        q = q.filter(notifications::connector.eq(n));
    }
    Ok(q.order(notifications::id.desc()).limit(limit).load(c)?)
}
