//! Writing off a dongle that took a slot's update and will not come back to a station (it
//! was pulled out after the write and went missing): support decides, as the station's
//! `failed` report with `written: true` leaves it to them.
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{check_reason, state_now, LOST};
use crate::domain::production::{freed, SlotState};
use crate::domain::{check_serial, Actor, Role};
use crate::error::{Error, Result};
use crate::service::audit::{self, Event};
use crate::service::lifecycle::place_on_blacklist;
use crate::service::{now, Core};
use crate::store::production as store;
use crate::store::{containers, history, licenses, updates};

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LostRequest {
    pub reason: String,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Lost {
    pub serial: String,
    pub production_order_id: i64,
    /// The slot it had: free again, for the next dongle.
    pub slot: i32,
    /// The licenses freed back to the slot.
    pub freed: Vec<i64>,
}

/// Writes off dongle `serial` (admin, support): it is put on the blacklist of the order's
/// firm, the updates issued for it are void, and its slot's licenses are available again
/// in the slot, which is free for the next dongle. Should it turn up: holding an update
/// the write-off voided, it is marked "manipulation detected" and gets nothing; one that
/// never applied it gets the lock. The licenses it may hold keep working offline until then
/// (as with any lost container). Only a dongle whose receipt was never read: a programmed one is a
/// customer's dongle, handled by the blacklist and re-activation.
pub async fn write_off(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: LostRequest,
) -> Result<Lost> {
    actor.require(&[Role::Admin, Role::Support], "write off dongles")?;
    check_serial("serial", &serial)?;
    check_reason(&req.reason)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let Some(s) = store::slot_of_serial(c, &serial)? else {
                let since = chrono::NaiveDateTime::default();
                if history::count_since(c, &serial, LOST, since)? > 0 {
                    return Err(Error::Conflict(format!(
                        "dongle {serial} was written off already"
                    )));
                }
                return Err(Error::not_found("dongle", format!("{serial} in a slot")));
            };
            let po = store::get(c, s.production_order_id)?;
            match state_now(c, &s)? {
                SlotState::Assigned => {}
                SlotState::Programmed => {
                    return Err(Error::Conflict(format!(
                        "dongle {serial} is programmed (slot {}): its receipt proved it; \
                         a lost customer's dongle is blacklisted, its licenses re-activated",
                        s.slot
                    )))
                }
                other => {
                    return Err(Error::Conflict(format!(
                        "slot {} of dongle {serial} is {}",
                        s.slot,
                        other.as_str()
                    )))
                }
            }
            let description = format!("lost on the production line: {}", req.reason);
            place_on_blacklist(c, &actor, po.firm_id, &serial, &description)?;
            let at = now();
            let mut freed_ids = vec![];
            for l in store::licenses_of_slot(c, s.id)? {
                if let Some(to) = freed(l.id, l.state)? {
                    licenses::set_state(c, &l, to, None, at)?;
                    freed_ids.push(l.id);
                    audit::record(
                        &actor,
                        Event {
                            action: "license.production_freed",
                            license_id: Some(l.id),
                            serial: Some(&serial),
                            details: json!({"production_order_id": po.id, "slot": s.slot,
                                "state": to}),
                            ..Default::default()
                        },
                    )?;
                }
            }
            let voided = match containers::by_serial(c, &serial)? {
                Some(cont) => updates::void_issued(c, cont.id, po.firm_id)?,
                None => vec![],
            };
            store::fail(c, &s, &serial, &description, true)?;
            audit::record(
                &actor,
                Event {
                    action: LOST,
                    order_id: Some(po.order_id),
                    serial: Some(&serial),
                    details: json!({"production_order_id": po.id, "slot": s.slot,
                        "reason": req.reason, "freed": freed_ids, "voided_updates": voided}),
                    ..Default::default()
                },
            )?;
            Ok(Lost {
                serial: serial.clone(),
                production_order_id: po.id,
                slot: s.slot,
                freed: freed_ids,
            })
        })
        .await
}
