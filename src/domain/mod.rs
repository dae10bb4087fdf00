//! Types and rules with no I/O: who acts, what is sold, the states things are in, and the
//! rules that decide (the update plan, how a contact and a receipt are judged, re-activation).
//! Every rule is a function of values with table-driven unit tests.
pub mod cloud;
pub mod contact;
mod options;
pub mod production;
pub mod reactivation;
mod settings;
mod states;
pub mod ticket;
pub mod update_plan;

pub use options::{check_in_deadline, ActivationLimit, ItemOptions, UpdateEffect};
pub use settings::{ActivationMode, ReactivationBehaviour, ReactivationPolicy, Settings};
pub use states::{
    ApprovalState, ContainerState, JobRunState, LicenseState, NotificationOutcome, QueueState,
    TicketState, UpdateState,
};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MAX_TEXT: usize = 256;
pub const MAX_DATA: usize = 4096;
pub const MAX_QUANTITY: i32 = 10_000;
pub const MAX_LINES: usize = 100;

/// Who acts, and through which interface: every service call takes one.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub interface: Interface,
}

impl Actor {
    pub fn system(interface: Interface) -> Actor {
        Actor {
            name: "system".into(),
            role: Role::Admin,
            interface,
        }
    }
    pub fn require(&self, allowed: &[Role], action: &'static str) -> Result<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                role: self.role.as_str().into(),
                action,
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Json,
    Cli,
    System,
    /// The activation gateway, online.
    Gateway,
    /// The activation gateway, with request, update and receipt files.
    Files,
    /// A shop or ERP connector (`/connect/<name>`).
    Connector,
    /// The SOAP services (`/soap/<Service>`).
    Soap,
    /// The customers' license portal (`/portal`).
    Portal,
    /// The license use API of cloud containers (`/cloud/v1`).
    Cloud,
    /// The vendor's back office (`/admin`).
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Json => "json",
            Interface::Cli => "cli",
            Interface::System => "system",
            Interface::Gateway => "gateway",
            Interface::Files => "files",
            Interface::Connector => "connector",
            Interface::Soap => "soap",
            Interface::Portal => "portal",
            Interface::Cloud => "cloud",
            Interface::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Sales,
    Support,
    Erp,
    /// The production line (the dongle bridge): reads production orders and programs
    /// dongles; creates nothing.
    Production,
    /// A customer, known by a ticket or a container's signature (never a vendor user).
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sales => "sales",
            Role::Support => "support",
            Role::Erp => "erp",
            Role::Production => "production",
            Role::Customer => "customer",
        }
    }
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "sales" => Ok(Role::Sales),
            "support" => Ok(Role::Support),
            "erp" => Ok(Role::Erp),
            "production" => Ok(Role::Production),
            _ => Err(Error::invalid(
                "role",
                "must be admin, sales, support, erp or production",
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Role {
    type Error = Error;
    fn try_from(s: String) -> Result<Role> {
        Role::parse(&s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    License,
    Update,
    Lock,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::License => "license",
            ItemKind::Update => "update",
            ItemKind::Lock => "lock",
        }
    }
    pub fn parse(s: &str) -> Result<ItemKind> {
        match s {
            "license" => Ok(ItemKind::License),
            "update" => Ok(ItemKind::Update),
            "lock" => Ok(ItemKind::Lock),
            _ => Err(Error::invalid("kind", "must be license, update or lock")),
        }
    }
}

impl TryFrom<String> for ItemKind {
    type Error = Error;
    fn try_from(s: String) -> Result<ItemKind> {
        ItemKind::parse(&s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ContainerType {
    Act,
    Dongle,
    Cloud,
}

impl ContainerType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerType::Act => "act",
            ContainerType::Dongle => "dongle",
            ContainerType::Cloud => "cloud",
        }
    }
    pub fn parse(s: &str) -> Result<ContainerType> {
        match s {
            "act" => Ok(ContainerType::Act),
            "dongle" => Ok(ContainerType::Dongle),
            "cloud" => Ok(ContainerType::Cloud),
            _ => Err(Error::invalid("type", "must be act, dongle or cloud")),
        }
    }
}

impl TryFrom<String> for ContainerType {
    type Error = Error;
    fn try_from(s: String) -> Result<ContainerType> {
        ContainerType::parse(&s)
    }
}

/// At most `max` characters (as the XSDs' `maxLength` counts them).
pub fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    // Every character takes at least one byte: most values need no count.
    if value.len() > max && value.chars().count() > max {
        Err(Error::invalid(field, format!("at most {max} characters")))
    } else {
        Ok(())
    }
}

/// A container serial as the protocol writes it (`130-1234567890`).
pub fn check_serial(field: &str, value: &str) -> Result<()> {
    if crate::protocol::is_serial(value) {
        return Ok(());
    }
    let shown: String = value.chars().take(40).collect();
    Err(Error::invalid(
        field,
        format!("{shown:?} is not a container serial (of the form 130-1234567890)"),
    ))
}

/// An e-mail address as customers give it: one `@`, a dot in the domain, no spaces, at most
/// 254 characters.
pub fn check_email(field: &str, value: &str) -> Result<()> {
    check_len(field, value, 254)?;
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, "not an email address"))
    }
}

/// An identifier given by a person or an ERP: printable, no spaces at the ends, bounded,
/// in Unicode normal form C and without invisible formatting characters, so that two ids
/// that look the same are the same id.
pub fn check_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    check_len(field, value, 64)?;
    if value.trim() != value || value.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            "no control characters or surrounding spaces",
        ));
    }
    if let Some(c) = value.chars().find(|c| is_format(*c)) {
        return Err(Error::invalid(
            field,
            format!(
                "contains the invisible formatting character U+{:04X}; an id must be plain text",
                c as u32
            ),
        ));
    }
    check_nfc(field, value)
}

/// A name people read (an item's, a customer's): bounded, and with no character that
/// reorders how the text around it is shown (bidirectional overrides and isolates, which
/// can make a page show a name other than the one stored) and no control character.
pub fn check_name(field: &str, value: &str, max: usize) -> Result<()> {
    check_len(field, value, max)?;
    if let Some(c) = value
        .chars()
        .find(|c| is_bidi_control(*c) || c.is_control())
    {
        return Err(Error::invalid(
            field,
            format!(
                "contains U+{:04X}, a character that changes how text is shown; names must be plain text",
                c as u32
            ),
        ));
    }
    check_nfc(field, value)
}

/// Unicode's "format" characters (category Cf): invisible, yet they change how text is
/// shown or compared (zero-width spaces and joiners, bidirectional controls, soft hyphens,
/// tags).
fn is_format(c: char) -> bool {
    use icu_properties::{props::GeneralCategory, CodePointMapData};
    !c.is_ascii() && CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
}

/// The bidirectional embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text in Unicode normal form C: "é" as one character, not "e" and a combining accent,
/// which would look the same and compare different.
fn check_nfc(field: &str, value: &str) -> Result<()> {
    if value.is_ascii()
        || icu_normalizer::ComposingNormalizerBorrowed::new_nfc().is_normalized(value)
    {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "is not in Unicode normal form C (NFC): an accented letter is sent as a letter and \
             a combining accent; send the composed form",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_that_look_alike_are_refused_unless_they_are_the_same() {
        // Composed "é" passes; "e" with a combining accent looks the same and is refused.
        assert!(check_id("item_id", "CAFÉ-1").is_ok());
        let decomposed = "CAFE\u{301}-1";
        let e = check_id("item_id", decomposed).unwrap_err();
        assert!(e.to_string().contains("normal form C"), "{e}");
        // Invisible formatting characters: a right-to-left override, a zero-width space, a
        // byte order mark, a tag character.
        for (id, code) in [
            ("SKU\u{202E}1-TXT", "U+202E"),
            ("SKU\u{200B}1", "U+200B"),
            ("\u{FEFF}SKU1", "U+FEFF"),
            ("SKU\u{E0041}", "U+E0041"),
        ] {
            let e = check_id("item_id", id).unwrap_err();
            assert_eq!(e.code(), "invalid_input");
            assert!(e.to_string().contains(code), "{e}");
        }
        assert!(check_id("item_id", "Größe-日本-ÆØÅ").is_ok());

        // Names: the bidirectional controls are refused, a joiner in an emoji is not.
        assert!(check_name("name", "Müller GmbH 👩\u{200D}💻", 100).is_ok());
        for name in ["Invoice \u{202E}fdp.exe", "A\u{2066}B\u{2069}", "Tab\tbed"] {
            assert_eq!(
                check_name("name", name, 100).unwrap_err().code(),
                "invalid_input"
            );
        }
        assert!(check_name("name", "Jose\u{301}", 100).is_err());
        assert!(check_name("name", &"x".repeat(101), 100).is_err());
    }
}
