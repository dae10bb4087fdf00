//! Orders and their lines.
use diesel::prelude::*;

use super::schema::order_lines;
use super::{Conn, Reused};
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
