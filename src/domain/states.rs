//! The states of licenses, updates, approval requests and containers: enums in the code,
//! stored as the same lowercase words they have always had in the database and on the wire.
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Declares a state enum with its stored word per variant: `as_str`, `parse`, `Display`,
/// serde as that word, and `TryFrom<String>` (how the store reads the column).
macro_rules! stored_words {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Whether a container is handled automatically.
    ContainerState, "container state" {
        Active = "active",
        /// It showed a state the server never issued; automatic handling stopped.
        Manipulated = "manipulated",
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
        let container = [
            (ContainerState::Active, "active"),
            (ContainerState::Manipulated, "manipulated"),
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
}
