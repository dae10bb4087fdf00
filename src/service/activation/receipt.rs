//! Receipts: a container's context after applying an update. Any contact whose context is
//! one counter past the confirmed state and shows what an issued update produces confirms
//! that update; a receipt that fits nothing issued is refused and changes nothing.
use super::{customer_actor, find_container, mirror_or_load};
use crate::domain::contact::{standing, ConfirmedState, Seen, Shown, Standing};
use crate::domain::{Actor, Interface, LicenseState};
use crate::error::{Error, Result};
use crate::protocol::{self, Confirmed, Content, Context, Entry, Kind};
use crate::service::audit::{self, Event};
use crate::service::{Core, Stats};
use crate::store::contact::firm_and_container;
use crate::store::containers::ContainerRow;
use crate::store::mirrors::{self, Mirror};
use crate::store::updates::{self, UpdateRow};
use crate::store::{blacklist, withdrawals, Conn};

pub(super) fn ts(secs: i64) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc()
}

/// Judges a context against the mirror and, when it proves an issued update applied,
/// confirms that update (the mirror becomes its result). `issued` is the update issued from
/// the mirror's state that leads to the context's digest when the contact's query already
/// looked for it (`Some`), else it is looked for here.
pub(super) fn reconcile(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    firm_id: i64,
    mirror: &mut Mirror,
    ctx: &Context,
    issued: Option<Option<UpdateRow>>,
) -> Result<(Seen, Option<Confirmed>)> {
    let shown = Shown {
        counter: ctx.counter,
        digest: &ctx.digest,
        made_at: ts(ctx.created_at),
    };
    let confirmed = ConfirmedState {
        counter: mirror.counter,
        digest: &mirror.digest,
        at: mirror.confirmed_at,
    };
    let place = standing(shown, confirmed);
    let update = match (place, issued) {
        (Standing::Next, Some(known)) => known,
        (Standing::Next, None) => {
            updates::issued_leading_to(c, cont.id, firm_id, mirror.counter, &ctx.digest)?
        }
        _ => None,
    };
    let seen = place.resolve(update.is_some());
    match update {
        Some(u) if seen == Seen::Confirms => {
            let done = confirm(c, actor, cont, firm_id, ctx.firm_code, mirror, u)?;
            Ok((seen, Some(done)))
        }
        _ => Ok((seen, None)),
    }
}

/// Makes `u` the confirmed state and moves the licenses it proves.
fn confirm(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    firm_id: i64,
    firm_code: i64,
    mirror: &mut Mirror,
    u: UpdateRow,
) -> Result<Confirmed> {
    let now = crate::service::now();
    let content: Content<Entry> = serde_json::from_str(&u.content_after)
        .map_err(|e| Error::internal(format!("update content: {e}")))?;
    let held: Vec<i64> = content.entries.keys().copied().collect();
    let from = mirror.digest.clone();
    let Some(moved) = mirrors::settle(c, cont.id, &cont.serial, firm_id, (&u, &from), &held, now)?
    else {
        // Another node confirmed first; run again and see its result.
        return Err(Error::Retry);
    };
    let before = std::mem::replace(
        mirror,
        Mirror {
            counter: u.counter_to,
            digest: u.digest_after,
            content,
            confirmed_at: now,
        },
    );
    let (mut activated, mut released, mut returned_now) = (vec![], vec![], vec![]);
    for (id, to) in moved {
        let action = match to {
            LicenseState::Activated => "license.activated",
            LicenseState::Available => "license.returned",
            _ => "license.deleted",
        };
        if to == LicenseState::Activated {
            activated.push(id);
        } else {
            released.push(id);
        }
        if matches!(to, LicenseState::Available | LicenseState::Deleted) {
            // After its own event below: a license made for a borrow (returned or withdrawn)
            // ends there, and its seat goes back.
            returned_now.push(id);
        }
        audit::record(
            actor,
            Event {
                action,
                license_id: Some(id),
                serial: Some(&cont.serial),
                details: serde_json::json!({"update_id": u.id, "counter": u.counter_to}),
                ..Default::default()
            },
        )?;
    }
    for id in returned_now {
        crate::service::cloud::returned(c, actor, id)?;
    }
    // Entries this update deleted that belonged to licenses living elsewhere now (not the
    // container's own returned or withdrawn ones).
    let gone: Vec<i64> = before
        .content
        .entries
        .keys()
        .filter(|id| !mirror.content.entries.contains_key(id))
        .filter(|id| !released.contains(id))
        .copied()
        .collect();
    if !gone.is_empty() {
        withdrawals::done(c, cont.id, firm_id, &gone, now)?;
    }
    if mirror.content.locked
        && !before.content.locked
        && blacklist::lock_validated(c, firm_id, &cont.serial, now)?
    {
        audit::record(
            actor,
            Event {
                action: "blacklist.lock_validated",
                serial: Some(&cont.serial),
                details: serde_json::json!({"update_id": u.id, "firm_code": firm_code}),
                ..Default::default()
            },
        )?;
    }
    audit::record(
        actor,
        Event {
            action: "update.confirmed",
            serial: Some(&cont.serial),
            details: serde_json::json!({"update_id": u.id, "firm_code": firm_code,
                "counter": u.counter_to, "activated": activated, "released": released}),
            ..Default::default()
        },
    )?;
    Ok(Confirmed {
        serial: cont.serial.clone(),
        firm_code,
        counter: mirror.counter,
        already_confirmed: false,
        activated,
        released,
    })
}

/// Confirms an update with the container's receipt. A receipt that fits no update issued
/// for the container is refused and changes nothing.
pub async fn confirm_receipt(
    core: &Core,
    interface: Interface,
    receipt: &str,
) -> Result<Confirmed> {
    let ctx = protocol::read_context(receipt, Kind::Receipt)?;
    let out = core
        .db
        .write(move |c| {
            let actor = customer_actor(format!("container:{}", ctx.serial), interface);
            let (firm, found) = firm_and_container(c, ctx.firm_code, &ctx.serial, &ctx.digest)?;
            let (cont, joined, _) = find_container(c, &actor, &ctx, false, found)?;
            let (mut mirror, issued) = mirror_or_load(c, cont.id, firm.id, joined)?;
            match reconcile(c, &actor, &cont, firm.id, &mut mirror, &ctx, issued)? {
                (_, Some(done)) => return Ok(done),
                // Up to date, and the receipt names an update made for this container: a
                // receipt sent again. One naming another container's update is refused below.
                (Seen::Current, None)
                    if updates::counter_to_of(c, ctx.update_id.unwrap_or_default(), cont.id)?
                        .is_some() =>
                {
                    return Ok(Confirmed {
                        serial: cont.serial.clone(),
                        firm_code: ctx.firm_code,
                        counter: mirror.counter,
                        already_confirmed: true,
                        activated: vec![],
                        released: vec![],
                    })
                }
                _ => {}
            }
            // Refused, and nothing changed; say as exactly as possible why.
            let update_id = ctx.update_id.unwrap_or_default();
            Err(Error::Mismatch(
                match updates::counter_to_of(c, update_id, cont.id)? {
                    None => format!(
                        "update {update_id} was not issued for container {}",
                        cont.serial
                    ),
                    Some(to) if to != ctx.counter as i64 => format!(
                        "the receipt shows counter {} but update {update_id} makes it {to}",
                        ctx.counter
                    ),
                    Some(_) => format!(
                        "the receipt (counter {}, digest {}…) matches no update issued for \
                         container {} (confirmed: counter {})",
                        ctx.counter,
                        &ctx.digest[..16],
                        cont.serial,
                        mirror.counter
                    ),
                },
            ))
        })
        .await?;
    if !out.already_confirmed {
        Stats::add(&core.stats.receipts_confirmed, 1);
    }
    Ok(out)
}
