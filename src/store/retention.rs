//! What the housekeeping job deletes: rows of six tables kept only for a while. The
//! deletes live here together, as the reports' reads do, because one job with one set of
//! keeping times owns them; each takes the time before which a row goes.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    job_runs, notifications, outbox, request_uses, soap_nonces, webhook_deliveries,
};
use super::Conn;
use crate::domain::{JobRunState, QueueState};
use crate::error::Result;

/// Deletes the finished job runs scheduled before `before`; how many.
pub fn delete_finished_job_runs(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        job_runs::table
            .filter(job_runs::scheduled_at.lt(before))
            .filter(job_runs::outcome.ne(JobRunState::Running.as_str())),
    )
    .execute(c)?)
}

/// Deletes the mails sent before `before`; how many.
pub fn delete_sent_mails(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        outbox::table
            .filter(outbox::state.eq(QueueState::Sent.as_str()))
            .filter(outbox::sent_at.lt(before)),
    )
    .execute(c)?)
}

/// Deletes the webhook deliveries sent before `before`; how many.
pub fn delete_sent_deliveries(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::state.eq(QueueState::Sent.as_str()))
            .filter(webhook_deliveries::sent_at.lt(before)),
    )
    .execute(c)?)
}

/// Deletes the WS-Security nonces seen before `before`.
pub fn delete_nonces(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(soap_nonces::table.filter(soap_nonces::created_at.lt(before))).execute(c)?)
}

/// Deletes what container requests made before `before` were used for.
pub fn delete_request_uses(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(request_uses::table.filter(request_uses::created_at.lt(before)))
            .execute(c)?,
    )
}

/// Deletes the connector notifications received before `before`; how many.
pub fn delete_notifications(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(notifications::table.filter(notifications::received_at.lt(before)))
            .execute(c)?,
    )
}
