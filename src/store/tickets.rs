//! Tickets: found by their code (as stored), owned by a customer.
use diesel::prelude::*;

use super::schema::{customers, tickets};
use super::{unique_or_retry, Conn, Reused};
use crate::domain::ticket::TicketCode;
use crate::domain::TicketState;
use crate::error::{Error, Result};
use crate::on_backend;

/// The id of ticket `code`; unknown is an error.
pub fn id_of(c: &mut Conn, code: &TicketCode) -> Result<i64> {
    on_backend!(c, x => tickets::table
        .filter(tickets::code.eq(code.as_stored()))
        .select(tickets::id)
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("ticket", code))
}

/// The id of ticket `code` and what it is for; unknown is an error.
pub fn find(c: &mut Conn, code: &TicketCode) -> Result<(i64, TicketState)> {
    let (id, state): (i64, String) = on_backend!(c, x => tickets::table
        .filter(tickets::code.eq(code.as_stored()))
        .select((tickets::id, tickets::state))
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("ticket", code))?;
    Ok((id, TicketState::parse(&state)?))
}

/// Makes the ticket one for `state`.
pub fn set_state(c: &mut Conn, id: i64, state: TicketState) -> Result<()> {
    diesel::update(tickets::table.filter(tickets::id.eq(id)))
        .set(tickets::state.eq(state.as_str()))
        .execute(c)?;
    Ok(())
}

/// The customer (primary key) a ticket belongs to.
pub fn customer_of(c: &mut Conn, id: i64) -> Result<i64> {
    Ok(tickets::table
        .filter(tickets::id.eq(id))
        .select(tickets::customer_id)
        .first(c)?)
}

/// On PostgreSQL, locks the ticket's row until the transaction ends, so that two writers
/// deciding about the same ticket go one after the other (SQLite has one writer).
pub fn lock(c: &mut Conn, id: i64) -> Result<()> {
    if let Conn::Pg(pg) = c {
        tickets::table
            .find(id)
            .select(tickets::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    Ok(())
}

/// Makes a ticket for a customer; its id. 119 random bits make a second ticket with the
/// same code practically impossible; if it happens the unique index refuses it and the
/// write runs again with a new code.
pub fn insert(
    c: &mut Conn,
    code: &TicketCode,
    customer_id: i64,
    now: chrono::NaiveDateTime,
) -> Result<i64> {
    unique_or_retry(
        on_backend!(c, x => Reused(diesel::insert_into(tickets::table)
        .values((
            tickets::code.eq(code.as_stored()),
            tickets::customer_id.eq(customer_id),
            tickets::state.eq(TicketState::Active.as_str()),
            tickets::created_at.eq(now),
        ))
        .returning(tickets::id))
        .get_result(x)),
    )
}

/// A ticket with its customer's external id and scope.
#[derive(Debug, Queryable)]
pub struct TicketRow {
    pub id: i64,
    pub state: String,
    pub created_at: chrono::NaiveDateTime,
    pub customer_id: String,
    pub customer_scope: String,
}

pub fn by_code(c: &mut Conn, code: &TicketCode) -> Result<TicketRow> {
    tickets::table
        .inner_join(customers::table)
        .filter(tickets::code.eq(code.as_stored()))
        .select((
            tickets::id,
            tickets::state,
            tickets::created_at,
            customers::external_id,
            customers::scope,
        ))
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("ticket", code))
}
