//! What the activation gateway, the SOAP Depot and the client runtime exchange around the
//! three messages: the bodies a container's software sends, and what the server answers.
//! The JSON field names are the gateway's public contract.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Trait;
use crate::domain::{ActivationMode, ContainerType};

/// Activate licenses of a ticket into the container that made `request`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub ticket: String,
    /// The licenses to activate; none means every available license of the ticket.
    #[serde(default)]
    pub licenses: Vec<i64>,
    /// The container's armoured request.
    pub request: String,
}

/// Return licenses from the container that made `request`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub licenses: Vec<i64>,
    /// The armoured request of the container that holds them.
    pub request: String,
}

/// Re-activate licenses of a ticket that sit in a lost container into the one that made
/// `request`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReactivateRequest {
    pub ticket: String,
    /// Licenses of the ticket activated in a container that is gone.
    pub licenses: Vec<i64>,
    /// The new container's armoured request.
    pub request: String,
}

/// Restore every license of an `act` container lost with a reinstall into the new
/// container that made `request`, on the same computer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The container that was lost with the reinstall.
    pub old_serial: String,
    /// The new container's armoured request.
    pub request: String,
    /// This computer's traits hashed with the old container's salt.
    pub traits: Vec<Trait>,
}

/// What an update did, as the server answers it; `update` is the armoured update to apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Issued {
    pub serial: String,
    pub firm_code: i64,
    pub update_id: i64,
    pub counter_from: i64,
    pub counter_to: i64,
    pub expires_at: chrono::NaiveDateTime,
    pub added: Vec<i64>,
    pub changed: Vec<i64>,
    pub deleted: Vec<i64>,
    /// The update locks every entry of the firm (the container is blacklisted).
    #[serde(default)]
    pub locked: bool,
    /// The armoured update, to apply in the container.
    pub update: String,
}

/// What a receipt proved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Confirmed {
    pub serial: String,
    pub firm_code: i64,
    pub counter: i64,
    /// The update was confirmed before (a receipt sent twice changes nothing).
    pub already_confirmed: bool,
    pub activated: Vec<i64>,
    pub released: Vec<i64>,
}

/// The license template for a new container: the firm's keys to trust and the fingerprint
/// policy an `act` container is created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct Template {
    pub firm_code: i64,
    pub firm_name: String,
    /// Key id → base64 Ed25519 public key, every key the firm has had.
    pub keys: BTreeMap<String, String>,
    pub current_key: String,
    /// How many fingerprint traits may change.
    pub fingerprint_tolerance: u32,
}

/// Which licenses a ticket holds, where they are, and which may still be returned: what the
/// activation wizard shows before it activates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct TicketInfo {
    pub ticket: String,
    /// The ticket's state (`TicketState`'s word: `active`, `production`, or `disabled`, which
    /// activates nothing until the vendor enables it again); empty from a server that does
    /// not say.
    #[serde(default)]
    pub state: String,
    pub activation_mode: ActivationMode,
    pub single_container: bool,
    pub licenses: Vec<TicketLicense>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct TicketLicense {
    pub license_id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    /// The license's state (`LicenseState`'s word): read as a word, so that a client built
    /// today still reads the answer of a server that knows more states.
    pub state: String,
    pub serial: Option<String>,
    pub returnable: bool,
    pub container_types: Vec<ContainerType>,
}
