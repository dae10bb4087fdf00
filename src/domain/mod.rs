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
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Json => "json",
            Interface::Cli => "cli",
            Interface::System => "system",
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
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sales => "sales",
            Role::Support => "support",
            Role::Erp => "erp",
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
        if let Some(l) = &self.lock_item {
            check_id("lock_item", l)?;
        }
        Ok(())
    }
}

/// License states (DESIGN.md, "License lifecycle").
pub mod license_state {
    pub const AVAILABLE: &str = "available";
}
