//! Approval requests: what the policy does not allow alone waits for support's decision.
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::schema::approvals;
use super::{unique_or_retry, Conn};
use crate::domain::ApprovalState;
use crate::error::{Error, Result};

/// An approval request; the fields in the table's column order.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Queryable)]
pub struct ApprovalView {
    pub approval_id: i64,
    #[serde(skip)]
    pub firm_id: i64,
    pub kind: String,
    pub license_id: Option<i64>,
    pub old_serial: String,
    pub serial: String,
    pub why: String,
    #[diesel(deserialize_as = String)]
    pub state: ApprovalState,
    pub requested_at: NaiveDateTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub reason: String,
}

/// The request `id`.
pub fn get(c: &mut Conn, id: i64) -> Result<ApprovalView> {
    approvals::table
        .filter(approvals::id.eq(id))
        .select(approvals::all_columns)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("approval", id))
}

/// The requests (in one state, or all), oldest first, at most `limit`.
pub fn list(c: &mut Conn, state: Option<ApprovalState>, limit: i64) -> Result<Vec<ApprovalView>> {
    let mut q = approvals::table.select(approvals::all_columns).into_boxed();
    if let Some(s) = state {
        q = q.filter(approvals::state.eq(s.as_str()));
    }
    Ok(q.order(approvals::id.asc()).limit(limit).load(c)?)
}

/// What a request is about: its kind, the license (if one), the old and the new container.
pub struct Subject<'a> {
    pub kind: &'a str,
    pub license_id: Option<i64>,
    pub old_serial: &'a str,
    pub serial: &'a str,
}

/// The latest request for the same subject that is open or was denied: id, state, reason.
pub fn earlier(c: &mut Conn, s: &Subject) -> Result<Option<(i64, ApprovalState, String)>> {
    let mut q = approvals::table
        .filter(approvals::kind.eq(s.kind))
        .filter(approvals::old_serial.eq(s.old_serial))
        .filter(approvals::serial.eq(s.serial))
        .filter(
            approvals::state.eq_any([ApprovalState::Open.as_str(), ApprovalState::Denied.as_str()]),
        )
        .into_boxed();
    if let Some(id) = s.license_id {
        q = q.filter(approvals::license_id.eq(id));
    }
    let found: Option<(i64, String, String)> = q
        .select((approvals::id, approvals::state, approvals::reason))
        .order(approvals::id.desc())
        .first(c)
        .optional()?;
    found
        .map(|(id, state, reason)| Ok((id, ApprovalState::parse(&state)?, reason)))
        .transpose()
}

/// Opens a request; its id. The same request from another writer at the same time: the
/// write runs again and finds it.
pub fn open(c: &mut Conn, firm_id: i64, s: &Subject, why: &str, now: NaiveDateTime) -> Result<i64> {
    unique_or_retry(
        diesel::insert_into(approvals::table)
            .values((
                approvals::firm_id.eq(firm_id),
                approvals::kind.eq(s.kind),
                approvals::license_id.eq(s.license_id),
                approvals::old_serial.eq(s.old_serial),
                approvals::serial.eq(s.serial),
                approvals::why.eq(why),
                approvals::state.eq(ApprovalState::Open.as_str()),
                approvals::requested_at.eq(now),
                approvals::reason.eq(""),
            ))
            .returning(approvals::id)
            .get_result::<i64>(c),
    )
}

/// Decides an open request; false if it was no longer open.
pub fn decide(
    c: &mut Conn,
    id: i64,
    to: ApprovalState,
    by: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    let n = diesel::update(
        approvals::table
            .filter(approvals::id.eq(id))
            .filter(approvals::state.eq(ApprovalState::Open.as_str())),
    )
    .set((
        approvals::state.eq(to.as_str()),
        approvals::decided_by.eq(Some(by)),
        approvals::decided_at.eq(Some(now)),
        approvals::reason.eq(reason),
    ))
    .execute(c)?;
    Ok(n > 0)
}
