//! Lost licenses and vendor control: re-activation, restore, approvals, blacklist,
//! withdraw, replace, split, reset and assignment. Every change is one write with its
//! history; licenses in a container change there only through updates and receipts.
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::activation::{
    add_activations, after_contact, count_activations, customer_actor, deliver, firm_of, issue,
    issue_required, named_once, open_blacklist_entry, read_request, set_state, ticket_id,
    ContainerRow, Issued, LicRow, Refusal, LIC_SELECT,
};
use super::audit::{self, Event};
use super::catalog::load_settings;
use super::orders::{insert_license, item_by_id, NewLicense};
use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{
    check_id, check_len, license_state as ls, Actor, ContainerType, Interface, ItemOptions,
    ReactivationBehaviour, ReactivationPolicy, Role, Settings, MAX_TEXT,
};
use crate::error::{Error, Result};
use crate::protocol::Trait;
use crate::store::schema::{
    approvals, blacklist, containers, customers, events, items, licenses, order_lines, withdrawals,
};
use crate::store::{is_unique_violation, Conn};

/// Approval states.
pub mod approval_state {
    pub const OPEN: &str = "open";
    pub const APPROVED: &str = "approved";
    pub const DENIED: &str = "denied";
}
use approval_state as aps;

const REACTIVATION: &str = "reactivation";
const RESTORE_REFUSED: &str = "container.restore_refused";
/// Failed restores of one container per 24 hours before support must help.
const MAX_RESTORE_FAILURES: i64 = 5;
const RESTORE: &str = "restore";

const CONTROL_ROLES: &[Role] = &[Role::Admin, Role::Sales, Role::Erp];
const SUPPORT_ROLES: &[Role] = &[Role::Admin, Role::Support];

pub(super) fn container_by_serial(c: &mut Conn, serial: &str) -> Result<ContainerRow> {
    containers::table
        .filter(containers::serial.eq(serial))
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("container", serial))
}

fn license_row(c: &mut Conn, id: i64) -> Result<LicRow> {
    licenses::table
        .inner_join(items::table)
        .filter(licenses::id.eq(id))
        .select(LIC_SELECT)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("license", id))
}

/// The firm named by code, or the configured one.
fn firm_id_of(c: &mut Conn, core_default: i64, firm_code: Option<i64>) -> Result<i64> {
    match firm_code {
        None => Ok(core_default),
        Some(code) => Ok(firm_of(c, code)?.0),
    }
}

/// What the policy says about one re-activation.
enum Decision {
    /// The customer may do it alone (it uses one of the license's self-service count).
    SelfService,
    Approval(String),
    Never(String),
}

fn reactivation_decision(
    s: &Settings,
    o: &ItemOptions,
    l: &LicRow,
    now: chrono::NaiveDateTime,
) -> Decision {
    let policy = o.reactivation.unwrap_or(s.reactivation);
    let blocking = o.blocking_period_days.unwrap_or(s.blocking_period_days);
    let count = o.self_service_count.unwrap_or(s.self_service_count);
    match policy {
        ReactivationPolicy::Never => {
            return Decision::Never(format!("license {} may not be re-activated", l.id))
        }
        ReactivationPolicy::Approval => {
            return Decision::Approval(format!(
                "re-activating license {} needs support's approval",
                l.id
            ))
        }
        ReactivationPolicy::AfterBlockingPeriod => {
            // Not confirmed where it is (pending, also after a move whose receipt has not
            // come, which keeps the previous generation's date): the period starts now.
            let at = match l.state.as_str() {
                ls::PENDING => now,
                _ => l.activated_at.unwrap_or(now),
            };
            let until = at + chrono::Duration::days(i64::from(blocking));
            if now < until {
                return Decision::Approval(format!(
                    "license {} was activated at {at}; its blocking period of {blocking} days \
                     ends at {until}",
                    l.id
                ));
            }
        }
        ReactivationPolicy::Allowed => {}
    }
    if l.self_service_used as u32 >= count {
        return Decision::Approval(format!(
            "license {} has used its {count} self-service re-activation(s)",
            l.id
        ));
    }
    Decision::SelfService
}

fn behaviour_of(s: &Settings, o: &ItemOptions) -> ReactivationBehaviour {
    o.reactivation_behaviour.unwrap_or(s.reactivation_behaviour)
}

/// Moves a license that is in a container (the old one is gone) into `to` as a new
/// generation, and deals with the old container as `behaviour` says.
#[allow(clippy::too_many_arguments)]
fn move_license(
    c: &mut Conn,
    actor: &Actor,
    l: &LicRow,
    to: &str,
    behaviour: ReactivationBehaviour,
    self_service: bool,
    action: &str,
) -> Result<()> {
    let old = l.serial.clone().unwrap_or_default();
    let n = diesel::update(
        licenses::table
            .filter(licenses::id.eq(l.id))
            .filter(licenses::state.eq(&l.state))
            .filter(licenses::version.eq(l.version)),
    )
    .set((
        licenses::state.eq(ls::PENDING),
        licenses::serial.eq(Some(to)),
        licenses::generation.eq(l.generation + 1),
        licenses::version.eq(l.version + 1),
        licenses::self_service_used.eq(l.self_service_used + i32::from(self_service)),
        licenses::updated_at.eq(super::now()),
    ))
    .execute(c)?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "license {} was changed by another request at the same time",
            l.id
        )));
    }
    match behaviour {
        ReactivationBehaviour::None => {}
        ReactivationBehaviour::Blacklist => {
            place_on_blacklist(
                c,
                actor,
                l.firm_id,
                &old,
                &format!("license {} was re-activated into container {to}", l.id),
            )?;
        }
        ReactivationBehaviour::Withdraw => {
            let cont = container_by_serial(c, &old)?;
            diesel::insert_into(withdrawals::table)
                .values((
                    withdrawals::container_id.eq(cont.id),
                    withdrawals::firm_id.eq(l.firm_id),
                    withdrawals::license_id.eq(l.id),
                    withdrawals::reason.eq(format!("re-activated into {to}")),
                    withdrawals::created_at.eq(super::now()),
                ))
                .execute(c)?;
        }
    }
    audit::record(
        actor,
        Event {
            action,
            license_id: Some(l.id),
            serial: Some(to),
            details: serde_json::json!({"from": old, "to": to, "generation": l.generation + 1,
                "old_container": behaviour.as_str(), "self_service": self_service}),
            ..Default::default()
        },
    )
}

/// Puts a serial on the firm's blacklist; false if it is there already.
fn place_on_blacklist(
    c: &mut Conn,
    actor: &Actor,
    firm_id: i64,
    serial: &str,
    description: &str,
) -> Result<bool> {
    let open: Option<i64> = blacklist::table
        .filter(blacklist::firm_id.eq(firm_id))
        .filter(blacklist::serial.eq(serial))
        .filter(blacklist::removed_at.is_null())
        .select(blacklist::id)
        .first(c)
        .optional()?;
    if open.is_some() {
        return Ok(false);
    }
    let res = diesel::insert_into(blacklist::table)
        .values((
            blacklist::firm_id.eq(firm_id),
            blacklist::serial.eq(serial),
            blacklist::description.eq(description),
            blacklist::placed_at.eq(super::now()),
            blacklist::placed_by.eq(&actor.name),
        ))
        .execute(c);
    match res {
        Err(e) if is_unique_violation(&e) => return Err(Error::Retry),
        r => r?,
    };
    audit::record(
        actor,
        Event {
            action: "blacklist.added",
            serial: Some(serial),
            details: serde_json::json!({"description": description}),
            ..Default::default()
        },
    )?;
    Ok(true)
}

/// Opens an approval request (or finds the open one for the same thing) and returns the
/// refusal the customer gets; a denied request stays denied.
#[allow(clippy::too_many_arguments)]
fn ask_approval(
    c: &mut Conn,
    actor: &Actor,
    support: &str,
    firm_id: i64,
    kind: &str,
    license_id: Option<i64>,
    old_serial: &str,
    serial: &str,
    why: String,
) -> Result<Refusal> {
    let mut q = approvals::table
        .filter(approvals::kind.eq(kind))
        .filter(approvals::old_serial.eq(old_serial))
        .filter(approvals::serial.eq(serial))
        .filter(approvals::state.eq_any([aps::OPEN, aps::DENIED]))
        .into_boxed();
    if let Some(id) = license_id {
        q = q.filter(approvals::license_id.eq(id));
    }
    let earlier: Option<(i64, String, String)> = q
        .select((approvals::id, approvals::state, approvals::reason))
        .order(approvals::id.desc())
        .first(c)
        .optional()?;
    match earlier {
        Some((id, state, _)) if state == aps::OPEN => {
            return Ok(Refusal::Error(Error::ApprovalRequired { id, why }))
        }
        Some((id, _, reason)) => {
            return Ok(Refusal::Error(Error::NotAllowed(format!(
                "support denied request {id}: {reason}"
            ))))
        }
        None => {}
    }
    let inserted = diesel::insert_into(approvals::table)
        .values((
            approvals::firm_id.eq(firm_id),
            approvals::kind.eq(kind),
            approvals::license_id.eq(license_id),
            approvals::old_serial.eq(old_serial),
            approvals::serial.eq(serial),
            approvals::why.eq(&why),
            approvals::state.eq(aps::OPEN),
            approvals::requested_at.eq(super::now()),
            approvals::reason.eq(""),
        ))
        .returning(approvals::id)
        .get_result::<i64>(c);
    // The same request from another writer at the same time: run again and find it.
    let id = match inserted {
        Err(e) if is_unique_violation(&e) => return Err(Error::Retry),
        r => r?,
    };
    if !support.is_empty() {
        super::mail::enqueue(
            c,
            super::mail::NewMail {
                kind: "approval_request",
                recipient: support,
                locale: "en",
                params: serde_json::json!({"approval_id": id, "kind": kind,
                    "license_id": license_id, "old_serial": old_serial, "serial": serial,
                    "why": why}),
                attachment: None,
            },
        )?;
    }
    audit::record(
        actor,
        Event {
            action: "approval.requested",
            license_id,
            serial: Some(serial),
            details: serde_json::json!({"approval_id": id, "kind": kind,
                "old_serial": old_serial, "why": why}),
            ..Default::default()
        },
    )?;
    Ok(Refusal::Error(Error::ApprovalRequired { id, why }))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactivateRequest {
    pub ticket: String,
    /// Licenses of the ticket activated in a container that is gone.
    pub licenses: Vec<i64>,
    /// The new container's armoured request.
    pub request: String,
}

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
            let tid = ticket_id(c, &code)?;
            let now = super::now();
            let serial = k.cont.serial.clone();
            let mut plan = vec![];
            let mut refusal = None;
            for id in &req.licenses {
                let l = license_row(c, *id)?;
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
                let kind = ContainerType::parse(&k.cont.kind)?;
                if !o.container_types.contains(&kind) {
                    return Err(Error::NotAllowed(format!(
                        "license {id} cannot go into a {} container",
                        k.cont.kind
                    )));
                }
                match (l.state.as_str(), l.serial.as_deref()) {
                    // A retried re-activation (or one support approved): the update carries it.
                    (ls::PENDING, Some(s)) if s == serial => continue,
                    (ls::ACTIVATED, Some(s)) if s == serial => {
                        return Err(Error::Conflict(format!(
                            "license {id} is already activated in container {serial}"
                        )))
                    }
                    (ls::PENDING | ls::ACTIVATED, Some(_)) => {}
                    (state, _) => {
                        return Err(Error::Conflict(format!(
                            "license {id} is {state}; only a license in another container can be \
                         re-activated (activate an available one)"
                        )))
                    }
                }
                match reactivation_decision(&k.settings, &o, &l, now) {
                    Decision::Never(why) => return Err(Error::NotAllowed(why)),
                    Decision::Approval(why) => {
                        let old = l.serial.clone().unwrap_or_default();
                        let r = ask_approval(
                            c,
                            actor,
                            &support,
                            k.firm_id,
                            REACTIVATION,
                            Some(l.id),
                            &old,
                            &serial,
                            why,
                        )?;
                        refusal.get_or_insert(r);
                    }
                    Decision::SelfService => plan.push((l, behaviour_of(&k.settings, &o))),
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
            issue_required(c, actor, k, ctx).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// The salt an `act` container's fingerprint traits are hashed with, for a restore on the
/// same computer: derived from the container's public key, so the server can tell it.
pub async fn fingerprint_salt(core: &Core, serial: String) -> Result<serde_json::Value> {
    core.db
        .read(move |c| {
            let cont = container_by_serial(c, &serial)?;
            if cont.kind != ContainerType::Act.as_str() {
                return Err(Error::NotAllowed(format!(
                    "container {serial} is a {} container; only act containers are restored",
                    cont.kind
                )));
            }
            Ok(serde_json::json!({"serial": serial,
                "salt": crate::protocol::fingerprint_salt(&cont.public_key)}))
        })
        .await
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The container that was lost with the reinstall.
    pub old_serial: String,
    /// The new container's armoured request.
    pub request: String,
    /// This computer's traits hashed with the old container's salt.
    pub traits: Vec<Trait>,
}

/// Restore: the same computer after a reinstall (recognised by fingerprint tolerance) gets
/// a new container with every license of the old one; the old one is blacklisted.
pub async fn restore(core: &Core, interface: Interface, req: RestoreRequest) -> Result<Issued> {
    check_id("old_serial", &req.old_serial)?;
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
            let old = container_by_serial(c, &req.old_serial)?;
            if old.id == k.cont.id {
                return Err(Error::invalid(
                    "old_serial",
                    "the container cannot restore itself",
                ));
            }
            if old.kind != ContainerType::Act.as_str() {
                return Err(Error::NotAllowed(format!(
                    "container {} is a {} container; only act containers are restored",
                    old.serial, old.kind
                )));
            }
            // Restoring moves the licenses out of the old container: not past the vendor's
            // blacklist or a manipulation a person has to look at. A blacklist entry this
            // very restore made is a retry whose answer was lost: the update again.
            match open_blacklist_entry(c, k.firm_id, &old.serial)? {
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
            if old.state == crate::domain::container_state::MANIPULATED {
                return Err(Error::NotAllowed(format!(
                    "container {} is marked as manipulated, so its licenses are not restored \
                     until support has decided; ask support",
                    old.serial
                )));
            }
            let now = super::now();
            let failed: i64 = events::table
                .filter(events::serial.eq(&old.serial))
                .filter(events::action.eq(RESTORE_REFUSED))
                .filter(events::at.gt(now - chrono::Duration::days(1)))
                .count()
                .get_result(c)?;
            if failed >= MAX_RESTORE_FAILURES {
                return Err(Error::NotAllowed(format!(
                    "{failed} restores of container {} failed in the last 24 hours; ask support",
                    old.serial
                )));
            }
            let stored: Vec<Trait> = serde_json::from_str(&old.fingerprint)
                .map_err(|e| Error::internal(format!("container fingerprint: {e}")))?;
            // One hash per stored trait name, compared one to one.
            let changed = stored
                .iter()
                .filter(|t| {
                    let mut given = req.traits.iter().filter(|g| g.name == t.name);
                    !matches!((given.next(), given.next()), (Some(g), None) if g.hash == t.hash)
                })
                .count();
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
            match k.settings.restore {
                ReactivationPolicy::Never => {
                    return Err(Error::NotAllowed(
                        "restoring containers is not allowed".into(),
                    ))
                }
                ReactivationPolicy::AfterBlockingPeriod => {
                    let last: Option<chrono::NaiveDateTime> = licenses::table
                        .filter(licenses::serial.eq(&old.serial))
                        .select(diesel::dsl::max(licenses::activated_at))
                        .first(c)?;
                    let since = last.unwrap_or(old.created_at);
                    let days = k.settings.blocking_period_days;
                    let until = since + chrono::Duration::days(i64::from(days));
                    if now < until {
                        let why = format!(
                            "container {} was last activated at {since}; restoring it is allowed \
                         after the blocking period of {days} days, at {until}",
                            old.serial
                        );
                        let r = ask_approval(
                            c,
                            actor,
                            &support,
                            k.firm_id,
                            RESTORE,
                            None,
                            &old.serial,
                            &k.cont.serial,
                            why,
                        )?;
                        return Ok(Err(r));
                    }
                }
                _ => {}
            }
            restore_into(c, actor, k.firm_id, &old, &k.cont.serial)?;
            issue_required(c, actor, k, ctx).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// The blacklist description of a container restored into `to`.
fn restored_into(to: &str) -> String {
    format!("restored into container {to}")
}

/// Moves every license of the firm in `old` into `to` and blacklists `old`.
fn restore_into(
    c: &mut Conn,
    actor: &Actor,
    firm_id: i64,
    old: &ContainerRow,
    to: &str,
) -> Result<()> {
    let rows: Vec<LicRow> = licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(&old.serial))
        .filter(licenses::firm_id.eq(firm_id))
        .filter(licenses::state.eq_any([ls::PENDING, ls::ACTIVATED]))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?;
    if rows.is_empty() {
        return Err(Error::Conflict(format!(
            "container {} holds no licenses to restore",
            old.serial
        )));
    }
    for l in &rows {
        move_license(
            c,
            actor,
            l,
            to,
            ReactivationBehaviour::None,
            false,
            "license.restored",
        )?;
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

/// An approval request; the fields in the table's column order.
#[derive(Debug, Serialize, Queryable)]
pub struct ApprovalView {
    pub approval_id: i64,
    #[serde(skip)]
    firm_id: i64,
    pub kind: String,
    pub license_id: Option<i64>,
    pub old_serial: String,
    pub serial: String,
    pub why: String,
    pub state: String,
    pub requested_at: chrono::NaiveDateTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::NaiveDateTime>,
    pub reason: String,
}

pub async fn list_approvals(
    core: &Core,
    actor: &Actor,
    state: Option<String>,
) -> Result<Vec<ApprovalView>> {
    actor.require(SUPPORT_ROLES, "read approval requests")?;
    core.db
        .read(move |c| {
            let mut q = approvals::table.select(approvals::all_columns).into_boxed();
            if let Some(s) = &state {
                q = q.filter(approvals::state.eq(s.clone()));
            }
            Ok(q.order(approvals::id.asc()).limit(10_000).load(c)?)
        })
        .await
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    pub reason: String,
}

/// Approves (and carries out) or denies an open approval request. An approved
/// re-activation or restore is made at once; the customer's next contact brings it.
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
            let a: ApprovalView = approvals::table
                .filter(approvals::id.eq(id))
                .select(approvals::all_columns)
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("approval", id))?;
            if a.state != aps::OPEN {
                return Err(Error::Conflict(format!(
                    "approval request {id} is {} already",
                    a.state
                )));
            }
            let firm_id = a.firm_id;
            if approve {
                let target = container_by_serial(c, &a.serial)?;
                if target.state != crate::domain::container_state::ACTIVE {
                    return Err(Error::Conflict(format!(
                        "container {} is {}",
                        target.serial, target.state
                    )));
                }
                let listed: i64 = blacklist::table
                    .filter(blacklist::firm_id.eq(firm_id))
                    .filter(blacklist::serial.eq(&a.serial))
                    .filter(blacklist::removed_at.is_null())
                    .count()
                    .get_result(c)?;
                if listed > 0 {
                    return Err(Error::Conflict(format!(
                        "container {} is blacklisted; deny the request",
                        a.serial
                    )));
                }
                match (a.kind.as_str(), a.license_id) {
                    (REACTIVATION, Some(lid)) => {
                        let l = license_row(c, lid)?;
                        let here = l.serial.as_deref() == Some(a.old_serial.as_str());
                        if !here || !(l.state == ls::ACTIVATED || l.state == ls::PENDING) {
                            return Err(Error::Conflict(format!(
                                "license {lid} is no longer in container {} ({})",
                                a.old_serial, l.state
                            )));
                        }
                        let settings = load_settings(c, firm_id)?;
                        let behaviour = behaviour_of(&settings, &l.options()?);
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
                        let old = container_by_serial(c, &a.old_serial)?;
                        restore_into(c, &actor, firm_id, &old, &a.serial)?;
                    }
                    _ => return Err(Error::internal(format!("approval {id}: kind {}", a.kind))),
                }
            }
            let state = if approve { aps::APPROVED } else { aps::DENIED };
            let now = super::now();
            let n = diesel::update(
                approvals::table
                    .filter(approvals::id.eq(id))
                    .filter(approvals::state.eq(aps::OPEN)),
            )
            .set((
                approvals::state.eq(state),
                approvals::decided_by.eq(Some(&actor.name)),
                approvals::decided_at.eq(Some(now)),
                approvals::reason.eq(&reason),
            ))
            .execute(c)?;
            if n == 0 {
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
                state: state.into(),
                decided_by: Some(actor.name.clone()),
                decided_at: Some(now),
                reason: reason.clone(),
                ..a
            })
        })
        .await
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistAdd {
    pub serial: String,
    pub description: String,
    pub firm_code: Option<i64>,
}

/// Blacklists a container serial (known or not yet seen): on its next contact it gets the
/// lock update, and every other action is refused.
pub async fn blacklist_add(core: &Core, actor: &Actor, req: BlacklistAdd) -> Result<()> {
    actor.require(SUPPORT_ROLES, "blacklist containers")?;
    check_id("serial", &req.serial)?;
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
            let n = diesel::update(
                blacklist::table
                    .filter(blacklist::firm_id.eq(firm_id))
                    .filter(blacklist::serial.eq(&serial))
                    .filter(blacklist::removed_at.is_null()),
            )
            .set((
                blacklist::removed_at.eq(Some(super::now())),
                blacklist::removed_by.eq(Some(&actor.name)),
                blacklist::removed_reason.eq(Some(&reason)),
            ))
            .execute(c)?;
            if n == 0 {
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
#[derive(Debug, Serialize)]
pub struct LicenseChange {
    pub license_id: i64,
    pub state: String,
    pub serial: Option<String>,
}

fn withdraw_one(
    c: &mut Conn,
    actor: &Actor,
    l: &LicRow,
    action: &str,
    details: serde_json::Value,
) -> Result<LicenseChange> {
    let (to, serial) = match l.state.as_str() {
        ls::AVAILABLE => (ls::DELETED, None),
        ls::PENDING | ls::ACTIVATED => (ls::WITHDRAWING, l.serial.clone()),
        ls::WITHDRAWING | ls::DELETED => {
            return Ok(LicenseChange {
                license_id: l.id,
                state: l.state.clone(),
                serial: l.serial.clone(),
            })
        }
        state => {
            return Err(Error::Conflict(format!(
                "license {} is {state}; withdraw it when the return is confirmed",
                l.id
            )))
        }
    };
    set_state(c, l, to, serial.clone())?;
    audit::record(
        actor,
        Event {
            action,
            license_id: Some(l.id),
            serial: serial.as_deref(),
            details,
            ..Default::default()
        },
    )?;
    Ok(LicenseChange {
        license_id: l.id,
        state: to.into(),
        serial,
    })
}

#[derive(Debug, Clone, Deserialize)]
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
                let l = license_row(c, *id)?;
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    pub license_id: i64,
    /// The item whose license takes the old one's place.
    pub item_id: String,
}

#[derive(Debug, Serialize)]
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
            let l = license_row(c, req.license_id)?;
            let item = item_by_id(c, &req.item_id)?;
            let (item_pk, firm_id, product_code, options) =
                (item.pk, item.firm_id, item.product_code, item.options);
            let (kind, active) = (item.kind, item.active);
            if kind != "license" || !active {
                return Err(Error::invalid(
                    "item_id",
                    format!("{} is not a license item for sale", req.item_id),
                ));
            }
            let in_container = l.state == ls::PENDING || l.state == ls::ACTIVATED;
            if in_container {
                if firm_id != l.firm_id {
                    return Err(Error::invalid(
                        "item_id",
                        "the new item must have the firm code of the license it replaces",
                    ));
                }
                let cont = container_by_serial(c, l.serial.as_deref().unwrap_or_default())?;
                let o: ItemOptions = serde_json::from_str(&options)
                    .map_err(|e| Error::internal(format!("item options: {e}")))?;
                if !o
                    .container_types
                    .contains(&ContainerType::parse(&cont.kind)?)
                {
                    return Err(Error::NotAllowed(format!(
                        "{} cannot go into a {} container",
                        req.item_id, cont.kind
                    )));
                }
            } else if l.state != ls::AVAILABLE {
                return Err(Error::Conflict(format!(
                    "license {} is {} and cannot be replaced",
                    l.id, l.state
                )));
            }
            let order_id: i64 = order_lines::table
                .filter(
                    order_lines::id.eq(licenses::table
                        .filter(licenses::id.eq(l.id))
                        .select(licenses::order_line_id)
                        .single_value()
                        .assume_not_null()),
                )
                .select(order_lines::order_id)
                .first(c)?;
            let line_id: i64 = diesel::insert_into(order_lines::table)
                .values((
                    order_lines::order_id.eq(order_id),
                    order_lines::batch_key.eq(format!("replace-{}", l.id)),
                    order_lines::position.eq(1),
                    order_lines::item_id.eq(item_pk),
                    order_lines::quantity.eq(1),
                ))
                .returning(order_lines::id)
                .get_result(c)?;
            let (state, serial) = if in_container {
                (ls::PENDING, l.serial.as_deref())
            } else {
                (ls::AVAILABLE, None)
            };
            let new_id = insert_license(
                c,
                &NewLicense {
                    ticket_id: l.ticket_id,
                    order_line_id: line_id,
                    item_pk,
                    firm_id,
                    product_code,
                    options: &options,
                    state,
                    serial,
                },
                super::now(),
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
                    state: state.into(),
                    serial: serial.map(str::to_string),
                },
            })
        })
        .await
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub license_id: i64,
    /// The quantities of the new licenses; they add up to the license's quantity.
    pub quantities: Vec<u32>,
}

/// Splits an available license of quantity n into licenses whose quantities add up to n.
pub async fn split(core: &Core, actor: &Actor, req: SplitRequest) -> Result<Vec<i64>> {
    actor.require(&[Role::Admin, Role::Sales, Role::Support], "split licenses")?;
    if req.quantities.len() < 2 || req.quantities.len() > 1000 {
        return Err(Error::invalid(
            "quantities",
            "split into 2 to 1000 licenses",
        ));
    }
    if req.quantities.contains(&0) {
        return Err(Error::invalid(
            "quantities",
            "every part needs a quantity of at least 1",
        ));
    }
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let l = license_row(c, req.license_id)?;
            if l.state != ls::AVAILABLE {
                return Err(Error::Conflict(format!(
                    "license {} is {}; only an available license can be split",
                    l.id, l.state
                )));
            }
            let o = l.options()?;
            let total: u64 = req.quantities.iter().map(|q| u64::from(*q)).sum();
            if total != u64::from(o.license_quantity) {
                return Err(Error::invalid(
                    "quantities",
                    format!(
                        "they add up to {total}, but license {} has quantity {}",
                        l.id, o.license_quantity
                    ),
                ));
            }
            let (line_id, item_pk): (i64, i64) = licenses::table
                .filter(licenses::id.eq(l.id))
                .select((licenses::order_line_id, licenses::item_id))
                .first(c)?;
            let now = super::now();
            let mut ids = vec![];
            for q in &req.quantities {
                let part = ItemOptions {
                    license_quantity: *q,
                    ..o.clone()
                };
                let options = serde_json::to_string(&part).expect("options");
                ids.push(insert_license(
                    c,
                    &NewLicense {
                        ticket_id: l.ticket_id,
                        order_line_id: line_id,
                        item_pk,
                        firm_id: l.firm_id,
                        product_code: l.product_code,
                        options: &options,
                        state: ls::AVAILABLE,
                        serial: None,
                    },
                    now,
                )?);
            }
            set_state(c, &l, ls::DELETED, None)?;
            audit::record(
                &actor,
                Event {
                    action: "license.split",
                    license_id: Some(l.id),
                    details: serde_json::json!({"into": ids, "quantities": req.quantities}),
                    ..Default::default()
                },
            )?;
            Ok(ids)
        })
        .await
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
    let actor = actor.clone();
    let default = core.default_firm.id;
    core.db
        .write(move |c| {
            let firm_id = firm_id_of(c, default, firm_code)?;
            let cont = container_by_serial(c, &serial)?;
            let rows: Vec<LicRow> = licenses::table
                .inner_join(items::table)
                .filter(licenses::serial.eq(&serial))
                .filter(licenses::firm_id.eq(firm_id))
                .select(LIC_SELECT)
                .load(c)?;
            let now = super::now();
            let mut ids = vec![];
            for l in &rows {
                set_state(c, l, ls::DELETED, None)?;
                diesel::insert_into(withdrawals::table)
                    .values((
                        withdrawals::container_id.eq(cont.id),
                        withdrawals::firm_id.eq(firm_id),
                        withdrawals::license_id.eq(l.id),
                        withdrawals::reason.eq("container reset"),
                        withdrawals::created_at.eq(now),
                    ))
                    .execute(c)?;
                ids.push(l.id);
            }
            diesel::update(containers::table.filter(containers::id.eq(cont.id)))
                .set((
                    containers::customer_id.eq(None::<i64>),
                    containers::updated_at.eq(now),
                ))
                .execute(c)?;
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

/// Assigns a container to a customer.
pub async fn assign(core: &Core, actor: &Actor, serial: String, customer_id: String) -> Result<()> {
    actor.require(SUPPORT_ROLES, "assign containers")?;
    check_id("customer_id", &customer_id)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let cont = container_by_serial(c, &serial)?;
            let cust: i64 = customers::table
                .filter(customers::external_id.eq(&customer_id))
                .select(customers::id)
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("customer", &customer_id))?;
            diesel::update(containers::table.filter(containers::id.eq(cont.id)))
                .set((
                    containers::customer_id.eq(Some(cust)),
                    containers::updated_at.eq(super::now()),
                ))
                .execute(c)?;
            audit::record(
                &actor,
                Event {
                    action: "container.assigned",
                    serial: Some(&serial),
                    details: serde_json::json!({"customer_id": customer_id,
                        "previous": cont.customer_id}),
                    ..Default::default()
                },
            )
        })
        .await
}
