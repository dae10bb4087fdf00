//! WS-Security nonces the SOAP services have seen (a nonce seen twice is a replay).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::soap_nonces;
use super::Conn;
use crate::error::Result;
use crate::on_backend;

/// Remembers `nonce`; false if it was seen before (`ON CONFLICT DO NOTHING`: a failed insert
/// would abort the writer's transaction on PostgreSQL).
pub fn remember(c: &mut Conn, nonce: &str, now: NaiveDateTime) -> Result<bool> {
    let added = on_backend!(c, x => diesel::insert_into(soap_nonces::table)
        .values((
            soap_nonces::nonce.eq(nonce),
            soap_nonces::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(x))?;
    Ok(added == 1)
}
