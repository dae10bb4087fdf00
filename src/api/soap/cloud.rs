//! The Admin service's cloud container operations (`xsd/licentia-admin-v1.xsd`): make one,
//! activate and return licenses, issue and revoke credential files; the same service
//! functions as the JSON API's `/api/v1/cloud`.
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{decode, encode, iso, longs, need, opt, opt_long, Text};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::cloud::{self, CredentialRequest, Format};
use crate::service::Core;

const P: &str = "a";

/// The operations this module answers.
pub const OPERATIONS: &[&str] = &[
    "CreateCloudContainer",
    "ActivateIntoCloudContainer",
    "ReturnFromCloudContainer",
    "IssueCloudCredential",
    "RevokeCloudCredentials",
];

/// Every request of the cloud operations: the fields each one reads (the schema checked
/// which it may carry).
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct CloudIn {
    #[yaserde(prefix = "a", rename = "CustomerId")]
    customer_id: Option<String>,
    #[yaserde(prefix = "a", rename = "FirmCode")]
    firm_code: Option<String>,
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Option<String>,
    #[yaserde(prefix = "a", rename = "Ticket")]
    ticket: Option<String>,
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Vec<String>,
    #[yaserde(prefix = "a", rename = "Format")]
    format: Option<String>,
    #[yaserde(prefix = "a", rename = "Passphrase")]
    passphrase: Option<String>,
    #[yaserde(prefix = "a", rename = "Reason")]
    reason: Option<String>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct SerialOut {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct LicensesOut {
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Vec<i64>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct CredentialOut {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "a", rename = "Fingerprint")]
    fingerprint: Text,
    #[yaserde(prefix = "a", rename = "NotAfter")]
    not_after: Text,
    #[yaserde(prefix = "a", rename = "FileName")]
    file_name: Text,
    #[yaserde(prefix = "a", rename = "Content")]
    content: Text,
    #[yaserde(prefix = "a", rename = "RevokedCredentialId")]
    revoked_credential_id: Vec<i64>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct RevokedOut {
    #[yaserde(prefix = "a", rename = "RevokedCredentialId")]
    revoked_credential_id: Vec<i64>,
    #[yaserde(prefix = "a", rename = "EndedSeat")]
    ended_seat: Vec<i64>,
}

/// One of `OPERATIONS`.
pub async fn call(core: &Core, actor: &Actor, op: &El) -> Result<String, Error> {
    let name = format!("{P}:{}Response", op.name);
    let at = |field: &str| format!("{}/{field}", op.name);
    let r: CloudIn = decode(P, op)?;
    let serial = || need(&at("Serial"), r.serial.as_deref().unwrap_or_default());
    let ids = || longs(&at("LicenseId"), &r.license_id);
    match op.name.as_str() {
        "CreateCloudContainer" => {
            let req = cloud::NewCloudContainer {
                customer: need(
                    &at("CustomerId"),
                    r.customer_id.as_deref().unwrap_or_default(),
                )?,
                // The SOAP Cloud service names the vendor's own customers.
                customer_scope: String::new(),
                firm_code: opt_long(&at("FirmCode"), &r.firm_code)?,
            };
            let c = cloud::create_container(core, actor, req).await?;
            encode(
                &name,
                &SerialOut {
                    serial: c.serial.into(),
                },
            )
        }
        "ActivateIntoCloudContainer" => {
            let req = cloud::CloudActivation {
                ticket: need(&at("Ticket"), r.ticket.as_deref().unwrap_or_default())?,
                licenses: ids()?,
            };
            let done = cloud::activate(core, actor, serial()?, req).await?;
            encode(&name, &LicensesOut { license_id: done })
        }
        "ReturnFromCloudContainer" => {
            let done = cloud::deactivate(core, actor, serial()?, ids()?).await?;
            encode(&name, &LicensesOut { license_id: done })
        }
        "IssueCloudCredential" => {
            let format = match opt(&r.format).as_deref() {
                None | Some("pem") => Format::Pem,
                Some("pkcs12") => Format::Pkcs12,
                Some(other) => {
                    return Err(Error::invalid(
                        at("Format"),
                        format!("{other:?} is not pem or pkcs12"),
                    ))
                }
            };
            let req = CredentialRequest {
                format,
                passphrase: r.passphrase.clone().filter(|p| !p.is_empty()),
                reason: opt(&r.reason).unwrap_or_default(),
            };
            let f = cloud::issue_credential(core, actor, serial()?, req).await?;
            let out = CredentialOut {
                serial: f.serial.into(),
                fingerprint: f.fingerprint.into(),
                not_after: iso(f.not_after).into(),
                file_name: f.file_name.into(),
                content: f.content.into(),
                revoked_credential_id: f.revoked,
            };
            encode(&name, &out)
        }
        _ => {
            let req = cloud::Revocation {
                reason: need(&at("Reason"), r.reason.as_deref().unwrap_or_default())?,
            };
            let done = cloud::revoke_credentials(core, actor, serial()?, req).await?;
            let out = RevokedOut {
                revoked_credential_id: done.revoked,
                ended_seat: done.seats_ended,
            };
            encode(&name, &out)
        }
    }
}
