//! Containers as the server registered them: serial, type, keys, fingerprint, state, owner.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::containers;
use super::{unique_or_retry, Conn};
use crate::domain::{ContainerState, ContainerType};
use crate::error::{Error, Result};
use crate::on_backend;

#[derive(Debug, Clone, Queryable)]
pub struct ContainerRow {
    pub id: i64,
    pub serial: String,
    #[diesel(deserialize_as = String)]
    pub kind: ContainerType,
    pub customer_id: Option<i64>,
    /// The container's Ed25519 public key (base64): it signs requests and receipts.
    pub public_key: String,
    #[diesel(deserialize_as = String)]
    pub state: ContainerState,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The container's X25519 public key (base64): updates are sealed for it.
    pub enc_key: String,
    /// The salted hashes of an `act` container's machine traits (JSON).
    pub fingerprint: String,
    /// Why it is in its state (a manipulation, say).
    pub state_reason: String,
    /// For a manipulated container: the firm whose contact showed it (a decision about it is
    /// carried out by that firm's next request).
    pub state_firm_id: Option<i64>,
}

/// The container with serial `serial`, if registered.
pub fn by_serial(c: &mut Conn, serial: &str) -> Result<Option<ContainerRow>> {
    Ok(containers::table
        .filter(containers::serial.eq(serial))
        .first(c)
        .optional()?)
}

/// The container with serial `serial`; unknown is an error.
pub fn get(c: &mut Conn, serial: &str) -> Result<ContainerRow> {
    by_serial(c, serial)?.ok_or_else(|| Error::not_found("container", serial))
}

/// The container registered with the signing key `public_key`.
pub fn by_key(c: &mut Conn, public_key: &str) -> Result<Option<ContainerRow>> {
    Ok(on_backend!(c, x => containers::table
        .filter(containers::public_key.eq(public_key))
        .first(x)
        .optional())?)
}

pub struct NewContainer<'a> {
    pub serial: &'a str,
    pub kind: ContainerType,
    pub public_key: &'a str,
    pub enc_key: &'a str,
    pub fingerprint: &'a str,
}

/// Registers a container (active, no owner). The same key or serial registered by another
/// request at the same time: the write runs again and finds it.
pub fn register(c: &mut Conn, n: &NewContainer, now: NaiveDateTime) -> Result<ContainerRow> {
    unique_or_retry(
        diesel::insert_into(containers::table)
            .values((
                containers::serial.eq(n.serial),
                containers::kind.eq(n.kind.as_str()),
                containers::public_key.eq(n.public_key),
                containers::enc_key.eq(n.enc_key),
                containers::fingerprint.eq(n.fingerprint),
                containers::state.eq(ContainerState::Active.as_str()),
                containers::state_reason.eq(""),
                containers::created_at.eq(now),
                containers::updated_at.eq(now),
            ))
            .execute(c),
    )?;
    get(c, n.serial)
}

/// Locks the container's row until the write commits (PostgreSQL; SQLite has one writer):
/// two requests of one container at once are then decided one after the other.
pub fn lock(c: &mut Conn, id: i64) -> Result<()> {
    if let Conn::Pg(pg) = c {
        containers::table
            .find(id)
            .select(containers::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    Ok(())
}

/// Puts the container in `state`, saying why.
pub fn set_state(
    c: &mut Conn,
    id: i64,
    state: ContainerState,
    why: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(containers::table.filter(containers::id.eq(id)))
        .set((
            containers::state.eq(state.as_str()),
            containers::state_reason.eq(why),
            containers::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Marks the container as manipulated by the contact of firm `firm_id`.
pub fn set_manipulated(
    c: &mut Conn,
    id: i64,
    firm_id: i64,
    why: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(containers::table.filter(containers::id.eq(id)))
        .set((
            containers::state.eq(ContainerState::Manipulated.as_str()),
            containers::state_reason.eq(why),
            containers::state_firm_id.eq(Some(firm_id)),
            containers::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Makes customer `customer` (primary key; none: nobody) the container's owner.
pub fn set_customer(
    c: &mut Conn,
    id: i64,
    customer: Option<i64>,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(containers::table.filter(containers::id.eq(id)))
        .set((
            containers::customer_id.eq(customer),
            containers::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Gives the container another serial (its registration is kept under it for history, and
/// the old serial may register again).
pub fn rename(c: &mut Conn, id: i64, serial: &str, now: NaiveDateTime) -> Result<()> {
    unique_or_retry(
        diesel::update(containers::table.filter(containers::id.eq(id)))
            .set((
                containers::serial.eq(serial),
                containers::updated_at.eq(now),
            ))
            .execute(c),
    )?;
    Ok(())
}

/// The serials the registrations of `serial` were kept under when it was recycled
/// (`serial~recycled-<id>`), newest first.
pub fn recycled_as(c: &mut Conn, serial: &str) -> Result<Vec<String>> {
    let escaped: String = serial
        .chars()
        .flat_map(|ch| match ch {
            '%' | '_' | '\\' => vec!['\\', ch],
            other => vec![other],
        })
        .collect();
    Ok(containers::table
        .filter(
            containers::serial
                .like(format!("{escaped}~recycled-%"))
                .escape('\\'),
        )
        .order(containers::id.desc())
        .select(containers::serial)
        .load(c)?)
}

/// The serial of container `id`.
pub fn serial_of(c: &mut Conn, id: i64) -> Result<String> {
    Ok(containers::table
        .filter(containers::id.eq(id))
        .select(containers::serial)
        .first(c)?)
}
