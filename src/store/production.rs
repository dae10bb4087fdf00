//! Production orders and their slots: one slot per dongle, owning the licenses of one
//! dongle. Every change of a slot is one conditional write on its version (zero rows: another
//! writer changed it first, and the write runs again to see what); a serial takes at most one
//! slot of all orders (a unique index).
use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::licenses::{LicRow, LIC_SELECT};
use super::schema::{
    events, items, licenses, production_orders, production_slot_licenses, production_slots,
};
use super::{unique_or_retry, Conn};
use crate::domain::LicenseState;
use crate::error::{Error, Result};
use crate::on_backend;

#[derive(Debug, Clone, Queryable)]
pub struct ProductionOrderRow {
    pub id: i64,
    pub order_id: i64,
    pub firm_id: i64,
    pub dongles: i32,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub cancelled_at: Option<NaiveDateTime>,
}

pub struct NewProductionOrder<'a> {
    pub order_id: i64,
    pub firm_id: i64,
    pub dongles: i32,
    pub created_by: &'a str,
}

/// Records a production order for `order_id`; its id.
pub fn insert_order(c: &mut Conn, o: &NewProductionOrder, now: NaiveDateTime) -> Result<i64> {
    unique_or_retry(
        diesel::insert_into(production_orders::table)
            .values((
                production_orders::order_id.eq(o.order_id),
                production_orders::firm_id.eq(o.firm_id),
                production_orders::dongles.eq(o.dongles),
                production_orders::created_by.eq(o.created_by),
                production_orders::created_at.eq(now),
            ))
            .returning(production_orders::id)
            .get_result(c),
    )
}

/// Slot rows per statement: well within both backends' limits on bound values.
const CHUNK: usize = 1000;

/// Makes the slots 1..=N of a production order, slot n owning the licenses `slots[n - 1]`.
pub fn insert_slots(c: &mut Conn, production_order_id: i64, slots: &[Vec<i64>]) -> Result<()> {
    let numbered: Vec<(i32, &Vec<i64>)> = (1..).zip(slots).collect();
    for chunk in numbered.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(n, _)| {
                (
                    production_slots::production_order_id.eq(production_order_id),
                    production_slots::slot.eq(*n),
                )
            })
            .collect();
        let ids: Vec<(i64, i32)> = on_backend!(c, x => diesel::insert_into(production_slots::table)
            .values(&rows)
            .returning((production_slots::id, production_slots::slot))
            .load(x))?;
        let owned: Vec<_> = ids
            .iter()
            .flat_map(|(id, n)| {
                chunk[(*n - chunk[0].0) as usize].1.iter().map(move |l| {
                    (
                        production_slot_licenses::slot_id.eq(*id),
                        production_slot_licenses::license_id.eq(*l),
                    )
                })
            })
            .collect();
        for part in owned.chunks(CHUNK * 4) {
            on_backend!(c, x => diesel::insert_into(production_slot_licenses::table)
                .values(part)
                .execute(x))?;
        }
    }
    Ok(())
}

/// Production order `id`; unknown is an error.
pub fn get(c: &mut Conn, id: i64) -> Result<ProductionOrderRow> {
    production_orders::table
        .find(id)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("production order", id))
}

/// The production order made with order `order_id`, if that order is one.
pub fn of_order(c: &mut Conn, order_id: i64) -> Result<Option<ProductionOrderRow>> {
    Ok(production_orders::table
        .filter(production_orders::order_id.eq(order_id))
        .first(c)
        .optional()?)
}

/// Marks the order cancelled; false if it was already.
pub fn cancel(c: &mut Conn, id: i64, now: NaiveDateTime) -> Result<bool> {
    let n = diesel::update(
        production_orders::table
            .filter(production_orders::id.eq(id))
            .filter(production_orders::cancelled_at.is_null()),
    )
    .set(production_orders::cancelled_at.eq(Some(now)))
    .execute(c)?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Queryable)]
pub struct SlotRow {
    pub id: i64,
    pub production_order_id: i64,
    pub slot: i32,
    pub serial: Option<String>,
    pub station: Option<String>,
    pub assigned_at: Option<NaiveDateTime>,
    pub failures: i32,
    pub last_failure: Option<String>,
    pub last_failure_serial: Option<String>,
    pub receipt_recorded_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// Slot `id`.
pub fn slot(c: &mut Conn, id: i64) -> Result<SlotRow> {
    Ok(production_slots::table.find(id).first(c)?)
}

/// The slots of a production order, by number.
pub fn slots(c: &mut Conn, production_order_id: i64) -> Result<Vec<SlotRow>> {
    Ok(production_slots::table
        .filter(production_slots::production_order_id.eq(production_order_id))
        .order(production_slots::slot.asc())
        .load(c)?)
}

/// A license of a slot: what the slot's state is derived from.
#[derive(Debug, Clone, Queryable)]
pub struct SlotLicenseRow {
    pub slot_id: i64,
    pub license_id: i64,
    #[diesel(deserialize_as = String)]
    pub state: LicenseState,
    pub serial: Option<String>,
    pub activated_at: Option<NaiveDateTime>,
}

type SlotLicenseSelect = (
    production_slot_licenses::slot_id,
    licenses::id,
    licenses::state,
    licenses::serial,
    licenses::activated_at,
);
const SLOT_LICENSE_SELECT: SlotLicenseSelect = (
    production_slot_licenses::slot_id,
    licenses::id,
    licenses::state,
    licenses::serial,
    licenses::activated_at,
);

/// The licenses of every slot of a production order, by slot and license id.
pub fn licenses_of_order(c: &mut Conn, production_order_id: i64) -> Result<Vec<SlotLicenseRow>> {
    Ok(production_slot_licenses::table
        .inner_join(production_slots::table)
        .inner_join(licenses::table)
        .filter(production_slots::production_order_id.eq(production_order_id))
        .select(SLOT_LICENSE_SELECT)
        .order((production_slot_licenses::slot_id.asc(), licenses::id.asc()))
        .load(c)?)
}

/// The licenses of slot `slot_id`, as the lifecycle changes them.
pub fn licenses_of_slot(c: &mut Conn, slot_id: i64) -> Result<Vec<LicRow>> {
    Ok(production_slot_licenses::table
        .inner_join(licenses::table.inner_join(items::table))
        .filter(production_slot_licenses::slot_id.eq(slot_id))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?)
}

/// The slot (of any production order) assigned to dongle `serial`.
pub fn slot_of_serial(c: &mut Conn, serial: &str) -> Result<Option<SlotRow>> {
    Ok(production_slots::table
        .filter(production_slots::serial.eq(serial))
        .first(c)
        .optional()?)
}

/// The slot of the production order whose last counted failure was dongle `serial`'s.
pub fn slot_failed_by(
    c: &mut Conn,
    production_order_id: i64,
    serial: &str,
) -> Result<Option<SlotRow>> {
    Ok(production_slots::table
        .filter(production_slots::production_order_id.eq(production_order_id))
        .filter(production_slots::last_failure_serial.eq(serial))
        .order(production_slots::slot.asc())
        .first(c)
        .optional()?)
}

/// Assigns the lowest free slot of the production order whose licenses are all available
/// to dongle `serial` at `station`; `None` when none is left. On PostgreSQL the slot is
/// chosen with `FOR UPDATE SKIP LOCKED`, so writers assigning at the same time take
/// different slots without waiting for each other; the write itself is conditional (still
/// free, same version), and the unique serial keeps a dongle from taking two.
pub fn claim(
    c: &mut Conn,
    production_order_id: i64,
    serial: &str,
    station: &str,
    now: NaiveDateTime,
) -> Result<Option<SlotRow>> {
    let taken = production_slot_licenses::table
        .inner_join(licenses::table)
        .filter(production_slot_licenses::slot_id.eq(production_slots::id))
        .filter(licenses::state.ne(LicenseState::Available.as_str()));
    let free = production_slots::table
        .filter(production_slots::production_order_id.eq(production_order_id))
        .filter(production_slots::serial.is_null())
        .filter(not(exists(taken)))
        .order(production_slots::slot.asc())
        .select((
            production_slots::id,
            production_slots::version,
            production_slots::last_failure_serial,
        ));
    type Free = (i64, i32, Option<String>);
    let found: Option<Free> = match c {
        Conn::Pg(pg) => match free.for_update().skip_locked().first(pg).optional()? {
            Some(found) => Some(found),
            // Every free slot is locked by a claim under way: whether one of them is
            // undone is known only when it ends. Not "none left", then, but run again
            // (and, still so, `busy`: the caller sends it again). Waiting for the lock
            // instead would let two writers wait for each other's slots.
            None if free.first::<Free>(pg).optional()?.is_some() => return Err(Error::Retry),
            None => None,
        },
        Conn::Sqlite(lite) => free.first(lite).optional()?,
    };
    let Some((id, version, failed_by)) = found else {
        return Ok(None);
    };
    // The dongle whose failure freed the slot tries again: its next failure counts again.
    // Another dongle's failure stays named (a late repeat of its report is still known).
    let failed_by = failed_by.filter(|s| s != serial);
    let row: Option<SlotRow> = unique_or_retry(
        diesel::update(
            production_slots::table
                .filter(production_slots::id.eq(id))
                .filter(production_slots::version.eq(version))
                .filter(production_slots::serial.is_null()),
        )
        .set((
            production_slots::serial.eq(Some(serial)),
            production_slots::station.eq(Some(station)),
            production_slots::assigned_at.eq(Some(now)),
            production_slots::last_failure_serial.eq(failed_by),
            production_slots::receipt_recorded_at.eq(None::<NaiveDateTime>),
            production_slots::version.eq(version + 1),
        ))
        .get_result(c)
        .optional(),
    )?;
    // Taken meanwhile by another writer: run again and take the next.
    row.map(Some).ok_or(Error::Retry)
}

/// The conditional write of a slot: it changes only at the version `s` was read at.
fn changed(n: usize) -> Result<()> {
    match n {
        0 => Err(Error::Retry),
        _ => Ok(()),
    }
}

/// The same dongle asks again for its slot (a retry): the station that asks now is the
/// slot's, and the failure counted last is behind it (the next report counts again).
pub fn again(c: &mut Conn, s: &SlotRow, station: &str) -> Result<()> {
    changed(
        diesel::update(
            production_slots::table
                .filter(production_slots::id.eq(s.id))
                .filter(production_slots::version.eq(s.version)),
        )
        .set((
            production_slots::station.eq(Some(station)),
            production_slots::last_failure_serial.eq(None::<String>),
            production_slots::version.eq(s.version + 1),
        ))
        .execute(c)?,
    )
}

/// Counts a failure of dongle `serial` in slot `s`; with `free` the slot is free again.
pub fn fail(c: &mut Conn, s: &SlotRow, serial: &str, reason: &str, free: bool) -> Result<()> {
    let row = production_slots::table
        .filter(production_slots::id.eq(s.id))
        .filter(production_slots::version.eq(s.version));
    let counted = (
        production_slots::failures.eq(s.failures + 1),
        production_slots::last_failure.eq(Some(reason)),
        production_slots::last_failure_serial.eq(Some(serial)),
        production_slots::version.eq(s.version + 1),
    );
    let n = if free {
        diesel::update(row)
            .set((
                counted,
                production_slots::serial.eq(None::<String>),
                production_slots::station.eq(None::<String>),
                production_slots::assigned_at.eq(None::<NaiveDateTime>),
                production_slots::receipt_recorded_at.eq(None::<NaiveDateTime>),
            ))
            .execute(c)?
    } else {
        diesel::update(row).set(counted).execute(c)?
    };
    changed(n)
}

/// Marks the production receipt of slot `s`'s dongle recorded; false if it was before.
pub fn receipt_recorded(c: &mut Conn, s: &SlotRow, now: NaiveDateTime) -> Result<bool> {
    if s.receipt_recorded_at.is_some() {
        return Ok(false);
    }
    changed(
        diesel::update(
            production_slots::table
                .filter(production_slots::id.eq(s.id))
                .filter(production_slots::version.eq(s.version)),
        )
        .set((
            production_slots::receipt_recorded_at.eq(Some(now)),
            production_slots::version.eq(s.version + 1),
        ))
        .execute(c)?,
    )?;
    Ok(true)
}

/// Gives slot `s` the serial the recycled dongle's registration is kept under, so that the
/// serial may take a slot again.
pub fn rename(c: &mut Conn, s: &SlotRow, serial: &str) -> Result<()> {
    changed(
        diesel::update(
            production_slots::table
                .filter(production_slots::id.eq(s.id))
                .filter(production_slots::version.eq(s.version)),
        )
        .set((
            production_slots::serial.eq(Some(serial)),
            production_slots::version.eq(s.version + 1),
        ))
        .execute(c)?,
    )
}

/// Every assigned slot's licenses with its production order and dongle: what the
/// `production` report reads the days dongles were programmed from.
pub fn assigned_licenses(c: &mut Conn) -> Result<Vec<(i64, String, SlotLicenseRow)>> {
    let rows: Vec<(i64, Option<String>, SlotLicenseRow)> = production_slot_licenses::table
        .inner_join(production_slots::table)
        .inner_join(licenses::table)
        .filter(production_slots::serial.is_not_null())
        .select((
            production_slots::production_order_id,
            production_slots::serial,
            SLOT_LICENSE_SELECT,
        ))
        .order((
            production_slots::production_order_id.asc(),
            production_slot_licenses::slot_id.asc(),
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(po, serial, l)| (po, serial.unwrap_or_default(), l))
        .collect())
}

/// When each failure of a production order's dongles was counted (the `action` events of
/// its order): what the `production` report counts failures per day from.
pub fn failures_counted(c: &mut Conn, action: &str) -> Result<Vec<(i64, NaiveDateTime)>> {
    Ok(events::table
        .inner_join(
            production_orders::table
                .on(production_orders::order_id.nullable().eq(events::order_id)),
        )
        .filter(events::action.eq(action))
        .select((production_orders::id, events::at))
        .order(events::id.asc())
        .load(c)?)
}
