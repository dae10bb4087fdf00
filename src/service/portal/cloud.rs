//! Cloud containers in the portal, for a customer's session (single sign-on, or signed in
//! by an e-mail link): the customer makes one, activates a ticket's licenses into it, gets
//! a credential file (a new one revokes the old: lost credentials) and revokes it (stolen
//! credentials). A ticket login is no customer's identity: it sees no cloud containers.
use super::Session;
use crate::error::{Error, Result};
use crate::service::cloud::{
    self, CloudActivation, CloudSummary, CredentialFile, CredentialRequest, Format, Revocation,
    Revoked,
};
use crate::service::Core;

fn customer(s: &Session) -> Result<i64> {
    s.customer_id.ok_or_else(|| {
        Error::NotAllowed(
            "cloud containers are a customer's: sign in as a customer (not with a ticket)".into(),
        )
    })
}

/// The session's customer's cloud containers (none for a ticket login).
pub async fn containers(core: &Core, s: &Session) -> Result<Vec<CloudSummary>> {
    match s.customer_id {
        Some(c) => cloud::of_customer(core, c).await,
        None => Ok(vec![]),
    }
}

/// Makes a cloud container for the session's customer (the server's firm code); its serial.
pub async fn create(core: &Core, s: &Session) -> Result<String> {
    let owner = customer(s)?;
    cloud::create_for(core, &s.actor(), owner, core.default_firm.firm_code).await
}

/// Activates the available licenses of `ticket` (one the session holds) that may go into a
/// cloud container into the customer's container `serial`.
pub async fn activate(core: &Core, s: &Session, serial: &str, ticket: &str) -> Result<Vec<i64>> {
    let owner = customer(s)?;
    let code = s.ticket(ticket)?;
    let req = CloudActivation {
        ticket: code.to_string(),
        licenses: vec![],
    };
    cloud::activate_for(core, &s.actor(), serial.to_string(), req, Some(owner)).await
}

/// A new credential file (PEM) for the customer's container `serial`; the one in force is
/// revoked at once.
pub async fn credential(core: &Core, s: &Session, serial: &str) -> Result<CredentialFile> {
    let owner = customer(s)?;
    let req = CredentialRequest {
        format: Format::Pem,
        passphrase: None,
        reason: "a new credential file, asked for in the portal".into(),
    };
    cloud::issue_for(core, &s.actor(), serial.to_string(), req, Some(owner)).await
}

/// Revokes the credentials of the customer's container `serial` (stolen): their seats end.
pub async fn revoke(core: &Core, s: &Session, serial: &str) -> Result<Revoked> {
    let owner = customer(s)?;
    let req = Revocation {
        reason: "revoked by the customer in the portal (stolen credentials)".into(),
    };
    cloud::revoke_for(core, &s.actor(), serial.to_string(), req, Some(owner)).await
}
