//! Single sign-on's tables: the requests sent to the identity provider, the assertions
//! taken (until they expire), the users it logs in and which portal session each started.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::Conn;
use crate::error::Result;
use crate::on_backend;

diesel::table! {
    saml_requests (id) {
        id -> Text,
        kind -> Text,
        relay_state -> Text,
        next_path -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    saml_assertions (id) {
        id -> Text,
        issuer -> Text,
        taken_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    saml_users (id) {
        id -> BigInt,
        issuer -> Text,
        name_id -> Text,
        customer_id -> BigInt,
        email -> Text,
        name -> Text,
        created_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    saml_sessions (session_id) {
        session_id -> Text,
        user_id -> BigInt,
        name_id -> Text,
        name_id_format -> Text,
        session_index -> Text,
    }
}

/// A request sent to the identity provider.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub id: String,
    pub kind: String,
    /// The SHA-256 (hex) of its RelayState.
    pub relay_state: String,
    pub next_path: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_request(c: &mut Conn, r: &RequestRow) -> Result<()> {
    diesel::insert_into(saml_requests::table)
        .values((
            saml_requests::id.eq(&r.id),
            saml_requests::kind.eq(&r.kind),
            saml_requests::relay_state.eq(&r.relay_state),
            saml_requests::next_path.eq(&r.next_path),
            saml_requests::created_at.eq(r.created_at),
            saml_requests::expires_at.eq(r.expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Takes the live request `id` of `kind` sent with that RelayState (hash): it is deleted,
/// so it answers once. Its next path; none if no such request is waiting.
pub fn take_request(
    c: &mut Conn,
    id: &str,
    kind: &str,
    relay_state: &str,
    now: NaiveDateTime,
) -> Result<Option<String>> {
    let next: Option<String> = saml_requests::table
        .filter(saml_requests::id.eq(id))
        .filter(saml_requests::kind.eq(kind))
        .filter(saml_requests::relay_state.eq(relay_state))
        .filter(saml_requests::expires_at.gt(now))
        .select(saml_requests::next_path)
        .first(c)
        .optional()?;
    if next.is_none() {
        return Ok(None);
    }
    // The delete decides between two nodes taking the same answer at once.
    let n = diesel::delete(
        saml_requests::table
            .filter(saml_requests::id.eq(id))
            .filter(saml_requests::kind.eq(kind)),
    )
    .execute(c)?;
    Ok(if n == 1 { next } else { None })
}

/// Records an assertion as taken; false if it was taken before (a replay).
pub fn take_assertion(
    c: &mut Conn,
    id: &str,
    issuer: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<bool> {
    // ON CONFLICT DO NOTHING: a failed insert would abort a PostgreSQL group.
    let n = on_backend!(c, x => diesel::insert_into(saml_assertions::table)
        .values((
            saml_assertions::id.eq(id),
            saml_assertions::issuer.eq(issuer),
            saml_assertions::taken_at.eq(now),
            saml_assertions::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(x))?;
    Ok(n == 1)
}

/// A user the identity provider logs in.
#[derive(Debug, Clone, Queryable)]
pub struct UserRow {
    pub id: i64,
    pub issuer: String,
    pub name_id: String,
    pub customer_id: i64,
    pub email: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_login_at: NaiveDateTime,
}

pub fn user(c: &mut Conn, issuer: &str, name_id: &str) -> Result<Option<UserRow>> {
    Ok(saml_users::table
        .filter(saml_users::issuer.eq(issuer))
        .filter(saml_users::name_id.eq(name_id))
        .first(c)
        .optional()?)
}

/// Links a new user to a customer; its id.
pub fn insert_user(
    c: &mut Conn,
    issuer: &str,
    name_id: &str,
    customer_id: i64,
    email: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<i64> {
    Ok(diesel::insert_into(saml_users::table)
        .values((
            saml_users::issuer.eq(issuer),
            saml_users::name_id.eq(name_id),
            saml_users::customer_id.eq(customer_id),
            saml_users::email.eq(email),
            saml_users::name.eq(name),
            saml_users::created_at.eq(now),
            saml_users::last_login_at.eq(now),
        ))
        .returning(saml_users::id)
        .get_result(c)?)
}

/// A known user logged in again: what the identity provider says of them now.
pub fn touch_user(
    c: &mut Conn,
    id: i64,
    email: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(saml_users::table.filter(saml_users::id.eq(id)))
        .set((
            saml_users::email.eq(email),
            saml_users::name.eq(name),
            saml_users::last_login_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// The single sign-on behind a portal session.
#[derive(Debug, Clone, Queryable)]
pub struct SsoSessionRow {
    pub session_id: String,
    pub user_id: i64,
    pub name_id: String,
    pub name_id_format: String,
    pub session_index: String,
}

pub fn insert_sso_session(c: &mut Conn, s: &SsoSessionRow) -> Result<()> {
    diesel::insert_into(saml_sessions::table)
        .values((
            saml_sessions::session_id.eq(&s.session_id),
            saml_sessions::user_id.eq(s.user_id),
            saml_sessions::name_id.eq(&s.name_id),
            saml_sessions::name_id_format.eq(&s.name_id_format),
            saml_sessions::session_index.eq(&s.session_index),
        ))
        .execute(c)?;
    Ok(())
}

pub fn sso_session(c: &mut Conn, session_id: &str) -> Result<Option<SsoSessionRow>> {
    Ok(saml_sessions::table
        .filter(saml_sessions::session_id.eq(session_id))
        .first(c)
        .optional()?)
}

/// The portal sessions of the user the identity provider names (in one of its sessions, if
/// `session_index` is given).
pub fn sessions_of(
    c: &mut Conn,
    issuer: &str,
    name_id: &str,
    session_index: Option<&str>,
) -> Result<Vec<String>> {
    let users: Vec<i64> = saml_users::table
        .filter(saml_users::issuer.eq(issuer))
        .filter(saml_users::name_id.eq(name_id))
        .select(saml_users::id)
        .load(c)?;
    let mut q = saml_sessions::table
        .filter(saml_sessions::user_id.eq_any(users))
        .select(saml_sessions::session_id)
        .into_boxed();
    if let Some(i) = session_index {
        q = q.filter(saml_sessions::session_index.eq(i.to_string()));
    }
    Ok(q.load(c)?)
}

/// Deletes the sessions' single sign-on rows (their portal sessions go separately).
pub fn delete_sso_sessions(c: &mut Conn, ids: &[String]) -> Result<()> {
    diesel::delete(saml_sessions::table.filter(saml_sessions::session_id.eq_any(ids)))
        .execute(c)?;
    Ok(())
}

/// Housekeeping: the requests and the remembered assertions that expired; how many.
pub fn delete_expired(c: &mut Conn, now: NaiveDateTime) -> Result<(usize, usize)> {
    let r = diesel::delete(saml_requests::table.filter(saml_requests::expires_at.lt(now)))
        .execute(c)?;
    let a = diesel::delete(saml_assertions::table.filter(saml_assertions::expires_at.lt(now)))
        .execute(c)?;
    Ok((r, a))
}

/// Forgets the single sign-on users linked to customer `id` (primary key) and which portal
/// sessions they started; the customer is being deleted.
pub fn forget_customer(c: &mut Conn, id: i64) -> Result<()> {
    let users: Vec<i64> = saml_users::table
        .filter(saml_users::customer_id.eq(id))
        .select(saml_users::id)
        .load(c)?;
    diesel::delete(saml_sessions::table.filter(saml_sessions::user_id.eq_any(users))).execute(c)?;
    diesel::delete(saml_users::table.filter(saml_users::customer_id.eq(id))).execute(c)?;
    Ok(())
}
