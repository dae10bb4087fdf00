//! Lost licenses: whether a customer may return a license, re-activate it into another
//! container without a return, or restore a whole `act` container on the same computer.
//! Re-activation is policy, not luck (DESIGN.md, rule 4).
use chrono::NaiveDateTime;

use super::{ItemOptions, LicenseState, ReactivationBehaviour, ReactivationPolicy, Settings};

/// Whether a customer may return (deactivate) a license of this item.
pub fn returnable(s: &Settings, o: &ItemOptions) -> bool {
    o.deactivation_allowed.unwrap_or(s.deactivation_allowed)
}

/// What happens to the old container when a license of this item is re-activated elsewhere.
pub fn behaviour(s: &Settings, o: &ItemOptions) -> ReactivationBehaviour {
    o.reactivation_behaviour.unwrap_or(s.reactivation_behaviour)
}

/// What the re-activation rules need to know of one license.
#[derive(Debug, Clone, Copy)]
pub struct LicenseFacts {
    pub id: i64,
    pub state: LicenseState,
    /// When a receipt last proved it activated.
    pub activated_at: Option<NaiveDateTime>,
    /// Re-activations the customer made alone so far.
    pub self_service_used: i32,
}

/// What the policy says about one re-activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The customer may do it alone (it uses one of the license's self-service count).
    SelfService,
    /// Only with support's approval, for the reason given.
    Approval(String),
    /// Not at all, for the reason given.
    Never(String),
}

/// The re-activation policy for one license: the item's setting over the global one, then
/// the blocking period, then the self-service count.
pub fn reactivation(
    s: &Settings,
    o: &ItemOptions,
    l: &LicenseFacts,
    now: NaiveDateTime,
) -> Decision {
    let policy = o.reactivation.unwrap_or(s.reactivation);
    let blocking = o.blocking_period_days.unwrap_or(s.blocking_period_days);
    let count = o.self_service_count.unwrap_or(s.self_service_count);
    match policy {
        ReactivationPolicy::Never => {
            return Decision::Never(format!("license {} may not be re-activated", l.id))
        }
        ReactivationPolicy::Approval => {
            return Decision::Approval(format!(
                "re-activating license {} needs support's approval",
                l.id
            ))
        }
        ReactivationPolicy::AfterBlockingPeriod => {
            // Not confirmed where it is (pending, also after a move whose receipt has not
            // come, which keeps the previous generation's date): the period starts now.
            let at = match l.state {
                LicenseState::Pending => now,
                _ => l.activated_at.unwrap_or(now),
            };
            let until = at + chrono::Duration::days(i64::from(blocking));
            if now < until {
                return Decision::Approval(format!(
                    "license {} was activated at {at}; its blocking period of {blocking} days \
                     ends at {until}",
                    l.id
                ));
            }
        }
        ReactivationPolicy::Allowed => {}
    }
    if l.self_service_used.max(0) as u32 >= count {
        return Decision::Approval(format!(
            "license {} has used its {count} self-service re-activation(s)",
            l.id
        ));
    }
    Decision::SelfService
}

/// How many of the traits an `act` container was made with (name, salted hash) are not
/// shown, or shown differently, by a computer asking to restore it. Each stored trait is
/// compared with the one trait of its name; a name given twice counts as changed.
pub fn changed_traits(stored: &[(&str, &str)], given: &[(&str, &str)]) -> usize {
    stored
        .iter()
        .filter(|(name, hash)| {
            let mut same_name = given.iter().filter(|(n, _)| n == name);
            !matches!((same_name.next(), same_name.next()), (Some((_, h)), None) if h == hash)
        })
        .count()
}

/// What the restore policy says, once the computer is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreDecision {
    Allowed,
    /// Within the blocking period: only with support's approval, for the reason given.
    Approval(String),
    Never,
}

/// The `restore` setting for a container last activated at `since` (or made then, if it
/// never was).
pub fn restore(
    s: &Settings,
    old_serial: &str,
    since: NaiveDateTime,
    now: NaiveDateTime,
) -> RestoreDecision {
    match s.restore {
        ReactivationPolicy::Never => RestoreDecision::Never,
        ReactivationPolicy::AfterBlockingPeriod => {
            let days = s.blocking_period_days;
            let until = since + chrono::Duration::days(i64::from(days));
            if now < until {
                RestoreDecision::Approval(format!(
                    "container {old_serial} was last activated at {since}; restoring it is \
                     allowed after the blocking period of {days} days, at {until}"
                ))
            } else {
                RestoreDecision::Allowed
            }
        }
        // `approval` is refused when the settings are saved; `allowed` is what it says.
        ReactivationPolicy::Allowed | ReactivationPolicy::Approval => RestoreDecision::Allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate};

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn facts(state: LicenseState, activated_days_ago: Option<i64>, used: i32) -> LicenseFacts {
        LicenseFacts {
            id: 7,
            state,
            activated_at: activated_days_ago.map(|d| now() - Duration::days(d)),
            self_service_used: used,
        }
    }

    fn settings(policy: ReactivationPolicy, blocking: u32, count: u32) -> Settings {
        Settings {
            reactivation: policy,
            blocking_period_days: blocking,
            self_service_count: count,
            ..Settings::default()
        }
    }

    #[test]
    fn reactivation_follows_policy_then_blocking_period_then_count() {
        use LicenseState::{Activated, Pending};
        use ReactivationPolicy::*;
        let o = ItemOptions::default();
        let cases: Vec<(Settings, LicenseFacts, &str)> = vec![
            (
                settings(Allowed, 0, 1),
                facts(Activated, Some(1), 0),
                "self",
            ),
            (
                settings(Allowed, 0, 1),
                facts(Activated, Some(1), 1),
                "approval",
            ),
            (
                settings(Allowed, 0, 0),
                facts(Activated, Some(1), 0),
                "approval",
            ),
            (settings(Never, 0, 5), facts(Activated, Some(1), 0), "never"),
            (
                settings(Approval, 0, 5),
                facts(Activated, Some(1), 0),
                "approval",
            ),
            // Within the blocking period of 30 days: approval; after it: the count decides.
            (
                settings(AfterBlockingPeriod, 30, 5),
                facts(Activated, Some(29), 0),
                "approval",
            ),
            (
                settings(AfterBlockingPeriod, 30, 5),
                facts(Activated, Some(30), 0),
                "self",
            ),
            (
                settings(AfterBlockingPeriod, 30, 1),
                facts(Activated, Some(31), 1),
                "approval",
            ),
            // Pending where it is: the period starts now, whatever the old date says.
            (
                settings(AfterBlockingPeriod, 30, 5),
                facts(Pending, Some(400), 0),
                "approval",
            ),
            (
                settings(AfterBlockingPeriod, 0, 5),
                facts(Pending, Some(400), 0),
                "self",
            ),
            // Never activated: counted from now.
            (
                settings(AfterBlockingPeriod, 1, 5),
                facts(Activated, None, 0),
                "approval",
            ),
        ];
        for (s, l, want) in cases {
            let d = reactivation(&s, &o, &l, now());
            let got = match &d {
                Decision::SelfService => "self",
                Decision::Never(_) => "never",
                Decision::Approval(_) => "approval",
            };
            assert_eq!(got, want, "{:?} {l:?}: {d:?}", s.reactivation);
        }
        let d = reactivation(
            &settings(AfterBlockingPeriod, 30, 5),
            &o,
            &facts(Activated, Some(10), 0),
            now(),
        );
        assert_eq!(
            d,
            Decision::Approval(
                "license 7 was activated at 2026-11-21 12:00:00; its blocking period of 30 \
                 days ends at 2026-12-21 12:00:00"
                    .into()
            )
        );
    }

    #[test]
    fn the_item_overrides_the_global_settings() {
        let s = settings(ReactivationPolicy::Allowed, 0, 1);
        let o = ItemOptions {
            reactivation: Some(ReactivationPolicy::Never),
            reactivation_behaviour: Some(ReactivationBehaviour::Withdraw),
            deactivation_allowed: Some(false),
            ..Default::default()
        };
        let l = facts(LicenseState::Activated, Some(1), 0);
        assert!(matches!(
            reactivation(&s, &o, &l, now()),
            Decision::Never(_)
        ));
        assert_eq!(behaviour(&s, &o), ReactivationBehaviour::Withdraw);
        assert!(!returnable(&s, &o));
        let plain = ItemOptions::default();
        assert_eq!(behaviour(&s, &plain), s.reactivation_behaviour);
        assert!(returnable(&s, &plain));
        let counted = ItemOptions {
            self_service_count: Some(3),
            ..Default::default()
        };
        let used2 = facts(LicenseState::Activated, Some(1), 2);
        assert_eq!(
            reactivation(&s, &counted, &used2, now()),
            Decision::SelfService
        );
    }

    #[test]
    fn traits_are_compared_one_to_one_by_name() {
        let stored = [("machine", "a"), ("host", "b"), ("mac", "c"), ("cpu", "d")];
        assert_eq!(changed_traits(&stored, &stored), 0);
        assert_eq!(
            changed_traits(&stored, &[("machine", "a"), ("host", "b")]),
            2
        );
        assert_eq!(
            changed_traits(
                &stored,
                &[("machine", "x"), ("host", "b"), ("mac", "c"), ("cpu", "d")]
            ),
            1
        );
        // A name shown twice (once right, once wrong) does not count as the same.
        let twice = [
            ("machine", "a"),
            ("machine", "z"),
            ("host", "b"),
            ("mac", "c"),
            ("cpu", "d"),
        ];
        assert_eq!(changed_traits(&stored, &twice), 1);
        // Extra traits the old container did not have change nothing.
        let extra = [
            ("machine", "a"),
            ("host", "b"),
            ("mac", "c"),
            ("cpu", "d"),
            ("disk", "e"),
        ];
        assert_eq!(changed_traits(&stored, &extra), 0);
        assert_eq!(changed_traits(&stored, &[]), 4);
    }

    #[test]
    fn restore_follows_its_own_setting() {
        let mut s = Settings {
            blocking_period_days: 30,
            ..Settings::default()
        };
        let since = now() - Duration::days(10);
        assert_eq!(restore(&s, "130-1", since, now()), RestoreDecision::Allowed);
        s.restore = ReactivationPolicy::Never;
        assert_eq!(restore(&s, "130-1", since, now()), RestoreDecision::Never);
        s.restore = ReactivationPolicy::AfterBlockingPeriod;
        assert!(matches!(
            restore(&s, "130-1", since, now()),
            RestoreDecision::Approval(why) if why.contains("at 2026-12-21 12:00:00")
        ));
        let long_ago = now() - Duration::days(30);
        assert_eq!(
            restore(&s, "130-1", long_ago, now()),
            RestoreDecision::Allowed
        );
        // `approval` is refused when settings are saved; should one be stored, it allows.
        s.restore = ReactivationPolicy::Approval;
        assert_eq!(restore(&s, "130-1", since, now()), RestoreDecision::Allowed);
    }
}
