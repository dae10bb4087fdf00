//! Support decides approval requests: an approved re-activation or restore is carried out
//! at once (the customer's next contact brings it); a denied one stays denied.
use serde::Deserialize;

use super::restore::restore_into;
use super::{move_license, REACTIVATION, RESTORE, SUPPORT_ROLES};
use crate::domain::{check_len, reactivation, Actor, ApprovalState, ContainerState, MAX_TEXT};
use crate::error::{Error, Result};
use crate::service::activation::add_activations;
use crate::service::audit::{self, Event};
use crate::service::Core;
use crate::store::approvals::{self, ApprovalView};
use crate::store::{blacklist, containers, licenses, settings};

pub async fn list_approvals(
    core: &Core,
    actor: &Actor,
    state: Option<String>,
) -> Result<Vec<ApprovalView>> {
    actor.require(SUPPORT_ROLES, "read approval requests")?;
    let state = state.as_deref().map(ApprovalState::parse).transpose()?;
    core.db
        .read(move |c| approvals::list(c, state, 10_000))
        .await
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    pub reason: String,
}

/// Approves (and carries out) or denies an open approval request.
pub async fn decide(
    core: &Core,
    actor: &Actor,
    id: i64,
    approve: bool,
    reason: String,
) -> Result<ApprovalView> {
    actor.require(SUPPORT_ROLES, "decide approval requests")?;
    check_len("reason", &reason, MAX_TEXT)?;
    if !approve && reason.trim().is_empty() {
        return Err(Error::invalid("reason", "say why the request is denied"));
    }
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let a = approvals::get(c, id)?;
            if a.state != ApprovalState::Open {
                return Err(Error::Conflict(format!(
                    "approval request {id} is {} already",
                    a.state
                )));
            }
            let firm_id = a.firm_id;
            if approve {
                let target = containers::get(c, &a.serial)?;
                if target.state != ContainerState::Active {
                    return Err(Error::Conflict(format!(
                        "container {} is {}",
                        target.serial, target.state
                    )));
                }
                if blacklist::open_entry(c, firm_id, &a.serial)?.is_some() {
                    return Err(Error::Conflict(format!(
                        "container {} is blacklisted; deny the request",
                        a.serial
                    )));
                }
                match (a.kind.as_str(), a.license_id) {
                    (REACTIVATION, Some(lid)) => {
                        let l = licenses::find(c, lid)?;
                        if !l.is_in(&a.old_serial) || !l.state.in_container() {
                            return Err(Error::Conflict(format!(
                                "license {lid} is no longer in container {} ({})",
                                a.old_serial, l.state
                            )));
                        }
                        let settings = settings::load(c, firm_id)?;
                        let behaviour = reactivation::behaviour(&settings, &l.options()?);
                        move_license(
                            c,
                            &actor,
                            &l,
                            &a.serial,
                            behaviour,
                            false,
                            "license.reactivated",
                        )?;
                        // Counted; support's approval is not held to the quota.
                        add_activations(c, firm_id, 1)?;
                    }
                    (RESTORE, None) => {
                        let old = containers::get(c, &a.old_serial)?;
                        restore_into(c, &actor, firm_id, &old, &a.serial)?;
                    }
                    _ => return Err(Error::internal(format!("approval {id}: kind {}", a.kind))),
                }
            }
            let state = if approve {
                ApprovalState::Approved
            } else {
                ApprovalState::Denied
            };
            let now = crate::service::now();
            if !approvals::decide(c, id, state, &actor.name, &reason, now)? {
                return Err(Error::Conflict(format!(
                    "approval request {id} was decided by someone else at the same time"
                )));
            }
            audit::record(
                &actor,
                Event {
                    action: if approve {
                        "approval.approved"
                    } else {
                        "approval.denied"
                    },
                    license_id: a.license_id,
                    serial: Some(&a.serial),
                    details: serde_json::json!({"approval_id": id, "kind": a.kind,
                        "reason": reason}),
                    ..Default::default()
                },
            )?;
            Ok(ApprovalView {
                state,
                decided_by: Some(actor.name.clone()),
                decided_at: Some(now),
                reason: reason.clone(),
                ..a
            })
        })
        .await
}
