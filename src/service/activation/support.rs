//! What vendor support does with containers through the activation core: look at one, push
//! a license to it as an automatic update, find activations that went stale.
use serde::Serialize;

use super::audit::{self, Event};
use crate::domain::{Actor, ContainerType, LicenseState, Role};
use crate::error::{Error, Result};
use crate::service::Core;
use crate::store::{containers, customers, licenses, mirrors, updates, Conn};

/// Pushes an available license to a container as an automatic update: it is added by the
/// container's next update, before anything else that contact asks for.
pub async fn push_license(
    core: &Core,
    actor: &Actor,
    serial: String,
    license_id: i64,
) -> Result<()> {
    actor.require(&[Role::Admin, Role::Support], "push licenses to containers")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let cont = containers::get(c, &serial)?;
            let l = licenses::find(c, license_id)?;
            if l.state != LicenseState::Available {
                return Err(Error::Conflict(format!(
                    "license {license_id} is {} and cannot be pushed",
                    l.state
                )));
            }
            if !l.options()?.container_types.contains(&cont.kind) {
                return Err(Error::NotAllowed(format!(
                    "license {license_id} cannot go into a {} container",
                    cont.kind.as_str()
                )));
            }
            if cont.kind == ContainerType::Cloud {
                crate::service::cloud::check_push(c, &cont, &l)?;
            }
            let now = crate::service::now();
            // A cloud container is the server itself: the license is in it at once.
            let to = if cont.kind == ContainerType::Cloud {
                LicenseState::Activated
            } else {
                LicenseState::Pending
            };
            licenses::set_state(c, &l, to, Some(&serial), now)?;
            audit::record(
                &actor,
                Event {
                    action: "license.pushed",
                    license_id: Some(license_id),
                    serial: Some(&serial),
                    details: serde_json::json!({"state": to}),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
}

/// A container as support sees it.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct ContainerView {
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub state_reason: String,
    pub customer_id: Option<String>,
    /// The scope of `customer_id`: empty for the vendor's customers, a connector's source.
    pub customer_scope: String,
    pub firms: Vec<ContainerFirmView>,
    pub licenses: Vec<ContainerLicense>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct ContainerFirmView {
    pub firm_code: i64,
    pub counter: i64,
    pub digest: String,
    pub confirmed_at: chrono::NaiveDateTime,
    /// Updates issued from the confirmed counter and not yet confirmed.
    pub unconfirmed_updates: Vec<i64>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct ContainerLicense {
    pub license_id: i64,
    pub item_id: String,
    pub state: String,
}

pub async fn get_container(core: &Core, actor: &Actor, serial: String) -> Result<ContainerView> {
    actor.require(
        &[Role::Admin, Role::Support, Role::Sales],
        "read containers",
    )?;
    // Not checked as a protocol serial: a recycled dongle's retired name is read here too.
    core.db
        .read(move |c| {
            let cont = containers::get(c, &serial)?;
            let (customer_id, customer_scope) = customers::owner(c, cont.customer_id)?;
            let mut firms = vec![];
            for m in mirrors::of_container(c, cont.id)? {
                firms.push(ContainerFirmView {
                    unconfirmed_updates: updates::unconfirmed(c, cont.id, m.firm_id, m.counter)?,
                    firm_code: m.firm_code,
                    counter: m.counter,
                    digest: m.digest,
                    confirmed_at: m.confirmed_at,
                });
            }
            let licenses = licenses::listed_in(c, &cont.serial)?
                .into_iter()
                .map(|(license_id, item_id, state)| ContainerLicense {
                    license_id,
                    item_id,
                    state,
                })
                .collect();
            Ok(ContainerView {
                serial: cont.serial,
                kind: cont.kind.as_str().to_string(),
                state: cont.state.as_str().to_string(),
                state_reason: cont.state_reason,
                customer_id,
                customer_scope,
                firms,
                licenses,
            })
        })
        .await
}

/// Housekeeping: pending activations whose every unconfirmed update has expired. They are
/// reported, not released: a container may have applied an update just before it expired
/// and not made contact since, so only its next contact (which re-issues what is still
/// outstanding) or a person (withdraw, push) can settle them. Returns (license, serial).
pub fn stale_pending(c: &mut Conn) -> Result<Vec<(i64, String)>> {
    let now = crate::service::now();
    let mut out = vec![];
    for (license, serial, container, firm) in licenses::pending_with_container(c)? {
        if updates::live(c, container, firm, now)? == 0 {
            out.push((license, serial));
        }
    }
    Ok(out)
}
