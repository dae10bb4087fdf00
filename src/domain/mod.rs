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
    /// A shop or ERP connector (`/connect/<name>`).
    Connector,
    /// The SOAP services (`/soap/<Service>`).
    Soap,
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
    /// Re-activation policy of this item; unset follows the global setting.
    #[serde(default)]
    pub reactivation: Option<ReactivationPolicy>,
    /// What happens to the old container on re-activation; unset follows the global setting.
    #[serde(default)]
    pub reactivation_behaviour: Option<ReactivationBehaviour>,
    #[serde(default)]
    pub blocking_period_days: Option<u32>,
    #[serde(default)]
    pub self_service_count: Option<u32>,
    /// For update items: what one unit does to each matching license.
    #[serde(default)]
    pub update: Option<UpdateEffect>,
}

/// What an update item changes in the licenses it matches (same firm and product code on
/// the same ticket). A line's quantity multiplies the effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateEffect {
    /// Moves the expiration time later (from now, if the license had none).
    pub extend_expiration_days: u32,
    pub extend_maintenance_days: u32,
    /// Bits added to the feature map.
    pub add_features: u32,
    /// Added to the license quantity (floating users).
    pub add_quantity: u32,
}

impl UpdateEffect {
    pub fn is_empty(&self) -> bool {
        *self == UpdateEffect::default()
    }

    /// Applies `times` units of the effect to a license's options.
    pub fn apply(&self, o: &mut ItemOptions, times: u32, now: chrono::DateTime<chrono::Utc>) {
        if self.extend_expiration_days > 0 {
            let days = i64::from(self.extend_expiration_days) * i64::from(times);
            let from = o.expiration_time.unwrap_or(now).max(now);
            o.expiration_time = Some(from + chrono::Duration::days(days));
        }
        if self.extend_maintenance_days > 0 {
            let add = self.extend_maintenance_days.saturating_mul(times);
            o.maintenance_period_days = Some(
                o.maintenance_period_days
                    .unwrap_or(0)
                    .saturating_add(add)
                    .min(36_500),
            );
        }
        o.feature_map |= self.add_features;
        o.license_quantity = o
            .license_quantity
            .saturating_add(self.add_quantity.saturating_mul(times))
            .min(1_000_000);
    }
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
        if self.blocking_period_days.is_some_and(|d| d > 3650) {
            return Err(Error::invalid("blocking_period_days", "at most 3650"));
        }
        if self.self_service_count.is_some_and(|n| n > 1000) {
            return Err(Error::invalid("self_service_count", "at most 1000"));
        }
        if let Some(u) = &self.update {
            if u.is_empty() {
                return Err(Error::invalid(
                    "update",
                    "an update effect must change something",
                ));
            }
            for (f, v) in [
                ("update.extend_expiration_days", u.extend_expiration_days),
                ("update.extend_maintenance_days", u.extend_maintenance_days),
            ] {
                if v > 36_500 {
                    return Err(Error::invalid(f, "at most 36500 days"));
                }
            }
            if u.add_quantity > 1_000_000 {
                return Err(Error::invalid("update.add_quantity", "at most 1000000"));
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

impl ReactivationBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            ReactivationBehaviour::None => "none",
            ReactivationBehaviour::Blacklist => "blacklist",
            ReactivationBehaviour::Withdraw => "withdraw",
        }
    }
}

/// Whether a customer may activate a license into a new container without returning it
/// from the old one (re-activation), or restore a whole container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactivationPolicy {
    Allowed,
    /// Allowed once the blocking period since the last activation has passed; earlier
    /// only with a person's approval.
    AfterBlockingPeriod,
    /// Every time only with a person's approval.
    Approval,
    Never,
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
    /// Re-activation without a return (items may override it).
    pub reactivation: ReactivationPolicy,
    /// Restoring an `act` container on the same computer after a reinstall (`approval`
    /// is not offered: allowed, after_blocking_period or never).
    pub restore: ReactivationPolicy,
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
            reactivation: ReactivationPolicy::Allowed,
            restore: ReactivationPolicy::Allowed,
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
        if self.restore == ReactivationPolicy::Approval {
            return Err(Error::invalid(
                "restore",
                "must be allowed, after_blocking_period or never",
            ));
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
    /// Withdrawn by the vendor while in a container: an update deletes it there; the
    /// receipt makes it `deleted`.
    pub const WITHDRAWING: &str = "withdrawing";
    /// Gone from its ticket for good (withdrawn, replaced, split or reset); the row stays
    /// for its history.
    pub const DELETED: &str = "deleted";
}

/// Container states.
pub mod container_state {
    pub const ACTIVE: &str = "active";
    /// It showed a state the server never issued; automatic handling stopped.
    pub const MANIPULATED: &str = "manipulated";
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_update_effect_extends_from_the_later_of_now_and_the_old_expiry() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let effect = UpdateEffect {
            extend_expiration_days: 365,
            extend_maintenance_days: 30,
            add_features: 4,
            add_quantity: 2,
        };
        let mut o = ItemOptions {
            feature_map: 1,
            license_quantity: 5,
            ..Default::default()
        };
        // No expiry yet: a year from now; the quantity of the line multiplies the effect.
        effect.apply(&mut o, 2, now);
        assert_eq!(o.expiration_time, Some(now + chrono::Duration::days(730)));
        assert_eq!(o.maintenance_period_days, Some(60));
        assert_eq!((o.feature_map, o.license_quantity), (5, 9));
        // A future expiry is extended from itself, a past one from now.
        let later = o.expiration_time.unwrap();
        effect.apply(&mut o, 1, now);
        assert_eq!(o.expiration_time, Some(later + chrono::Duration::days(365)));
        o.expiration_time = Some(now - chrono::Duration::days(10));
        effect.apply(&mut o, 1, now);
        assert_eq!(o.expiration_time, Some(now + chrono::Duration::days(365)));
        assert!(UpdateEffect::default().is_empty());
    }
}
