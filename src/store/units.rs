//! Units used of pay-per-use licenses, as containers report them (`license_units`): the
//! highest count each container reported for each license, and when it made that report.
use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::license_units;
use super::Conn;
use crate::error::Result;

/// What the container reported before for `licenses`: license id → (units used, when the
/// container made that report).
pub fn recorded(
    c: &mut Conn,
    container_id: i64,
    licenses: &[i64],
) -> Result<HashMap<i64, (i64, NaiveDateTime)>> {
    Ok(license_units::table
        .filter(license_units::container_id.eq(container_id))
        .filter(license_units::license_id.eq_any(licenses))
        .select((
            license_units::license_id,
            license_units::used,
            license_units::made_at,
        ))
        .load::<(i64, i64, NaiveDateTime)>(c)?
        .into_iter()
        .map(|(id, used, at)| (id, (used, at)))
        .collect())
}

/// Records a report of `used` units, kept only when higher than the one recorded (two
/// requests at once keep the higher).
pub fn record(
    c: &mut Conn,
    container_id: i64,
    license_id: i64,
    used: i64,
    made_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<()> {
    use diesel::sql_types::{BigInt, Timestamp};
    let sql = |p: [&str; 5]| {
        format!(
            "INSERT INTO license_units (container_id, license_id, used, made_at, reported_at) \
             VALUES ({}, {}, {}, {}, {}) \
             ON CONFLICT (container_id, license_id) DO UPDATE SET used = excluded.used, \
               made_at = excluded.made_at, reported_at = excluded.reported_at \
             WHERE license_units.used < excluded.used",
            p[0], p[1], p[2], p[3], p[4]
        )
    };
    macro_rules! run {
        ($conn:expr, $q:expr) => {
            diesel::sql_query($q)
                .bind::<BigInt, _>(container_id)
                .bind::<BigInt, _>(license_id)
                .bind::<BigInt, _>(used)
                .bind::<Timestamp, _>(made_at)
                .bind::<Timestamp, _>(now)
                .execute($conn)?
        };
    }
    match c {
        Conn::Pg(pg) => run!(pg, sql(["$1", "$2", "$3", "$4", "$5"])),
        Conn::Sqlite(lite) => run!(lite, sql(["?"; 5])),
    };
    Ok(())
}
