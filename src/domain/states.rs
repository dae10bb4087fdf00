//! The states of licenses, updates, approval requests, containers, the outgoing queues,
//! connector notifications and scheduled job runs: enums in the code, stored as the same
//! lowercase words they have always had in the database and on the wire.
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Declares a state enum with its stored word per variant: `as_str`, `parse`, `Display`,
/// serde as that word, and `TryFrom<String>` (how the store reads the column).
macro_rules! stored_words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            pub fn parse(s: &str) -> Result<$name> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(Error::invalid(
                        $what,
                        format!(
                            "{:?} is not one of {}",
                            other.chars().take(40).collect::<String>(),
                            [$($word),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<$name> {
                $name::parse(&s)
            }
        }
    };
}

stored_words! {
    /// Where a license is in its life (DESIGN.md, "License lifecycle").
    LicenseState, "state" {
        Available = "available",
        /// An update adding it to a container was issued; no receipt has proved it yet.
        Pending = "pending",
        /// A receipt proved it is in the container.
        Activated = "activated",
        /// An update removing it was issued; no receipt has proved it yet.
        Returning = "returning",
        /// Withdrawn by the vendor while in a container: an update deletes it there; the
        /// receipt makes it `deleted`.
        Withdrawing = "withdrawing",
        /// Gone from its ticket for good (withdrawn, replaced, split or reset); the row stays
        /// for its history.
        Deleted = "deleted",
    }
}

impl LicenseState {
    /// Bound to a container (the update that put it there may still be unconfirmed).
    pub fn in_container(self) -> bool {
        matches!(self, LicenseState::Pending | LicenseState::Activated)
    }
}

stored_words! {
    /// An update made for one container and counter value.
    UpdateState, "update state" {
        Issued = "issued",
        /// A receipt (or a later context) proved it applied.
        Confirmed = "confirmed",
        /// Another update made from the same counter was confirmed instead.
        Void = "void",
    }
}

stored_words! {
    /// A request for support's approval (re-activation, restore).
    ApprovalState, "state" {
        Open = "open",
        Approved = "approved",
        Denied = "denied",
    }
}

stored_words! {
    /// What a ticket's licenses are for.
    TicketState, "ticket state" {
        /// A customer's: activated through the gateway, the portal or the vendor's wizard.
        Active = "active",
        /// A production order's: programmed into dongles on the production line only.
        Production = "production",
        /// A customer's that the vendor disabled (a cancelled or disputed order): it
        /// activates nothing until enabled again; what is in containers stays there.
        Disabled = "disabled",
    }
}

stored_words! {
    /// Whether a container is handled automatically.
    ContainerState, "container state" {
        Active = "active",
        /// It showed a state the server never issued; automatic handling stopped.
        Manipulated = "manipulated",
        /// Support decided about a manipulated container: its next request is taken as its
        /// state when an update the server issued for it produced that state, and it gets
        /// from there to what the server holds for it (or the lock, when also blacklisted).
        Resynchronising = "resynchronising",
    }
}

stored_words! {
    /// Where a queued mail (the outbox) or ERP write-back is. Both queues are worked the same
    /// way (claimed for a lease, tried, retried after a growing delay), so they share one
    /// set of states.
    QueueState, "state" {
        /// Waiting until it is due (`next_attempt_at`).
        Queued = "queued",
        /// Claimed by a node, which holds it for a lease while it tries to send it.
        Sending = "sending",
        Sent = "sent",
        /// Given up (a permanent error, or the last attempt); support may queue it again.
        Failed = "failed",
    }
}

stored_words! {
    /// What became of a notification a connector received.
    NotificationOutcome, "outcome" {
        /// Recorded on arrival; replaced by one of the others when it is handled.
        Received = "received",
        OrderCreated = "order_created",
        /// New lines for an order placed before, added to its ticket.
        LinesAdded = "lines_added",
        /// The same notification again: the order it made first is the answer.
        Duplicate = "duplicate",
        Rejected = "rejected",
        /// An event of the shop that places no order (a refund, a subscription update …).
        Ignored = "ignored",
    }
}

stored_words! {
    /// A scheduled job's run for one scheduled time.
    JobRunState, "outcome" {
        /// Claimed by a node and not finished (or cut off when that node stopped).
        Running = "running",
        Ok = "ok",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored words are the database's and the wire's contract: listed here literally.
    #[test]
    fn states_are_stored_as_their_words_and_read_back() {
        use serde_json::json;
        let license = [
            (LicenseState::Available, "available"),
            (LicenseState::Pending, "pending"),
            (LicenseState::Activated, "activated"),
            (LicenseState::Returning, "returning"),
            (LicenseState::Withdrawing, "withdrawing"),
            (LicenseState::Deleted, "deleted"),
        ];
        assert_eq!(license.len(), LicenseState::ALL.len());
        for (s, word) in license {
            assert_eq!((s.as_str(), LicenseState::parse(word).unwrap()), (word, s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(word));
            assert_eq!(LicenseState::try_from(word.to_string()).unwrap(), s);
        }
        let update = [
            (UpdateState::Issued, "issued"),
            (UpdateState::Confirmed, "confirmed"),
            (UpdateState::Void, "void"),
        ];
        assert_eq!(update.len(), UpdateState::ALL.len());
        for (s, word) in update {
            assert_eq!((s.as_str(), UpdateState::parse(word).unwrap()), (word, s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(word));
        }
        let approval = [
            (ApprovalState::Open, "open"),
            (ApprovalState::Approved, "approved"),
            (ApprovalState::Denied, "denied"),
        ];
        assert_eq!(approval.len(), ApprovalState::ALL.len());
        for (s, word) in approval {
            assert_eq!((s.as_str(), ApprovalState::parse(word).unwrap()), (word, s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(word));
        }
        let ticket = [
            (TicketState::Active, "active"),
            (TicketState::Production, "production"),
            (TicketState::Disabled, "disabled"),
        ];
        assert_eq!(ticket.len(), TicketState::ALL.len());
        for (s, word) in ticket {
            assert_eq!((s.as_str(), TicketState::parse(word).unwrap()), (word, s));
        }
        let container = [
            (ContainerState::Active, "active"),
            (ContainerState::Manipulated, "manipulated"),
            (ContainerState::Resynchronising, "resynchronising"),
        ];
        assert_eq!(container.len(), ContainerState::ALL.len());
        for (s, word) in container {
            assert_eq!(
                (s.as_str(), ContainerState::parse(word).unwrap()),
                (word, s)
            );
            assert_eq!(serde_json::to_value(s).unwrap(), json!(word));
        }
        let e = LicenseState::parse("lost").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid state: \"lost\" is not one of available, pending, activated, returning, \
             withdrawing, deleted"
        );
        assert!(
            UpdateState::parse("Issued").is_err(),
            "words are case-sensitive"
        );
        assert!(LicenseState::Pending.in_container() && LicenseState::Activated.in_container());
        assert!(!LicenseState::Returning.in_container());
        assert!(!LicenseState::Available.in_container());
    }

    /// Serde writes a variant's name in snake case and the store its word: the two must be
    /// the same word, or the JSON and the CLI would disagree with the database.
    fn same_word_everywhere<S>(all: &[S])
    where
        S: Serialize + fmt::Display + TryFrom<String, Error = Error> + PartialEq + fmt::Debug,
    {
        for s in all {
            let word = s.to_string();
            assert_eq!(serde_json::to_value(s).unwrap(), word.as_str());
            assert_eq!(&S::try_from(word).unwrap(), s);
        }
    }

    #[test]
    fn queue_notification_and_job_run_states_keep_their_words() {
        same_word_everywhere(QueueState::ALL);
        same_word_everywhere(NotificationOutcome::ALL);
        same_word_everywhere(JobRunState::ALL);
        fn words<S: fmt::Display>(all: &[S]) -> Vec<String> {
            all.iter().map(S::to_string).collect()
        }
        assert_eq!(
            words(QueueState::ALL),
            ["queued", "sending", "sent", "failed"]
        );
        assert_eq!(
            words(NotificationOutcome::ALL),
            [
                "received",
                "order_created",
                "lines_added",
                "duplicate",
                "rejected",
                "ignored"
            ]
        );
        assert_eq!(words(JobRunState::ALL), ["running", "ok", "failed"]);
        assert_eq!(
            NotificationOutcome::parse("lost").unwrap_err().to_string(),
            "invalid outcome: \"lost\" is not one of received, order_created, lines_added, \
             duplicate, rejected, ignored"
        );
    }
}
