//! Types and rules with no I/O.
pub mod ticket;

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
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Json => "json",
            Interface::Cli => "cli",
            Interface::System => "system",
            Interface::Gateway => "gateway",
            Interface::Files => "files",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Sales,
    Support,
    Erp,
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
            Role::Customer => "customer",
        }
    }
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "sales" => Ok(Role::Sales),
            "support" => Ok(Role::Support),
            "erp" => Ok(Role::Erp),
            _ => Err(Error::invalid(
                "role",
                "must be admin, sales, support or erp",
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The product item options a license carries into a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemOptions {
    #[serde(default = "all_container_types")]
    pub container_types: Vec<ContainerType>,
    /// 0 = local single user, n = n floating users.
    #[serde(default)]
    pub license_quantity: u32,
    #[serde(default)]
    pub feature_map: u32,
    #[serde(default)]
    pub expiration_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Days from first use.
    #[serde(default)]
    pub usage_period_days: Option<u32>,
    #[serde(default)]
    pub activation_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Pay per use.
    #[serde(default)]
    pub unit_counter: Option<u32>,
    #[serde(default)]
    pub maintenance_period_days: Option<u32>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub user_data: String,
    #[serde(default)]
    pub protected_data: String,
    /// Whether a customer may return this license; unset follows the global setting.
    #[serde(default)]
    pub deactivation_allowed: Option<bool>,
}

fn all_container_types() -> Vec<ContainerType> {
    vec![
        ContainerType::Act,
        ContainerType::Dongle,
        ContainerType::Cloud,
    ]
}

impl Default for ItemOptions {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl ItemOptions {
    pub fn validate(&self) -> Result<()> {
        if self.container_types.is_empty() {
            return Err(Error::invalid("container_types", "at least one is needed"));
        }
        if self.license_quantity > 1_000_000 {
            return Err(Error::invalid("license_quantity", "at most 1000000"));
        }
        for (f, v) in [
            ("usage_period_days", self.usage_period_days),
            ("maintenance_period_days", self.maintenance_period_days),
        ] {
            if v.is_some_and(|d| d == 0 || d > 36_500) {
                return Err(Error::invalid(f, "between 1 and 36500 days"));
            }
        }
        if let (Some(a), Some(e)) = (self.activation_time, self.expiration_time) {
            if a >= e {
                return Err(Error::invalid(
                    "activation_time",
                    "must be before expiration_time",
                ));
            }
        }
        check_len("text", &self.text, MAX_TEXT)?;
        check_len("user_data", &self.user_data, MAX_DATA)?;
        check_len("protected_data", &self.protected_data, MAX_DATA)
    }
}

pub fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        Err(Error::invalid(field, format!("at most {max} bytes")))
    } else {
        Ok(())
    }
}

/// An identifier given by a person or an ERP: printable, no spaces at the ends, bounded.
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
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactivationBehaviour {
    None,
    Blacklist,
    Withdraw,
}

/// The vendor's global settings, one set per firm code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub deactivation_allowed: bool,
    pub reactivation_behaviour: ReactivationBehaviour,
    pub blocking_period_days: u32,
    pub self_service_count: u32,
    pub lock_item: Option<String>,
    pub automatic_update_handling: bool,
    pub duplicate_check: bool,
    pub accept_externally_created_entries: bool,
    /// 0 = no quota.
    pub monthly_activation_quota: u32,
    /// Ticket rule: all licenses of a ticket must be activated into one container.
    pub single_container: bool,
    /// Ticket rule: `all` activates every available license of a ticket at once,
    /// `selected` the ones the customer picks.
    pub activation_mode: ActivationMode,
    /// How many fingerprint traits of an `act` container may change before it is invalid.
    pub fingerprint_tolerance: u32,
    /// How long an update may be applied after it was issued.
    pub update_validity_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationMode {
    All,
    Selected,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            deactivation_allowed: true,
            reactivation_behaviour: ReactivationBehaviour::Blacklist,
            blocking_period_days: 0,
            self_service_count: 1,
            lock_item: None,
            automatic_update_handling: true,
            duplicate_check: true,
            accept_externally_created_entries: false,
            monthly_activation_quota: 0,
            single_container: false,
            activation_mode: ActivationMode::Selected,
            fingerprint_tolerance: 2,
            update_validity_days: 30,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.blocking_period_days > 3650 {
            return Err(Error::invalid("blocking_period_days", "at most 3650"));
        }
        if self.self_service_count > 1000 {
            return Err(Error::invalid("self_service_count", "at most 1000"));
        }
        if self.fingerprint_tolerance > 4 {
            return Err(Error::invalid(
                "fingerprint_tolerance",
                "at most 4 of the 5 traits may change",
            ));
        }
        if !(1..=365).contains(&self.update_validity_days) {
            return Err(Error::invalid("update_validity_days", "between 1 and 365"));
        }
        if let Some(l) = &self.lock_item {
            check_id("lock_item", l)?;
        }
        Ok(())
    }
}

/// License states (DESIGN.md, "License lifecycle").
pub mod license_state {
    pub const AVAILABLE: &str = "available";
    /// An update adding it to a container was issued; no receipt has proved it yet.
    pub const PENDING: &str = "pending";
    /// A receipt proved it is in the container.
    pub const ACTIVATED: &str = "activated";
    /// An update removing it was issued; no receipt has proved it yet.
    pub const RETURNING: &str = "returning";
}

/// Container states.
pub mod container_state {
    pub const ACTIVE: &str = "active";
    /// It showed a state the server never issued; automatic handling stopped.
    pub const MANIPULATED: &str = "manipulated";
}
