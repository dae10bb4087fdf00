//! The vendor's global settings (one set per firm code) and the policies they choose from.
use serde::{Deserialize, Serialize};

use super::check_id;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub deactivation_allowed: bool,
    pub reactivation_behaviour: ReactivationBehaviour,
    pub blocking_period_days: u32,
    pub self_service_count: u32,
    pub lock_item: Option<String>,
    /// The honey-pot item: a license of it is published where only a thief finds it (a
    /// leaked ticket); a container that activates one is blacklisted at once and gets the
    /// lock with the same answer. The license itself stays available, a trap for the next.
    pub honeypot_item: Option<String>,
    /// ERP users may put containers on the blacklist (a refunded order locks its dongle);
    /// off, only admin and support may.
    pub erp_may_blacklist: bool,
    pub automatic_update_handling: bool,
    pub duplicate_check: bool,
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
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
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
            honeypot_item: None,
            erp_may_blacklist: false,
            automatic_update_handling: true,
            duplicate_check: true,
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
        if let Some(h) = &self.honeypot_item {
            check_id("honeypot_item", h)?;
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
