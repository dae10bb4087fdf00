//! Lost licenses and vendor control: re-activation, restore, approvals, blacklist,
//! withdraw, replace, split, reset, assignment and the decision about a manipulated
//! container. Every change is one write with its
//! history; licenses in a container change there only through updates and receipts.
mod approvals;
mod control;
mod manipulation;
mod restore;

pub use crate::store::approvals::ApprovalView;
pub use approvals::{decide, list_approvals, DecisionBody};
pub use control::{
    assign, blacklist_add, blacklist_remove, replace, reset, split, withdraw, BlacklistAdd,
    LicenseChange, ReplaceRequest, Replaced, SplitRequest, WithdrawRequest,
};
pub(super) use control::{check_parts, split_in};
pub use manipulation::{decide_manipulation, Decision, ManipulationDecision};
pub use restore::{fingerprint_salt, reactivate, restore, FingerprintSalt};

use super::activation::Refusal;
use super::audit::{self, Event};
use crate::domain::{Actor, LicenseState, ReactivationBehaviour, Role};
use crate::error::{Error, Result};
use crate::store::approvals::{self as stored, Subject};
use crate::store::licenses::{self, Change, LicRow};
use crate::store::{blacklist, containers, firms, withdrawals, Conn};

/// The kinds of approval request.
const REACTIVATION: &str = "reactivation";
const RESTORE: &str = "restore";

pub const CONTROL_ROLES: &[Role] = &[Role::Admin, Role::Sales, Role::Erp];
pub const SUPPORT_ROLES: &[Role] = &[Role::Admin, Role::Support];

/// The firm named by code, or the configured one.
fn firm_id_of(c: &mut Conn, core_default: i64, firm_code: Option<i64>) -> Result<i64> {
    match firm_code {
        None => Ok(core_default),
        Some(code) => Ok(firms::by_code(c, code)?.0),
    }
}

/// Moves a license that is in a container (the old one is gone) into `to` as a new
/// generation, and deals with the old container as `behaviour` says.
fn move_license(
    c: &mut Conn,
    actor: &Actor,
    l: &LicRow,
    to: &str,
    behaviour: ReactivationBehaviour,
    self_service: bool,
    action: &str,
) -> Result<()> {
    if super::cloud::is_cloud(c, l.serial.as_deref())? {
        return Err(Error::NotAllowed(format!(
            "license {} is in cloud container {}, which is never lost: return it from there \
             and activate it again",
            l.id,
            l.serial.as_deref().unwrap_or_default()
        )));
    }
    if actor.role == Role::Customer {
        super::activation::within_limit(c, l)?;
    }
    let old = l.serial.clone().unwrap_or_default();
    let now = super::now();
    let set = Change {
        state: Some(LicenseState::Pending.as_str()),
        serial: Some(Some(to)),
        generation: Some(l.generation + 1),
        self_service_used: Some(l.self_service_used + i32::from(self_service)),
        ..Change::default()
    };
    licenses::change(c, l.id, l.state, l.version, set, now)?;
    match behaviour {
        ReactivationBehaviour::None => {}
        ReactivationBehaviour::Blacklist => {
            let why = format!("license {} was re-activated into container {to}", l.id);
            place_on_blacklist(c, actor, l.firm_id, &old, &why)?;
        }
        ReactivationBehaviour::Withdraw => {
            let cont = containers::get(c, &old)?;
            let reason = format!("re-activated into {to}");
            withdrawals::insert(c, cont.id, l.firm_id, l.id, &reason, now)?;
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

/// Puts a serial on the firm's blacklist (recorded); false if it is there already.
pub(in crate::service) fn place_on_blacklist(
    c: &mut Conn,
    actor: &Actor,
    firm_id: i64,
    serial: &str,
    description: &str,
) -> Result<bool> {
    if !blacklist::place(c, firm_id, serial, description, &actor.name, super::now())? {
        return Ok(false);
    }
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
fn ask_approval(
    c: &mut Conn,
    actor: &Actor,
    support: &str,
    firm_id: i64,
    subject: Subject,
    why: String,
) -> Result<Refusal> {
    match stored::earlier(c, &subject)? {
        Some((id, crate::domain::ApprovalState::Open, _)) => {
            return Ok(Refusal::Error(Error::ApprovalRequired { id, why }))
        }
        Some((id, _, reason)) => {
            return Ok(Refusal::Error(Error::NotAllowed(format!(
                "support denied request {id}: {reason}"
            ))))
        }
        None => {}
    }
    let id = stored::open(c, firm_id, &subject, &why, super::now())?;
    let Subject {
        kind,
        license_id,
        old_serial,
        serial,
    } = subject;
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
