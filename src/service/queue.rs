//! The two outgoing queues, mails (`outbox`) and ERP write-backs (`writebacks`), share one
//! way of working: a row due now is claimed by one node with a conditional update and held
//! for a lease; a try is recorded as sent, as due again after a doubling delay, or as failed.
//! A node that dies holding a row loses it when the lease runs out. Due times and leases
//! are reckoned on the database's clock, so nodes whose clocks differ agree on them.

/// The states of a queued row.
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
}

/// How long a node may hold a row it claimed before another node may take it.
pub(super) const LEASE_SECS: i64 = 120;

/// The wait before attempt `tried + 1`: base, 2 × base, 4 × base … up to an hour.
pub(super) fn retry_delay(base: i64, tried: i32) -> i64 {
    (base << (tried - 1).clamp(0, 20)).min(3600)
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

/// Due, claim and record for one queue table (each has `id`, `state`, `attempts`,
/// `next_attempt_at`, `claimed_by`, `claimed_until`, `sent_at` and `last_error`).
macro_rules! queue_table {
    ($table:ident) => {
        pub(super) mod $table {
            use diesel::prelude::*;

            use super::state;
            use super::Recorded;
            use crate::error::Result;
            use crate::store::schema::$table as t;
            use crate::store::Conn;

            /// Up to `limit` rows due now, oldest first: queued and due, or claimed by a node
            /// whose lease ran out.
            pub fn due(c: &mut Conn, limit: i64) -> Result<Vec<i64>> {
                let now = crate::store::db_now(c)?;
                Ok(t::table
                    .filter(
                        t::state
                            .eq(state::QUEUED)
                            .and(t::next_attempt_at.le(now))
                            .or(t::state.eq(state::SENDING).and(t::claimed_until.lt(now))),
                    )
                    .select(t::id)
                    .order(t::id.asc())
                    .limit(limit)
                    .load(c)?)
            }

            /// Claims row `id` for `node` if it is still due; false when another node was first.
            pub fn claim(c: &mut Conn, id: i64, node: &str) -> Result<bool> {
                let now = crate::store::db_now(c)?;
                let n = diesel::update(
                    t::table.filter(t::id.eq(id)).filter(
                        t::state
                            .eq(state::QUEUED)
                            .and(t::next_attempt_at.le(now))
                            .or(t::state.eq(state::SENDING).and(t::claimed_until.lt(now))),
                    ),
                )
                .set((
                    t::state.eq(state::SENDING),
                    t::claimed_by.eq(Some(node)),
                    t::claimed_until.eq(Some(now + chrono::Duration::seconds(super::LEASE_SECS))),
                ))
                .execute(c)?;
                Ok(n == 1)
            }

            /// Records try number `attempts + 1` of row `id`, claimed by `node`. An error
            /// marked permanent, or the try number `max`, fails the row; any other error
            /// makes it due again after `retry_delay(base, …)` seconds.
            pub fn record(
                c: &mut Conn,
                id: i64,
                node: &str,
                attempts: i32,
                outcome: &std::result::Result<(), (bool, String)>,
                max: i32,
                base: i64,
            ) -> Result<Recorded> {
                let now = crate::store::db_now(c)?;
                let mine = t::table
                    .filter(t::id.eq(id))
                    .filter(t::state.eq(state::SENDING))
                    .filter(t::claimed_by.eq(node));
                let tried = attempts + 1;
                let (n, done) = match outcome {
                    Ok(()) => {
                        let n = diesel::update(mine)
                            .set((
                                t::state.eq(state::SENT),
                                t::attempts.eq(tried),
                                t::sent_at.eq(Some(now)),
                                t::claimed_until.eq(None::<chrono::NaiveDateTime>),
                            ))
                            .execute(c)?;
                        (n, Recorded::Sent)
                    }
                    Err((permanent, why)) => {
                        let failed = *permanent || tried >= max;
                        let delay = super::retry_delay(base, tried);
                        let n = diesel::update(mine)
                            .set((
                                t::state.eq(if failed { state::FAILED } else { state::QUEUED }),
                                t::attempts.eq(tried),
                                t::last_error.eq(why.chars().take(1000).collect::<String>()),
                                t::next_attempt_at.eq(now + chrono::Duration::seconds(delay)),
                                t::claimed_until.eq(None::<chrono::NaiveDateTime>),
                            ))
                            .execute(c)?;
                        (
                            n,
                            if failed {
                                Recorded::Failed
                            } else {
                                Recorded::Again
                            },
                        )
                    }
                };
                Ok(if n == 0 { Recorded::TakenOver } else { done })
            }
        }
    };
}

queue_table!(outbox);
queue_table!(writebacks);
