//! Cloud containers: containers kept on the server, whose licenses the customer's software
//! uses online (seats with leases, `seats`), authenticated by a credential file from the
//! firm's own certificate authority (`authority`).
//!
//! The server is the container: activating a license into a cloud container or returning
//! it from one is a state change with no update and no receipt, recorded in the history
//! like every other. A lost cloud container is a lost credential file: a new one revokes
//! the old at once; a stolen one is revoked, and every seat it holds ends with it.
mod authority;
mod borrow;
mod seats;

use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use authority::{Format, CREDENTIAL_DAYS};
pub use borrow::borrow;
pub(super) use borrow::returned;
pub use seats::{activate_ticket, heartbeat, open, reclaim_lapsed, release, status, token};

use super::activation::{count_against, for_customers, Quota};
use super::audit::{self, Event};
use super::{now, Core};
use crate::domain::ticket::TicketCode;
use crate::domain::{
    check_id, check_len, check_serial, Actor, ContainerState, ContainerType, LicenseState, Role,
};
use crate::error::{Error, Result};
use crate::protocol::cloud::LicenseUse;
pub use crate::store::cloud::UseDay;
use crate::store::cloud::{self as store, CredentialRow, NewCredential};
use crate::store::containers::{self, ContainerRow, NewContainer};
use crate::store::{customers, firms, licenses, mirrors, settings, tickets, Conn};

const STAFF: &[Role] = &[Role::Admin, Role::Sales, Role::Support];

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCloudContainer {
    /// The customer's external id.
    pub customer: String,
    /// Its scope: a connector's source (empty, the default: the vendor's customers).
    #[serde(default)]
    pub customer_scope: String,
    /// The firm code whose licenses it holds (default: the server's own).
    #[serde(default)]
    pub firm_code: Option<i64>,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Credential {
    pub id: i64,
    pub fingerprint: String,
    pub issued_at: NaiveDateTime,
    pub issued_by: String,
    pub not_after: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub revoked_reason: Option<String>,
}

impl From<CredentialRow> for Credential {
    fn from(r: CredentialRow) -> Self {
        Credential {
            id: r.id,
            fingerprint: r.fingerprint,
            issued_at: r.issued_at,
            issued_by: r.issued_by,
            not_after: r.not_after,
            revoked_at: r.revoked_at,
            revoked_by: r.revoked_by,
            revoked_reason: r.revoked_reason,
        }
    }
}

/// A cloud container as the vendor sees it: its licenses with their seats in use, and its
/// credentials (revoked ones too).
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct CloudContainer {
    pub serial: String,
    pub firm_code: i64,
    /// The customer's external id, and its scope (empty: the vendor's).
    pub customer: Option<String>,
    pub customer_scope: String,
    pub state: ContainerState,
    pub created_at: NaiveDateTime,
    pub licenses: Vec<LicenseUse>,
    pub credentials: Vec<Credential>,
    /// Use per license and UTC day over the last 31 days.
    pub use_per_day: Vec<UseDay>,
}

/// A new serial for a cloud container: `150-` and ten digits.
fn new_cloud_serial() -> String {
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    format!(
        "150-{}",
        u64::from_le_bytes(b) % 9_000_000_000 + 1_000_000_000
    )
}

/// Makes a cloud container for a customer (admin, sales, support).
pub async fn create_container(
    core: &Core,
    actor: &Actor,
    req: NewCloudContainer,
) -> Result<CloudContainer> {
    actor.require(STAFF, "make cloud containers")?;
    check_id("customer", &req.customer)?;
    super::catalog::check_scope("customer_scope", &req.customer_scope)?;
    let firm_code = req.firm_code.unwrap_or(core.default_firm.firm_code);
    let (scope, external) = (req.customer_scope.clone(), req.customer.clone());
    let customer = core
        .db
        .read(move |c| customers::id_of(c, &scope, &external))
        .await?;
    let serial = create_for(core, actor, customer, firm_code).await?;
    get_container(core, actor, serial).await
}

/// Makes a cloud container of `firm_code` for customer `customer` (its id); its serial.
pub(in crate::service) async fn create_for(
    core: &Core,
    actor: &Actor,
    customer: i64,
    firm_code: i64,
) -> Result<String> {
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let (firm_id, _) = firms::by_code(c, firm_code)?;
            let serial = new_cloud_serial();
            // The server is the container: it has no keys of its own, and its key columns
            // (unique) name it instead.
            let marker = format!("cloud:{serial}");
            let at = now();
            let row = containers::register(
                c,
                &NewContainer {
                    serial: &serial,
                    kind: ContainerType::Cloud,
                    public_key: &marker,
                    enc_key: &marker,
                    fingerprint: "[]",
                },
                at,
            )?;
            containers::set_customer(c, row.id, Some(customer), at)?;
            mirrors::load_or_create(c, row.id, firm_id, at)?;
            audit::record(
                &actor,
                Event {
                    action: "container.registered",
                    serial: Some(&serial),
                    details: json!({"type": "cloud", "firm_code": firm_code,
                        "customer_id": customer}),
                    ..Default::default()
                },
            )?;
            Ok(serial)
        })
        .await
}

/// The cloud containers of customer `customer`: serial, licenses with their seats in use,
/// and whether a credential is in force.
pub(in crate::service) async fn of_customer(
    core: &Core,
    customer: i64,
) -> Result<Vec<CloudSummary>> {
    core.db
        .read(move |c| {
            let mut out = vec![];
            for (id, serial) in store::cloud_containers_of(c, customer)? {
                let firm_id = store::firm_of(c, id)?.ok_or_else(|| {
                    Error::internal(format!("cloud container {serial} has no firm"))
                })?;
                let firm_code = firms::code_of(c, firm_id)?;
                let credential = store::credentials_of(c, id)?
                    .into_iter()
                    .find(|r| r.revoked_at.is_none())
                    .map(Credential::from);
                out.push(CloudSummary {
                    licenses: seats::uses(c, &serial, firm_id, firm_code)?,
                    serial,
                    credential,
                });
            }
            Ok(out)
        })
        .await
}

/// A customer's cloud container as the portal shows it.
#[derive(Debug, Serialize)]
pub struct CloudSummary {
    pub serial: String,
    pub licenses: Vec<LicenseUse>,
    /// The credential in force, if any.
    pub credential: Option<Credential>,
}

/// Whether `serial` names a cloud container: the server is the container, so a change of
/// its licenses needs no update and no receipt.
pub(in crate::service) fn is_cloud(c: &mut Conn, serial: Option<&str>) -> Result<bool> {
    Ok(match serial {
        Some(s) => containers::by_serial(c, s)?.is_some_and(|r| r.kind == ContainerType::Cloud),
        None => false,
    })
}

/// Refuses to take license `license_id` out of its cloud container while a seat of it is
/// borrowed out (the borrowed license lives on in a local container until it comes back).
pub(in crate::service) fn no_borrows(c: &mut Conn, license_id: i64) -> Result<()> {
    match store::borrowed_out(c, license_id, now())?.first() {
        Some(b) => Err(Error::Conflict(format!(
            "license {license_id} has a seat borrowed until {} (license {}); it comes back \
             with that license's return or at the end of the borrow",
            b.expires_at,
            b.borrowed_license_id.unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// Vendor support pushes license `l` into cloud container `cont`: the container must be
/// active, of the license's firm code, and its customer the ticket's.
pub(in crate::service) fn check_push(
    c: &mut Conn,
    cont: &ContainerRow,
    l: &crate::store::licenses::LicRow,
) -> Result<()> {
    let (row, firm_id) = cloud(c, &cont.serial, None)?;
    if row.state != ContainerState::Active {
        return Err(Error::NotAllowed(format!(
            "cloud container {} is {}",
            row.serial,
            row.state.as_str()
        )));
    }
    if firm_id != l.firm_id {
        return Err(Error::NotAllowed(format!(
            "license {} belongs to another firm code than cloud container {}",
            l.id, row.serial
        )));
    }
    if row.customer_id != Some(tickets::customer_of(c, l.ticket_id)?) {
        return Err(Error::NotAllowed(format!(
            "license {} is on another customer's ticket than cloud container {}",
            l.id, row.serial
        )));
    }
    Ok(())
}

/// A license left its cloud container for good (withdrawn, replaced, returned; its state
/// is already written, so an open waiting for its row finds it gone): every seat it had
/// ends; their ids.
pub(in crate::service) fn leave(c: &mut Conn, license_id: i64) -> Result<Vec<i64>> {
    Ok(store::end_seats_of_license(c, license_id)?
        .iter()
        .map(|s| s.id)
        .collect())
}

/// A cloud container `serial` and its firm id; any other container is an error.
/// `owner`: the customer a portal session acts for; another's container is unknown to it.
fn cloud(c: &mut Conn, serial: &str, owner: Option<i64>) -> Result<(ContainerRow, i64)> {
    let row = containers::get(c, serial)?;
    if owner.is_some() && row.customer_id != owner {
        return Err(Error::not_found("container", serial));
    }
    if row.kind != ContainerType::Cloud {
        return Err(Error::NotAllowed(format!(
            "container {serial} is of type {}, not a cloud container",
            row.kind.as_str()
        )));
    }
    let firm_id = store::firm_of(c, row.id)?
        .ok_or_else(|| Error::internal(format!("cloud container {serial} has no firm")))?;
    Ok((row, firm_id))
}

/// The cloud container `serial` (admin, sales, support).
pub async fn get_container(core: &Core, actor: &Actor, serial: String) -> Result<CloudContainer> {
    actor.require(STAFF, "see cloud containers")?;
    check_serial("serial", &serial)?;
    core.db
        .read(move |c| {
            let (row, firm_id) = cloud(c, &serial, None)?;
            let firm_code = firms::code_of(c, firm_id)?;
            let (customer, customer_scope) = customers::owner(c, row.customer_id)?;
            let since = (now() - chrono::Duration::days(31))
                .format("%Y-%m-%d")
                .to_string();
            let use_per_day = store::use_days(c, &serial, &since)?;
            Ok(CloudContainer {
                use_per_day,
                licenses: seats::uses(c, &serial, firm_id, firm_code)?,
                credentials: store::credentials_of(c, row.id)?
                    .into_iter()
                    .map(Credential::from)
                    .collect(),
                serial,
                firm_code,
                customer,
                customer_scope,
                state: row.state,
                created_at: row.created_at,
            })
        })
        .await
}

/// Licenses of a ticket to activate into a cloud container (none named: all of the
/// ticket's available licenses that may go into one).
#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudActivation {
    pub ticket: String,
    #[serde(default)]
    pub licenses: Vec<i64>,
}

/// Activates licenses of a ticket into cloud container `serial` (admin, sales, support):
/// they are activated at once, with the same rules as any activation (the ticket's owner,
/// the item's container types, one container per ticket when the firm says so, the
/// monthly quota). Returns the licenses activated.
pub async fn activate(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: CloudActivation,
) -> Result<Vec<i64>> {
    actor.require(STAFF, "activate licenses into cloud containers")?;
    activate_for(core, actor, serial, req, None).await
}

/// `activate` for the vendor (`owner` none) or for a customer's own cloud container.
pub(in crate::service) async fn activate_for(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: CloudActivation,
    owner: Option<i64>,
) -> Result<Vec<i64>> {
    check_serial("serial", &serial)?;
    let code = TicketCode::parse(&req.ticket)?;
    if req.licenses.len() > 1000 {
        return Err(Error::invalid("licenses", "at most 1000 at once"));
    }
    super::activation::named_once(&req.licenses)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let (row, firm_id) = cloud(c, &serial, owner)?;
            if row.state != ContainerState::Active {
                return Err(Error::NotAllowed(format!(
                    "cloud container {serial} is {}",
                    row.state.as_str()
                )));
            }
            let (tid, ticket) = tickets::find(c, &code)?;
            for_customers(&code, ticket)?;
            if row.customer_id != Some(tickets::customer_of(c, tid)?) {
                return Err(Error::NotAllowed(format!(
                    "ticket {code} belongs to another customer than cloud container {serial}"
                )));
            }
            let rows = licenses::of_ticket(c, tid)?;
            let picked: Vec<_> = if req.licenses.is_empty() {
                rows.into_iter()
                    .filter(|l| l.state == LicenseState::Available && l.firm_id == firm_id)
                    .filter(|l| {
                        l.options()
                            .is_ok_and(|o| o.container_types.contains(&ContainerType::Cloud))
                    })
                    .collect()
            } else {
                let mut picked = vec![];
                for id in &req.licenses {
                    let l = rows.iter().find(|l| l.id == *id).ok_or_else(|| {
                        Error::not_found("license", format!("{id} on ticket {code}"))
                    })?;
                    picked.push(l.clone());
                }
                picked
            };
            if picked.is_empty() {
                return Err(Error::Conflict(format!(
                    "ticket {code} has no available license that may go into a cloud container"
                )));
            }
            for l in &picked {
                if l.firm_id != firm_id {
                    return Err(Error::NotAllowed(format!(
                        "license {} belongs to another firm code than cloud container {serial}",
                        l.id
                    )));
                }
                if !l.options()?.container_types.contains(&ContainerType::Cloud) {
                    return Err(Error::NotAllowed(format!(
                        "license {} ({}) cannot go into a cloud container",
                        l.id, l.item_id
                    )));
                }
                if l.state != LicenseState::Available {
                    return Err(Error::Conflict(match l.serial.as_deref() {
                        Some(s) => {
                            format!("license {} is already {} in container {s}", l.id, l.state)
                        }
                        None => format!("license {} is {}", l.id, l.state),
                    }));
                }
            }
            let rules = settings::load(c, firm_id)?;
            if rules.single_container {
                tickets::lock(c, tid)?;
                if let Some((id, other)) = licenses::first_of_ticket_elsewhere(c, tid, &serial)? {
                    return Err(Error::NotAllowed(format!(
                        "the licenses of this ticket must stay in one container; license {id} \
                         is in container {other}"
                    )));
                }
            }
            let quota = Quota {
                firm_id,
                firm_code: firms::code_of(c, firm_id)?,
                limit: rules.monthly_activation_quota,
            };
            // Past the quota the refusal is counted and committed; nothing else is.
            if let Err(refused) = count_against(c, &actor, &quota, &serial, picked.len())? {
                return Ok(Err(refused));
            }
            let at = now();
            for l in &picked {
                licenses::set_state(c, l, LicenseState::Activated, Some(&serial), at)?;
                audit::record(
                    &actor,
                    Event {
                        action: "license.activated",
                        ticket: Some(code.as_stored()),
                        license_id: Some(l.id),
                        serial: Some(&serial),
                        details: json!({"container_type": "cloud"}),
                        ..Default::default()
                    },
                )?;
            }
            Ok(Ok(picked.iter().map(|l| l.id).collect()))
        })
        .await?
}

/// Returns licenses from cloud container `serial` (admin, support): available again at
/// once; the seats they had end.
pub async fn deactivate(
    core: &Core,
    actor: &Actor,
    serial: String,
    ids: Vec<i64>,
) -> Result<Vec<i64>> {
    actor.require(
        &[Role::Admin, Role::Support],
        "return licenses from cloud containers",
    )?;
    check_serial("serial", &serial)?;
    if ids.is_empty() || ids.len() > 1000 {
        return Err(Error::invalid(
            "licenses",
            "name 1 to 1000 licenses to return",
        ));
    }
    super::activation::named_once(&ids)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            cloud(c, &serial, None)?;
            let at = now();
            for id in &ids {
                let l = licenses::find(c, *id)?;
                if !(l.state == LicenseState::Activated && l.is_in(&serial)) {
                    return Err(Error::Conflict(format!(
                        "license {id} is not activated in cloud container {serial}"
                    )));
                }
                no_borrows(c, l.id)?;
                licenses::set_state(c, &l, LicenseState::Available, None, at)?;
                let ended = store::end_seats_of_license(c, l.id)?;
                audit::record(
                    &actor,
                    Event {
                        action: "license.returned",
                        license_id: Some(l.id),
                        serial: Some(&serial),
                        details: json!({"container_type": "cloud",
                            "seats_ended": ended.iter().map(|s| s.id).collect::<Vec<_>>()}),
                        ..Default::default()
                    },
                )?;
            }
            Ok(ids.clone())
        })
        .await
}

/// What a credential file is made as.
#[derive(schemars::JsonSchema, Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    #[serde(default)]
    pub format: Format,
    /// Protects the private key (PEM) or the file (PKCS#12, required there).
    #[serde(default)]
    pub passphrase: Option<String>,
    /// Why (a new container, lost credentials …), kept in the history.
    #[serde(default)]
    pub reason: String,
}

/// A credential file, for the customer to keep.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct CredentialFile {
    pub serial: String,
    pub fingerprint: String,
    pub not_after: NaiveDateTime,
    pub format: Format,
    pub file_name: String,
    /// The file: PEM text, or base64 of the PKCS#12 bytes.
    pub content: String,
    /// The credentials this one replaced, revoked at once.
    pub revoked: Vec<i64>,
}

/// Issues a new credential file for cloud container `serial` (admin, sales, support). Any
/// credential still in force is revoked at once and its seats end (a lost credential file
/// is replaced this way).
pub async fn issue_credential(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: CredentialRequest,
) -> Result<CredentialFile> {
    actor.require(STAFF, "issue cloud credentials")?;
    issue_for(core, actor, serial, req, None).await
}

/// `issue_credential` for the vendor (`owner` none) or for a customer's own container.
pub(in crate::service) async fn issue_for(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: CredentialRequest,
    owner: Option<i64>,
) -> Result<CredentialFile> {
    check_serial("serial", &serial)?;
    check_len("reason", &req.reason, 1024)?;
    if let Some(p) = &req.passphrase {
        if p.chars().count() < 8 || p.len() > 1024 {
            return Err(Error::invalid("passphrase", "8 to 1024 characters"));
        }
    }
    let s = serial.clone();
    let (firm_id, firm_code, has_authority) = core
        .db
        .read(move |c| {
            let (_, firm_id) = cloud(c, &s, owner)?;
            Ok((
                firm_id,
                firms::code_of(c, firm_id)?,
                store::authority(c, firm_id)?.is_some(),
            ))
        })
        .await?;
    if !has_authority {
        let (cert, sealed) = authority::Authority::make(&core.master, firm_code)?;
        core.db
            .write(move |c| {
                if store::authority(c, firm_id)?.is_none() {
                    store::insert_authority(c, firm_id, &cert, &sealed, now())?;
                }
                Ok(())
            })
            .await?;
    }
    let (cert_pem, sealed) = core
        .db
        .read(move |c| store::authority(c, firm_id))
        .await?
        .ok_or_else(|| Error::internal("the cloud authority vanished"))?;
    let ca = authority::Authority::open(&core.master, firm_code, &cert_pem, &sealed)?;
    let (cert, key) = ca.issue(firm_code, &serial)?;
    let fingerprint = authority::fingerprint(&cert)?;
    let not_after = authority::not_after(&cert)?;
    let file = authority::file(
        &ca,
        &serial,
        &cert,
        &key,
        req.format,
        req.passphrase.as_deref(),
    )?;
    let actor = actor.clone();
    let (s, fp) = (serial.clone(), fingerprint.clone());
    let revoked = core
        .db
        .write(move |c| {
            let (row, _) = cloud(c, &s, owner)?;
            // Two new files at once: the second waits, then revokes the first.
            containers::lock(c, row.id)?;
            if row.state != ContainerState::Active {
                return Err(Error::NotAllowed(format!(
                    "cloud container {s} is {}",
                    row.state.as_str()
                )));
            }
            let reason = if req.reason.is_empty() {
                "a new credential file"
            } else {
                &req.reason
            };
            let revoked = store::revoke_all(c, row.id, &actor.name, reason, now())?;
            let ended = store::end_seats_of(c, &revoked)?;
            store::insert_credential(
                c,
                &NewCredential {
                    container_id: row.id,
                    firm_id,
                    fingerprint: &fp,
                    not_after,
                    issued_by: &actor.name,
                },
                now(),
            )?;
            audit::record(
                &actor,
                Event {
                    action: "cloud.credential_issued",
                    serial: Some(&s),
                    details: json!({"fingerprint": fp, "reason": reason, "revoked": revoked,
                        "seats_ended": ended.iter().map(|s| s.id).collect::<Vec<_>>()}),
                    ..Default::default()
                },
            )?;
            Ok(revoked)
        })
        .await?;
    let (file_name, content) = match req.format {
        Format::Pem => (
            format!("{serial}.pem"),
            String::from_utf8(file).expect("PEM is ASCII"),
        ),
        Format::Pkcs12 => (
            format!("{serial}.p12"),
            base64::engine::general_purpose::STANDARD.encode(file),
        ),
    };
    Ok(CredentialFile {
        serial,
        fingerprint,
        not_after,
        format: req.format,
        file_name,
        content,
        revoked,
    })
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub reason: String,
}

#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Revoked {
    pub serial: String,
    pub revoked: Vec<i64>,
    /// The seats that ended with them.
    pub seats_ended: Vec<i64>,
}

/// Revokes every credential of cloud container `serial` in force (stolen credentials;
/// admin, support): refused at once on every node, and every seat they hold ends.
pub async fn revoke_credentials(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: Revocation,
) -> Result<Revoked> {
    actor.require(&[Role::Admin, Role::Support], "revoke cloud credentials")?;
    revoke_for(core, actor, serial, req, None).await
}

/// `revoke_credentials` for the vendor (`owner` none) or for a customer's own container.
pub(in crate::service) async fn revoke_for(
    core: &Core,
    actor: &Actor,
    serial: String,
    req: Revocation,
    owner: Option<i64>,
) -> Result<Revoked> {
    check_serial("serial", &serial)?;
    if req.reason.trim().is_empty() {
        return Err(Error::invalid(
            "reason",
            "say why the credentials are revoked",
        ));
    }
    check_len("reason", &req.reason, 1024)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let (row, _) = cloud(c, &serial, owner)?;
            let revoked = store::revoke_all(c, row.id, &actor.name, &req.reason, now())?;
            if revoked.is_empty() {
                return Err(Error::Conflict(format!(
                    "cloud container {serial} has no credential in force"
                )));
            }
            let ended: Vec<i64> = store::end_seats_of(c, &revoked)?
                .iter()
                .map(|s| s.id)
                .collect();
            audit::record(
                &actor,
                Event {
                    action: "cloud.credential_revoked",
                    serial: Some(&serial),
                    details: json!({"reason": req.reason, "revoked": revoked,
                        "seats_ended": ended}),
                    ..Default::default()
                },
            )?;
            Ok(Revoked {
                serial: serial.clone(),
                revoked,
                seats_ended: ended,
            })
        })
        .await
}
