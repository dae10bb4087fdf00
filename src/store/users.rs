//! Vendor users (admin, sales, support, erp) and their credentials.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::Conn;
use crate::domain::Role;
use crate::error::Result;
use crate::on_backend;

/// A user as stored; the fields in the table's column order.
#[derive(Debug, Clone, Queryable)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    /// The argon2 hash of the password (PHC string).
    pub password_hash: String,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The password sealed with the master key (for WS-Security PasswordDigest); empty if it
    /// was set before the server kept it.
    pub digest_secret: String,
}

/// The user named `username`, active or not.
pub fn by_name(c: &mut Conn, username: &str) -> Result<Option<UserRow>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .first(c)
        .optional()?)
}

/// The sealed password of the active user named `username`.
pub fn digest_secret_of_active(c: &mut Conn, username: &str) -> Result<Option<String>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .filter(users::active.eq(true))
        .select(users::digest_secret)
        .first(c)
        .optional()?)
}

/// Whether a user named `username` exists (active or not).
pub fn exists(c: &mut Conn, username: &str) -> Result<bool> {
    Ok(users::table
        .filter(users::username.eq(username))
        .count()
        .get_result::<i64>(c)?
        > 0)
}

/// Every user, in the order they were made.
pub fn all(c: &mut Conn) -> Result<Vec<UserRow>> {
    Ok(users::table.order(users::id.asc()).load(c)?)
}

/// User `id`.
pub fn get(c: &mut Conn, id: i64) -> Result<UserRow> {
    Ok(users::table.filter(users::id.eq(id)).first(c)?)
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    /// The password sealed with the master key.
    pub digest_secret: &'a str,
}

/// Adds an active user; `None` if a user of that name exists (`ON CONFLICT DO NOTHING`: a
/// failed insert would abort the writer's transaction on PostgreSQL).
pub fn insert(c: &mut Conn, u: &NewUser, now: NaiveDateTime) -> Result<Option<UserRow>> {
    Ok(on_backend!(c, x => diesel::insert_into(users::table)
            .values((
                users::username.eq(u.username),
                users::password_hash.eq(u.password_hash),
                users::role.eq(u.role.as_str()),
                users::active.eq(true),
                users::created_at.eq(now),
                users::updated_at.eq(now),
                users::digest_secret.eq(u.digest_secret),
            ))
            .on_conflict_do_nothing()
            .get_result(x)
            .optional())?)
}

/// What `change` sets; `None` leaves it as it is.
#[derive(Debug, Default)]
pub struct Change<'a> {
    /// The new password's hash and its sealed form, always together.
    pub password: Option<(&'a str, &'a str)>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// Changes user `id` and records when.
pub fn change(c: &mut Conn, id: i64, set: &Change, now: NaiveDateTime) -> Result<()> {
    let target = users::table.filter(users::id.eq(id));
    if let Some((hash, sealed)) = set.password {
        diesel::update(target)
            .set((
                users::password_hash.eq(hash),
                users::digest_secret.eq(sealed),
            ))
            .execute(c)?;
    }
    if let Some(r) = set.role {
        diesel::update(target)
            .set(users::role.eq(r.as_str()))
            .execute(c)?;
    }
    if let Some(a) = set.active {
        diesel::update(target).set(users::active.eq(a)).execute(c)?;
    }
    diesel::update(target)
        .set(users::updated_at.eq(now))
        .execute(c)?;
    Ok(())
}
