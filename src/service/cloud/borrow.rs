//! Borrowing: a seat of a cloud container's license checked out into a local container
//! (`act` or dongle) for some days, to use the license offline. The server makes a license
//! for the borrow (the cloud license's options, one user, expiring when the borrow ends)
//! and delivers it by a normal signed update to the local container, believed on its
//! receipt like any activation. The borrowed seat counts against the quantity until the
//! borrowed license comes back (a return proven by a receipt ends it, and the license made
//! for the borrow is deleted) or the borrow's time runs out (the seat is reclaimed; the
//! client runtime refuses the expired entry, also with the clock set back).
use chrono::Duration;
use serde_json::json;

use super::seats::{candidates, credential_actor, deny, holder, pick, take, Pick};
use crate::domain::{Actor, Interface, LicenseState, ReactivationPolicy};
use crate::error::{Error, Result};
use crate::protocol::cloud::{BorrowRequest, OpenRequest, MAX_BORROW_DAYS};
use crate::protocol::Issued;
use crate::service::activation::{
    after_contact, customer_actor, deliver, issue_with, read_request, required, Refusal,
};
use crate::service::audit::{self, Event};
use crate::service::{now, Core};
use crate::store::cloud as store;
use crate::store::licenses::{self, NewLicense};
use crate::store::Conn;

/// Borrows a seat for `days` days into the local container that signed `req.request`;
/// the update for it, to apply there (then its receipt goes to the gateway as usual).
pub async fn borrow(core: &Core, token: String, req: BorrowRequest) -> Result<Issued> {
    if req.days == 0 || req.days > MAX_BORROW_DAYS {
        return Err(Error::invalid(
            "days",
            format!("1 to {MAX_BORROW_DAYS} days"),
        ));
    }
    let ctx = read_request(&req.request)?;
    if ctx.firm_code != req.firm_code {
        return Err(Error::invalid(
            "request",
            format!(
                "the request is for firm code {}, the borrow for {}",
                ctx.firm_code, req.firm_code
            ),
        ));
    }
    let actor = customer_actor(format!("container:{}", ctx.serial), Interface::Cloud);
    let prepared = after_contact(core, actor, ctx, "borrow", true, move |c, _, ctx, k| {
        let at = now();
        let h = holder(c, &token, at)?;
        let actor = credential_actor(h.credential_id);
        let open = OpenRequest {
            firm_code: req.firm_code,
            product_code: req.product_code,
            features: req.features,
            station: format!("borrowed into {}", k.cont.serial),
        };
        let found = candidates(c, &h, &open, Some(ctx.container_type), at)?;
        let (license, options, slot, in_use) =
            match pick(c, &actor, &h, found, &open.station, false, at)? {
                Pick::Free {
                    license,
                    options,
                    slot,
                    in_use,
                } => (license, options, slot, in_use),
                Pick::Full { first, seats } => {
                    let e = deny(c, &actor, &h, &open, first, seats, at)?;
                    return Ok(Err(Refusal::Error(e)));
                }
                Pick::Joined(..) => unreachable!("a borrow never joins a station's seat"),
            };
        let until = at + Duration::days(req.days.into());
        let ends = until.and_utc();
        // One user, until the borrow ends; it comes back whatever the item says of returns,
        // and it is never re-activated elsewhere.
        let mut lent = options.clone();
        lent.license_quantity = 0;
        lent.expiration_time = Some(lent.expiration_time.map_or(ends, |e| e.min(ends)));
        lent.deactivation_allowed = Some(true);
        lent.reactivation = Some(ReactivationPolicy::Never);
        lent.lease_seconds = None;
        lent.seat_counting = Default::default();
        let parent = licenses::find(c, license.id)?;
        let (line_id, item_pk) = licenses::line_and_item(c, license.id)?;
        let text = serde_json::to_string(&lent).expect("options");
        let lent_id = licenses::insert(
            c,
            &NewLicense {
                ticket_id: parent.ticket_id,
                order_line_id: line_id,
                item_pk,
                firm_id: parent.firm_id,
                product_code: parent.product_code,
                options: &text,
                state: LicenseState::Pending,
                serial: Some(&k.cont.serial),
            },
            at,
        )?;
        let seat = take(
            c,
            &actor,
            &h,
            &license,
            slot,
            in_use,
            &open.station,
            until,
            Some(lent_id),
            at,
        )?;
        store::insert_borrow(c, lent_id, license.id, until)?;
        audit::record(
            &actor,
            Event {
                action: "cloud.borrowed",
                license_id: Some(lent_id),
                serial: Some(&k.cont.serial),
                details: json!({"from_license": license.id, "cloud_container": h.serial,
                    "seat": seat.id, "until": until}),
                ..Default::default()
            },
        )?;
        required(issue_with(c, &actor, k, ctx, None, Some(&[lent_id]))?).map(Ok)
    })
    .await?;
    deliver(core, prepared)
}

/// A license the server just saw returned (by a receipt): one made for a borrow is deleted
/// and its seat goes back to the cloud container.
pub(in crate::service) fn returned(c: &mut Conn, actor: &Actor, license_id: i64) -> Result<()> {
    if !store::is_borrow(c, license_id)? {
        return Ok(());
    }
    // None when the borrow's time ran out and the seat was reclaimed.
    let seat = store::end_borrow(c, license_id)?;
    let l = licenses::find(c, license_id)?;
    if l.state != LicenseState::Deleted {
        licenses::set_state(c, &l, LicenseState::Deleted, None, now())?;
    }
    audit::record(
        actor,
        Event {
            action: "cloud.borrow_returned",
            license_id: Some(license_id),
            details: json!({"seat": seat.map(|s| s.id)}),
            ..Default::default()
        },
    )
}
