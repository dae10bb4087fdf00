//! Scheduled job runs: one row per job and scheduled time, inserted by the node that runs
//! it (the key makes that one node), finished with its outcome.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::job_runs;
use super::Conn;
use crate::domain::JobRunState;
use crate::error::Result;
use crate::on_backend;

/// Records that `node` runs `job` for the scheduled time `at`; false if a run of that time
/// is on record already (another node has it). `ON CONFLICT DO NOTHING`: a failed insert
/// would abort the writer's transaction on PostgreSQL.
pub fn start(
    c: &mut Conn,
    job: &str,
    at: NaiveDateTime,
    node: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    let added = on_backend!(c, x => diesel::insert_into(job_runs::table)
        .values((
            job_runs::job.eq(job),
            job_runs::scheduled_at.eq(at),
            job_runs::node.eq(node),
            job_runs::started_at.eq(now),
            job_runs::outcome.eq(JobRunState::Running.as_str()),
            job_runs::detail.eq(""),
        ))
        .on_conflict_do_nothing()
        .execute(x))?;
    Ok(added == 1)
}

/// Records how the run of `job` for `at` ended.
pub fn finish(
    c: &mut Conn,
    job: &str,
    at: NaiveDateTime,
    outcome: JobRunState,
    detail: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(
        job_runs::table
            .filter(job_runs::job.eq(job))
            .filter(job_runs::scheduled_at.eq(at)),
    )
    .set((
        job_runs::finished_at.eq(Some(now)),
        job_runs::outcome.eq(outcome.as_str()),
        job_runs::detail.eq(detail),
    ))
    .execute(c)?;
    Ok(())
}

/// Deletes the runs still running that started before `before` (their node stopped during
/// them); how many.
pub fn delete_running_started_before(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        job_runs::table
            .filter(job_runs::outcome.eq(JobRunState::Running.as_str()))
            .filter(job_runs::started_at.lt(before)),
    )
    .execute(c)?)
}

/// The latest scheduled time of `job` on record (finished or not).
pub fn last_scheduled(c: &mut Conn, job: &str) -> Result<Option<NaiveDateTime>> {
    Ok(job_runs::table
        .filter(job_runs::job.eq(job))
        .select(diesel::dsl::max(job_runs::scheduled_at))
        .first(c)?)
}

/// A run as the job list shows it.
#[derive(Debug, Clone, Queryable)]
pub struct RunView {
    pub scheduled_at: NaiveDateTime,
    #[diesel(deserialize_as = String)]
    pub outcome: JobRunState,
    pub detail: String,
    pub node: String,
}

/// The run of `job` with the latest scheduled time.
pub fn latest(c: &mut Conn, job: &str) -> Result<Option<RunView>> {
    Ok(job_runs::table
        .filter(job_runs::job.eq(job))
        .order(job_runs::scheduled_at.desc())
        .select((
            job_runs::scheduled_at,
            job_runs::outcome,
            job_runs::detail,
            job_runs::node,
        ))
        .first(c)
        .optional()?)
}
