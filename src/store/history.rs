//! The hash chain under the history. Events of a group transaction are collected while its
//! jobs run and appended at its end, under the chain head's row lock, so that several writers
//! (PostgreSQL) hold that lock only for the append and the commit.
use std::cell::RefCell;

use diesel::prelude::*;

use super::schema::audit_head;
use super::Conn;
use crate::error::{Error, Result};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event as stored; `hash` covers `prev_hash` and every field.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Queryable)]
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
const INSERT_EVENTS: &str = "INSERT INTO events (at, actor, interface, action, order_id, ticket, \
     license_id, serial, details, prev_hash, hash) VALUES";

/// Events a statement inserts.
const ROWS: usize = 500;

/// Inserts of up to this many events stay prepared (one statement per row count; a group
/// of concurrent requests writes a few events each), and so does a full one (a large
/// write, the data generator's, makes many).
const REUSED_ROWS: usize = 64;

fn reused(rows: usize) -> bool {
    rows <= REUSED_ROWS || rows == ROWS
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

macro_rules! bind_events {
    ($q:expr, $rows:expr) => {{
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        let mut q = $q;
        for e in $rows {
            q = q
                .bind::<Timestamp, _>(e.at)
                .bind::<Text, _>(e.actor.clone())
                .bind::<Text, _>(e.interface.clone())
                .bind::<Text, _>(e.action.clone())
                .bind::<Nullable<BigInt>, _>(e.order_id)
                .bind::<Nullable<Text>, _>(e.ticket.clone())
                .bind::<Nullable<BigInt>, _>(e.license_id)
                .bind::<Nullable<Text>, _>(e.serial.clone())
                .bind::<Text, _>(e.details.clone())
                .bind::<Text, _>(e.prev_hash.clone())
                .bind::<Text, _>(e.hash.clone());
        }
        q
    }};
}

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
    let mut rows = pending;
    for e in rows.iter_mut() {
        e.prev_hash = std::mem::take(&mut prev);
        e.hash = chain_hash(&e.prev_hash, e);
        prev = e.hash.clone();
    }
    // One multi-row INSERT per 500 events: the head lock is held for as few round trips as
    // possible. Ids follow the VALUES order, which is the chain order. On PostgreSQL the
    // head moves in the same statement (a data-modifying WITH).
    for chunk in rows.chunks(ROWS) {
        let last_hash = &chunk[chunk.len() - 1].hash;
        match conn {
            Conn::Pg(pg) => {
                let mut n = 0;
                let values: Vec<String> = chunk
                    .iter()
                    .map(|_| {
                        let row: Vec<String> = (0..11)
                            .map(|_| {
                                n += 1;
                                format!("${n}")
                            })
                            .collect();
                        format!("({})", row.join(", "))
                    })
                    .collect();
                let q = diesel::sql_query(format!(
                    "WITH added AS ({INSERT_EVENTS} {} RETURNING id) \
                     UPDATE audit_head SET last_event_id = (SELECT max(id) FROM added), \
                     last_hash = ${} WHERE id = 1 RETURNING last_event_id AS id",
                    values.join(", "),
                    n + 1
                ));
                let q = bind_events!(q.into_boxed::<diesel::pg::Pg>(), chunk)
                    .bind::<diesel::sql_types::Text, _>(last_hash);
                let moved: Vec<Id> = if reused(chunk.len()) {
                    super::Reused(q).load(pg)?
                } else {
                    q.load(pg)?
                };
                if moved.len() != 1 {
                    return Err(Error::internal("the history head is missing"));
                }
            }
            Conn::Sqlite(lite) => {
                let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let q = diesel::sql_query(format!("{INSERT_EVENTS} {values} RETURNING id"));
                let q = bind_events!(q.into_boxed::<diesel::sqlite::Sqlite>(), chunk);
                let ids: Vec<Id> = if reused(chunk.len()) {
                    super::Reused(q).load(lite)?
                } else {
                    q.load(lite)?
                };
                let last_id = ids.iter().map(|i| i.id).max().unwrap_or_default();
                super::Reused(
                    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
                        .set((
                            audit_head::last_event_id.eq(last_id),
                            audit_head::last_hash.eq(last_hash),
                        ))
                        .returning(audit_head::id),
                )
                .load::<i64>(lite)?;
            }
        }
    }
    Ok(())
}

pub(super) fn end() {
    PENDING.with(|p| *p.borrow_mut() = None);
}

/// How many events `action` concern `serial` after `since`.
pub fn count_since(
    c: &mut Conn,
    serial: &str,
    action: &str,
    since: chrono::NaiveDateTime,
) -> Result<i64> {
    use super::schema::events;
    Ok(events::table
        .filter(events::serial.eq(serial))
        .filter(events::action.eq(action))
        .filter(events::at.gt(since))
        .count()
        .get_result(c)?)
}

/// How many events `action` concern license `license_id` after `since`, and the first of
/// them.
pub fn license_count_since(
    c: &mut Conn,
    license_id: i64,
    action: &str,
    since: chrono::NaiveDateTime,
) -> Result<(i64, Option<chrono::NaiveDateTime>)> {
    use super::schema::events;
    Ok(events::table
        .filter(events::license_id.eq(license_id))
        .filter(events::action.eq(action))
        .filter(events::at.gt(since))
        .select((diesel::dsl::count_star(), diesel::dsl::min(events::at)))
        .first(c)?)
}

/// Which of `license_ids` have an event `action` concerning `serial`.
pub fn licenses_with(
    c: &mut Conn,
    serial: &str,
    action: &str,
    license_ids: &[i64],
) -> Result<Vec<i64>> {
    use super::schema::events;
    let ids: Vec<Option<i64>> = events::table
        .filter(events::serial.eq(serial))
        .filter(events::action.eq(action))
        .filter(events::license_id.eq_any(license_ids))
        .select(events::license_id)
        .distinct()
        .load(c)?;
    Ok(ids.into_iter().flatten().collect())
}

/// Up to `limit` events after event `after` up to event `last` (the head's), oldest first:
/// a page of the chain.
pub fn page(c: &mut Conn, after: i64, last: i64, limit: i64) -> Result<Vec<EventRow>> {
    use super::schema::events;
    Ok(events::table
        .filter(events::id.gt(after))
        .filter(events::id.le(last))
        .order(events::id.asc())
        .limit(limit)
        .load(c)?)
}

/// Up to `limit` events of an order, a ticket (its stored code) and a container serial, each
/// only if given (none given: every event), oldest first.
pub fn matching(
    c: &mut Conn,
    order_id: Option<i64>,
    ticket: Option<&str>,
    serial: Option<&str>,
    license_id: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>> {
    use super::schema::events;
    let mut q = events::table.into_boxed();
    if let Some(l) = license_id {
        q = q.filter(events::license_id.eq(l));
    }
    if let Some(o) = order_id {
        q = q.filter(events::order_id.eq(o));
    }
    if let Some(t) = ticket {
        q = q.filter(events::ticket.eq(t.to_string()));
    }
    if let Some(s) = serial {
        q = q.filter(events::serial.eq(s.to_string()));
    }
    Ok(q.order(events::id.asc()).limit(limit).load(c)?)
}

/// An event about a license, as its history report shows it.
#[derive(Debug, Clone, Queryable)]
pub struct LicenseEvent {
    pub id: i64,
    pub at: chrono::NaiveDateTime,
    pub actor: String,
    pub interface: String,
    pub action: String,
    pub serial: Option<String>,
    pub details: String,
}

/// The events about license `license_id`, oldest first.
pub fn of_license(c: &mut Conn, license_id: i64) -> Result<Vec<LicenseEvent>> {
    use super::schema::events;
    Ok(events::table
        .filter(events::license_id.eq(license_id))
        .select((
            events::id,
            events::at,
            events::actor,
            events::interface,
            events::action,
            events::serial,
            events::details,
        ))
        .order(events::id.asc())
        .load(c)?)
}
