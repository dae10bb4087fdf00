//! Customers, known by the id the ERP or shop gives them (`external_id`).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::customers;
use super::{unique_or_retry, Conn};
use crate::error::{Error, Result};
use crate::on_backend;

/// A customer as stored; the fields in the table's column order.
#[derive(Debug, Clone, Queryable)]
pub struct CustomerRow {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

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

/// The customer with `external_id`, if known. Run on the backend's own connection: every
/// order reads it (see `on_backend!`).
pub fn by_external_id(c: &mut Conn, external_id: &str) -> Result<Option<CustomerRow>> {
    Ok(on_backend!(c, x => customers::table
        .filter(customers::external_id.eq(external_id))
        .first(x)
        .optional())?)
}

/// The first `limit` customers, in the order they were made.
pub fn list(c: &mut Conn, limit: i64) -> Result<Vec<CustomerRow>> {
    Ok(customers::table
        .order(customers::id.asc())
        .limit(limit)
        .load(c)?)
}

/// What a customer is called and how to write to them.
pub struct Contact<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub locale: &'a str,
}

/// Adds customer `external_id`. Another writer adding the same customer at the same time:
/// the write runs again and finds it.
pub fn insert(
    c: &mut Conn,
    external_id: &str,
    contact: &Contact,
    now: NaiveDateTime,
) -> Result<CustomerRow> {
    unique_or_retry(
        diesel::insert_into(customers::table)
            .values((
                customers::external_id.eq(external_id),
                customers::name.eq(contact.name),
                customers::email.eq(contact.email),
                customers::locale.eq(contact.locale),
                customers::created_at.eq(now),
                customers::updated_at.eq(now),
            ))
            .get_result(c),
    )
}

/// Changes customer `id`'s name, email and locale.
pub fn update(c: &mut Conn, id: i64, contact: &Contact, now: NaiveDateTime) -> Result<CustomerRow> {
    Ok(
        diesel::update(customers::table.filter(customers::id.eq(id)))
            .set((
                customers::name.eq(contact.name),
                customers::email.eq(contact.email),
                customers::locale.eq(contact.locale),
                customers::updated_at.eq(now),
            ))
            .get_result(c)?,
    )
}
