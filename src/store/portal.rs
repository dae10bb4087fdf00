//! The license portal's tables (its sessions and the failed logins it counts) and what its
//! pages read of licenses. The tables are declared here, beside their only queries.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{firms, items, licenses, tickets};
use super::Conn;
use crate::domain::LicenseState;
use crate::error::Result;
use crate::on_backend;

diesel::table! {
    portal_sessions (id) {
        id -> Text,
        method -> Text,
        tickets -> Text,
        customer_id -> Nullable<BigInt>,
        flow -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    portal_registrations (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        locale -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    portal_login_failures (id) {
        id -> BigInt,
        key -> Text,
        at -> Timestamp,
    }
}

/// A stored session: `id` is the SHA-256 (hex) of the cookie's token.
#[derive(Debug, Clone, Queryable)]
pub struct SessionRow {
    pub id: String,
    pub method: String,
    /// JSON list of ticket codes as stored.
    pub tickets: String,
    pub customer_id: Option<i64>,
    pub flow: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_session(c: &mut Conn, s: &SessionRow) -> Result<()> {
    diesel::insert_into(portal_sessions::table)
        .values((
            portal_sessions::id.eq(&s.id),
            portal_sessions::method.eq(&s.method),
            portal_sessions::tickets.eq(&s.tickets),
            portal_sessions::customer_id.eq(s.customer_id),
            portal_sessions::flow.eq(&s.flow),
            portal_sessions::created_at.eq(s.created_at),
            portal_sessions::expires_at.eq(s.expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// The session `id` unless it expired by `now`.
pub fn live_session(c: &mut Conn, id: &str, now: NaiveDateTime) -> Result<Option<SessionRow>> {
    Ok(portal_sessions::table
        .filter(portal_sessions::id.eq(id))
        .filter(portal_sessions::expires_at.gt(now))
        .first(c)
        .optional()?)
}

/// Sets the transfer in progress of a live session; false if the session is gone.
pub fn set_flow(c: &mut Conn, id: &str, flow: &str, now: NaiveDateTime) -> Result<bool> {
    let n = diesel::update(
        portal_sessions::table
            .filter(portal_sessions::id.eq(id))
            .filter(portal_sessions::expires_at.gt(now)),
    )
    .set(portal_sessions::flow.eq(flow))
    .execute(c)?;
    Ok(n == 1)
}

pub fn delete_session(c: &mut Conn, id: &str) -> Result<()> {
    diesel::delete(portal_sessions::table.filter(portal_sessions::id.eq(id))).execute(c)?;
    Ok(())
}

/// Ends the portal sessions single sign-on opened for customer `id` (primary key).
pub fn end_sessions_of_customer(c: &mut Conn, id: i64) -> Result<usize> {
    Ok(
        diesel::delete(portal_sessions::table.filter(portal_sessions::customer_id.eq(id)))
            .execute(c)?,
    )
}

/// Deletes the sessions that expired before `before`; how many.
pub fn delete_expired_sessions(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(portal_sessions::table.filter(portal_sessions::expires_at.lt(before)))
            .execute(c)?,
    )
}

/// Records one failed login for each key (a client address, a ticket).
pub fn record_failures(c: &mut Conn, keys: &[String], at: NaiveDateTime) -> Result<()> {
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                portal_login_failures::key.eq(k.as_str()),
                portal_login_failures::at.eq(at),
            )
        })
        .collect();
    on_backend!(c, x => diesel::insert_into(portal_login_failures::table)
        .values(&rows)
        .execute(x))?;
    Ok(())
}

/// The times of the latest (at most `limit`) failures of `key` after `since`, newest first.
pub fn recent_failures(
    c: &mut Conn,
    key: &str,
    since: NaiveDateTime,
    limit: i64,
) -> Result<Vec<NaiveDateTime>> {
    Ok(portal_login_failures::table
        .filter(portal_login_failures::key.eq(key))
        .filter(portal_login_failures::at.gt(since))
        .select(portal_login_failures::at)
        .order(portal_login_failures::at.desc())
        .limit(limit)
        .load(c)?)
}

/// Deletes the failed logins recorded before `before`; how many.
pub fn delete_login_failures(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(portal_login_failures::table.filter(portal_login_failures::at.lt(before)))
            .execute(c)?,
    )
}

/// A self-registration waiting for its link to be followed: `id` is the SHA-256 (hex) of
/// the link's token.
#[derive(Debug, Clone, Queryable)]
pub struct RegistrationRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub locale: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_registration(c: &mut Conn, r: &RegistrationRow) -> Result<()> {
    diesel::insert_into(portal_registrations::table)
        .values((
            portal_registrations::id.eq(&r.id),
            portal_registrations::email.eq(&r.email),
            portal_registrations::name.eq(&r.name),
            portal_registrations::locale.eq(&r.locale),
            portal_registrations::created_at.eq(r.created_at),
            portal_registrations::expires_at.eq(r.expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Takes the registration `id` if it has not lapsed by `now`: it is deleted, so a link
/// opens one session only, on whichever node takes it first.
pub fn take_registration(
    c: &mut Conn,
    id: &str,
    now: NaiveDateTime,
) -> Result<Option<RegistrationRow>> {
    let row: Option<RegistrationRow> = portal_registrations::table
        .filter(portal_registrations::id.eq(id))
        .filter(portal_registrations::expires_at.gt(now))
        .first(c)
        .optional()?;
    if row.is_none() {
        return Ok(None);
    }
    let n = diesel::delete(portal_registrations::table.filter(portal_registrations::id.eq(id)))
        .execute(c)?;
    Ok(row.filter(|_| n == 1))
}

/// Deletes the registrations that lapsed before `before`; how many.
pub fn delete_expired_registrations(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        portal_registrations::table.filter(portal_registrations::expires_at.lt(before)),
    )
    .execute(c)?)
}

/// Which of the ticket codes (as stored) exist.
pub fn existing_tickets(c: &mut Conn, codes: &[String]) -> Result<Vec<String>> {
    Ok(tickets::table
        .filter(tickets::code.eq_any(codes))
        .select(tickets::code)
        .load(c)?)
}

/// The ticket codes (as stored) of a customer, oldest ticket first.
pub fn tickets_of_customer(c: &mut Conn, customer_id: i64) -> Result<Vec<String>> {
    Ok(tickets::table
        .filter(tickets::customer_id.eq(customer_id))
        .select(tickets::code)
        .order(tickets::id.asc())
        .load(c)?)
}

/// A license as the portal shows it: with its item's name and its ticket's code.
#[derive(Debug, Clone, Queryable)]
pub struct PortalLicenseRow {
    pub id: i64,
    /// The ticket's code as stored.
    pub ticket: String,
    pub item_id: String,
    pub name: String,
    pub firm_id: i64,
    pub firm_code: i64,
    #[diesel(deserialize_as = String)]
    pub state: LicenseState,
    pub serial: Option<String>,
    pub generation: i32,
    /// The license options (JSON of `ItemOptions`).
    pub options: String,
    pub activated_at: Option<NaiveDateTime>,
    pub self_service_used: i32,
}

/// The licenses (not deleted) on the tickets with these codes (as stored), by license id.
pub fn licenses_of_tickets(c: &mut Conn, codes: &[String]) -> Result<Vec<PortalLicenseRow>> {
    Ok(licenses::table
        .inner_join(items::table)
        .inner_join(tickets::table)
        .inner_join(firms::table.on(firms::id.eq(licenses::firm_id)))
        .filter(tickets::code.eq_any(codes))
        .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
        .select((
            licenses::id,
            tickets::code,
            items::item_id,
            items::name,
            licenses::firm_id,
            firms::firm_code,
            licenses::state,
            licenses::serial,
            licenses::generation,
            licenses::options,
            licenses::activated_at,
            licenses::self_service_used,
        ))
        .order(licenses::id.asc())
        .load(c)?)
}

/// The ticket code (as stored) of each of these licenses that exists.
pub fn tickets_of_licenses(c: &mut Conn, ids: &[i64]) -> Result<Vec<(i64, String)>> {
    Ok(licenses::table
        .inner_join(tickets::table)
        .filter(licenses::id.eq_any(ids))
        .select((licenses::id, tickets::code))
        .load(c)?)
}

/// The item names of these licenses, by license id.
pub fn license_names(c: &mut Conn, ids: &[i64]) -> Result<Vec<(i64, String)>> {
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::id.eq_any(ids))
        .select((licenses::id, items::name))
        .order(licenses::id.asc())
        .load(c)?)
}
