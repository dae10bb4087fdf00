//! Withdrawals of licenses from containers they no longer belong to (re-activated elsewhere
//! with the `withdraw` behaviour, or the container was reset): the container's next update
//! deletes the entry, and its receipt marks the withdrawal done.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::withdrawals;
use super::Conn;
use crate::error::Result;

pub fn insert(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    license_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::insert_into(withdrawals::table)
        .values((
            withdrawals::container_id.eq(container_id),
            withdrawals::firm_id.eq(firm_id),
            withdrawals::license_id.eq(license_id),
            withdrawals::reason.eq(reason),
            withdrawals::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Of `licenses`, those with a withdrawal from the container not yet done.
pub fn pending(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    licenses: &[i64],
) -> Result<Vec<i64>> {
    Ok(withdrawals::table
        .filter(withdrawals::container_id.eq(container_id))
        .filter(withdrawals::firm_id.eq(firm_id))
        .filter(withdrawals::license_id.eq_any(licenses))
        .filter(withdrawals::done_at.is_null())
        .select(withdrawals::license_id)
        .distinct()
        .load(c)?)
}

/// Marks the withdrawals of `licenses` from the container done.
pub fn done(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    licenses: &[i64],
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(
        withdrawals::table
            .filter(withdrawals::container_id.eq(container_id))
            .filter(withdrawals::firm_id.eq(firm_id))
            .filter(withdrawals::license_id.eq_any(licenses))
            .filter(withdrawals::done_at.is_null()),
    )
    .set(withdrawals::done_at.eq(Some(now)))
    .execute(c)?;
    Ok(())
}
