//! Activations counted per firm and calendar month, for the monthly quota and its report.
//! A month's count is spread over shards: without a quota each writer adds to a shard of its
//! own, so parallel writers never wait for each other; with one, shard 0's row lock puts the
//! firm's activations in a line for an exact check.
use diesel::prelude::*;

use super::schema::activation_counts;
use super::{unique_or_retry, Conn, Reused};
use crate::error::Result;
use crate::on_backend;

/// Adds `n` activations and `refused` refusals to one shard of a month's count (creating it).
pub fn add(
    c: &mut Conn,
    firm_id: i64,
    month: &str,
    shard: i64,
    n: i64,
    refused: i64,
) -> Result<()> {
    let changed = on_backend!(c, x => Reused(
        diesel::update(
            activation_counts::table
                .filter(activation_counts::firm_id.eq(firm_id))
                .filter(activation_counts::month.eq(month))
                .filter(activation_counts::shard.eq(shard)),
        )
        .set((
            activation_counts::activations.eq(activation_counts::activations + n),
            activation_counts::refused.eq(activation_counts::refused + refused),
        ))
        .returning(activation_counts::shard),
    )
    .load::<i64>(x))?
    .len();
    if changed == 1 {
        return Ok(());
    }
    // Another writer making the row first: the write runs again and adds to it.
    unique_or_retry(
        diesel::insert_into(activation_counts::table)
            .values((
                activation_counts::firm_id.eq(firm_id),
                activation_counts::month.eq(month),
                activation_counts::shard.eq(shard),
                activation_counts::activations.eq(n),
                activation_counts::refused.eq(refused),
            ))
            .execute(c),
    )?;
    Ok(())
}

/// The firm's activations in a month, over all shards.
pub fn month_total(c: &mut Conn, firm_id: i64, month: &str) -> Result<i64> {
    Ok(activation_counts::table
        .filter(activation_counts::firm_id.eq(firm_id))
        .filter(activation_counts::month.eq(month))
        .select(activation_counts::activations)
        .load::<i64>(c)?
        .iter()
        .sum())
}
