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
    let firm = Quota {
        firm_id: k.firm_id,
        firm_code,
        limit: k.settings.monthly_activation_quota,
    };
    Ok(count_against(c, actor, &firm, &k.cont.serial, n)?.map_err(Refusal::Error))
}

/// A firm and its monthly activation quota (0: none).
pub(in crate::service) struct Quota {
    pub firm_id: i64,
    pub firm_code: i64,
    pub limit: u32,
}

/// Counts `n` activations into container `serial` against the firm's quota; past it the
/// refusal is counted (commit it) and returned.
pub(in crate::service) fn count_against(
    c: &mut Conn,
    actor: &Actor,
    firm: &Quota,
    serial: &str,
    n: usize,
) -> Result<std::result::Result<(), Error>> {
    if n == 0 {
        return Ok(Ok(()));
    }
    let n = n as i64;
    let month = this_month();
    let limit = firm.limit;
    // Without a quota nothing is refused: the count goes to this writer's own shard, so
    // parallel writers never wait for each other. With one, shard 0's row lock puts the
    // firm's activations in a line for an exact check.
    let shard = if limit == 0 { 1 + writer_tag() } else { 0 };
    quota::add(c, firm.firm_id, &month, shard, n, 0)?;
    if limit == 0 || quota::month_total(c, firm.firm_id, &month)? <= i64::from(limit) {
        return Ok(Ok(()));
    }
    quota::add(c, firm.firm_id, &month, 0, -n, 1)?;
    audit::record(
        actor,
        Event {
            action: "activation.quota_refused",
            serial: Some(serial),
            details: serde_json::json!({"firm_code": firm.firm_code, "month": month,
                "quota": limit, "requested": n}),
            ..Default::default()
        },
    )?;
    Ok(Err(Error::QuotaExceeded {
        firm_code: firm.firm_code,
        quota: limit,
    }))
}
