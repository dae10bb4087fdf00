//! The hash chain under the history. Events of a group transaction are collected while its
//! jobs run and appended at its end, under the chain head's row lock, so that several writers
//! (PostgreSQL) hold that lock only for the append and the commit.
use std::cell::RefCell;

use diesel::prelude::*;

use super::schema::{audit_head, events};
use super::Conn;
use crate::error::{Error, Result};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event as stored; `hash` covers `prev_hash` and every field.
#[derive(Debug, Clone, serde::Serialize, Queryable)]
pub struct EventRow {
    pub id: i64,
    pub at: chrono::NaiveDateTime,
    pub actor: String,
    pub interface: String,
    pub action: String,
    pub order_id: Option<i64>,
    pub ticket: Option<String>,
    pub license_id: Option<i64>,
    pub serial: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

pub fn chain_hash(prev: &str, e: &EventRow) -> String {
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let text = [
        prev,
        &e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        &e.actor,
        &e.interface,
        &e.action,
        &opt(e.order_id),
        e.ticket.as_deref().unwrap_or(""),
        &opt(e.license_id),
        e.serial.as_deref().unwrap_or(""),
        &e.details,
    ]
    .join("\u{1f}");
    hex::encode(openssl::sha::sha256(text.as_bytes()))
}

thread_local! {
    /// `Some` while this thread runs a group transaction.
    static PENDING: RefCell<Option<Vec<EventRow>>> = const { RefCell::new(None) };
}

/// Records an event of the running group transaction (id and hashes are set at the append).
pub fn defer(event: EventRow) -> Result<()> {
    PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(v) => {
            v.push(event);
            Ok(())
        }
        None => Err(Error::internal("an event was recorded outside a write")),
    })
}

pub(super) fn begin() {
    PENDING.with(|p| *p.borrow_mut() = Some(Vec::new()));
}

/// How many events are pending: a job that fails is cut back to the mark it started at.
pub(super) fn mark() -> usize {
    PENDING.with(|p| p.borrow().as_ref().map_or(0, Vec::len))
}

pub(super) fn cut_back(to: usize) {
    PENDING.with(|p| {
        if let Some(v) = p.borrow_mut().as_mut() {
            v.truncate(to);
        }
    })
}

/// Appends the pending events to the chain; the caller commits right after.
pub(super) fn append(conn: &mut Conn) -> Result<()> {
    let pending = PENDING.with(|p| p.borrow_mut().take()).unwrap_or_default();
    if pending.is_empty() {
        return Ok(());
    }
    let q = audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::last_event_id, audit_head::last_hash));
    let (_, mut prev): (i64, String) = match conn {
        Conn::Pg(pg) => q.for_update().first(pg)?,
        Conn::Sqlite(lite) => q.first(lite)?,
    };
    let mut last_id = 0;
    for mut e in pending {
        e.prev_hash = prev;
        e.hash = chain_hash(&e.prev_hash, &e);
        last_id = diesel::insert_into(events::table)
            .values((
                events::at.eq(e.at),
                events::actor.eq(&e.actor),
                events::interface.eq(&e.interface),
                events::action.eq(&e.action),
                events::order_id.eq(e.order_id),
                events::ticket.eq(&e.ticket),
                events::license_id.eq(e.license_id),
                events::serial.eq(&e.serial),
                events::details.eq(&e.details),
                events::prev_hash.eq(&e.prev_hash),
                events::hash.eq(&e.hash),
            ))
            .returning(events::id)
            .get_result(conn)?;
        prev = e.hash;
    }
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((
            audit_head::last_event_id.eq(last_id),
            audit_head::last_hash.eq(&prev),
        ))
        .execute(conn)?;
    Ok(())
}

pub(super) fn end() {
    PENDING.with(|p| *p.borrow_mut() = None);
}
