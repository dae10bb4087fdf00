//! Updates issued for containers: each made for one container, firm and counter value,
//! `issued` until a receipt (or a later context) confirms it or another update from the same
//! counter is confirmed instead (`void`).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::updates;
use super::{Conn, Reused};
use crate::domain::UpdateState;
use crate::error::Result;
use crate::on_backend;

/// An issued update as a receipt confirms it: the counters and the content it produces.
#[derive(Debug, Clone, Queryable)]
pub struct UpdateRow {
    pub id: i64,
    pub counter_from: i64,
    pub counter_to: i64,
    pub digest_after: String,
    /// The container's content after it (JSON of `Content<Entry>`).
    pub content_after: String,
}

pub(super) type UpdateSelect = (
    updates::id,
    updates::counter_from,
    updates::counter_to,
    updates::digest_after,
    updates::content_after,
);
pub(super) const UPDATE_SELECT: UpdateSelect = (
    updates::id,
    updates::counter_from,
    updates::counter_to,
    updates::digest_after,
    updates::content_after,
);

/// The update issued for the container and firm from counter `from` that produces `digest`
/// (the newest, if several do).
pub fn issued_leading_to(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    from: i64,
    digest: &str,
) -> Result<Option<UpdateRow>> {
    Ok(on_backend!(c, x => updates::table
        .filter(updates::container_id.eq(container_id))
        .filter(updates::firm_id.eq(firm_id))
        .filter(updates::counter_from.eq(from))
        .filter(updates::digest_after.eq(digest))
        .filter(updates::state.eq(UpdateState::Issued.as_str()))
        .select(UPDATE_SELECT)
        .order(updates::id.desc())
        .first(x)
        .optional())?)
}

pub struct NewUpdate<'a> {
    pub container_id: i64,
    pub firm_id: i64,
    pub counter_from: i64,
    pub counter_to: i64,
    pub digest_after: &'a str,
    pub content_after: &'a str,
    /// What it adds, changes and deletes (JSON, for support).
    pub changes: &'a str,
    /// The nonce of the request it answers.
    pub fulfils: &'a str,
    pub expires_at: NaiveDateTime,
}

/// Records an issued update; its id.
pub fn insert_issued(c: &mut Conn, u: &NewUpdate, now: NaiveDateTime) -> Result<i64> {
    Ok(
        on_backend!(c, x => Reused(diesel::insert_into(updates::table)
        .values((
            updates::container_id.eq(u.container_id),
            updates::firm_id.eq(u.firm_id),
            updates::counter_from.eq(u.counter_from),
            updates::counter_to.eq(u.counter_to),
            updates::digest_after.eq(u.digest_after),
            updates::content_after.eq(u.content_after),
            updates::changes.eq(u.changes),
            updates::state.eq(UpdateState::Issued.as_str()),
            updates::fulfils.eq(u.fulfils),
            updates::created_at.eq(now),
            updates::expires_at.eq(u.expires_at),
        ))
        .returning(updates::id))
        .get_result(x))?,
    )
}

/// The content an update issued for the container and firm left it in at counter `counter`
/// with digest `digest`, whatever became of that update (confirmed, void or still issued):
/// a state the server made, which a container may show again after a restore from a copy.
pub fn content_producing(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    counter: i64,
    digest: &str,
) -> Result<Option<String>> {
    Ok(updates::table
        .filter(updates::container_id.eq(container_id))
        .filter(updates::firm_id.eq(firm_id))
        .filter(updates::counter_to.eq(counter))
        .filter(updates::digest_after.eq(digest))
        .select(updates::content_after)
        .order(updates::id.desc())
        .first(c)
        .optional()?)
}

/// The counter update `id` leads to, if it was issued for the container.
pub fn counter_to_of(c: &mut Conn, id: i64, container_id: i64) -> Result<Option<i64>> {
    Ok(updates::table
        .filter(updates::id.eq(id))
        .filter(updates::container_id.eq(container_id))
        .select(updates::counter_to)
        .first(c)
        .optional()?)
}

/// The updates issued for the container and firm from counter `from` and not confirmed.
pub fn unconfirmed(c: &mut Conn, container_id: i64, firm_id: i64, from: i64) -> Result<Vec<i64>> {
    Ok(updates::table
        .filter(updates::container_id.eq(container_id))
        .filter(updates::firm_id.eq(firm_id))
        .filter(updates::counter_from.eq(from))
        .filter(updates::state.eq(UpdateState::Issued.as_str()))
        .select(updates::id)
        .order(updates::id.asc())
        .load(c)?)
}

/// How many updates issued for the container and firm may still be applied at `now`.
pub fn live(c: &mut Conn, container_id: i64, firm_id: i64, now: NaiveDateTime) -> Result<i64> {
    Ok(updates::table
        .filter(updates::container_id.eq(container_id))
        .filter(updates::firm_id.eq(firm_id))
        .filter(updates::state.eq(UpdateState::Issued.as_str()))
        .filter(updates::expires_at.ge(now))
        .count()
        .get_result(c)?)
}

/// Voids every update issued for the container and firm and not confirmed: a receipt or a
/// context showing one of them matches nothing issued from then on. The voided ids.
pub fn void_issued(c: &mut Conn, container_id: i64, firm_id: i64) -> Result<Vec<i64>> {
    Ok(diesel::update(
        updates::table
            .filter(updates::container_id.eq(container_id))
            .filter(updates::firm_id.eq(firm_id))
            .filter(updates::state.eq(UpdateState::Issued.as_str())),
    )
    .set(updates::state.eq(UpdateState::Void.as_str()))
    .returning(updates::id)
    .load(c)?)
}
