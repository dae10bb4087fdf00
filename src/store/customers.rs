//! Customers, known by the id the ERP or shop gives them (`external_id`) within a scope:
//! `""` for the vendor's own customers (the JSON API, SOAP, the CLI, the portal), a
//! connector's source for those its shop or ERP sends.
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
    pub scope: String,
}

/// The external id and scope of a container's owner `id`, if it has one (none: no id and
/// the empty scope).
pub fn owner(c: &mut Conn, id: Option<i64>) -> Result<(Option<String>, String)> {
    Ok(match id {
        Some(id) => {
            let row = get(c, id)?;
            (Some(row.external_id), row.scope)
        }
        None => (None, String::new()),
    })
}

/// How a customer is named in messages: `C-1`, or `C-1 (of shop)` outside the vendor's scope.
pub fn named(scope: &str, external_id: &str) -> String {
    if scope.is_empty() {
        external_id.to_string()
    } else {
        format!("{external_id} (of {scope})")
    }
}

/// The primary key of the customer with `external_id` in `scope`; unknown is an error.
pub fn id_of(c: &mut Conn, scope: &str, external_id: &str) -> Result<i64> {
    customers::table
        .filter(customers::scope.eq(scope))
        .filter(customers::external_id.eq(external_id))
        .select(customers::id)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("customer", named(scope, external_id)))
}

/// The customer with `external_id` in `scope`, if known. Run on the backend's own
/// connection: every order reads it (see `on_backend!`).
pub fn by_external_id(c: &mut Conn, scope: &str, external_id: &str) -> Result<Option<CustomerRow>> {
    Ok(on_backend!(c, x => customers::table
        .filter(customers::scope.eq(scope))
        .filter(customers::external_id.eq(external_id))
        .first(x)
        .optional())?)
}

/// Every customer with `external_id`, whatever its scope, oldest first (a search).
pub fn all_named(c: &mut Conn, external_id: &str) -> Result<Vec<i64>> {
    Ok(customers::table
        .filter(customers::external_id.eq(external_id))
        .order(customers::id.asc())
        .select(customers::id)
        .load(c)?)
}

/// The customer `id` (primary key).
pub fn get(c: &mut Conn, id: i64) -> Result<CustomerRow> {
    Ok(customers::table.find(id).first(c)?)
}

/// At most `limit` customers in the order they were made, of `scope` if given, after
/// customer `after` (primary key) if given.
pub fn list(
    c: &mut Conn,
    scope: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<CustomerRow>> {
    let mut q = customers::table
        .filter(customers::id.gt(after.unwrap_or(0)))
        .into_boxed();
    if let Some(scope) = scope {
        q = q.filter(customers::scope.eq(scope));
    }
    Ok(q.order(customers::id.asc()).limit(limit).load(c)?)
}

/// What keeps a customer: their tickets, the licenses on them that are not deleted, and
/// their cloud containers (which hold their licenses and have no other owner).
pub struct Ties {
    pub tickets: i64,
    pub licenses: i64,
    pub cloud_containers: i64,
}

pub fn ties(c: &mut Conn, id: i64) -> Result<Ties> {
    use super::schema::{containers, licenses, tickets};
    use crate::domain::{ContainerType, LicenseState};
    let tickets = tickets::table
        .filter(tickets::customer_id.eq(id))
        .count()
        .get_result(c)?;
    let licenses = licenses::table
        .inner_join(tickets::table)
        .filter(tickets::customer_id.eq(id))
        .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
        .count()
        .get_result(c)?;
    let cloud_containers = containers::table
        .filter(containers::customer_id.eq(id))
        .filter(containers::kind.eq(ContainerType::Cloud.as_str()))
        .count()
        .get_result(c)?;
    Ok(Ties {
        tickets,
        licenses,
        cloud_containers,
    })
}

/// Deletes customer `id`, who has no tickets: the containers they were assigned belong to
/// nobody afterwards (their serials are answered). Their single sign-on links and portal
/// sessions go first (`saml::forget_customer`, `portal::end_sessions_of_customer`).
pub fn delete(c: &mut Conn, id: i64, now: NaiveDateTime) -> Result<Vec<String>> {
    use super::schema::containers;
    let serials: Vec<String> = containers::table
        .filter(containers::customer_id.eq(id))
        .select(containers::serial)
        .order(containers::id.asc())
        .load(c)?;
    diesel::update(containers::table.filter(containers::customer_id.eq(id)))
        .set((
            containers::customer_id.eq(None::<i64>),
            containers::updated_at.eq(now),
        ))
        .execute(c)?;
    diesel::delete(customers::table.filter(customers::id.eq(id))).execute(c)?;
    Ok(serials)
}

/// What a customer is called and how to write to them.
pub struct Contact<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub locale: &'a str,
}

/// Adds customer `external_id` to `scope`. Another writer adding the same customer at the
/// same time: the write runs again and finds it.
pub fn insert(
    c: &mut Conn,
    scope: &str,
    external_id: &str,
    contact: &Contact,
    now: NaiveDateTime,
) -> Result<CustomerRow> {
    unique_or_retry(
        diesel::insert_into(customers::table)
            .values((
                customers::scope.eq(scope),
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
