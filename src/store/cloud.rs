//! Cloud containers: the firms' certificate authorities, credentials, access tokens, seats
//! and the use per day.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    cloud_authorities, cloud_borrows, cloud_credentials, cloud_seats, cloud_tokens, cloud_use_days,
    containers, items, licenses,
};
use super::{unique_or_retry, Conn};
use crate::domain::LicenseState;
use crate::error::{Error, Result};

/// A firm's certificate authority: its certificate (PEM) and sealed private key.
pub fn authority(c: &mut Conn, firm_id: i64) -> Result<Option<(String, String)>> {
    Ok(cloud_authorities::table
        .filter(cloud_authorities::firm_id.eq(firm_id))
        .select((
            cloud_authorities::certificate,
            cloud_authorities::private_key_sealed,
        ))
        .first(c)
        .optional()?)
}

/// Stores a firm's new authority; another node's made at the same time wins (the write
/// runs again and reads it).
pub fn insert_authority(
    c: &mut Conn,
    firm_id: i64,
    certificate: &str,
    sealed: &str,
    now: NaiveDateTime,
) -> Result<()> {
    unique_or_retry(
        diesel::insert_into(cloud_authorities::table)
            .values((
                cloud_authorities::firm_id.eq(firm_id),
                cloud_authorities::certificate.eq(certificate),
                cloud_authorities::private_key_sealed.eq(sealed),
                cloud_authorities::created_at.eq(now),
            ))
            .execute(c),
    )?;
    Ok(())
}

#[derive(Debug, Clone, Queryable)]
pub struct CredentialRow {
    pub id: i64,
    pub container_id: i64,
    pub firm_id: i64,
    pub fingerprint: String,
    pub not_after: NaiveDateTime,
    pub issued_by: String,
    pub issued_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub revoked_reason: Option<String>,
}

pub struct NewCredential<'a> {
    pub container_id: i64,
    pub firm_id: i64,
    pub fingerprint: &'a str,
    pub not_after: NaiveDateTime,
    pub issued_by: &'a str,
}

pub fn insert_credential(c: &mut Conn, n: &NewCredential, now: NaiveDateTime) -> Result<i64> {
    Ok(diesel::insert_into(cloud_credentials::table)
        .values((
            cloud_credentials::container_id.eq(n.container_id),
            cloud_credentials::firm_id.eq(n.firm_id),
            cloud_credentials::fingerprint.eq(n.fingerprint),
            cloud_credentials::not_after.eq(n.not_after),
            cloud_credentials::issued_by.eq(n.issued_by),
            cloud_credentials::issued_at.eq(now),
        ))
        .returning(cloud_credentials::id)
        .get_result(c)?)
}

/// The credentials issued for a container, newest first.
pub fn credentials_of(c: &mut Conn, container_id: i64) -> Result<Vec<CredentialRow>> {
    Ok(cloud_credentials::table
        .filter(cloud_credentials::container_id.eq(container_id))
        .order(cloud_credentials::id.desc())
        .load(c)?)
}

/// The credential whose certificate has SHA-256 `fingerprint`.
pub fn credential_by_fingerprint(c: &mut Conn, fingerprint: &str) -> Result<Option<CredentialRow>> {
    Ok(cloud_credentials::table
        .filter(cloud_credentials::fingerprint.eq(fingerprint))
        .first(c)
        .optional()?)
}

/// Revokes the container's credentials still in force; returns their ids.
pub fn revoke_all(
    c: &mut Conn,
    container_id: i64,
    by: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<Vec<i64>> {
    Ok(diesel::update(
        cloud_credentials::table
            .filter(cloud_credentials::container_id.eq(container_id))
            .filter(cloud_credentials::revoked_at.is_null()),
    )
    .set((
        cloud_credentials::revoked_at.eq(now),
        cloud_credentials::revoked_by.eq(by),
        cloud_credentials::revoked_reason.eq(reason),
    ))
    .returning(cloud_credentials::id)
    .load(c)?)
}

/// Stores an access token (its hash). A nonce seen before is a replayed request: refused.
pub fn insert_token(
    c: &mut Conn,
    token_hash: &str,
    credential_id: i64,
    nonce: &str,
    expires_at: NaiveDateTime,
) -> Result<()> {
    match diesel::insert_into(cloud_tokens::table)
        .values((
            cloud_tokens::token_hash.eq(token_hash),
            cloud_tokens::credential_id.eq(credential_id),
            cloud_tokens::nonce.eq(nonce),
            cloud_tokens::expires_at.eq(expires_at),
        ))
        .execute(c)
    {
        Err(e) if super::is_unique_violation(&e) => Err(Error::InvalidMessage(
            "this token request was used before (replayed); sign a new one".into(),
        )),
        r => r.map(|_| ()).map_err(Into::into),
    }
}

/// Who holds an access token: the credential in force and its cloud container.
#[derive(Debug, Clone, Queryable)]
pub struct Holder {
    pub credential_id: i64,
    pub firm_id: i64,
    pub container_id: i64,
    pub serial: String,
}

/// The holder of the token with hash `token_hash`, if the token has not lapsed at `now` and
/// its credential is not revoked.
pub fn holder(c: &mut Conn, token_hash: &str, now: NaiveDateTime) -> Result<Option<Holder>> {
    Ok(cloud_tokens::table
        .inner_join(cloud_credentials::table.inner_join(containers::table))
        .filter(cloud_tokens::token_hash.eq(token_hash))
        .filter(cloud_tokens::expires_at.gt(now))
        .filter(cloud_credentials::revoked_at.is_null())
        .select((
            cloud_credentials::id,
            cloud_credentials::firm_id,
            containers::id,
            containers::serial,
        ))
        .first(c)
        .optional()?)
}

/// Deletes tokens that lapsed before `before` (housekeeping); returns how many.
pub fn purge_tokens(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(cloud_tokens::table.filter(cloud_tokens::expires_at.lt(before)))
            .execute(c)?,
    )
}

/// A license in a cloud container as the seats need it.
#[derive(Debug, Clone, Queryable)]
pub struct SeatLicense {
    pub id: i64,
    pub product_code: i64,
    pub options: String,
    pub item_id: String,
}

/// The activated licenses of firm `firm_id` in container `serial` with product code
/// `product_code`, oldest first.
pub fn licenses_for(
    c: &mut Conn,
    serial: &str,
    firm_id: i64,
    product_code: Option<i64>,
) -> Result<Vec<SeatLicense>> {
    let mut q = licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(serial))
        .filter(licenses::firm_id.eq(firm_id))
        .filter(licenses::state.eq(LicenseState::Activated.as_str()))
        .select((
            licenses::id,
            licenses::product_code,
            licenses::options,
            items::item_id,
        ))
        .order(licenses::id.asc())
        .into_boxed();
    if let Some(pc) = product_code {
        q = q.filter(licenses::product_code.eq(pc));
    }
    Ok(q.load(c)?)
}

#[derive(Debug, Clone, Queryable)]
pub struct SeatRow {
    pub id: i64,
    pub license_id: i64,
    pub slot: i32,
    pub credential_id: i64,
    pub station: String,
    pub holders: i32,
    pub opened_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The license made for a borrow that holds this seat.
    pub borrowed_license_id: Option<i64>,
}

/// Deletes the seats of license `license_id` whose lease ran out by `now` and returns them:
/// whichever node's delete returns a seat reclaimed it, once.
pub fn reclaim(c: &mut Conn, license_id: i64, now: NaiveDateTime) -> Result<Vec<SeatRow>> {
    Ok(diesel::delete(
        cloud_seats::table
            .filter(cloud_seats::license_id.eq(license_id))
            .filter(cloud_seats::expires_at.le(now)),
    )
    .returning(cloud_seats::all_columns)
    .load(c)?)
}

/// Deletes every seat whose lease ran out by `now` (housekeeping) and returns them.
pub fn reclaim_all(c: &mut Conn, now: NaiveDateTime, limit: i64) -> Result<Vec<SeatRow>> {
    let due: Vec<i64> = cloud_seats::table
        .filter(cloud_seats::expires_at.le(now))
        .select(cloud_seats::id)
        .order(cloud_seats::expires_at.asc())
        .limit(limit)
        .load(c)?;
    Ok(diesel::delete(
        cloud_seats::table
            .filter(cloud_seats::id.eq_any(due))
            .filter(cloud_seats::expires_at.le(now)),
    )
    .returning(cloud_seats::all_columns)
    .load(c)?)
}

/// The seats of a license in use (leases not yet reclaimed), by slot.
pub fn seats_of(c: &mut Conn, license_id: i64) -> Result<Vec<SeatRow>> {
    Ok(cloud_seats::table
        .filter(cloud_seats::license_id.eq(license_id))
        .order(cloud_seats::slot.asc())
        .load(c)?)
}

/// The seats held through credential `credential_id`.
pub fn seats_of_credential(c: &mut Conn, credential_id: i64) -> Result<Vec<SeatRow>> {
    Ok(cloud_seats::table
        .filter(cloud_seats::credential_id.eq(credential_id))
        .order(cloud_seats::id.asc())
        .load(c)?)
}

pub struct NewSeat<'a> {
    pub license_id: i64,
    pub slot: i32,
    pub credential_id: i64,
    pub station: &'a str,
    pub expires_at: NaiveDateTime,
    /// The license made for a borrow, when the seat is borrowed.
    pub borrowed: Option<i64>,
}

/// Takes slot `slot` of a license. Another writer (node) that took the same slot first
/// makes the database refuse it: the write runs again and counts anew.
pub fn take(c: &mut Conn, n: &NewSeat, now: NaiveDateTime) -> Result<SeatRow> {
    unique_or_retry(
        diesel::insert_into(cloud_seats::table)
            .values((
                cloud_seats::license_id.eq(n.license_id),
                cloud_seats::slot.eq(n.slot),
                cloud_seats::credential_id.eq(n.credential_id),
                cloud_seats::station.eq(n.station),
                cloud_seats::holders.eq(1),
                cloud_seats::opened_at.eq(now),
                cloud_seats::expires_at.eq(n.expires_at),
                cloud_seats::borrowed_license_id.eq(n.borrowed),
            ))
            .returning(cloud_seats::all_columns)
            .get_result(c),
    )
}

/// Renews seat `id` held through `credential_id` until `until`, adding `holders` holders,
/// if its lease has not run out at `now`. None: the seat is gone (released, reclaimed, or
/// its credential revoked), and a late heartbeat cannot bring it back.
pub fn renew(
    c: &mut Conn,
    id: i64,
    credential_id: i64,
    holders: i32,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Option<SeatRow>> {
    Ok(diesel::update(
        cloud_seats::table
            .filter(cloud_seats::id.eq(id))
            .filter(cloud_seats::credential_id.eq(credential_id))
            .filter(cloud_seats::expires_at.gt(now)),
    )
    .set((
        cloud_seats::expires_at.eq(until),
        cloud_seats::holders.eq(cloud_seats::holders + holders),
    ))
    .returning(cloud_seats::all_columns)
    .get_result(c)
    .optional()?)
}

/// Deletes seat `id` held through `credential_id` (released); whether it was there.
pub fn release(c: &mut Conn, id: i64, credential_id: i64) -> Result<Option<SeatRow>> {
    Ok(diesel::delete(
        cloud_seats::table
            .filter(cloud_seats::id.eq(id))
            .filter(cloud_seats::credential_id.eq(credential_id)),
    )
    .returning(cloud_seats::all_columns)
    .get_result(c)
    .optional()?)
}

/// Ends every session's seat held through the credentials `ids` (a borrowed seat stays
/// with its license in the local container); returns them.
pub fn end_seats_of(c: &mut Conn, ids: &[i64]) -> Result<Vec<SeatRow>> {
    Ok(diesel::delete(
        cloud_seats::table
            .filter(cloud_seats::credential_id.eq_any(ids))
            .filter(cloud_seats::borrowed_license_id.is_null()),
    )
    .returning(cloud_seats::all_columns)
    .load(c)?)
}

/// Ends the seat that license `borrowed` (made for a borrow) holds; the seat, if it held
/// one still.
pub fn end_borrow(c: &mut Conn, borrowed: i64) -> Result<Option<SeatRow>> {
    Ok(
        diesel::delete(cloud_seats::table.filter(cloud_seats::borrowed_license_id.eq(borrowed)))
            .returning(cloud_seats::all_columns)
            .get_result(c)
            .optional()?,
    )
}

/// The seats of license `license_id` borrowed out and not yet run out at `now`.
pub fn borrowed_out(c: &mut Conn, license_id: i64, now: NaiveDateTime) -> Result<Vec<SeatRow>> {
    Ok(cloud_seats::table
        .filter(cloud_seats::license_id.eq(license_id))
        .filter(cloud_seats::borrowed_license_id.is_not_null())
        .filter(cloud_seats::expires_at.gt(now))
        .load(c)?)
}

/// Ends every seat of license `license_id` (it left the cloud container); returns them.
pub fn end_seats_of_license(c: &mut Conn, license_id: i64) -> Result<Vec<SeatRow>> {
    Ok(
        diesel::delete(cloud_seats::table.filter(cloud_seats::license_id.eq(license_id)))
            .returning(cloud_seats::all_columns)
            .load(c)?,
    )
}

/// Counts a seat taken (`opened`, with `in_use` seats now in use) or a denial on the
/// license's row for `day`.
pub fn count_use(c: &mut Conn, license_id: i64, day: &str, in_use: Option<i32>) -> Result<()> {
    use diesel::upsert::excluded;
    let (opened, peak, denials) = match in_use {
        Some(n) => (1i64, n, 0i64),
        None => (0, 0, 1),
    };
    let row = (
        cloud_use_days::license_id.eq(license_id),
        cloud_use_days::day.eq(day),
        cloud_use_days::opened.eq(opened),
        cloud_use_days::peak.eq(peak),
        cloud_use_days::denials.eq(denials),
    );
    let on_conflict = (cloud_use_days::license_id, cloud_use_days::day);
    // The larger peak, in SQL both backends read alike.
    let peak = diesel::dsl::sql::<diesel::sql_types::Integer>(
        "CASE WHEN excluded.peak > cloud_use_days.peak THEN excluded.peak \
         ELSE cloud_use_days.peak END",
    );
    crate::on_backend!(c, x => diesel::insert_into(cloud_use_days::table)
        .values(row)
        .on_conflict(on_conflict)
        .do_update()
        .set((
            cloud_use_days::opened.eq(cloud_use_days::opened + excluded(cloud_use_days::opened)),
            cloud_use_days::denials.eq(cloud_use_days::denials + excluded(cloud_use_days::denials)),
            cloud_use_days::peak.eq(peak),
        ))
        .execute(x))?;
    Ok(())
}

/// A license's use on one UTC day.
#[derive(schemars::JsonSchema, Debug, Queryable, serde::Serialize)]
pub struct UseDay {
    pub license_id: i64,
    pub day: String,
    /// Seats taken that day.
    pub opened: i64,
    /// The most seats in use at once.
    pub peak: i32,
    /// Opens refused because every seat was in use.
    pub denials: i64,
}

/// The use per day of the licenses in container `serial` from `since` (a `YYYY-MM-DD`
/// day).
pub fn use_days(c: &mut Conn, serial: &str, since: &str) -> Result<Vec<UseDay>> {
    Ok(cloud_use_days::table
        .inner_join(licenses::table)
        .filter(licenses::serial.eq(serial))
        .filter(cloud_use_days::day.ge(since))
        .select((
            cloud_use_days::license_id,
            cloud_use_days::day,
            cloud_use_days::opened,
            cloud_use_days::peak,
            cloud_use_days::denials,
        ))
        .order((cloud_use_days::day.asc(), cloud_use_days::license_id.asc()))
        .load(c)?)
}

/// The firm a cloud container was made for (its one mirror row).
pub fn firm_of(c: &mut Conn, container_id: i64) -> Result<Option<i64>> {
    use super::schema::container_firms;
    Ok(container_firms::table
        .filter(container_firms::container_id.eq(container_id))
        .select(container_firms::firm_id)
        .order(container_firms::firm_id.asc())
        .first(c)
        .optional()?)
}

/// How many seats of license `license_id` are held at `now`.
pub fn in_use(c: &mut Conn, license_id: i64, now: NaiveDateTime) -> Result<i64> {
    Ok(cloud_seats::table
        .filter(cloud_seats::license_id.eq(license_id))
        .filter(cloud_seats::expires_at.gt(now))
        .count()
        .get_result(c)?)
}

/// Seat `id` if it is held through `credential_id` by a session (not borrowed) and its
/// lease has not run out at `now`.
pub fn seat(
    c: &mut Conn,
    id: i64,
    credential_id: i64,
    serial: &str,
    now: NaiveDateTime,
) -> Result<Option<SeatRow>> {
    Ok(cloud_seats::table
        .inner_join(licenses::table)
        .filter(cloud_seats::id.eq(id))
        .filter(cloud_seats::borrowed_license_id.is_null())
        .filter(cloud_seats::credential_id.eq(credential_id))
        .filter(cloud_seats::expires_at.gt(now))
        .filter(licenses::state.eq(LicenseState::Activated.as_str()))
        .filter(licenses::serial.eq(serial))
        .select(cloud_seats::all_columns)
        .first(c)
        .optional()?)
}

/// One holder fewer on seat `id` of `credential_id`, if it has more than one; the seat.
pub fn drop_holder(c: &mut Conn, id: i64, credential_id: i64) -> Result<Option<SeatRow>> {
    Ok(diesel::update(
        cloud_seats::table
            .filter(cloud_seats::id.eq(id))
            .filter(cloud_seats::credential_id.eq(credential_id))
            .filter(cloud_seats::holders.gt(1)),
    )
    .set(cloud_seats::holders.eq(cloud_seats::holders - 1))
    .returning(cloud_seats::all_columns)
    .get_result(c)
    .optional()?)
}

/// The `lease_seconds` option of license `license_id`.
pub fn lease_of(c: &mut Conn, license_id: i64) -> Result<Option<u32>> {
    let options: String = licenses::table
        .filter(licenses::id.eq(license_id))
        .select(licenses::options)
        .first(c)?;
    let o: crate::domain::ItemOptions = serde_json::from_str(&options)
        .map_err(|e| Error::internal(format!("license {license_id} options: {e}")))?;
    Ok(o.lease_seconds)
}

/// The container license `license_id` is in, if any.
pub fn serial_of_license(c: &mut Conn, license_id: i64) -> Result<Option<String>> {
    Ok(licenses::table
        .filter(licenses::id.eq(license_id))
        .select(licenses::serial)
        .first::<Option<String>>(c)
        .optional()?
        .flatten())
}

/// Records that license `license_id` was made for a borrow from `from_license_id`.
pub fn insert_borrow(
    c: &mut Conn,
    license_id: i64,
    from_license_id: i64,
    until: NaiveDateTime,
) -> Result<()> {
    diesel::insert_into(cloud_borrows::table)
        .values((
            cloud_borrows::license_id.eq(license_id),
            cloud_borrows::from_license_id.eq(from_license_id),
            cloud_borrows::until.eq(until),
        ))
        .execute(c)?;
    Ok(())
}

/// Whether license `license_id` was made for a borrow.
pub fn is_borrow(c: &mut Conn, license_id: i64) -> Result<bool> {
    Ok(cloud_borrows::table
        .filter(cloud_borrows::license_id.eq(license_id))
        .count()
        .get_result::<i64>(c)?
        > 0)
}

/// A license in a cloud container with its seats in use (the cloud-seats report).
#[derive(Debug)]
pub struct SeatsLine {
    pub serial: String,
    pub id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub options: String,
    pub in_use: i64,
    pub borrowed: i64,
}

/// Every license activated in a cloud container, by serial and id, with its seats held at
/// `now` (borrowed ones among them).
pub fn seats_report(c: &mut Conn, now: NaiveDateTime) -> Result<Vec<SeatsLine>> {
    use super::schema::firms;
    use diesel::dsl::count_star;
    let rows: Vec<(String, i64, String, i64, i64, String)> = licenses::table
        .inner_join(items::table)
        .inner_join(firms::table.on(firms::id.eq(licenses::firm_id)))
        .inner_join(containers::table.on(containers::serial.nullable().eq(licenses::serial)))
        .filter(containers::kind.eq("cloud"))
        .filter(licenses::state.eq(LicenseState::Activated.as_str()))
        .select((
            containers::serial,
            licenses::id,
            items::item_id,
            firms::firm_code,
            licenses::product_code,
            licenses::options,
        ))
        .order((containers::serial.asc(), licenses::id.asc()))
        .load(c)?;
    let held = |c: &mut Conn, borrowed: bool| -> Result<std::collections::HashMap<i64, i64>> {
        let mut q = cloud_seats::table
            .filter(cloud_seats::expires_at.gt(now))
            .group_by(cloud_seats::license_id)
            .select((cloud_seats::license_id, count_star()))
            .into_boxed();
        if borrowed {
            q = q.filter(cloud_seats::borrowed_license_id.is_not_null());
        }
        Ok(q.load::<(i64, i64)>(c)?.into_iter().collect())
    };
    let (in_use, borrowed) = (held(c, false)?, held(c, true)?);
    Ok(rows
        .into_iter()
        .map(
            |(serial, id, item_id, firm_code, product_code, options)| SeatsLine {
                in_use: in_use.get(&id).copied().unwrap_or(0),
                borrowed: borrowed.get(&id).copied().unwrap_or(0),
                serial,
                id,
                item_id,
                firm_code,
                product_code,
                options,
            },
        )
        .collect())
}

/// A license's use on one day, with the container it is in and its item.
#[derive(Debug, Queryable)]
pub struct UseLine {
    pub license_id: i64,
    pub day: String,
    pub opened: i64,
    pub peak: i32,
    pub denials: i64,
    pub serial: Option<String>,
    pub item_id: String,
}

/// The use per license and day from `since` of every license, by day.
pub fn use_report(c: &mut Conn, since: &str) -> Result<Vec<UseLine>> {
    Ok(cloud_use_days::table
        .inner_join(licenses::table.inner_join(items::table))
        .filter(cloud_use_days::day.ge(since))
        .select((
            cloud_use_days::license_id,
            cloud_use_days::day,
            cloud_use_days::opened,
            cloud_use_days::peak,
            cloud_use_days::denials,
            licenses::serial,
            items::item_id,
        ))
        .order((cloud_use_days::day.asc(), cloud_use_days::license_id.asc()))
        .load(c)?)
}

/// Whether license `license_id` is still activated in container `serial`; on PostgreSQL
/// its row is locked until the transaction ends, so writers counting its seats go one after
/// the other (in the order of the licenses' ids) and a write that takes it out of the
/// container (return, withdraw) waits for them, or they for it and then find it gone.
pub fn lock_license(c: &mut Conn, license_id: i64, serial: &str) -> Result<bool> {
    let q = licenses::table
        .filter(licenses::id.eq(license_id))
        .filter(licenses::state.eq(LicenseState::Activated.as_str()))
        .filter(licenses::serial.eq(serial))
        .select(licenses::id);
    Ok(match c {
        Conn::Pg(pg) => q.for_update().first::<i64>(pg).optional()?,
        Conn::Sqlite(x) => q.first::<i64>(x).optional()?,
    }
    .is_some())
}
/// The cloud containers of customer `customer`: id and serial, oldest first.
pub fn cloud_containers_of(c: &mut Conn, customer: i64) -> Result<Vec<(i64, String)>> {
    Ok(containers::table
        .filter(containers::customer_id.eq(customer))
        .filter(containers::kind.eq("cloud"))
        .select((containers::id, containers::serial))
        .order(containers::id.asc())
        .load(c)?)
}
