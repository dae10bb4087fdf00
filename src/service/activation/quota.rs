//! The monthly activation quota: activations per firm and calendar month (UTC).
use super::{Committed, Contact, Refusal};
use crate::domain::Actor;
use crate::error::{Error, Result};
use crate::service::audit::{self, Event};
use crate::store::{quota, writer_tag, Conn};

fn this_month() -> String {
    crate::service::now().format("%Y-%m").to_string()
}

/// Counts activations no quota refuses (support approved them) in this month.
pub(in crate::service) fn add_activations(c: &mut Conn, firm_id: i64, n: i64) -> Result<()> {
    quota::add(c, firm_id, &this_month(), 1 + writer_tag(), n, 0)
}

/// Counts `n` activations of the firm in this month against the monthly quota. Past the
/// quota the refusal is counted and committed, and nothing else of the request is.
pub(in crate::service) fn count_activations(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    firm_code: i64,
    n: usize,
) -> Result<Committed<()>> {
    if n == 0 {
        return Ok(Ok(()));
    }
    let n = n as i64;
    let month = this_month();
    let limit = k.settings.monthly_activation_quota;
    // Without a quota nothing is refused: the count goes to this writer's own shard, so
    // parallel writers never wait for each other. With one, shard 0's row lock puts the
    // firm's activations in a line for an exact check.
    let shard = if limit == 0 { 1 + writer_tag() } else { 0 };
    quota::add(c, k.firm_id, &month, shard, n, 0)?;
    if limit == 0 || quota::month_total(c, k.firm_id, &month)? <= i64::from(limit) {
        return Ok(Ok(()));
    }
    quota::add(c, k.firm_id, &month, 0, -n, 1)?;
    audit::record(
        actor,
        Event {
            action: "activation.quota_refused",
            serial: Some(&k.cont.serial),
            details: serde_json::json!({"firm_code": firm_code, "month": month,
                "quota": limit, "requested": n}),
            ..Default::default()
        },
    )?;
    Ok(Err(Refusal::Error(Error::QuotaExceeded {
        firm_code,
        quota: limit,
    })))
}
