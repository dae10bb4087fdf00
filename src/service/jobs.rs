//! Scheduled jobs. Each job has a cron expression (with seconds) in the configuration; a
//! run is claimed by inserting the row (job, scheduled time), so with several nodes on one
//! database every scheduled time runs once. A node that was down runs a missed job once on
//! start (for the latest time it missed), and a failed run is recorded and changes nothing
//! else.
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::mail;
use super::report_mail;
use super::reports::Report;
use super::workers::{Next, Stopping, Worker};
use super::Core;
use crate::domain::{Actor, JobRunState, Role};
use crate::error::{Error, Result};
use crate::store::{job_runs, retention};

pub const JOBS: &[&str] = &[
    "expiry_report",
    "never_activated_report",
    "outbox",
    "housekeeping",
    "audit_checkpoint",
];

/// The configured schedule of a job (`None`: switched off).
pub fn schedule_of(core: &Core, job: &str) -> Result<Option<cron::Schedule>> {
    let c = &core.config;
    let expr = match job {
        "expiry_report" => &c.job_expiry_report,
        "never_activated_report" => &c.job_never_activated_report,
        "outbox" => &c.job_outbox,
        "housekeeping" => &c.job_housekeeping,
        "audit_checkpoint" => &c.job_audit_checkpoint,
        other => {
            return Err(Error::invalid(
                "job",
                format!("unknown job {other:?}; one of {}", JOBS.join(", ")),
            ))
        }
    };
    if expr.trim().is_empty() {
        return Ok(None);
    }
    cron::Schedule::from_str(expr)
        .map(Some)
        .map_err(|e| Error::invalid(job, format!("{expr:?}: {e}")))
}

fn naive(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

/// The latest scheduled time after `after` and not after `now`.
fn latest_missed(
    s: &cron::Schedule,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    s.after(&after)
        .take(2_000_000)
        .take_while(|t| *t <= now)
        .last()
}

/// Claims (job, time) for this node; false if another node has it.
async fn claim(core: &Core, job: &'static str, at: chrono::NaiveDateTime) -> Result<bool> {
    let node = core.node.clone();
    let res = core
        .db
        .write(move |c| {
            if job_runs::start(c, job, at, &node, super::now())? {
                Ok(())
            } else {
                // Another node inserted it: this one does not run it.
                Err(Error::AlreadyExists {
                    kind: "job run",
                    id: format!("{job}@{at}"),
                })
            }
        })
        .await;
    match res {
        Ok(()) => Ok(true),
        Err(Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn finish(
    core: &Core,
    job: &'static str,
    at: chrono::NaiveDateTime,
    outcome: &Result<String>,
) -> Result<()> {
    let (state, detail) = match outcome {
        Ok(d) => (JobRunState::Ok, d.clone()),
        Err(e) => (JobRunState::Failed, e.to_string()),
    };
    core.db
        .write(move |c| job_runs::finish(c, job, at, state, &detail, super::now()))
        .await
}

/// Runs `job` for the scheduled time `at` if this node claims it; records the outcome.
pub async fn run_once(core: &Core, job: &'static str, at: chrono::NaiveDateTime) -> Result<bool> {
    if !claim(core, job, at).await? {
        return Ok(false);
    }
    let outcome = run_job(core, job).await;
    if let Err(e) = &outcome {
        tracing::warn!(job, at = %at, error = %e, "scheduled job failed");
    }
    finish(core, job, at, &outcome).await?;
    Ok(true)
}

fn iso(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Runs a job now; the answer says what it did.
pub async fn run_job(core: &Core, job: &str) -> Result<String> {
    match job {
        "audit_checkpoint" => {
            let system = Actor::system(crate::domain::Interface::System);
            Ok(match super::audit::checkpoint(core, &system).await? {
                Some(k) => format!(
                    "signed a checkpoint of the history at event {} ({})",
                    k.event_id, k.event_hash
                ),
                None => "the newest checkpoint names the history's head: nothing to sign".into(),
            })
        }
        "expiry_report" => {
            let days = core.config.expiry_report_days;
            let now = super::now();
            let until = now + chrono::Duration::days(i64::from(days));
            let extra = json!({"days": days, "from": iso(now), "until": iso(until)});
            let per_customer = core.config.expiry_report_per_customer;
            let report = Report::Expiring { days };
            report_mail::mail_report(core, "expiry_report", report, per_customer, extra).await
        }
        "never_activated_report" => {
            let extra = json!({"now": iso(super::now())});
            let report = Report::NeverActivated;
            report_mail::mail_report(core, "never_activated_report", report, false, extra).await
        }
        "outbox" => {
            let sender = mail::OutboxSender::new(&core.config)?;
            if !sender.enabled() {
                return Ok("no SMTP server configured; mails stay queued".into());
            }
            let mut n = 0;
            loop {
                let tried = sender.send_due(core, &Stopping::never()).await?;
                if tried == 0 {
                    break;
                }
                n += tried;
            }
            Ok(format!("{n} mail(s) tried"))
        }
        "housekeeping" => {
            // A SAML certificate near its end is said in the log every day, not only at start.
            for w in core.health_warnings() {
                tracing::warn!("{w}");
            }
            let now = super::now();
            let window = core.config.portal_login_window_secs;
            let idle = chrono::Duration::minutes(i64::from(core.config.admin_idle_minutes));
            let (runs, mails, deliveries, notes, stale, (sessions, _)) = core
                .db
                .write(move |c| {
                    let days = |n| now - chrono::Duration::days(n);
                    let stale = super::activation::stale_pending(c)?;
                    let runs = retention::delete_finished_job_runs(c, days(90))?;
                    let mails = retention::delete_sent_mails(c, days(30))?;
                    let deliveries = retention::delete_sent_deliveries(c, days(30))?;
                    // Nonces are refused anyway once their token is older than the window.
                    retention::delete_nonces(c, days(1))?;
                    // A request still at its container's counter after 90 days is rare, and
                    // by then no longer tied to what it was first used for.
                    retention::delete_request_uses(c, days(90))?;
                    let notes = retention::delete_notifications(c, days(90))?;
                    // Expired portal sessions, and failed logins that no longer count.
                    let portal = super::portal::housekeeping(c, window)?;
                    // Back office sessions past their end or idle for too long.
                    crate::store::admin::delete_expired(c, now, now - idle)?;
                    super::report_mail::forget_expired(c, now)?;
                    Ok((runs, mails, deliveries, notes, stale, portal))
                })
                .await?;
            // Seats whose lease ran out are reclaimed when their license is next opened;
            // those of licenses nobody opens again are reclaimed here.
            let mut reclaimed = 0;
            loop {
                let n = super::cloud::reclaim_lapsed(core).await?;
                reclaimed += n;
                if n < 1000 {
                    break;
                }
            }
            let listed: Vec<String> = stale
                .iter()
                .take(50)
                .map(|(l, s)| format!("{l}@{s}"))
                .collect();
            Ok(format!(
                "{} pending activation(s) whose updates all expired (license@container, for \
                 support: {}); deleted {runs} job run(s) older than 90 days, {mails} mail(s) \
                 sent more than 30 days ago, {deliveries} webhook delivery(ies) sent more than \
                 30 days ago, {notes} connector notification(s) older than 90 days, \
                 {sessions} expired portal session(s); reclaimed {reclaimed} lapsed cloud seat(s)",
                stale.len(),
                listed.join(", ")
            ))
        }
        other => Err(Error::invalid(
            "job",
            format!("unknown job {other:?}; one of {}", JOBS.join(", ")),
        )),
    }
}

/// The scheduler: runs every configured job at its times. Its first step takes back runs
/// cut off by a stopped node and runs each job missed while no node ran, once; every step
/// after runs the jobs whose time has come (at the same time, each claimed per scheduled
/// time) and sleeps until the next time.
pub struct Scheduler {
    /// The schedule and the next time of each configured job; `None` before the first step.
    next: Option<HashMap<&'static str, (cron::Schedule, DateTime<Utc>)>>,
    /// The runs going on: each job runs in a task of its own, so that a slow one (the
    /// outbox through a slow SMTP server, a large report) does not hold back another
    /// job's time. Dropped with the scheduler, they end with it.
    running: tokio::task::JoinSet<()>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            next: None,
            running: tokio::task::JoinSet::new(),
        }
    }
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        Scheduler::new()
    }
}

/// How long the scheduler sleeps at most, so that a changed wall clock is noticed.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

impl Worker for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    async fn step(&mut self, core: &Arc<Core>, _stop: &Stopping) -> Result<Next> {
        let mut runs: Vec<(&'static str, DateTime<Utc>)> = vec![];
        let next = match &mut self.next {
            Some(next) => next,
            None => {
                let (next, missed) = start_schedules(core).await;
                runs = missed;
                self.next.insert(next)
            }
        };
        let now = Utc::now();
        for (job, (schedule, due)) in next.iter_mut() {
            if now < *due {
                continue;
            }
            // Late (a paused process): the latest time due, once.
            let at =
                latest_missed(schedule, *due - chrono::Duration::seconds(1), now).unwrap_or(*due);
            *due = match schedule.after(&now).next() {
                Some(t) => t,
                None => DateTime::<Utc>::MAX_UTC,
            };
            runs.push((job, at));
        }
        // Until the next time of any job (no job scheduled: look again later); a time
        // already past is due now.
        let wait = match next.values().map(|(_, due)| *due).min() {
            Some(t) => (t - Utc::now()).to_std().unwrap_or_default(),
            None => LONGEST_SLEEP,
        }
        .min(LONGEST_SLEEP);
        // The runs of one moment go on side by side, as separate nodes' would.
        for (job, at) in runs {
            let core = core.clone();
            self.running.spawn(async move {
                if let Err(e) = run_once(&core, job, naive(at)).await {
                    tracing::warn!(job, error = %e, "scheduled run");
                }
            });
        }
        if self.running.is_empty() {
            return Ok(Next::After(wait));
        }
        // With runs going on, this step ends when one of them ends (its panic is logged) or
        // when the next time comes, whichever is first; either way there may be more to do.
        tokio::select! {
            Some(ended) = self.running.join_next() => {
                if let Err(e) = ended {
                    tracing::error!(error = %e, "scheduled run panicked");
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
        Ok(Next::Now)
    }
}

/// The schedules of the configured jobs with their next times, and the runs missed while
/// this node (or every node) was down: one per job, for the latest time it missed. Runs
/// still "running" after an hour belonged to a node that stopped during them: they are
/// taken back first, so that the catch-up runs that time again.
async fn start_schedules(
    core: &Core,
) -> (
    HashMap<&'static str, (cron::Schedule, DateTime<Utc>)>,
    Vec<(&'static str, DateTime<Utc>)>,
) {
    let cutoff = super::now() - chrono::Duration::hours(1);
    match core
        .db
        .write(move |c| job_runs::delete_running_started_before(c, cutoff))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(runs = n, "runs cut off by a stopped node will run again"),
        Err(e) => tracing::warn!(error = %e, "reading unfinished runs"),
    }
    let mut next = HashMap::new();
    let mut missed = vec![];
    let now = Utc::now();
    for job in JOBS {
        let schedule = match schedule_of(core, job) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(job, error = %e, "job not scheduled");
                continue;
            }
        };
        match last_run(core, job).await {
            Ok(Some(last)) => {
                if let Some(t) = latest_missed(&schedule, last.and_utc(), now) {
                    missed.push((*job, t));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(job, error = %e, "reading the last run"),
        }
        if let Some(t) = schedule.after(&now).next() {
            next.insert(*job, (schedule, t));
        }
    }
    (next, missed)
}

async fn last_run(core: &Core, job: &'static str) -> Result<Option<chrono::NaiveDateTime>> {
    core.db
        .read(move |c| job_runs::last_scheduled(c, job))
        .await
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct JobView {
    pub job: &'static str,
    pub schedule: Option<String>,
    pub next_run: Option<String>,
    pub last_run: Option<String>,
    pub last_outcome: Option<JobRunState>,
    pub last_detail: Option<String>,
    pub last_node: Option<String>,
}

/// Every job with its schedule, next run and last run.
pub async fn list(core: &Core, actor: &Actor) -> Result<Vec<JobView>> {
    actor.require(&[Role::Admin, Role::Support], "read the scheduled jobs")?;
    let mut out = vec![];
    for job in JOBS {
        let schedule = schedule_of(core, job)?;
        let last = core.db.read(move |c| job_runs::latest(c, job)).await?;
        let next = schedule
            .as_ref()
            .and_then(|s| s.upcoming(Utc).next())
            .map(|t| iso(naive(t)));
        out.push(JobView {
            job,
            schedule: schedule.map(|s| s.to_string()),
            next_run: next,
            last_run: last.as_ref().map(|l| iso(l.scheduled_at)),
            last_outcome: last.as_ref().map(|l| l.outcome),
            last_detail: last.as_ref().map(|l| l.detail.clone()),
            last_node: last.map(|l| l.node),
        });
    }
    Ok(out)
}

/// Runs a job now (`licentia job run NAME`), recorded as a run at this moment.
pub async fn run_now(core: &Core, actor: &Actor, job: &str) -> Result<String> {
    actor.require(&[Role::Admin], "run jobs")?;
    let job: &'static str = JOBS.iter().find(|j| **j == job).ok_or_else(|| {
        Error::invalid(
            "job",
            format!("unknown job {job:?}; one of {}", JOBS.join(", ")),
        )
    })?;
    let at = super::now();
    if !claim(core, job, at).await? {
        return Err(Error::Conflict(format!("{job} is running at {at} already")));
    }
    let outcome = run_job(core, job).await;
    finish(core, job, at, &outcome).await?;
    outcome
}
