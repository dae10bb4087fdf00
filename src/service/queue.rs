//! The outgoing queues, mails (`outbox`), ERP write-backs (`writebacks`) and webhook
//! deliveries (`webhook_deliveries`), share one way of working: a row due now is claimed by one node with a conditional update and held
//! for a lease; a try is recorded as sent, as due again after a doubling delay, or as failed.
//! A node that dies holding a row loses it when the lease runs out. Due times and leases
//! are reckoned on the database's clock, so nodes whose clocks differ agree on them (the
//! queries are in `store::queue`). `send_due` is that loop, once; each queue's `Sender`
//! says only which table, how to send one row, how to log what became of it and which
//! history event a sent or given-up row records (the outbox's do: `ticket.mailed`,
//! `mail.failed`). `post` is the HTTP POST of write-backs and webhooks.
use std::future::Future;

use super::workers::Stopping;
use super::Core;
use crate::error::{Error, Result};
use crate::store::queue::Queue;
use crate::store::Conn;

/// How long a node may hold a row it claimed before another node may take it.
const LEASE_SECS: i64 = 120;

/// Most rows one pass looks at; the sender's worker steps again at once after a pass that
/// tried any.
const BATCH: i64 = 32;

/// The wait before attempt `tried + 1`: base, 2 × base, 4 × base … up to an hour.
fn retry_delay(base: i64, tried: i32) -> i64 {
    (base << (tried - 1).clamp(0, 20)).min(3600)
}

/// Why a try failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// It will fail the same way however often it is tried: the row is given up at once.
    pub permanent: bool,
    pub why: String,
}

impl Failure {
    /// A failure that waiting may cure.
    pub fn passing(why: impl Into<String>) -> Failure {
        Failure {
            permanent: false,
            why: why.into(),
        }
    }

    pub fn permanent(why: impl Into<String>) -> Failure {
        Failure {
            permanent: true,
            why: why.into(),
        }
    }
}

/// What one recorded try did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    Sent,
    /// Due again later.
    Again,
    /// Given up: a permanent error, or the last attempt.
    Failed,
    /// The lease ran out and another node took the row over: nothing recorded.
    TakenOver,
}

/// One outgoing queue as `send_due` works it.
pub(super) trait Sender: Sync + 'static {
    /// The table, its claim and what a claimed row carries.
    type Queue: Queue;

    /// The most tries of a row, and the delay before the second (seconds; it doubles).
    fn retries(&self, core: &Core) -> (i32, i64);

    /// Tries to send one claimed row.
    fn send(
        &self,
        core: &Core,
        row: &<Self::Queue as Queue>::Row,
    ) -> impl Future<Output = std::result::Result<(), Failure>> + Send;

    /// Logs what became of the try of row `id` (each queue names its rows in its own field).
    fn log(&self, id: i64, recorded: Recorded, why: Option<&str>);

    /// The history event that a try of row `id` which ended `sent` (true) or given up
    /// (false) records, in the transaction that records the outcome; none by default.
    fn outcome_event(
        &self,
        _id: i64,
        _row: &<Self::Queue as Queue>::Row,
        _sent: bool,
        _why: Option<&str>,
    ) -> Option<OutcomeEvent> {
        None
    }
}

/// A history event about a row's outcome (owned: it is recorded in the write that records
/// the outcome, on the writer's thread).
#[derive(Debug, Clone)]
pub(super) struct OutcomeEvent {
    pub action: &'static str,
    pub ticket: Option<String>,
    pub details: serde_json::Value,
}

impl OutcomeEvent {
    /// Records it, as the system, in the running write.
    fn record(self) -> Result<()> {
        let actor = crate::domain::Actor::system(crate::domain::Interface::System);
        super::audit::record(
            &actor,
            super::audit::Event {
                action: self.action,
                ticket: self.ticket.as_deref(),
                details: self.details,
                ..Default::default()
            },
        )
    }
}

/// Puts failed row `id` of queue `Q` back in it (in the running write), due now with its
/// attempts counted from zero; `what` names the row in the refusals: not found, or not
/// failed (a row queued, being sent or sent is left as it is).
pub(super) fn requeue<Q: Queue>(c: &mut Conn, id: i64, what: &'static str) -> Result<()> {
    if Q::requeue_failed(c, id)? {
        return Ok(());
    }
    Err(match Q::state_of(c, id)? {
        None => Error::not_found(what, id),
        Some(s) => Error::Conflict(format!("{what} {id} is {s}, not failed")),
    })
}

/// Posts `body` to `url` with `headers` (off the async executor), waiting at most
/// `timeout`. Only a 2xx answer counts as delivered, and redirects are not followed: a
/// redirected POST comes back as a GET without the body (a logon page, say), and its 200
/// would count the row as sent. A receiver's answer may change with time, so every failure
/// is passing; it says the status and the start of the answer.
pub(super) async fn post(
    url: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    timeout: std::time::Duration,
) -> std::result::Result<(), Failure> {
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(timeout)
            .build();
        let mut req = agent.post(&url);
        for (name, value) in &headers {
            req = req.set(name, value);
        }
        match req.send_string(&body) {
            Ok(r) if (200..300).contains(&r.status()) => Ok(()),
            Ok(r) => Err(format!(
                "HTTP {} {} (only a 2xx answer counts as delivered; redirects are not \
                 followed{})",
                r.status(),
                r.status_text(),
                r.header("Location")
                    .map(|l| format!(", Location: {}", l.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            )),
            Err(ureq::Error::Status(s, r)) => Err(format!(
                "HTTP {s}: {}",
                r.into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("task: {e}")))
    .map_err(Failure::passing)
}

/// Sends the rows that are due (at most one batch); returns how many were tried. A row is
/// claimed by one conditional update, so with several nodes each row is sent by one of
/// them. Once `stop` is set no further row is claimed.
pub(super) async fn send_due<S: Sender>(core: &Core, sender: &S, stop: &Stopping) -> Result<usize> {
    let due = core.db.read(|c| S::Queue::due(c, BATCH)).await?;
    let mut tried = 0;
    for id in due {
        if stop.is_set() {
            break;
        }
        let node = core.node.clone();
        let lease = chrono::Duration::seconds(LEASE_SECS);
        let claimed = core
            .db
            .write(move |c| S::Queue::claim(c, id, &node, lease))
            .await?;
        let Some(claimed) = claimed else { continue };
        tried += 1;
        let outcome = sender.send(core, &claimed.row).await;
        let (max, base) = sender.retries(core);
        let why = outcome.as_ref().err().map(|f| f.why.as_str());
        let event = match &outcome {
            Ok(()) => sender.outcome_event(claimed.id, &claimed.row, true, None),
            Err(f) if f.permanent || claimed.attempts + 1 >= max => {
                sender.outcome_event(claimed.id, &claimed.row, false, why)
            }
            Err(_) => None,
        };
        let recorded = record::<S::Queue>(
            core,
            claimed.id,
            claimed.attempts,
            outcome.clone(),
            (max, base),
            event,
        )
        .await?;
        sender.log(
            claimed.id,
            recorded,
            outcome.as_ref().err().map(|f| f.why.as_str()),
        );
    }
    Ok(tried)
}

/// Records try number `attempts + 1` of row `id`. A permanent failure, or the try number
/// `max`, fails the row; any other failure makes it due again after `retry_delay(base, …)`
/// seconds. `event` is recorded with a sent or given-up outcome.
async fn record<Q: Queue>(
    core: &Core,
    id: i64,
    attempts: i32,
    outcome: std::result::Result<(), Failure>,
    (max, base): (i32, i64),
    event: Option<OutcomeEvent>,
) -> Result<Recorded> {
    let node = core.node.clone();
    let tried = attempts + 1;
    let (held, done) = match outcome {
        Ok(()) => {
            let held = core
                .db
                .write(move |c| {
                    let held = Q::record_sent(c, id, &node, tried)?;
                    if let Some(e) = event.clone().filter(|_| held) {
                        e.record()?;
                    }
                    Ok(held)
                })
                .await?;
            (held, Recorded::Sent)
        }
        Err(f) => {
            let given_up = f.permanent || tried >= max;
            let delay = chrono::Duration::seconds(retry_delay(base, tried));
            let held = core
                .db
                .write(move |c| {
                    let held = Q::record_failure(c, id, &node, tried, &f.why, given_up, delay)?;
                    if let Some(e) = event.clone().filter(|_| held && given_up) {
                        e.record()?;
                    }
                    Ok(held)
                })
                .await?;
            (
                held,
                if given_up {
                    Recorded::Failed
                } else {
                    Recorded::Again
                },
            )
        }
    };
    Ok(if held { done } else { Recorded::TakenOver })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_the_base_up_to_an_hour() {
        let delays: Vec<i64> = (1..=6).map(|t| retry_delay(60, t)).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920]);
        assert_eq!(retry_delay(60, 7), 3600);
        assert_eq!(retry_delay(1, 0), 1);
        assert_eq!(retry_delay(1, 1000), 3600);
    }
}
