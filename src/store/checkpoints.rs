//! Signed checkpoints of the history's chain and the key that signs them (see
//! `service::audit`).
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{audit_checkpoints as cp, audit_key, events};
use super::{unique_or_retry, Conn};
use crate::error::Result;

/// The audit key as stored: public half (hex) and sealed private half.
pub fn key(c: &mut Conn) -> Result<Option<(String, String)>> {
    Ok(audit_key::table
        .filter(audit_key::id.eq(1))
        .select((audit_key::public_key, audit_key::sealed_private))
        .first(c)
        .optional()?)
}

/// Stores the audit key (another node storing one first makes the write run again, and
/// then it reads that one).
pub fn insert_key(c: &mut Conn, public: &str, sealed: &str, now: NaiveDateTime) -> Result<()> {
    unique_or_retry(
        diesel::insert_into(audit_key::table)
            .values((
                audit_key::id.eq(1),
                audit_key::public_key.eq(public),
                audit_key::sealed_private.eq(sealed),
                audit_key::created_at.eq(now),
            ))
            .execute(c),
    )?;
    Ok(())
}

/// A checkpoint: event `event_id` had hash `event_hash` when it was signed. The form it is
/// exported in, and read back from, for `licentia audit verify --checkpoints`.
#[derive(
    schemars::JsonSchema, Debug, Clone, Serialize, Deserialize, Queryable, Selectable, PartialEq, Eq,
)]
#[diesel(table_name = cp)]
pub struct Checkpoint {
    pub event_id: i64,
    pub event_hash: String,
    pub signed_at: NaiveDateTime,
    /// Ed25519 over `service::audit::checkpoint_message`, hex.
    pub signature: String,
}

pub fn insert(c: &mut Conn, k: &Checkpoint) -> Result<()> {
    diesel::insert_into(cp::table)
        .values((
            cp::event_id.eq(k.event_id),
            cp::event_hash.eq(&k.event_hash),
            cp::signed_at.eq(k.signed_at),
            cp::signature.eq(&k.signature),
        ))
        .execute(c)?;
    Ok(())
}

/// The newest checkpoint, if any.
pub fn last(c: &mut Conn) -> Result<Option<Checkpoint>> {
    Ok(cp::table
        .select(Checkpoint::as_select())
        .order(cp::id.desc())
        .first(c)
        .optional()?)
}

/// Every checkpoint, oldest first.
pub fn all(c: &mut Conn) -> Result<Vec<Checkpoint>> {
    Ok(cp::table
        .select(Checkpoint::as_select())
        .order(cp::id.asc())
        .load(c)?)
}

/// The hash event `id` has now, if it is there.
pub fn hash_of(c: &mut Conn, id: i64) -> Result<Option<String>> {
    Ok(events::table
        .filter(events::id.eq(id))
        .select(events::hash)
        .first(c)
        .optional()?)
}

/// How many events there are after event `after`, up to event `last`.
pub fn count_after(c: &mut Conn, after: i64, last: i64) -> Result<u64> {
    let n: i64 = events::table
        .filter(events::id.gt(after))
        .filter(events::id.le(last))
        .count()
        .get_result(c)?;
    Ok(n as u64)
}
