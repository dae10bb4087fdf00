//! Tickets: found by their code (as stored), owned by a customer.
use diesel::prelude::*;

use super::schema::tickets;
use super::Conn;
use crate::domain::ticket::TicketCode;
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
