//! WS-Security nonces the SOAP services have seen (a nonce seen twice is a replay).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::soap_nonces;
use super::{unique_or_none, Conn};
use crate::error::Result;

/// Remembers `nonce`; false if it was seen before.
pub fn remember(c: &mut Conn, nonce: &str, now: NaiveDateTime) -> Result<bool> {
    let added = unique_or_none(
        diesel::insert_into(soap_nonces::table)
            .values((
                soap_nonces::nonce.eq(nonce),
                soap_nonces::created_at.eq(now),
            ))
            .execute(c),
    )?;
    Ok(added.is_some())
}
