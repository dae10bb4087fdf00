//! The decision about a container marked "manipulation detected": automatic handling stops
//! for it until a person decides. Support resynchronises it (its next request is taken as
//! its state when the server made that state, and it gets its own licenses back and nothing
//! else; see `activation::resync`) or blacklists it (the same, and the answer is the lock).
use serde::{Deserialize, Serialize};

use super::{firm_id_of, place_on_blacklist, SUPPORT_ROLES};
use crate::domain::{check_len, check_serial, Actor, ContainerState, MAX_TEXT};
use crate::error::{Error, Result};
use crate::service::audit::{self, Event};
use crate::service::Core;
use crate::store::containers;

/// What support decided about a manipulated container.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Take the state its next request shows, when the server made that state.
    Resynchronise,
    /// Blacklist it; its next request is taken as its state so that the lock reaches it.
    Blacklist,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Resynchronise => "resynchronise",
            Decision::Blacklist => "blacklist",
        }
    }

    pub fn parse(s: &str) -> Result<Decision> {
        match s {
            "resynchronise" => Ok(Decision::Resynchronise),
            "blacklist" => Ok(Decision::Blacklist),
            other => Err(Error::invalid(
                "decision",
                format!("\"{other}\" is not one of resynchronise, blacklist"),
            )),
        }
    }
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManipulationDecision {
    pub decision: Decision,
    /// Why (kept with who decided; a blacklist entry's description).
    pub reason: String,
    /// The firm whose blacklist takes the container (default: the configured firm).
    #[serde(default)]
    pub firm_code: Option<i64>,
}

/// Records support's decision about a container marked as manipulated (or about one already
/// to be resynchronised, which may still be blacklisted). The container's state says what
/// its next request meets.
pub async fn decide_manipulation(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: ManipulationDecision,
) -> Result<()> {
    actor.require(SUPPORT_ROLES, "decide about manipulated containers")?;
    check_serial("serial", &serial)?;
    check_len("reason", &req.reason, MAX_TEXT)?;
    if req.reason.trim().is_empty() {
        return Err(Error::invalid("reason", "say why you decide so"));
    }
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let cont = containers::get(c, &serial)?;
            // Decisions and the contacts that carry them out change the state under the lock.
            containers::lock(c, cont.id)?;
            let cont = containers::get(c, &serial)?;
            match (cont.state, req.decision) {
                (ContainerState::Manipulated, _)
                | (ContainerState::Resynchronising, Decision::Blacklist) => {}
                (ContainerState::Resynchronising, Decision::Resynchronise) => {
                    return Err(Error::Conflict(format!(
                        "container {serial} is already to be resynchronised at its next request"
                    )))
                }
                (ContainerState::Active, _) => {
                    return Err(Error::Conflict(format!(
                        "container {serial} is not marked as manipulated: there is nothing to \
                         decide"
                    )))
                }
            }
            let blacklisted = match req.decision {
                Decision::Blacklist => {
                    let firm_id = firm_id_of(c, default, req.firm_code)?;
                    place_on_blacklist(c, &actor, firm_id, &serial, &req.reason)?
                }
                Decision::Resynchronise => false,
            };
            let why = format!(
                "{} decided by {}: {}",
                req.decision.as_str(),
                actor.name,
                req.reason
            );
            let now = crate::service::now();
            containers::set_state(c, cont.id, ContainerState::Resynchronising, &why, now)?;
            audit::record(
                &actor,
                Event {
                    action: "container.manipulation_decided",
                    serial: Some(&serial),
                    details: serde_json::json!({"decision": req.decision.as_str(),
                        "reason": req.reason, "detected": cont.state_reason,
                        "blacklisted": blacklisted}),
                    ..Default::default()
                },
            )
        })
        .await
}
