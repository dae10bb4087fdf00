//! The offline transfer in three steps, as the portal runs it: the customer uploads the
//! request file their container wrote, downloads the update file the server made for it,
//! and uploads the receipt file the container wrote after applying it. Each step calls the
//! service function the activation gateway calls (activate, return, re-activate, automatic
//! updates, receipt); the portal adds which tickets the session may use, the binding the
//! customer chose and the conditions they accepted. The update waits in the session between
//! the steps.
use serde::{Deserialize, Serialize};

use super::{keep_flow, start_session, LoginMethod, NewSession, Session};
use crate::domain::{ContainerType, Interface};
use crate::error::{Error, Result};
use crate::protocol::{self, ActivateRequest, Issued, Kind, ReactivateRequest, ReturnRequest};
use crate::service::{activation, lifecycle, Core};
use crate::store::portal as store;

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    Activate,
    Return,
    Reactivate,
    Updates,
    Restore,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Activate => "activate",
            TransferKind::Return => "return",
            TransferKind::Reactivate => "reactivate",
            TransferKind::Updates => "updates",
            TransferKind::Restore => "restore",
        }
    }
}

/// A transfer in progress: the update made for the container, until its receipt came.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    pub kind: TransferKind,
    /// The ticket, shown in groups of five (none for automatic updates).
    pub ticket: Option<String>,
    /// The container the update is for (a new computer container's serial is given here).
    pub serial: String,
    pub firm_code: i64,
    pub update_id: i64,
    pub counter_to: i64,
    /// The licenses the update adds, changes or deletes.
    pub licenses: Vec<i64>,
    /// The update locks the container (it is blacklisted).
    pub locked: bool,
    /// The armoured update: the file the customer downloads.
    pub update: String,
    /// What the receipt proved, once it came.
    pub done: Option<Done>,
}

/// What the receipt of a transfer proved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub counter: i64,
    pub activated: Vec<i64>,
    pub released: Vec<i64>,
    /// The names of those licenses (their items'), by license id.
    #[serde(default)]
    pub names: Vec<(i64, String)>,
}

impl Done {
    /// The name of license `id`, as the page lists it.
    pub fn name_of(&self, id: i64) -> &str {
        self.names
            .iter()
            .find(|(l, _)| *l == id)
            .map_or("", |(_, n)| n.as_str())
    }
}

impl Transfer {
    fn issued(kind: TransferKind, ticket: Option<String>, u: Issued) -> Transfer {
        let mut licenses: Vec<i64> = u
            .added
            .iter()
            .chain(&u.changed)
            .chain(&u.deleted)
            .copied()
            .collect();
        licenses.sort_unstable();
        licenses.dedup();
        Transfer {
            kind,
            ticket,
            serial: u.serial,
            firm_code: u.firm_code,
            update_id: u.update_id,
            counter_to: u.counter_to,
            licenses,
            locked: u.locked,
            update: u.update,
            done: None,
        }
    }

    /// The update file's name, as the gateway names it.
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.lcu", self.serial, self.firm_code, self.counter_to)
    }
}

fn read_request(text: &str) -> Result<protocol::Context> {
    Ok(protocol::read_context(text, Kind::Request)?)
}

/// Activate licenses of a ticket into the container whose request file was uploaded.
pub struct ActivateForm {
    pub ticket: String,
    /// The binding the customer chose (computer or dongle); none when only one was possible.
    pub binding: Option<ContainerType>,
    /// The licenses chosen; none means every available license (activation mode `all`).
    pub licenses: Vec<i64>,
    pub request: String,
}

pub async fn activate(core: &Core, s: &Session, f: ActivateForm) -> Result<Transfer> {
    let code = s.ticket(&f.ticket)?;
    let ctx = read_request(&f.request)?;
    if let Some(binding) = f.binding {
        if ctx.container_type != binding {
            return Err(Error::NotAllowed(format!(
                "the request file comes from a {} container, but the licenses are to be bound \
                 to a {} container",
                ctx.container_type.as_str(),
                binding.as_str()
            )));
        }
    }
    let req = ActivateRequest {
        ticket: code.to_string(),
        licenses: f.licenses,
        request: f.request,
    };
    let u = activation::activate(core, Interface::Portal, req).await?;
    let t = Transfer::issued(TransferKind::Activate, Some(code.to_string()), u);
    keep_flow(core, s, &t).await?;
    Ok(t)
}

/// Return licenses of a ticket from the container whose request file was uploaded.
pub struct ReturnForm {
    pub ticket: String,
    pub licenses: Vec<i64>,
    pub request: String,
}

/// Refuses license ids that are not on the session's ticket `code`.
async fn on_ticket(core: &Core, code: &str, ids: &[i64]) -> Result<()> {
    let wanted = ids.to_vec();
    let found = core
        .db
        .read(move |c| store::tickets_of_licenses(c, &wanted))
        .await?;
    match ids
        .iter()
        .find(|id| !found.iter().any(|(l, t)| l == *id && t == code))
    {
        Some(id) => Err(Error::not_found("license", id)),
        None => Ok(()),
    }
}

pub async fn deactivate(core: &Core, s: &Session, f: ReturnForm) -> Result<Transfer> {
    let code = s.ticket(&f.ticket)?;
    on_ticket(core, code.as_stored(), &f.licenses).await?;
    let req = ReturnRequest {
        licenses: f.licenses,
        request: f.request,
    };
    let u = activation::deactivate(core, Interface::Portal, req).await?;
    let t = Transfer::issued(TransferKind::Return, Some(code.to_string()), u);
    keep_flow(core, s, &t).await?;
    Ok(t)
}

/// Re-activate licenses of a ticket whose container was lost into the container whose
/// request file was uploaded, once the customer accepted the conditions.
pub struct ReactivateForm {
    pub ticket: String,
    pub licenses: Vec<i64>,
    pub request: String,
    /// The customer confirmed that the old container is no longer used and accepted what
    /// happens to it.
    pub conditions_accepted: bool,
}

pub async fn reactivate(core: &Core, s: &Session, f: ReactivateForm) -> Result<Transfer> {
    let code = s.ticket(&f.ticket)?;
    if !f.conditions_accepted {
        return Err(Error::invalid(
            "conditions",
            "accept the conditions for license restoration first",
        ));
    }
    let req = ReactivateRequest {
        ticket: code.to_string(),
        licenses: f.licenses,
        request: f.request,
    };
    let u = lifecycle::reactivate(core, Interface::Portal, req).await?;
    let t = Transfer::issued(TransferKind::Reactivate, Some(code.to_string()), u);
    keep_flow(core, s, &t).await?;
    Ok(t)
}

/// What the automatic updates of a container came to.
pub enum UpdatesOutcome {
    /// An update waits: the transfer goes on; `token` is the cookie of the session made
    /// for a visitor who had none (the container's signed request identified them).
    Waiting {
        transfer: Box<Transfer>,
        token: Option<String>,
    },
    /// Nothing waits for this container.
    Nothing { serial: String },
}

/// The automatic updates waiting for the container whose request file was uploaded; no
/// ticket is needed (the container's signature is the credential). `serial`, if given, is
/// the container the customer means: a request file of another one is refused.
pub async fn pull_updates(
    core: &Core,
    s: Option<&Session>,
    serial: &str,
    request: String,
) -> Result<UpdatesOutcome> {
    let ctx = read_request(&request)?;
    let serial = serial.trim();
    if !serial.is_empty() && serial != ctx.serial {
        return Err(Error::invalid(
            "serial",
            format!(
                "the request file is from container {}, not from {serial}",
                ctx.serial
            ),
        ));
    }
    let Some(u) = activation::pull_updates(core, Interface::Portal, &request).await? else {
        return Ok(UpdatesOutcome::Nothing { serial: ctx.serial });
    };
    let (transfer, token) = kept(core, s, Transfer::issued(TransferKind::Updates, None, u)).await?;
    Ok(UpdatesOutcome::Waiting {
        transfer: Box::new(transfer),
        token,
    })
}

/// Keeps the transfer in the session for its next two steps. A visitor without a session
/// (automatic updates, restore: the container's signed request is the credential) gets one
/// now, which sees no ticket; the token returned is its cookie.
async fn kept(
    core: &Core,
    s: Option<&Session>,
    transfer: Transfer,
) -> Result<(Transfer, Option<String>)> {
    if let Some(s) = s {
        keep_flow(core, s, &transfer).await?;
        return Ok((transfer, None));
    }
    let new = NewSession {
        method: LoginMethod::Container,
        tickets: vec![],
        customer_id: None,
    };
    let (token, session) = start_session(core, new).await?;
    keep_flow(core, &session, &transfer).await?;
    Ok((transfer, Some(token)))
}

/// The salt the traits of the computer whose container `serial` was are hashed with, for
/// its restore (only act containers are restored), and the vendor's firm code its request
/// is for.
pub async fn restore_salt(core: &Core, serial: &str) -> Result<(String, i64)> {
    let serial = serial.trim().to_string();
    let salt = lifecycle::fingerprint_salt(core, serial).await?.salt;
    Ok((salt, core.config.firm_code))
}

/// Restore a container on the same computer (after a reinstall): the new container's
/// request file and this computer's traits hashed with the old container's salt (the
/// traits file, `licentia container traits`). No ticket is needed: the fingerprint proves
/// the computer; the vendor's re-activation policy decides, as for the gateway.
pub struct RestoreForm {
    pub old_serial: String,
    pub request: String,
    pub traits: String,
}

/// The transfer goes on with its second step; the token is the cookie of a session made
/// for a visitor who had none.
pub async fn restore(
    core: &Core,
    s: Option<&Session>,
    f: RestoreForm,
) -> Result<(Transfer, Option<String>)> {
    let traits: Vec<protocol::Trait> = serde_json::from_str(&f.traits).map_err(|e| {
        Error::invalid(
            "traits",
            format!("the traits file is not what licentia container traits writes: {e}"),
        )
    })?;
    let req = protocol::RestoreRequest {
        old_serial: f.old_serial.trim().to_string(),
        request: f.request,
        traits,
    };
    let u = lifecycle::restore(core, Interface::Portal, req).await?;
    kept(core, s, Transfer::issued(TransferKind::Restore, None, u)).await
}

/// The third step: the receipt file of the container the transfer's update was for.
pub async fn confirm_receipt(core: &Core, s: &Session, receipt: String) -> Result<Transfer> {
    let Some(mut t) = s.flow.clone() else {
        return Err(Error::invalid(
            "receipt",
            "no transfer is in progress; start by uploading a request file",
        ));
    };
    let ctx = protocol::read_context(&receipt, Kind::Receipt)?;
    if ctx.serial != t.serial {
        return Err(Error::invalid(
            "receipt",
            format!(
                "the receipt file is from container {}, but the update was for container {}",
                ctx.serial, t.serial
            ),
        ));
    }
    let confirmed = activation::confirm_receipt(core, Interface::Portal, &receipt).await?;
    if confirmed.counter < t.counter_to {
        return Err(Error::Mismatch(format!(
            "the receipt shows firm update counter {}, the update brings {}: import the update \
             file into container {} first, then make the receipt",
            confirmed.counter, t.counter_to, t.serial
        )));
    }
    let ids: Vec<i64> = confirmed
        .activated
        .iter()
        .chain(&confirmed.released)
        .copied()
        .collect();
    let names = core.db.read(move |c| store::license_names(c, &ids)).await?;
    t.done = Some(Done {
        counter: confirmed.counter,
        activated: confirmed.activated,
        released: confirmed.released,
        names,
    });
    keep_flow(core, s, &t).await?;
    Ok(t)
}
