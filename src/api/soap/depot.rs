//! The Depot service's codec (`xsd/licentia-depot-v1.xsd`): what the activation wizard
//! does, with no vendor credentials. Requests and responses are the XSD's elements as types,
//! (de)serialised with yaserde; typed values are read by `codec` (see there for why).
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{decode, encode, iso, long, longs, need, Text};
use super::envelope::El;
use crate::api::gateway::TicketLimiter;
use crate::domain::Interface;
use crate::error::Error;
use crate::protocol::{
    ActivateRequest, Confirmed, Issued, ReactivateRequest, RestoreRequest, ReturnRequest,
};
use crate::service::activation;
use crate::service::{lifecycle, Core};
use actix_web::HttpRequest;

/// The prefix the types below give the service's namespace.
const P: &str = "d";

// ---- requests ----

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "TicketInfo", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct TicketInfo {
    #[yaserde(prefix = "d", rename = "Ticket")]
    ticket: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Template", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Template {
    #[yaserde(prefix = "d", rename = "FirmCode")]
    firm_code: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Restore", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Restore {
    #[yaserde(prefix = "d", rename = "OldSerial")]
    old_serial: String,
    #[yaserde(prefix = "d", rename = "Request")]
    request: String,
    #[yaserde(prefix = "d", rename = "Trait")]
    traits: Vec<Trait>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Trait", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Trait {
    #[yaserde(prefix = "d", rename = "Name")]
    name: String,
    #[yaserde(prefix = "d", rename = "Hash")]
    hash: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Activate", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Activate {
    #[yaserde(prefix = "d", rename = "Ticket")]
    ticket: String,
    #[yaserde(prefix = "d", rename = "LicenseId")]
    license_id: Vec<String>,
    #[yaserde(prefix = "d", rename = "Request")]
    request: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Reactivate", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Reactivate {
    #[yaserde(prefix = "d", rename = "Ticket")]
    ticket: String,
    #[yaserde(prefix = "d", rename = "LicenseId")]
    license_id: Vec<String>,
    #[yaserde(prefix = "d", rename = "Request")]
    request: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Return", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Return {
    #[yaserde(prefix = "d", rename = "LicenseId")]
    license_id: Vec<String>,
    #[yaserde(prefix = "d", rename = "Request")]
    request: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "PullUpdates", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct PullUpdates {
    #[yaserde(prefix = "d", rename = "Request")]
    request: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "ConfirmReceipt", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct ConfirmReceipt {
    #[yaserde(prefix = "d", rename = "Receipt")]
    receipt: String,
}

// ---- responses ----

/// The XSD's `Update`: `ActivateResponse`, `ReactivateResponse`, `RestoreResponse`,
/// `ReturnResponse`, and the `Update` of `PullUpdatesResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Update", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Update {
    #[yaserde(prefix = "d", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "d", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "d", rename = "UpdateId")]
    update_id: i64,
    #[yaserde(prefix = "d", rename = "CounterFrom")]
    counter_from: i64,
    #[yaserde(prefix = "d", rename = "CounterTo")]
    counter_to: i64,
    /// xs:dateTime, written by `iso` (yaserde has no date type).
    #[yaserde(prefix = "d", rename = "ExpiresAt")]
    expires_at: Text,
    #[yaserde(prefix = "d", rename = "Added")]
    added: Vec<i64>,
    #[yaserde(prefix = "d", rename = "Changed")]
    changed: Vec<i64>,
    #[yaserde(prefix = "d", rename = "Deleted")]
    deleted: Vec<i64>,
    #[yaserde(prefix = "d", rename = "Locked")]
    locked: bool,
    /// The armoured update, to apply in the container.
    #[yaserde(prefix = "d", rename = "Update")]
    update: Text,
}

impl From<&Issued> for Update {
    fn from(u: &Issued) -> Update {
        Update {
            serial: (&u.serial).into(),
            firm_code: u.firm_code,
            update_id: u.update_id,
            counter_from: u.counter_from,
            counter_to: u.counter_to,
            expires_at: iso(u.expires_at).into(),
            added: u.added.clone(),
            changed: u.changed.clone(),
            deleted: u.deleted.clone(),
            locked: u.locked,
            update: (&u.update).into(),
        }
    }
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "PullUpdatesResponse", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct PullUpdatesResponse {
    /// Absent when nothing waits for the container.
    #[yaserde(prefix = "d", rename = "Update")]
    update: Option<Update>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "TicketInfoResponse", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct TicketInfoResponse {
    #[yaserde(prefix = "d", rename = "Ticket")]
    ticket: Text,
    #[yaserde(prefix = "d", rename = "State")]
    state: Text,
    #[yaserde(prefix = "d", rename = "License")]
    license: Vec<TicketLicense>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "License", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct TicketLicense {
    #[yaserde(prefix = "d", rename = "LicenseId")]
    license_id: i64,
    #[yaserde(prefix = "d", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "d", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "d", rename = "ProductCode")]
    product_code: i64,
    #[yaserde(prefix = "d", rename = "State")]
    state: Text,
    #[yaserde(prefix = "d", rename = "Serial")]
    serial: Option<Text>,
    #[yaserde(prefix = "d", rename = "Returnable")]
    returnable: bool,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "TemplateResponse", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct TemplateResponse {
    #[yaserde(prefix = "d", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "d", rename = "FirmName")]
    firm_name: Text,
    #[yaserde(prefix = "d", rename = "Key")]
    key: Vec<Key>,
    #[yaserde(prefix = "d", rename = "CurrentKey")]
    current_key: Text,
    #[yaserde(prefix = "d", rename = "FingerprintTolerance")]
    fingerprint_tolerance: u32,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Key", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct Key {
    #[yaserde(prefix = "d", rename = "KeyId")]
    key_id: Text,
    #[yaserde(prefix = "d", rename = "PublicKey")]
    public_key: Text,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "ConfirmReceiptResponse", prefix = "d", namespaces = {"d" = "http://licentia.dev/ns/depot/v1"})]
struct ConfirmReceiptResponse {
    #[yaserde(prefix = "d", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "d", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "d", rename = "Counter")]
    counter: i64,
    #[yaserde(prefix = "d", rename = "AlreadyConfirmed")]
    already_confirmed: bool,
    #[yaserde(prefix = "d", rename = "Activated")]
    activated: Vec<i64>,
    #[yaserde(prefix = "d", rename = "Released")]
    released: Vec<i64>,
}

impl From<&Confirmed> for ConfirmReceiptResponse {
    fn from(c: &Confirmed) -> ConfirmReceiptResponse {
        ConfirmReceiptResponse {
            serial: (&c.serial).into(),
            firm_code: c.firm_code,
            counter: c.counter,
            already_confirmed: c.already_confirmed,
            activated: c.activated.clone(),
            released: c.released.clone(),
        }
    }
}

// ---- operations ----

/// The Depot's operations: the same service functions as the JSON gateway, and those that
/// name a ticket within the same limits per client (`gateway_ticket_lookups_per_minute`, the
/// failures counted per address and ticket).
pub async fn call(
    core: &Core,
    limiter: &TicketLimiter,
    http: &HttpRequest,
    op: &El,
) -> Result<String, Error> {
    let iface = Interface::Soap;
    let name = format!("{P}:{}Response", op.name);
    match op.name.as_str() {
        "TicketInfo" => {
            let r: TicketInfo = decode(P, op)?;
            let ticket = need("TicketInfo/Ticket", &r.ticket)?;
            let t = limiter
                .naming(core, http, &ticket, activation::ticket_info(core, &ticket))
                .await?;
            let out = TicketInfoResponse {
                ticket: (&t.ticket).into(),
                state: (&t.state).into(),
                license: t
                    .licenses
                    .iter()
                    .map(|l| TicketLicense {
                        license_id: l.license_id,
                        item_id: (&l.item_id).into(),
                        firm_code: l.firm_code,
                        product_code: l.product_code,
                        state: l.state.as_str().into(),
                        serial: l.serial.as_ref().map(Text::from),
                        returnable: l.returnable,
                    })
                    .collect(),
            };
            encode(&name, &out)
        }
        "Template" => {
            let r: Template = decode(P, op)?;
            let t = activation::template(core, long("Template/FirmCode", &r.firm_code)?).await?;
            let out = TemplateResponse {
                firm_code: t.firm_code,
                firm_name: (&t.firm_name).into(),
                key: t
                    .keys
                    .iter()
                    .map(|(id, k)| Key {
                        key_id: id.into(),
                        public_key: k.into(),
                    })
                    .collect(),
                current_key: (&t.current_key).into(),
                fingerprint_tolerance: t.fingerprint_tolerance,
            };
            encode(&name, &out)
        }
        "Restore" => {
            let r: Restore = decode(P, op)?;
            let traits = r
                .traits
                .iter()
                .map(|t| crate::protocol::Trait {
                    name: t.name.trim().to_string(),
                    hash: t.hash.trim().to_string(),
                })
                .collect();
            let req = RestoreRequest {
                old_serial: need("Restore/OldSerial", &r.old_serial)?,
                request: need("Restore/Request", &r.request)?,
                traits,
            };
            let u = lifecycle::restore(core, iface, req).await?;
            encode(&name, &Update::from(&u))
        }
        "Activate" => {
            let r: Activate = decode(P, op)?;
            let req = ActivateRequest {
                ticket: need("Activate/Ticket", &r.ticket)?,
                licenses: longs("Activate/LicenseId", &r.license_id)?,
                request: need("Activate/Request", &r.request)?,
            };
            let ticket = req.ticket.clone();
            let u = limiter
                .naming(core, http, &ticket, activation::activate(core, iface, req))
                .await?;
            encode(&name, &Update::from(&u))
        }
        "Reactivate" => {
            let r: Reactivate = decode(P, op)?;
            let req = ReactivateRequest {
                ticket: need("Reactivate/Ticket", &r.ticket)?,
                licenses: longs("Reactivate/LicenseId", &r.license_id)?,
                request: need("Reactivate/Request", &r.request)?,
            };
            let ticket = req.ticket.clone();
            let u = limiter
                .naming(core, http, &ticket, lifecycle::reactivate(core, iface, req))
                .await?;
            encode(&name, &Update::from(&u))
        }
        "Return" => {
            let r: Return = decode(P, op)?;
            let req = ReturnRequest {
                licenses: longs("Return/LicenseId", &r.license_id)?,
                request: need("Return/Request", &r.request)?,
            };
            let u = activation::deactivate(core, iface, req).await?;
            encode(&name, &Update::from(&u))
        }
        "PullUpdates" => {
            let r: PullUpdates = decode(P, op)?;
            let u =
                activation::pull_updates(core, iface, &need("PullUpdates/Request", &r.request)?)
                    .await?;
            let out = PullUpdatesResponse {
                update: u.as_ref().map(Update::from),
            };
            encode(&name, &out)
        }
        "ConfirmReceipt" => {
            let r: ConfirmReceipt = decode(P, op)?;
            let c = activation::confirm_receipt(
                core,
                iface,
                &need("ConfirmReceipt/Receipt", &r.receipt)?,
            )
            .await?;
            encode(&name, &ConfirmReceiptResponse::from(&c))
        }
        other => Err(Error::internal(format!(
            "Depot.{other} is declared but not wired"
        ))),
    }
}
