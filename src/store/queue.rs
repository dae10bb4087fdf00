//! The lease queries of the outgoing queues: mails (`outbox`), ERP write-backs
//! (`writebacks`) and webhook deliveries (`webhook_deliveries`). The tables have the same
//! queue columns (`id`, `state`, `attempts`, `next_attempt_at`, `claimed_by`,
//! `claimed_until`, `sent_at`, `last_error`), so their queries are written once, in `queue_table!`; each table's file says what a claimed row
//! carries. Due times and leases are reckoned on the database's clock (`db_now`), so nodes
//! whose clocks differ agree on them; what a node records about a row it claimed is
//! conditional on its still holding the row.
use super::Conn;
use crate::error::Result;

/// A row one node has claimed: how often it was tried before, and what sending it needs.
#[derive(Debug)]
pub struct Claimed<R> {
    pub id: i64,
    /// Tries before this one.
    pub attempts: i32,
    pub row: R,
}

/// The queries of one queue table (`outbox::Outbox`, `writebacks::WriteBacks`).
pub trait Queue: 'static {
    /// What a claimed row carries for its try.
    type Row: Send + Sync + 'static;

    /// Up to `limit` rows due now, oldest first: queued and due, or claimed by a node whose
    /// lease ran out.
    fn due(c: &mut Conn, limit: i64) -> Result<Vec<i64>>;

    /// Claims row `id` for `node`, for `lease`, if it is still due (one conditional update),
    /// and reads it; `None` when another node was first.
    fn claim(
        c: &mut Conn,
        id: i64,
        node: &str,
        lease: chrono::Duration,
    ) -> Result<Option<Claimed<Self::Row>>>;

    /// Records try number `tried` of row `id` as sent; false when `node` no longer holds
    /// the row (its lease ran out and another node took it over).
    fn record_sent(c: &mut Conn, id: i64, node: &str, tried: i32) -> Result<bool>;

    /// Records try number `tried` of row `id` as failed with `why` (kept to its first 1,000
    /// characters): given up, or due again after `retry_in`. False when `node` no longer
    /// holds the row.
    fn record_failure(
        c: &mut Conn,
        id: i64,
        node: &str,
        tried: i32,
        why: &str,
        given_up: bool,
        retry_in: chrono::Duration,
    ) -> Result<bool>;

    /// Puts row `id` back in the queue if it failed, due now and with its attempts counted
    /// from zero; false if it is not failed (or not there).
    fn requeue_failed(c: &mut Conn, id: i64) -> Result<bool>;

    /// The state of row `id`, if there is one.
    fn state_of(c: &mut Conn, id: i64) -> Result<Option<crate::domain::QueueState>>;
}

/// Implements `Queue` for `$queue` on table `$t`; a claim reads the columns `$col`, in
/// that order, into `$row`. `$due_also`, an SQL condition on the table's row, narrows which
/// due rows are listed and claimed (the webhook deliveries: only the oldest pending one of an
/// active subscription, so that a subscription's events are sent in order, and none after it
/// was paused, also by a node that listed them before).
macro_rules! queue_table {
    ($queue:ty, $t:ident, $row:ty, ($($col:ident),+ $(,)?)) => {
        $crate::store::queue::queue_table!($queue, $t, $row, ($($col),+), "1 = 1");
    };
    ($queue:ty, $t:ident, $row:ty, ($($col:ident),+ $(,)?), $due_also:expr) => {
        const _: () = {
            use chrono::NaiveDateTime;
            use diesel::dsl;
            use diesel::prelude::*;

            use $crate::domain::QueueState;
            use $crate::error::Result;
            use $crate::store::queue::{Claimed, Queue};
            use $crate::store::schema::$t as t;
            use $crate::store::Conn;

            type DueAt = dsl::Or<
                dsl::And<
                    dsl::Eq<t::state, &'static str>,
                    dsl::LtEq<t::next_attempt_at, NaiveDateTime>,
                >,
                dsl::And<
                    dsl::Eq<t::state, &'static str>,
                    dsl::Lt<t::claimed_until, NaiveDateTime>,
                >,
            >;

            /// Queued and due at `now`, or claimed by a node whose lease ran out by then.
            fn due_at(now: NaiveDateTime) -> DueAt {
                t::state
                    .eq(QueueState::Queued.as_str())
                    .and(t::next_attempt_at.le(now))
                    .or(t::state
                        .eq(QueueState::Sending.as_str())
                        .and(t::claimed_until.lt(now)))
            }

            type HeldBy<'a> = dsl::And<
                dsl::And<dsl::Eq<t::id, i64>, dsl::Eq<t::state, &'static str>>,
                dsl::Eq<t::claimed_by, &'a str>,
            >;

            /// Row `id`, claimed by `node` and not taken over since.
            fn held_by(id: i64, node: &str) -> HeldBy<'_> {
                t::id
                    .eq(id)
                    .and(t::state.eq(QueueState::Sending.as_str()))
                    .and(t::claimed_by.eq(node))
            }

            impl Queue for $queue {
                type Row = $row;

                fn due(c: &mut Conn, limit: i64) -> Result<Vec<i64>> {
                    let now = $crate::store::db_now(c)?;
                    Ok(t::table
                        .filter(due_at(now))
                        .filter(dsl::sql::<diesel::sql_types::Bool>($due_also))
                        .select(t::id)
                        .order(t::id.asc())
                        .limit(limit)
                        .load(c)?)
                }

                fn claim(
                    c: &mut Conn,
                    id: i64,
                    node: &str,
                    lease: chrono::Duration,
                ) -> Result<Option<Claimed<$row>>> {
                    let now = $crate::store::db_now(c)?;
                    let n = diesel::update(
                        t::table
                            .filter(t::id.eq(id))
                            .filter(due_at(now))
                            .filter(dsl::sql::<diesel::sql_types::Bool>($due_also)),
                    )
                    .set((
                        t::state.eq(QueueState::Sending.as_str()),
                        t::claimed_by.eq(Some(node)),
                        t::claimed_until.eq(Some(now + lease)),
                    ))
                    .execute(c)?;
                    if n != 1 {
                        return Ok(None);
                    }
                    let (id, attempts, row) = t::table
                        .filter(t::id.eq(id))
                        .select((t::id, t::attempts, ($(t::$col),+)))
                        .first::<(i64, i32, $row)>(c)?;
                    Ok(Some(Claimed { id, attempts, row }))
                }

                fn record_sent(c: &mut Conn, id: i64, node: &str, tried: i32) -> Result<bool> {
                    let now = $crate::store::db_now(c)?;
                    let n = diesel::update(t::table.filter(held_by(id, node)))
                    .set((
                        t::state.eq(QueueState::Sent.as_str()),
                        t::attempts.eq(tried),
                        t::sent_at.eq(Some(now)),
                        t::claimed_until.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(c)?;
                    Ok(n > 0)
                }

                fn record_failure(
                    c: &mut Conn,
                    id: i64,
                    node: &str,
                    tried: i32,
                    why: &str,
                    given_up: bool,
                    retry_in: chrono::Duration,
                ) -> Result<bool> {
                    let now = $crate::store::db_now(c)?;
                    let state = if given_up {
                        QueueState::Failed
                    } else {
                        QueueState::Queued
                    };
                    let n = diesel::update(t::table.filter(held_by(id, node)))
                    .set((
                        t::state.eq(state.as_str()),
                        t::attempts.eq(tried),
                        t::last_error.eq(why.chars().take(1000).collect::<String>()),
                        t::next_attempt_at.eq(now + retry_in),
                        t::claimed_until.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(c)?;
                    Ok(n > 0)
                }

                fn requeue_failed(c: &mut Conn, id: i64) -> Result<bool> {
                    let now = $crate::store::db_now(c)?;
                    let n = diesel::update(
                        t::table
                            .filter(t::id.eq(id))
                            .filter(t::state.eq(QueueState::Failed.as_str())),
                    )
                    .set((
                        t::state.eq(QueueState::Queued.as_str()),
                        t::attempts.eq(0),
                        t::next_attempt_at.eq(now),
                    ))
                    .execute(c)?;
                    Ok(n > 0)
                }

                fn state_of(c: &mut Conn, id: i64) -> Result<Option<QueueState>> {
                    t::table
                        .filter(t::id.eq(id))
                        .select(t::state)
                        .first::<String>(c)
                        .optional()?
                        .map(QueueState::try_from)
                        .transpose()
                }
            }
        };
    };
}
pub(super) use queue_table;
