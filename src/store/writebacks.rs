//! ERP write-backs: an order's ticket (again after an append), queued in the order's transaction and posted to
//! the ERP by the write-back sender (`service::connectors`); its lease queries are the
//! queue's (`super::queue`).
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::writebacks;
use super::{unique_or_retry, Conn};
use crate::domain::QueueState;
use crate::error::Result;

/// The write-backs as a queue.
pub struct WriteBacks;

/// What posting a claimed write-back needs.
#[derive(Debug, Queryable)]
pub struct WriteBackToPost {
    /// The connector whose definition holds the ERP's credentials.
    pub connector: String,
    pub url: String,
    pub content_type: String,
    pub body: String,
}

super::queue::queue_table!(
    WriteBacks,
    writebacks,
    WriteBackToPost,
    (connector, url, content_type, body)
);

/// A write-back to queue.
pub struct NewWriteBack<'a> {
    pub connector: &'a str,
    pub order_id: i64,
    pub url: &'a str,
    pub content_type: &'a str,
    pub body: &'a str,
}

/// Queues a write-back, due at once on the clock the senders reckon with (see
/// `super::queue`). An order has one per connector: when lines are appended to the order,
/// the ticket as it is now replaces what was queued or sent before and is due again, and a
/// node posting the old body cannot mark the new one sent (the claim is dropped). Another
/// writer queuing the first one at the same time makes the write run again.
pub fn queue(c: &mut Conn, w: &NewWriteBack) -> Result<()> {
    let now = super::db_now(c)?;
    let again = diesel::update(
        writebacks::table
            .filter(writebacks::connector.eq(w.connector))
            .filter(writebacks::order_id.eq(w.order_id)),
    )
    .set((
        writebacks::url.eq(w.url),
        writebacks::content_type.eq(w.content_type),
        writebacks::body.eq(w.body),
        writebacks::state.eq(QueueState::Queued.as_str()),
        writebacks::attempts.eq(0),
        writebacks::next_attempt_at.eq(now),
        writebacks::claimed_by.eq(None::<String>),
        writebacks::claimed_until.eq(None::<NaiveDateTime>),
        writebacks::last_error.eq(""),
        writebacks::sent_at.eq(None::<NaiveDateTime>),
    ))
    .execute(c)?;
    if again > 0 {
        return Ok(());
    }
    unique_or_retry(
        diesel::insert_into(writebacks::table)
            .values((
                writebacks::connector.eq(w.connector),
                writebacks::order_id.eq(w.order_id),
                writebacks::url.eq(w.url),
                writebacks::content_type.eq(w.content_type),
                writebacks::body.eq(w.body),
                writebacks::state.eq(QueueState::Queued.as_str()),
                writebacks::attempts.eq(0),
                writebacks::next_attempt_at.eq(now),
                writebacks::last_error.eq(""),
                writebacks::created_at.eq(now),
            ))
            .execute(c),
    )?;
    Ok(())
}

/// A write-back as support sees it.
#[derive(schemars::JsonSchema, Debug, Serialize, Queryable)]
pub struct WriteBackView {
    pub id: i64,
    pub connector: String,
    pub order_id: i64,
    pub url: String,
    #[diesel(deserialize_as = String)]
    pub state: QueueState,
    pub attempts: i32,
    pub last_error: String,
    pub sent_at: Option<NaiveDateTime>,
}

/// The newest `limit` write-backs, of `connector` or of any.
pub fn newest(c: &mut Conn, connector: Option<&str>, limit: i64) -> Result<Vec<WriteBackView>> {
    let mut q = writebacks::table
        .select((
            writebacks::id,
            writebacks::connector,
            writebacks::order_id,
            writebacks::url,
            writebacks::state,
            writebacks::attempts,
            writebacks::last_error,
            writebacks::sent_at,
        ))
        .into_boxed();
    if let Some(n) = connector {
        q = q.filter(writebacks::connector.eq(n));
    }
    Ok(q.order(writebacks::id.desc()).limit(limit).load(c)?)
}
