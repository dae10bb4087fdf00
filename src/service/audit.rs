//! The history: every change writes an event in the same transaction, chained by hash.
use serde::Serialize;

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, Role};
use crate::error::Result;
use crate::store::history::{self, chain_hash, EventRow};
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

/// Records one event of the change being written; it is appended to the chain in the same
/// transaction. Call inside `Db::write` (elsewhere it is an error).
pub fn record(actor: &Actor, ev: Event) -> Result<()> {
    history::defer(EventRow {
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
        prev_hash: String::new(),
        hash: String::new(),
    })
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub problems: Vec<String>,
}

/// Checks the whole history chain (`licentia audit verify`): a changed event, a deleted one
/// or a cut-off tail is a problem.
pub async fn verify_chain(core: &Core, actor: &Actor) -> Result<VerifyReport> {
    actor.require(&[Role::Admin, Role::Support], "verify the history")?;
    core.db.read(verify).await
}

/// Walks the whole chain on a connection (also where no server runs, e.g. after a crash).
pub fn verify(conn: &mut Conn) -> Result<VerifyReport> {
    let (head_id, head_hash) = read_head(conn)?;
    let mut report = VerifyReport {
        events: 0,
        problems: vec![],
    };
    let mut prev = history::GENESIS.to_string();
    let mut after = 0i64;
    loop {
        let page = history::page(conn, after, head_id, 1000)?;
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

/// The events of a ticket, an order, a container serial or a license (or the first 1,000
/// of all), oldest first.
pub async fn history(
    core: &Core,
    actor: &Actor,
    ticket: Option<String>,
    order_id: Option<i64>,
    serial: Option<String>,
    license_id: Option<i64>,
) -> Result<Vec<EventRow>> {
    actor.require(&[Role::Admin, Role::Support], "read the history")?;
    let ticket = ticket.map(|t| TicketCode::parse(&t)).transpose()?;
    core.db
        .read(move |c| {
            let ticket = ticket.as_ref().map(TicketCode::as_stored);
            history::matching(c, order_id, ticket, serial.as_deref(), license_id, 1000)
        })
        .await
}
