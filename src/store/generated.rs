//! Multi-row inserts for the data generator (`service::generate`): a write of a thousand
//! orders is a few statements a table, not a few an order (on PostgreSQL every statement is
//! a round trip). Neither backend promises RETURNING rows in the order of the VALUES, so
//! each insert answers its rows' ids with a key of theirs to match them by.
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

use super::schema::{containers, customers, licenses, order_lines, orders, tickets};
use super::Conn;
use crate::domain::{ContainerState, ContainerType, LicenseState, TicketState};
use crate::error::Result;
use crate::on_backend;

/// Rows a statement inserts: at most 13 values a row stays within SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS: usize = 500;

/// Sets SQLite's writer connection for a fill (`large`) or back to SQLite's defaults, which
/// the server keeps. A page cache of 128 MiB holds one write's changed pages (the default
/// 2 MB spills them to the log mid-transaction and reads them back); a checkpoint every
/// 100,000 pages of log rather than 1,000 brings the pages that every write changes (the
/// indexes') to the database file once for many writes. PostgreSQL is left as it is.
pub fn bulk(c: &mut Conn, large: bool) -> Result<()> {
    if let Conn::Sqlite(x) = c {
        x.batch_execute(match large {
            true => "PRAGMA cache_size = -131072; PRAGMA wal_autocheckpoint = 100000",
            false => "PRAGMA cache_size = -2000; PRAGMA wal_autocheckpoint = 1000",
        })?;
    }
    Ok(())
}

pub struct Customer<'a> {
    pub external_id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub at: NaiveDateTime,
}

/// Adds customers in the default scope, English-speaking; each one's id and external id.
pub fn customers(c: &mut Conn, rows: &[Customer]) -> Result<Vec<(i64, String)>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    customers::scope.eq(""),
                    customers::external_id.eq(r.external_id),
                    customers::name.eq(r.name),
                    customers::email.eq(r.email),
                    customers::locale.eq("en"),
                    customers::created_at.eq(r.at),
                    customers::updated_at.eq(r.at),
                )
            })
            .collect();
        ids.extend(on_backend!(c, x => diesel::insert_into(customers::table)
            .values(&values)
            .returning((customers::id, customers::external_id))
            .get_results::<(i64, String)>(x))?);
    }
    Ok(ids)
}

pub struct Ticket<'a> {
    pub code: &'a str,
    pub customer_id: i64,
    pub at: NaiveDateTime,
}

/// Adds active tickets; each one's id and stored code.
pub fn tickets(c: &mut Conn, rows: &[Ticket]) -> Result<Vec<(i64, String)>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    tickets::code.eq(r.code),
                    tickets::customer_id.eq(r.customer_id),
                    tickets::state.eq(TicketState::Active.as_str()),
                    tickets::created_at.eq(r.at),
                )
            })
            .collect();
        ids.extend(on_backend!(c, x => diesel::insert_into(tickets::table)
            .values(&values)
            .returning((tickets::id, tickets::code))
            .get_results::<(i64, String)>(x))?);
    }
    Ok(ids)
}

pub struct Order<'a> {
    pub erp_order_id: &'a str,
    pub customer_id: i64,
    pub ticket_id: i64,
    pub at: NaiveDateTime,
}

/// Adds orders from source `demo`, made by the generator; each one's id and ERP order id.
pub fn orders(c: &mut Conn, rows: &[Order]) -> Result<Vec<(i64, String)>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    orders::source.eq("demo"),
                    orders::erp_order_id.eq(r.erp_order_id),
                    orders::customer_id.eq(r.customer_id),
                    orders::ticket_id.eq(r.ticket_id),
                    orders::comment.eq(""),
                    orders::created_by.eq("generator"),
                    orders::created_at.eq(r.at),
                )
            })
            .collect();
        ids.extend(on_backend!(c, x => diesel::insert_into(orders::table)
            .values(&values)
            .returning((orders::id, orders::erp_order_id))
            .get_results::<(i64, String)>(x))?);
    }
    Ok(ids)
}

/// Adds one line to each of the orders, (order id, item key, quantity); each line's id and
/// its order's.
pub fn lines(c: &mut Conn, rows: &[(i64, i64, i32)]) -> Result<Vec<(i64, i64)>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&(order, item, quantity)| {
                (
                    order_lines::order_id.eq(order),
                    order_lines::batch_key.eq(""),
                    order_lines::position.eq(1),
                    order_lines::item_id.eq(item),
                    order_lines::quantity.eq(quantity),
                )
            })
            .collect();
        ids.extend(on_backend!(c, x => diesel::insert_into(order_lines::table)
            .values(&values)
            .returning((order_lines::id, order_lines::order_id))
            .get_results::<(i64, i64)>(x))?);
    }
    Ok(ids)
}

pub struct Container<'a> {
    pub serial: &'a str,
    /// Its public and encryption key (a record only: no client holds the private one).
    pub key: &'a str,
    pub customer_id: i64,
    pub at: NaiveDateTime,
}

/// Registers active software containers owned by customers.
pub fn containers(c: &mut Conn, rows: &[Container]) -> Result<()> {
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    containers::serial.eq(r.serial),
                    containers::kind.eq(ContainerType::Act.as_str()),
                    containers::customer_id.eq(r.customer_id),
                    containers::public_key.eq(r.key),
                    containers::enc_key.eq(r.key),
                    containers::fingerprint.eq("[]"),
                    containers::state.eq(ContainerState::Active.as_str()),
                    containers::state_reason.eq(""),
                    containers::created_at.eq(r.at),
                    containers::updated_at.eq(r.at),
                )
            })
            .collect();
        on_backend!(c, x => diesel::insert_into(containers::table)
            .values(&values)
            .execute(x))?;
    }
    Ok(())
}

/// A time as a bound parameter, written out once for the many rows that share it: diesel
/// writes a `NaiveDateTime` for SQLite as text anew for every row, parsing its format
/// string each time (a tenth of the generator's time). The text is the one diesel writes.
#[derive(Debug, diesel::expression::AsExpression)]
#[diesel(sql_type = diesel::sql_types::Timestamp)]
pub struct Stamp {
    at: NaiveDateTime,
    text: String,
}

impl Stamp {
    pub fn new(at: NaiveDateTime) -> Stamp {
        Stamp {
            at,
            text: at.format("%F %T%.f").to_string(),
        }
    }
}

impl ToSql<Timestamp, Sqlite> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.text.as_str());
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Timestamp, Pg>::to_sql(&self.at, out)
    }
}

/// A license with its times and state already decided.
pub struct License<'a> {
    pub ticket_id: i64,
    pub order_line_id: i64,
    pub item_pk: i64,
    pub firm_id: i64,
    pub product_code: i64,
    pub options: &'a str,
    pub state: LicenseState,
    pub serial: Option<&'a str>,
    pub created_at: &'a Stamp,
    pub activated_at: Option<&'a Stamp>,
}

/// Adds licenses; each one's id and order line (the licenses of a line are alike).
pub fn licenses(c: &mut Conn, rows: &[License]) -> Result<Vec<(i64, i64)>> {
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|l| {
                (
                    licenses::ticket_id.eq(l.ticket_id),
                    licenses::order_line_id.eq(l.order_line_id),
                    licenses::item_id.eq(l.item_pk),
                    licenses::firm_id.eq(l.firm_id),
                    licenses::product_code.eq(l.product_code),
                    licenses::options.eq(l.options),
                    licenses::state.eq(l.state.as_str()),
                    licenses::serial.eq(l.serial),
                    licenses::generation.eq(1),
                    licenses::version.eq(1),
                    licenses::created_at.eq(l.created_at),
                    licenses::updated_at.eq(l.activated_at.unwrap_or(l.created_at)),
                    licenses::activated_at.eq(l.activated_at),
                )
            })
            .collect();
        ids.extend(on_backend!(c, x => diesel::insert_into(licenses::table)
            .values(&values)
            .returning((licenses::id, licenses::order_line_id))
            .get_results::<(i64, i64)>(x))?);
    }
    Ok(ids)
}
