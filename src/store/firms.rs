//! Firm codes and their public keys, as containers and their messages name them.
use diesel::prelude::*;

use super::schema::{firm_keys, firms};
use super::Conn;
use crate::error::{Error, Result};
use crate::on_backend;

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

/// The firm with code `code`: id, name, current key id.
pub fn named(c: &mut Conn, code: i64) -> Result<(i64, String, String)> {
    firms::table
        .filter(firms::firm_code.eq(code))
        .select((firms::id, firms::name, firms::key_id))
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("firm", code))
}

/// Every public key the firm has had: key id and base64 Ed25519 public key.
pub fn public_keys(c: &mut Conn, firm_id: i64) -> Result<Vec<(String, String)>> {
    Ok(firm_keys::table
        .filter(firm_keys::firm_id.eq(firm_id))
        .select((firm_keys::key_id, firm_keys::public_key))
        .load(c)?)
}
