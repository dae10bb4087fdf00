//! Lost containers: re-activation of licenses from a container that is gone into the one
//! asking, and restore of a whole `act` container on the same computer after a reinstall.
//! What the policy allows is `domain::reactivation`; what it does not becomes an approval
//! request.
use super::{ask_approval, move_license, place_on_blacklist, REACTIVATION, RESTORE};
use crate::domain::reactivation::{self, changed_traits, Decision, RestoreDecision};
use crate::domain::ticket::TicketCode;
use crate::domain::{
    check_serial, Actor, ContainerState, ContainerType, Interface, LicenseState,
    ReactivationBehaviour, ReactivationPolicy,
};
use crate::error::{Error, Result};
use crate::protocol::{Issued, ReactivateRequest, RestoreRequest, Trait};
use crate::service::activation::{
    after_contact, count_activations, customer_actor, deliver, for_customers, issue,
    issue_required, issue_with, named_once, read_request, required, Refusal,
};
use crate::service::audit::{self, Event};
use crate::service::Core;
use crate::store::approvals::Subject;
use crate::store::containers::{self, ContainerRow};
use crate::store::{blacklist, history, licenses, tickets, Conn};

const RESTORE_REFUSED: &str = "container.restore_refused";
/// Failed restores of one container per 24 hours before support must help.
const MAX_RESTORE_FAILURES: i64 = 5;

/// Re-activation: licenses of a ticket that sit in a lost container are activated into
/// the requesting container as a new generation, without a return, as the policy allows.
pub async fn reactivate(
    core: &Core,
    interface: Interface,
    req: ReactivateRequest,
) -> Result<Issued> {
    let code = TicketCode::parse(&req.ticket)?;
    let ctx = read_request(&req.request)?;
    if req.licenses.is_empty() || req.licenses.len() > 1000 {
        return Err(Error::invalid(
            "licenses",
            "name 1 to 1000 licenses to re-activate",
        ));
    }
    named_once(&req.licenses)?;
    let actor = customer_actor(format!("ticket:{}", code.as_stored()), interface);
    let support = core.config.support_email.clone();
    let out = after_contact(
        core,
        actor,
        ctx,
        "reactivate",
        true,
        move |c, actor, ctx, k| {
            let (tid, ticket) = tickets::find(c, &code)?;
            for_customers(&code, ticket)?;
            let now = crate::service::now();
            let serial = k.cont.serial.clone();
            let mut plan = vec![];
            let mut refusal = None;
            for id in &req.licenses {
                let l = licenses::find(c, *id)?;
                if l.ticket_id != tid {
                    return Err(Error::not_found("license", id));
                }
                if l.firm_id != k.firm_id {
                    return Err(Error::invalid(
                        "licenses",
                        format!("license {id} belongs to another firm code than the request"),
                    ));
                }
                let o = l.options()?;
                if !o.container_types.contains(&k.cont.kind) {
                    return Err(Error::NotAllowed(format!(
                        "license {id} cannot go into a {} container",
                        k.cont.kind.as_str()
                    )));
                }
                match (l.state, l.serial.as_deref()) {
                    // A retried re-activation (or one support approved): the update carries it.
                    (LicenseState::Pending, Some(s)) if s == serial => continue,
                    (LicenseState::Activated, Some(s)) if s == serial => {
                        return Err(Error::Conflict(format!(
                            "license {id} is already activated in container {serial}"
                        )))
                    }
                    (LicenseState::Pending | LicenseState::Activated, Some(_)) => {}
                    (state, _) => {
                        return Err(Error::Conflict(format!(
                            "license {id} is {state}; only a license in another container can \
                             be re-activated (activate an available one)"
                        )))
                    }
                }
                match reactivation::reactivation(&k.settings, &o, &l.facts(), now) {
                    Decision::Never(why) => return Err(Error::NotAllowed(why)),
                    Decision::Approval(why) => {
                        let old = l.serial.clone().unwrap_or_default();
                        let subject = Subject {
                            kind: REACTIVATION,
                            license_id: Some(l.id),
                            old_serial: &old,
                            serial: &serial,
                        };
                        let r = ask_approval(c, actor, &support, k.firm_id, subject, why)?;
                        refusal.get_or_insert(r);
                    }
                    Decision::SelfService => {
                        let behaviour = reactivation::behaviour(&k.settings, &o);
                        plan.push((l, behaviour));
                    }
                }
            }
            if let Some(r) = refusal {
                return Ok(Err(r));
            }
            if let Err(r) = count_activations(c, actor, k, ctx.firm_code, plan.len())? {
                return Ok(Err(r));
            }
            for (l, behaviour) in &plan {
                move_license(
                    c,
                    actor,
                    l,
                    &serial,
                    *behaviour,
                    true,
                    "license.reactivated",
                )?;
            }
            let named = Some(req.licenses.as_slice());
            required(issue_with(c, actor, k, ctx, None, named)?).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// A container's serial and the salt its fingerprint traits are hashed with.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct FingerprintSalt {
    pub serial: String,
    pub salt: String,
}

/// The salt an `act` container's fingerprint traits are hashed with, for a restore on the
/// same computer: derived from the container's public key, so the server can tell it.
pub async fn fingerprint_salt(core: &Core, serial: String) -> Result<FingerprintSalt> {
    check_serial("serial", &serial)?;
    core.db
        .read(move |c| {
            let cont = containers::get(c, &serial)?;
            if cont.kind != ContainerType::Act {
                return Err(Error::NotAllowed(format!(
                    "container {serial} is a {} container; only act containers are restored",
                    cont.kind.as_str()
                )));
            }
            Ok(FingerprintSalt {
                salt: crate::protocol::fingerprint_salt(&cont.public_key),
                serial,
            })
        })
        .await
}

/// Restore: the same computer after a reinstall (recognised by fingerprint tolerance) gets
/// a new container with every license of the old one; the old one is blacklisted.
pub async fn restore(core: &Core, interface: Interface, req: RestoreRequest) -> Result<Issued> {
    check_serial("old_serial", &req.old_serial)?;
    let ctx = read_request(&req.request)?;
    if ctx.container_type != ContainerType::Act {
        return Err(Error::NotAllowed(
            "only act containers are restored; a dongle keeps its licenses".into(),
        ));
    }
    if req.traits.is_empty() || req.traits.len() > 16 {
        return Err(Error::invalid("traits", "between 1 and 16 traits"));
    }
    let actor = customer_actor(format!("container:{}", req.old_serial), interface);
    let support = core.config.support_email.clone();
    let out = after_contact(
        core,
        actor,
        ctx,
        "restore",
        true,
        move |c, actor, ctx, k| {
            let old = containers::get(c, &req.old_serial)?;
            if old.id == k.cont.id {
                return Err(Error::invalid(
                    "old_serial",
                    "the container cannot restore itself",
                ));
            }
            if old.kind != ContainerType::Act {
                return Err(Error::NotAllowed(format!(
                    "container {} is a {} container; only act containers are restored",
                    old.serial,
                    old.kind.as_str()
                )));
            }
            // Restoring moves the licenses out of the old container: not past the vendor's
            // blacklist or a manipulation a person has to look at. A blacklist entry this
            // very restore made is a retry whose answer was lost: the update again.
            match blacklist::open_entry(c, k.firm_id, &old.serial)? {
                Some(d) if d == restored_into(&k.cont.serial) => {
                    return match issue(c, actor, k, ctx)? {
                        Some(update) => Ok(Ok(update)),
                        None => Err(Error::Conflict(format!(
                            "container {} was restored into {} already, and the update was \
                             applied",
                            old.serial, k.cont.serial
                        ))),
                    };
                }
                Some(_) => {
                    return Err(Error::NotAllowed(format!(
                        "container {} is on the blacklist, so its licenses are not restored; \
                         ask support",
                        old.serial
                    )))
                }
                None => {}
            }
            if old.state == ContainerState::Manipulated {
                return Err(Error::NotAllowed(format!(
                    "container {} is marked as manipulated, so its licenses are not restored \
                     until support has decided; ask support",
                    old.serial
                )));
            }
            let now = crate::service::now();
            let since = now - chrono::Duration::days(1);
            let failed = history::count_since(c, &old.serial, RESTORE_REFUSED, since)?;
            if failed >= MAX_RESTORE_FAILURES {
                return Err(Error::NotAllowed(format!(
                    "{failed} restores of container {} failed in the last 24 hours; ask support",
                    old.serial
                )));
            }
            let stored: Vec<Trait> = serde_json::from_str(&old.fingerprint)
                .map_err(|e| Error::internal(format!("container fingerprint: {e}")))?;
            let changed = changed_traits(&pairs(&stored), &pairs(&req.traits));
            let tolerance = k.settings.fingerprint_tolerance as usize;
            if changed > tolerance {
                audit::record(
                    actor,
                    Event {
                        action: RESTORE_REFUSED,
                        serial: Some(&old.serial),
                        details: serde_json::json!({"into": k.cont.serial, "differ": changed}),
                        ..Default::default()
                    },
                )?;
                return Ok(Err(Refusal::Error(Error::NotAllowed(format!(
                    "{changed} of {} machine traits differ from container {}'s (at most \
                     {tolerance} may): this is not the same computer",
                    stored.len(),
                    old.serial
                )))));
            }
            // The blocking period counts from the old container's last activation (asked only
            // when the policy has a blocking period).
            let since = match k.settings.restore {
                ReactivationPolicy::AfterBlockingPeriod => {
                    licenses::last_activation_in(c, &old.serial)?.unwrap_or(old.created_at)
                }
                _ => old.created_at,
            };
            match reactivation::restore(&k.settings, &old.serial, since, now) {
                RestoreDecision::Never => {
                    return Err(Error::NotAllowed(
                        "restoring containers is not allowed".into(),
                    ))
                }
                RestoreDecision::Approval(why) => {
                    let subject = Subject {
                        kind: RESTORE,
                        license_id: None,
                        old_serial: &old.serial,
                        serial: &k.cont.serial,
                    };
                    return Ok(Err(ask_approval(
                        c, actor, &support, k.firm_id, subject, why,
                    )?));
                }
                RestoreDecision::Allowed => {}
            }
            restore_into(c, actor, k.firm_id, &old, &k.cont.serial)?;
            issue_required(c, actor, k, ctx).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// Machine traits as (name, hash) pairs.
fn pairs(traits: &[Trait]) -> Vec<(&str, &str)> {
    traits
        .iter()
        .map(|t| (t.name.as_str(), t.hash.as_str()))
        .collect()
}

/// The blacklist description of a container restored into `to`.
fn restored_into(to: &str) -> String {
    format!("restored into container {to}")
}

/// Moves every license of the firm in `old` into `to` and blacklists `old`.
pub(super) fn restore_into(
    c: &mut Conn,
    actor: &Actor,
    firm_id: i64,
    old: &ContainerRow,
    to: &str,
) -> Result<()> {
    let rows = licenses::in_container(
        c,
        &old.serial,
        firm_id,
        &[LicenseState::Pending, LicenseState::Activated],
    )?;
    if rows.is_empty() {
        return Err(Error::Conflict(format!(
            "container {} holds no licenses to restore",
            old.serial
        )));
    }
    for l in &rows {
        let none = ReactivationBehaviour::None;
        move_license(c, actor, l, to, none, false, "license.restored")?;
    }
    place_on_blacklist(c, actor, firm_id, &old.serial, &restored_into(to))?;
    let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
    audit::record(
        actor,
        Event {
            action: "container.restored",
            serial: Some(&old.serial),
            details: serde_json::json!({"into": to, "licenses": ids}),
            ..Default::default()
        },
    )
}
