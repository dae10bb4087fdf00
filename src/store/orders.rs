//! Orders and their lines.
use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{customers, items, licenses, order_lines, orders, tickets};
use super::{unique_or_retry, Conn, Reused};
use crate::error::Result;
use crate::on_backend;

/// A line of an order: `quantity` of item `item_pk`, at `position` within its batch.
pub struct NewLine<'a> {
    pub order_id: i64,
    pub batch_key: &'a str,
    pub position: i32,
    pub item_pk: i64,
    pub quantity: i32,
}

/// Adds a line to an order; its id.
pub fn insert_line(c: &mut Conn, l: &NewLine) -> Result<i64> {
    Ok(on_backend!(c, x => Reused(
        diesel::insert_into(order_lines::table)
            .values((
                order_lines::order_id.eq(l.order_id),
                order_lines::batch_key.eq(l.batch_key),
                order_lines::position.eq(l.position),
                order_lines::item_id.eq(l.item_pk),
                order_lines::quantity.eq(l.quantity),
            ))
            .returning(order_lines::id),
    )
    .get_result(x))?)
}

/// The order `erp_order_id` of `source`, if there is one.
pub fn find(c: &mut Conn, source: &str, erp_order_id: &str) -> Result<Option<i64>> {
    Ok(on_backend!(c, x => orders::table
        .filter(orders::source.eq(source))
        .filter(orders::erp_order_id.eq(erp_order_id))
        .select(orders::id)
        .first(x)
        .optional())?)
}

/// The ERP order ids of a customer's orders from `source`.
pub fn erp_ids_of_customer(c: &mut Conn, source: &str, customer_id: i64) -> Result<Vec<String>> {
    Ok(on_backend!(c, x => orders::table
        .filter(orders::source.eq(source))
        .filter(orders::customer_id.eq(customer_id))
        .select(orders::erp_order_id)
        .order(orders::id.asc())
        .load(x))?)
}

pub struct NewOrder<'a> {
    pub source: &'a str,
    pub erp_order_id: &'a str,
    pub customer_id: i64,
    pub ticket_id: i64,
    pub comment: &'a str,
    pub created_by: &'a str,
}

/// Records an order; its id. The same order inserted by another node first: the write runs
/// again and finds it.
pub fn insert(c: &mut Conn, o: &NewOrder, now: NaiveDateTime) -> Result<i64> {
    unique_or_retry(
        on_backend!(c, x => Reused(diesel::insert_into(orders::table)
        .values((
            orders::source.eq(o.source),
            orders::erp_order_id.eq(o.erp_order_id),
            orders::customer_id.eq(o.customer_id),
            orders::ticket_id.eq(o.ticket_id),
            orders::comment.eq(o.comment),
            orders::created_by.eq(o.created_by),
            orders::created_at.eq(now),
        ))
        .returning(orders::id))
        .get_result::<i64>(x)),
    )
}

/// The ticket an order's licenses are on.
pub fn ticket_of(c: &mut Conn, order_id: i64) -> Result<i64> {
    Ok(orders::table
        .filter(orders::id.eq(order_id))
        .select(orders::ticket_id)
        .first(c)?)
}

/// An order with its ticket's code and its customer's external id.
#[derive(Debug, Queryable)]
pub struct OrderRow {
    pub id: i64,
    pub source: String,
    pub erp_order_id: String,
    pub comment: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub ticket: String,
    pub customer_id: String,
    pub customer_scope: String,
}

pub fn get(c: &mut Conn, order_id: i64) -> Result<OrderRow> {
    Ok(orders::table
        .inner_join(tickets::table)
        .inner_join(customers::table.on(customers::id.eq(orders::customer_id)))
        .filter(orders::id.eq(order_id))
        .select((
            orders::id,
            orders::source,
            orders::erp_order_id,
            orders::comment,
            orders::created_by,
            orders::created_at,
            tickets::code,
            customers::external_id,
            customers::scope,
        ))
        .first(c)?)
}

/// A line of an order with its item id and the licenses made from it.
#[derive(Debug)]
pub struct LineRow {
    pub batch_key: String,
    pub position: i32,
    pub item_id: String,
    pub quantity: i32,
    pub licenses: Vec<i64>,
}

/// The order's lines in the order they were added, each with its licenses.
pub fn lines(c: &mut Conn, order_id: i64) -> Result<Vec<LineRow>> {
    let lines: Vec<(i64, String, i32, String, i32)> = order_lines::table
        .inner_join(items::table)
        .filter(order_lines::order_id.eq(order_id))
        .select((
            order_lines::id,
            order_lines::batch_key,
            order_lines::position,
            items::item_id,
            order_lines::quantity,
        ))
        .order(order_lines::id.asc())
        .load(c)?;
    let line_ids: Vec<i64> = lines.iter().map(|l| l.0).collect();
    let mut by_line: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let made: Vec<(i64, i64)> = licenses::table
        .filter(licenses::order_line_id.eq_any(&line_ids))
        .select((licenses::order_line_id, licenses::id))
        .order(licenses::id.asc())
        .load(c)?;
    for (line, id) in made {
        by_line.entry(line).or_default().push(id);
    }
    Ok(lines
        .into_iter()
        .map(|(id, batch_key, position, item_id, quantity)| LineRow {
            batch_key,
            position,
            item_id,
            quantity,
            licenses: by_line.remove(&id).unwrap_or_default(),
        })
        .collect())
}

/// The ERP order ids of the orders on a ticket.
pub fn erp_ids_of_ticket(c: &mut Conn, ticket_id: i64) -> Result<Vec<String>> {
    Ok(orders::table
        .filter(orders::ticket_id.eq(ticket_id))
        .select(orders::erp_order_id)
        .order(orders::id.asc())
        .load(c)?)
}
