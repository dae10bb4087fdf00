//! Firm codes and their signing keys (the private ones sealed with the master key), as
//! containers and their messages name them.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{firm_keys, firms};
use super::{unique_or_retry, Conn};
use crate::error::{Error, Result};
use crate::on_backend;

/// A firm as stored, with its current key; the fields in the table's column order.
#[derive(Debug, Clone, Queryable)]
pub struct Firm {
    pub id: i64,
    pub firm_code: i64,
    pub name: String,
    pub key_id: String,
    /// Base64 of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    /// The private key, sealed with the master key.
    pub private_key_sealed: String,
    pub created_at: NaiveDateTime,
}

/// The firm with code `code`, if there is one.
pub fn find(c: &mut Conn, code: i64) -> Result<Option<Firm>> {
    Ok(firms::table
        .filter(firms::firm_code.eq(code))
        .first(c)
        .optional()?)
}

/// The firm with code `code`: its id and the id of its current signing key.
pub fn by_code(c: &mut Conn, code: i64) -> Result<(i64, String)> {
    on_backend!(c, x => firms::table
        .filter(firms::firm_code.eq(code))
        .select((firms::id, firms::key_id))
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("firm", code))
}

/// The code of firm `id`.
pub fn code_of(c: &mut Conn, id: i64) -> Result<i64> {
    Ok(firms::table
        .filter(firms::id.eq(id))
        .select(firms::firm_code)
        .first(c)?)
}

/// Every public key the firm has had: key id and base64 Ed25519 public key.
pub fn public_keys(c: &mut Conn, firm_id: i64) -> Result<Vec<(String, String)>> {
    Ok(firm_keys::table
        .filter(firm_keys::firm_id.eq(firm_id))
        .select((firm_keys::key_id, firm_keys::public_key))
        .load(c)?)
}

/// A signing key of a firm: its id, the base64 public key and the private key sealed with
/// the master key.
pub struct NewKey<'a> {
    pub key_id: &'a str,
    pub public_key: &'a str,
    pub private_key_sealed: &'a str,
}

/// Makes firm `code` with `key` as its first key (endorsed by none). A firm of that code
/// made by another writer at the same time: the write runs again and finds it.
pub fn insert(c: &mut Conn, code: i64, name: &str, key: &NewKey, now: NaiveDateTime) -> Result<()> {
    unique_or_retry(
        diesel::insert_into(firms::table)
            .values((
                firms::firm_code.eq(code),
                firms::name.eq(name),
                firms::key_id.eq(key.key_id),
                firms::public_key.eq(key.public_key),
                firms::private_key_sealed.eq(key.private_key_sealed),
                firms::created_at.eq(now),
            ))
            .execute(c),
    )?;
    let firm_id: i64 = firms::table
        .filter(firms::firm_code.eq(code))
        .select(firms::id)
        .first(c)?;
    add_key(c, firm_id, key, "", now)
}

/// Adds `key` to the keys firm `firm_id` has had, with the endorsement (JSON) by which its
/// previous key vouches for it (empty for the first).
pub fn add_key(
    c: &mut Conn,
    firm_id: i64,
    key: &NewKey,
    endorsement: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::insert_into(firm_keys::table)
        .values((
            firm_keys::firm_id.eq(firm_id),
            firm_keys::key_id.eq(key.key_id),
            firm_keys::public_key.eq(key.public_key),
            firm_keys::private_key_sealed.eq(key.private_key_sealed),
            firm_keys::endorsement.eq(endorsement),
            firm_keys::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Makes `key` the firm's current signing key.
pub fn set_current_key(c: &mut Conn, firm_id: i64, key: &NewKey) -> Result<()> {
    diesel::update(firms::table.filter(firms::id.eq(firm_id)))
        .set((
            firms::key_id.eq(key.key_id),
            firms::public_key.eq(key.public_key),
            firms::private_key_sealed.eq(key.private_key_sealed),
        ))
        .execute(c)?;
    Ok(())
}

/// A key the firm has had, as its signer needs it.
#[derive(Debug, Clone, Queryable)]
pub struct KeyRow {
    pub key_id: String,
    /// Base64 of the raw Ed25519 public key.
    pub public_key: String,
    pub private_key_sealed: String,
    /// The endorsement by the key before it (JSON; empty for the first key).
    pub endorsement: String,
}

/// Every key firm `firm_id` has had, oldest first (the last is the current one).
pub fn keys_oldest_first(c: &mut Conn, firm_id: i64) -> Result<Vec<KeyRow>> {
    Ok(firm_keys::table
        .filter(firm_keys::firm_id.eq(firm_id))
        .order(firm_keys::id.asc())
        .select((
            firm_keys::key_id,
            firm_keys::public_key,
            firm_keys::private_key_sealed,
            firm_keys::endorsement,
        ))
        .load(c)?)
}
