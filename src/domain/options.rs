//! The product item options: what a license carries into a container, and what an update
//! item changes in the licenses already sold.
use serde::{Deserialize, Serialize};

use super::cloud::{check_lease, SeatCounting};
use super::{
    check_len, ContainerType, ReactivationBehaviour, ReactivationPolicy, MAX_DATA, MAX_TEXT,
};
use crate::error::{Error, Result};

/// The product item options a license carries into a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
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
    /// A trial: a customer who registered in the portal (or signs in by single sign-on) may
    /// take one license of this item, once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trial: bool,
    /// In a cloud container: how long a seat is kept without a heartbeat (seconds; unset:
    /// `cloud::DEFAULT_LEASE_SECONDS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u32>,
    /// In a cloud container: a seat per access (the default) or per station.
    #[serde(default, skip_serializing_if = "SeatCounting::is_default")]
    pub seat_counting: SeatCounting,
    /// At most this many activations of one license (re-activations included) within a
    /// period, asked by customers (deactivate–reactivate loops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_limit: Option<ActivationLimit>,
    /// The license must check in: its entry carries a deadline, the end of the UTC day this
    /// many days after its container's last contact, which every contact moves on; past it
    /// the license is refused offline (`check_in_deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_in_days: Option<u32>,
}

/// The check-in deadline of a license that must check in every `days` days, renewed at
/// `now`: the end of the UTC day `days` days later (seconds since the Unix epoch). It moves
/// once a day, so a container gets at most one renewal a day.
pub fn check_in_deadline(now: chrono::NaiveDateTime, days: u32) -> i64 {
    let day = now.date() + chrono::Duration::days(i64::from(days) + 1);
    day.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp()
}

/// At most `activations` activations of a license within `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivationLimit {
    pub activations: u32,
    pub days: u32,
}

/// What an update item changes in the licenses it matches (same firm and product code on
/// the same ticket). A line's quantity multiplies the effect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct UpdateEffect {
    /// Moves the expiration time later (from now, if the license had none).
    pub extend_expiration_days: u32,
    pub extend_maintenance_days: u32,
    /// Bits added to the feature map.
    pub add_features: u32,
    /// Added to the license quantity (floating users).
    pub add_quantity: u32,
    /// Added to the unit counter of a pay-per-use license (one that has none gets one).
    #[serde(skip_serializing_if = "is_zero")]
    pub add_units: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
        if self.add_units > 0 {
            let add = self.add_units.saturating_mul(times);
            o.unit_counter = Some(
                o.unit_counter
                    .unwrap_or(0)
                    .saturating_add(add)
                    .min(1_000_000_000),
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
        if self.check_in_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(Error::invalid("check_in_days", "between 1 and 3650 days"));
        }
        if self.blocking_period_days.is_some_and(|d| d > 3650) {
            return Err(Error::invalid("blocking_period_days", "at most 3650"));
        }
        if self.self_service_count.is_some_and(|n| n > 1000) {
            return Err(Error::invalid("self_service_count", "at most 1000"));
        }
        if self.trial && self.update.is_some() {
            return Err(Error::invalid("trial", "an update item cannot be a trial"));
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
            if u.add_units > 1_000_000_000 {
                return Err(Error::invalid("update.add_units", "at most 1000000000"));
            }
        }
        check_lease(self.lease_seconds)?;
        if let Some(l) = self.activation_limit {
            if !(1..=1000).contains(&l.activations) {
                return Err(Error::invalid("activation_limit.activations", "1 to 1000"));
            }
            if !(1..=3650).contains(&l.days) {
                return Err(Error::invalid("activation_limit.days", "1 to 3650 days"));
            }
        }
        check_len("text", &self.text, MAX_TEXT)?;
        check_len("user_data", &self.user_data, MAX_DATA)?;
        check_len("protected_data", &self.protected_data, MAX_DATA)
    }
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
            add_units: 50,
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
        // A license without a unit counter gets one.
        assert_eq!(o.unit_counter, Some(100));
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
