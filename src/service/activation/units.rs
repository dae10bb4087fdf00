//! Pay-per-use: every request reports the units its container has used of each pay-per-use
//! license it holds (`Context::units_used`). The server keeps the highest count reported; a
//! request made later that reports fewer units of a license comes from a copy of the
//! container restored to before those units were used, and the container is marked as
//! manipulated. An old request made before the higher report is only refused.
use crate::error::Result;
use crate::protocol::Context;
use crate::store::containers::ContainerRow;
use crate::store::mirrors::Mirror;
use crate::store::{units, Conn};

/// What a request's unit counts show.
pub(super) enum Units {
    /// Nothing below what was reported before (the counts are recorded).
    Kept,
    /// Fewer than a request made later reported: an old request; make a new one.
    Stale(String),
    /// Fewer than an earlier request reported: a copy of the container was restored.
    Restored(String),
}

pub(super) fn reconcile(
    c: &mut Conn,
    cont: &ContainerRow,
    mirror: &Mirror,
    ctx: &Context,
) -> Result<Units> {
    // Counts of licenses the container holds by its confirmed state; others say nothing.
    let held: Vec<(i64, i64)> = ctx
        .units_used
        .iter()
        .filter(|u| mirror.content.entries.contains_key(&u.license_id))
        .map(|u| (u.license_id, i64::try_from(u.used).unwrap_or(i64::MAX)))
        .collect();
    if held.is_empty() {
        return Ok(Units::Kept);
    }
    let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
    let before = units::recorded(c, cont.id, &ids)?;
    let made_at = super::receipt::ts(ctx.created_at);
    for (id, used) in &held {
        let Some((was, at)) = before.get(id) else {
            continue;
        };
        if used >= was {
            continue;
        }
        return Ok(if made_at <= *at {
            Units::Stale(format!(
                "the request reports {used} units used of license {id}, but a request the \
                 container made later reported {was}; make a new request"
            ))
        } else {
            Units::Restored(format!(
                "the request reports {used} units used of license {id}, where the container \
                 reported {was} before (a copy of the container was restored)"
            ))
        });
    }
    let now = crate::service::now();
    for (id, used) in held {
        units::record(c, cont.id, id, used, made_at, now)?;
    }
    Ok(Units::Kept)
}
