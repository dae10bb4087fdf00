//! Customers, known by the id the ERP or shop gives them (`external_id`).
use diesel::prelude::*;

use super::schema::customers;
use super::Conn;
use crate::error::{Error, Result};

/// The external id of customer `id` (primary key).
pub fn external_id_of(c: &mut Conn, id: i64) -> Result<Option<String>> {
    Ok(customers::table
        .filter(customers::id.eq(id))
        .select(customers::external_id)
        .first(c)
        .optional()?)
}

/// The primary key of the customer with `external_id`; unknown is an error.
pub fn id_of(c: &mut Conn, external_id: &str) -> Result<i64> {
    customers::table
        .filter(customers::external_id.eq(external_id))
        .select(customers::id)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("customer", external_id))
}
