//! Recycling a dongle that came back: before it is wiped and programmed again, its licenses
//! of the firm are taken from it and its registration is kept for history under another
//! serial, so that the serial can register again with the wiped dongle's new keys.
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{check_reason, RECYCLED};
use crate::domain::{check_serial, Actor, ContainerType, LicenseState, Role};
use crate::error::{Error, Result};
use crate::service::audit::{self, Event};
use crate::service::{now, Core};
use crate::store::production as store;
use crate::store::{containers, firms, licenses, mirrors, updates};

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecycleRequest {
    pub reason: String,
    /// The firm whose licenses are taken back (default: the configured firm).
    pub firm_code: Option<i64>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Recycled {
    pub serial: String,
    /// The serial the dongle's old registration is kept under.
    pub kept_as: String,
    /// The licenses taken from it (deleted: they left their tickets).
    pub deleted: Vec<i64>,
    /// The slot it had, and of which production order.
    pub production_order_id: Option<i64>,
    pub slot: Option<i32>,
    /// False when this answer repeats an earlier recycle of the serial.
    pub recycled: bool,
}

/// Recycles dongle `serial` (admin, support): its licenses of the firm are deleted (as a
/// reset: they leave their tickets), the updates issued for it are void, and its
/// registration, with the slot it had, is kept under `serial~recycled-<id>`. Only then may
/// the serial be programmed again. A dongle holding another firm's licenses is not
/// recycled (they are not this firm's to take).
pub async fn recycle(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: RecycleRequest,
) -> Result<Recycled> {
    actor.require(&[Role::Admin, Role::Support], "recycle dongles")?;
    check_serial("serial", &serial)?;
    check_reason(&req.reason)?;
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let firm_id = match req.firm_code {
                None => default,
                Some(code) => firms::by_code(c, code)?.0,
            };
            let Some(cont) = containers::by_serial(c, &serial)? else {
                // Sent again after it was done: the registration it is kept under.
                return match containers::recycled_as(c, &serial)?.into_iter().next() {
                    Some(kept_as) => Ok(Recycled {
                        serial: serial.clone(),
                        kept_as,
                        deleted: vec![],
                        production_order_id: None,
                        slot: None,
                        recycled: false,
                    }),
                    None => Err(Error::not_found("container", &serial)),
                };
            };
            if cont.kind != ContainerType::Dongle {
                return Err(Error::NotAllowed(format!(
                    "only dongles are recycled; {serial} is an {} container",
                    cont.kind.as_str()
                )));
            }
            if let Some(other) = mirrors::of_container(c, cont.id)?
                .into_iter()
                .find(|m| m.firm_id != firm_id && m.counter > 0)
            {
                return Err(Error::NotAllowed(format!(
                    "dongle {serial} holds licenses of firm code {}; they are not taken \
                     back here",
                    other.firm_code
                )));
            }
            let now = now();
            let mut deleted = vec![];
            for l in licenses::all_in(c, &serial, firm_id)? {
                if l.state != LicenseState::Deleted {
                    licenses::set_state(c, &l, LicenseState::Deleted, None, now)?;
                    deleted.push(l.id);
                }
            }
            updates::void_issued(c, cont.id, firm_id)?;
            let kept_as = format!("{serial}~recycled-{}", cont.id);
            containers::rename(c, cont.id, &kept_as, now)?;
            containers::set_customer(c, cont.id, None, now)?;
            let slot = store::slot_of_serial(c, &serial)?;
            let mut order_id = None;
            if let Some(s) = &slot {
                store::rename(c, s, &kept_as)?;
                order_id = Some(store::get(c, s.production_order_id)?.order_id);
            }
            audit::record(
                &actor,
                Event {
                    action: RECYCLED,
                    order_id,
                    serial: Some(&serial),
                    details: json!({"kept_as": kept_as, "licenses": deleted,
                        "reason": req.reason,
                        "production_order_id": slot.as_ref().map(|s| s.production_order_id),
                        "slot": slot.as_ref().map(|s| s.slot)}),
                    ..Default::default()
                },
            )?;
            Ok(Recycled {
                serial: serial.clone(),
                kept_as,
                deleted,
                production_order_id: slot.as_ref().map(|s| s.production_order_id),
                slot: slot.as_ref().map(|s| s.slot),
                recycled: true,
            })
        })
        .await
}
