//! The vendor's control over licenses and containers: blacklist, withdraw, replace, split,
//! reset and assignment.
use serde::{Deserialize, Serialize};

use super::{firm_id_of, place_on_blacklist, CONTROL_ROLES, SUPPORT_ROLES};
use crate::domain::{
    check_id, check_len, check_serial, Actor, ContainerType, ItemKind, ItemOptions, LicenseState,
    Role, MAX_TEXT,
};
use crate::error::{Error, Result};
use crate::service::audit::{self, Event};
use crate::service::Core;
use crate::store::licenses::{self, LicRow, NewLicense};
use crate::store::orders::{self, NewLine};
use crate::store::{blacklist, containers, customers, items, withdrawals, Conn};

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistAdd {
    pub serial: String,
    pub description: String,
    pub firm_code: Option<i64>,
}

/// Blacklists a container serial (known or not yet seen): on its next contact it gets the
/// lock update, and every other action is refused.
pub async fn blacklist_add(core: &Core, actor: &Actor, req: BlacklistAdd) -> Result<()> {
    // The erp role only where the firm's settings allow it (asked below, in the write).
    if actor.role != Role::Erp {
        actor.require(SUPPORT_ROLES, "blacklist containers")?;
    }
    check_serial("serial", &req.serial)?;
    check_len("description", &req.description, MAX_TEXT)?;
    if req.description.trim().is_empty() {
        return Err(Error::invalid(
            "description",
            "say why the container is blacklisted",
        ));
    }
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let firm_id = firm_id_of(c, default, req.firm_code)?;
            if actor.role == Role::Erp
                && !crate::store::settings::load(c, firm_id)?.erp_may_blacklist
            {
                return Err(Error::Forbidden {
                    role: "erp".into(),
                    action: "blacklist containers (the settings' erp_may_blacklist is off)",
                });
            }
            if !place_on_blacklist(c, &actor, firm_id, &req.serial, &req.description)? {
                return Err(Error::AlreadyExists {
                    kind: "blacklist entry",
                    id: req.serial.clone(),
                });
            }
            Ok(())
        })
        .await
}

/// Takes a serial off the blacklist (explicitly, with a reason; recorded).
pub async fn blacklist_remove(
    core: &Core,
    actor: &Actor,
    serial: String,
    firm_code: Option<i64>,
    reason: String,
) -> Result<()> {
    actor.require(&[Role::Admin], "take containers off the blacklist")?;
    // Any identifier: an entry placed before serials were held to the protocol's form must
    // still be removable.
    check_id("serial", &serial)?;
    check_len("reason", &reason, MAX_TEXT)?;
    if reason.trim().is_empty() {
        return Err(Error::invalid(
            "reason",
            "say why the container may come back",
        ));
    }
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let firm_id = firm_id_of(c, default, firm_code)?;
            let now = crate::service::now();
            if !blacklist::remove(c, firm_id, &serial, &actor.name, &reason, now)? {
                return Err(Error::not_found("blacklist entry", &serial));
            }
            audit::record(
                &actor,
                Event {
                    action: "blacklist.removed",
                    serial: Some(&serial),
                    details: serde_json::json!({"reason": reason}),
                    ..Default::default()
                },
            )
        })
        .await
}

/// What a withdraw, replace or split did to each license.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct LicenseChange {
    pub license_id: i64,
    pub state: LicenseState,
    pub serial: Option<String>,
}

fn withdraw_one(
    c: &mut Conn,
    actor: &Actor,
    l: &LicRow,
    action: &str,
    details: serde_json::Value,
) -> Result<LicenseChange> {
    use LicenseState as S;
    let mut details = details;
    // In a cloud container the server is the container: gone at once, seats and all (not
    // while a seat of it is borrowed out).
    let cloud = l.state == S::Activated && crate::service::cloud::is_cloud(c, l.serial.as_deref())?;
    if cloud {
        crate::service::cloud::no_borrows(c, l.id)?;
    }
    let (to, serial) = match l.state {
        S::Available => (S::Deleted, None),
        S::Activated if cloud => (S::Deleted, None),
        S::Pending | S::Activated => (S::Withdrawing, l.serial.clone()),
        S::Withdrawing | S::Deleted => {
            return Ok(LicenseChange {
                license_id: l.id,
                state: l.state,
                serial: l.serial.clone(),
            })
        }
        state @ S::Returning => {
            return Err(Error::Conflict(format!(
                "license {} is {state}; withdraw it when the return is confirmed",
                l.id
            )))
        }
    };
    licenses::set_state(c, l, to, serial.as_deref(), crate::service::now())?;
    if cloud {
        details["seats_ended"] = serde_json::json!(crate::service::cloud::leave(c, l.id)?);
    }
    audit::record(
        actor,
        Event {
            action,
            license_id: Some(l.id),
            serial: if cloud {
                l.serial.as_deref()
            } else {
                serial.as_deref()
            },
            details,
            ..Default::default()
        },
    )?;
    Ok(LicenseChange {
        license_id: l.id,
        state: to,
        serial,
    })
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub licenses: Vec<i64>,
    #[serde(default)]
    pub reason: String,
}

/// Withdraws licenses: one not in a container leaves its ticket at once; one in a
/// container is deleted there by an automatic update and leaves the ticket with the receipt.
pub async fn withdraw(
    core: &Core,
    actor: &Actor,
    req: WithdrawRequest,
) -> Result<Vec<LicenseChange>> {
    actor.require(CONTROL_ROLES, "withdraw licenses")?;
    if req.licenses.is_empty() || req.licenses.len() > 1000 {
        return Err(Error::invalid("licenses", "name 1 to 1000 licenses"));
    }
    check_len("reason", &req.reason, MAX_TEXT)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let mut out = vec![];
            for id in &req.licenses {
                let l = licenses::find(c, *id)?;
                out.push(withdraw_one(
                    c,
                    &actor,
                    &l,
                    "license.withdrawn",
                    serde_json::json!({"reason": req.reason, "from": l.state}),
                )?);
            }
            Ok(out)
        })
        .await
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    pub license_id: i64,
    /// The item whose license takes the old one's place.
    pub item_id: String,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Replaced {
    pub old: LicenseChange,
    pub new: LicenseChange,
}

/// Replaces a license by one of another item: at once if the old one is not in a
/// container; otherwise the new one is bound to the same container and one automatic
/// update deletes the old and adds the new.
pub async fn replace(core: &Core, actor: &Actor, req: ReplaceRequest) -> Result<Replaced> {
    actor.require(CONTROL_ROLES, "replace licenses")?;
    check_id("item_id", &req.item_id)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let l = licenses::find(c, req.license_id)?;
            let item = items::by_item_id(c, &req.item_id)?;
            if item.kind != ItemKind::License || !item.active {
                return Err(Error::invalid(
                    "item_id",
                    format!("{} is not a license item for sale", req.item_id),
                ));
            }
            let in_container = l.state.in_container();
            if in_container {
                if item.firm_id != l.firm_id {
                    return Err(Error::invalid(
                        "item_id",
                        "the new item must have the firm code of the license it replaces",
                    ));
                }
                let cont = containers::get(c, l.serial.as_deref().unwrap_or_default())?;
                let o: ItemOptions = serde_json::from_str(&item.options)
                    .map_err(|e| Error::internal(format!("item options: {e}")))?;
                if !o.container_types.contains(&cont.kind) {
                    return Err(Error::NotAllowed(format!(
                        "{} cannot go into a {} container",
                        req.item_id,
                        cont.kind.as_str()
                    )));
                }
            } else if l.state != LicenseState::Available {
                return Err(Error::Conflict(format!(
                    "license {} is {} and cannot be replaced",
                    l.id, l.state
                )));
            }
            let order_id = licenses::order_of(c, l.id)?;
            let line_id = orders::insert_line(
                c,
                &NewLine {
                    order_id,
                    batch_key: &format!("replace-{}", l.id),
                    position: 1,
                    item_pk: item.pk,
                    quantity: 1,
                },
            )?;
            let (state, serial) = if in_container {
                // A cloud container takes the new license at once (no update to deliver).
                let cloud = crate::service::cloud::is_cloud(c, l.serial.as_deref())?;
                let state = if cloud && l.state == LicenseState::Activated {
                    LicenseState::Activated
                } else {
                    LicenseState::Pending
                };
                (state, l.serial.as_deref())
            } else {
                (LicenseState::Available, None)
            };
            let new_id = licenses::insert(
                c,
                &NewLicense {
                    ticket_id: l.ticket_id,
                    order_line_id: line_id,
                    item_pk: item.pk,
                    firm_id: item.firm_id,
                    product_code: item.product_code,
                    options: &item.options,
                    state,
                    serial,
                },
                crate::service::now(),
            )?;
            let old = withdraw_one(
                c,
                &actor,
                &l,
                "license.replaced",
                serde_json::json!({"by": new_id, "item_id": req.item_id}),
            )?;
            audit::record(
                &actor,
                Event {
                    action: "license.created_as_replacement",
                    license_id: Some(new_id),
                    serial,
                    details: serde_json::json!({"replaces": l.id, "item_id": req.item_id}),
                    ..Default::default()
                },
            )?;
            Ok(Replaced {
                old,
                new: LicenseChange {
                    license_id: new_id,
                    state,
                    serial: serial.map(str::to_string),
                },
            })
        })
        .await
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub license_id: i64,
    /// The quantities of the new licenses; they add up to the license's quantity.
    pub quantities: Vec<u32>,
}

/// Splits an available license of quantity n into licenses whose quantities add up to n.
pub async fn split(core: &Core, actor: &Actor, req: SplitRequest) -> Result<Vec<i64>> {
    actor.require(&[Role::Admin, Role::Sales, Role::Support], "split licenses")?;
    check_parts(&req.quantities, 1000)?;
    let actor = actor.clone();
    core.db
        .write(move |c| split_in(c, &actor, req.license_id, &req.quantities))
        .await
}

/// Split into 2 to `most` parts, each of at least 1.
pub(in crate::service) fn check_parts(quantities: &[u32], most: usize) -> Result<()> {
    if quantities.len() < 2 || quantities.len() > most {
        return Err(Error::invalid(
            "quantities",
            format!("split into 2 to {most} licenses"),
        ));
    }
    if quantities.contains(&0) {
        return Err(Error::invalid(
            "quantities",
            "every part needs a quantity of at least 1",
        ));
    }
    Ok(())
}

/// The split itself, in the caller's write (the caller has checked who may split it).
pub(in crate::service) fn split_in(
    c: &mut Conn,
    actor: &Actor,
    id: i64,
    quantities: &[u32],
) -> Result<Vec<i64>> {
    let l = licenses::find(c, id)?;
    if l.state != LicenseState::Available {
        return Err(Error::Conflict(format!(
            "license {} is {}; only an available license can be split",
            l.id, l.state
        )));
    }
    let o = l.options()?;
    let total: u64 = quantities.iter().map(|q| u64::from(*q)).sum();
    if total != u64::from(o.license_quantity) {
        return Err(Error::invalid(
            "quantities",
            format!(
                "they add up to {total}, but license {} has quantity {}",
                l.id, o.license_quantity
            ),
        ));
    }
    let (line_id, item_pk) = licenses::line_and_item(c, l.id)?;
    let now = crate::service::now();
    let mut ids = vec![];
    for q in quantities {
        let part = ItemOptions {
            license_quantity: *q,
            ..o.clone()
        };
        let options = serde_json::to_string(&part).expect("options");
        ids.push(licenses::insert(
            c,
            &NewLicense {
                ticket_id: l.ticket_id,
                order_line_id: line_id,
                item_pk,
                firm_id: l.firm_id,
                product_code: l.product_code,
                options: &options,
                state: LicenseState::Available,
                serial: None,
            },
            now,
        )?);
    }
    licenses::set_state(c, &l, LicenseState::Deleted, None, now)?;
    audit::record(
        actor,
        Event {
            action: "license.split",
            license_id: Some(l.id),
            details: serde_json::json!({"into": ids, "quantities": quantities}),
            ..Default::default()
        },
    )?;
    Ok(ids)
}

/// Resets a container: its licenses of the firm are deleted and leave their tickets at
/// once, its next contact deletes the entries, and it belongs to no customer. For demo
/// dongles and migrations; admins only.
pub async fn reset(
    core: &Core,
    actor: &Actor,
    serial: String,
    firm_code: Option<i64>,
) -> Result<Vec<i64>> {
    actor.require(&[Role::Admin], "reset containers")?;
    check_serial("serial", &serial)?;
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let firm_id = firm_id_of(c, default, firm_code)?;
            let cont = containers::get(c, &serial)?;
            if cont.kind == ContainerType::Cloud {
                return Err(Error::NotAllowed(format!(
                    "cloud container {serial} is not reset: return or withdraw its licenses"
                )));
            }
            let rows = licenses::all_in(c, &serial, firm_id)?;
            let now = crate::service::now();
            let mut ids = vec![];
            for l in &rows {
                licenses::set_state(c, l, LicenseState::Deleted, None, now)?;
                withdrawals::insert(c, cont.id, firm_id, l.id, "container reset", now)?;
                ids.push(l.id);
            }
            containers::set_customer(c, cont.id, None, now)?;
            audit::record(
                &actor,
                Event {
                    action: "container.reset",
                    serial: Some(&serial),
                    details: serde_json::json!({"licenses": ids}),
                    ..Default::default()
                },
            )?;
            Ok(ids)
        })
        .await
}

/// Assigns a container to customer `customer_id` of `scope` (`""`: the vendor's).
pub async fn assign(
    core: &Core,
    actor: &Actor,
    serial: String,
    scope: String,
    customer_id: String,
) -> Result<()> {
    actor.require(SUPPORT_ROLES, "assign containers")?;
    check_serial("serial", &serial)?;
    check_id("customer_id", &customer_id)?;
    crate::service::catalog::check_scope("customer_scope", &scope)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let cont = containers::get(c, &serial)?;
            if cont.kind == ContainerType::Cloud {
                return Err(Error::NotAllowed(format!(
                    "cloud container {serial} stays its customer's (its credential file is \
                     theirs): make a new cloud container for the other customer"
                )));
            }
            let cust = customers::id_of(c, &scope, &customer_id)?;
            containers::set_customer(c, cont.id, Some(cust), crate::service::now())?;
            audit::record(
                &actor,
                Event {
                    action: "container.assigned",
                    serial: Some(&serial),
                    details: serde_json::json!({"customer_id": customer_id,
                        "customer_scope": scope, "previous": cont.customer_id}),
                    ..Default::default()
                },
            )
        })
        .await
}
