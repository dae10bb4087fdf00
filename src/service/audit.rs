//! The history: every change writes an event in the same transaction, chained by hash.
use diesel::prelude::*;
use serde::Serialize;

use crate::domain::Actor;
use crate::error::Result;
use crate::store::schema::{audit_head, events};
use crate::store::{audit_head as read_head, Conn};

#[derive(Default)]
pub struct Event<'a> {
    pub action: &'a str,
    pub order_id: Option<i64>,
    pub ticket: Option<&'a str>,
    pub license_id: Option<i64>,
    pub serial: Option<&'a str>,
    pub details: serde_json::Value,
}

#[derive(Debug, Serialize, Queryable)]
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

fn chain_hash(prev: &str, e: &EventRow) -> String {
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

/// Appends one event to the chain. Call inside the transaction of the change it records.
pub fn record(conn: &mut Conn, actor: &Actor, ev: Event) -> Result<()> {
    let (last_id, last_hash) = read_head(conn)?;
    let mut row = EventRow {
        id: 0,
        at: super::now(),
        actor: actor.name.clone(),
        interface: actor.interface.as_str().to_string(),
        action: ev.action.to_string(),
        order_id: ev.order_id,
        ticket: ev.ticket.map(str::to_string),
        license_id: ev.license_id,
        serial: ev.serial.map(str::to_string),
        details: ev.details.to_string(),
        prev_hash: last_hash,
        hash: String::new(),
    };
    row.hash = chain_hash(&row.prev_hash, &row);
    let id: i64 = diesel::insert_into(events::table)
        .values((
            events::at.eq(row.at),
            events::actor.eq(&row.actor),
            events::interface.eq(&row.interface),
            events::action.eq(&row.action),
            events::order_id.eq(row.order_id),
            events::ticket.eq(&row.ticket),
            events::license_id.eq(row.license_id),
            events::serial.eq(&row.serial),
            events::details.eq(&row.details),
            events::prev_hash.eq(&row.prev_hash),
            events::hash.eq(&row.hash),
        ))
        .returning(events::id)
        .get_result(conn)?;
    debug_assert!(id > last_id);
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((
            audit_head::last_event_id.eq(id),
            audit_head::last_hash.eq(&row.hash),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub problems: Vec<String>,
}

/// Walks the whole chain: a changed event, a deleted one or a cut-off tail is a problem.
pub fn verify(conn: &mut Conn) -> Result<VerifyReport> {
    let (head_id, head_hash) = read_head(conn)?;
    let mut report = VerifyReport {
        events: 0,
        problems: vec![],
    };
    let mut prev = "0".repeat(64);
    let mut after = 0i64;
    loop {
        let page: Vec<EventRow> = events::table
            .filter(events::id.gt(after))
            .filter(events::id.le(head_id))
            .order(events::id.asc())
            .limit(1000)
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            report.events += 1;
            if e.prev_hash != prev {
                report.problems.push(format!(
                    "event {}: the event before it was changed or deleted",
                    e.id
                ));
            }
            if chain_hash(&e.prev_hash, e) != e.hash {
                report
                    .problems
                    .push(format!("event {}: its content was changed", e.id));
            }
            prev = e.hash.clone();
        }
    }
    // Events are appended under the head's lock, so ids up to the head are all committed.
    if after != head_id || prev != head_hash {
        report.problems.push(format!(
            "the chain ends at event {after}, but the head names event {head_id}: events were deleted"
        ));
    }
    Ok(report)
}

pub fn history(
    conn: &mut Conn,
    order: Option<i64>,
    ticket: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let mut q = events::table.into_boxed();
    if let Some(o) = order {
        q = q.filter(events::order_id.eq(o));
    }
    if let Some(t) = ticket {
        q = q.filter(events::ticket.eq(t.to_string()));
    }
    Ok(q.order(events::id.asc()).limit(limit).load(conn)?)
}
