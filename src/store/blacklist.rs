//! The blacklist: per firm, serials that must never get licenses again. An entry is open
//! until an admin removes it (the row stays, with who and why).
use chrono::NaiveDateTime;
use diesel::dsl;
use diesel::prelude::*;

use super::schema::blacklist;
use super::{unique_or_retry, Conn};
use crate::error::Result;

/// The open entry of `serial` on the blacklist of `firm` (an id, or the firms table's id
/// column inside a query over firms), as a filter on the blacklist: what "is blacklisted"
/// means everywhere.
pub(super) type Open<'a, F> = dsl::And<
    dsl::And<dsl::Eq<blacklist::firm_id, F>, dsl::Eq<blacklist::serial, &'a str>>,
    dsl::IsNull<blacklist::removed_at>,
>;

pub(super) fn open<F>(firm: F, serial: &str) -> Open<'_, F>
where
    F: diesel::expression::AsExpression<diesel::sql_types::BigInt>,
{
    blacklist::firm_id
        .eq(firm)
        .and(blacklist::serial.eq(serial))
        .and(blacklist::removed_at.is_null())
}

/// The description of the container's open entry on the firm's blacklist, if it has one.
pub fn open_entry(c: &mut Conn, firm_id: i64, serial: &str) -> Result<Option<String>> {
    Ok(blacklist::table
        .filter(open(firm_id, serial))
        .select(blacklist::description)
        .first(c)
        .optional()?)
}

/// Puts a serial on the firm's blacklist; false if it is there already.
pub fn place(
    c: &mut Conn,
    firm_id: i64,
    serial: &str,
    description: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    if open_entry(c, firm_id, serial)?.is_some() {
        return Ok(false);
    }
    unique_or_retry(
        diesel::insert_into(blacklist::table)
            .values((
                blacklist::firm_id.eq(firm_id),
                blacklist::serial.eq(serial),
                blacklist::description.eq(description),
                blacklist::placed_at.eq(now),
                blacklist::placed_by.eq(by),
            ))
            .execute(c),
    )?;
    Ok(true)
}

/// Closes the serial's open entry; false if it had none.
pub fn remove(
    c: &mut Conn,
    firm_id: i64,
    serial: &str,
    by: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    let n = diesel::update(blacklist::table.filter(open(firm_id, serial)))
        .set((
            blacklist::removed_at.eq(Some(now)),
            blacklist::removed_by.eq(Some(by)),
            blacklist::removed_reason.eq(Some(reason)),
        ))
        .execute(c)?;
    Ok(n > 0)
}

/// Records that the lock update `update_id` was sent to the serial.
pub fn lock_sent(
    c: &mut Conn,
    firm_id: i64,
    serial: &str,
    update_id: i64,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(blacklist::table.filter(open(firm_id, serial)))
        .set((
            blacklist::lock_update_id.eq(Some(update_id)),
            blacklist::lock_sent_at.eq(Some(now)),
        ))
        .execute(c)?;
    Ok(())
}

/// Records that a receipt proved the lock applied; false if it was recorded before (or the
/// serial has no open entry).
pub fn lock_validated(
    c: &mut Conn,
    firm_id: i64,
    serial: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    let n = diesel::update(
        blacklist::table
            .filter(open(firm_id, serial))
            .filter(blacklist::lock_validated_at.is_null()),
    )
    .set(blacklist::lock_validated_at.eq(Some(now)))
    .execute(c)?;
    Ok(n > 0)
}
