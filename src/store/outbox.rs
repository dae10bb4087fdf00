//! The outbox: mails queued in the transaction of the change that causes them and sent by
//! the outbox sender (`service::mail`); its lease queries are the queue's (`super::queue`).
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::outbox;
use super::Conn;
use crate::domain::QueueState;
use crate::error::Result;

/// The outbox as a queue.
pub struct Outbox;

/// What sending a claimed mail needs.
#[derive(Debug, Queryable)]
pub struct MailToSend {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub locale: String,
    /// The template's parameters (JSON).
    pub params: String,
    pub attachment_name: Option<String>,
    pub attachment: Option<String>,
    /// When it was queued: with `id`, what its Message-ID is made of.
    pub created_at: NaiveDateTime,
}

impl MailToSend {
    /// The mail's Message-ID, the same for every attempt (SMTP delivers at least once: a
    /// mail sent again after a crash carries the same id, so mail clients and support desks
    /// drop the copy). `domain` is the sender's.
    pub fn message_id(&self, domain: &str) -> String {
        format!(
            "<licentia.{}.{}@{domain}>",
            self.id,
            self.created_at.and_utc().timestamp()
        )
    }
}

super::queue::queue_table!(
    Outbox,
    outbox,
    MailToSend,
    (
        id,
        kind,
        recipient,
        locale,
        params,
        attachment_name,
        attachment,
        created_at
    )
);

/// A mail to queue.
pub struct NewMail<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub locale: &'a str,
    /// The template's parameters (JSON).
    pub params: &'a str,
    /// File name and text.
    pub attachment: Option<(&'a str, &'a str)>,
}

/// Queues a mail, due at once on the clock the senders reckon with (see `super::queue`);
/// its id.
pub fn insert(c: &mut Conn, m: &NewMail) -> Result<i64> {
    let now = super::db_now(c)?;
    let (name, body) = m.attachment.unzip();
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(m.kind),
            outbox::recipient.eq(m.recipient),
            outbox::locale.eq(m.locale),
            outbox::params.eq(m.params),
            outbox::attachment_name.eq(name),
            outbox::attachment.eq(body),
            outbox::state.eq(QueueState::Queued.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::last_error.eq(""),
            outbox::created_at.eq(now),
        ))
        .returning(outbox::id)
        .get_result(c)?)
}

/// A mail as support sees it in the outbox.
#[derive(schemars::JsonSchema, Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct MailView {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    #[diesel(deserialize_as = String)]
    pub state: QueueState,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// The newest `limit` mails, in `state` or in any.
pub fn newest(c: &mut Conn, state: Option<QueueState>, limit: i64) -> Result<Vec<MailView>> {
    let mut q = outbox::table.select(MailView::as_select()).into_boxed();
    if let Some(s) = state {
        q = q.filter(outbox::state.eq(s.as_str()));
    }
    Ok(q.order(outbox::id.desc()).limit(limit).load(c)?)
}
