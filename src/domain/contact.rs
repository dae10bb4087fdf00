//! The server believes receipts, not requests. Every message a container sends shows its
//! context (firm update counter and the digest of its entries); these rules say how that
//! context relates to what the container last confirmed, what a request may do then, and how
//! a confirmed update settles the container's outstanding licenses.
use chrono::NaiveDateTime;

use super::LicenseState;

/// The context a container's message shows.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub counter: u64,
    pub digest: &'a str,
    /// When the container made the message, by its clock.
    pub made_at: NaiveDateTime,
}

/// What the server holds as the container's last confirmed state (its mirror).
#[derive(Debug, Clone, Copy)]
pub struct ConfirmedState<'a> {
    pub counter: i64,
    pub digest: &'a str,
    /// When that state was confirmed.
    pub at: NaiveDateTime,
}

/// How a context relates to the confirmed state, before any update is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It shows the confirmed state.
    Current,
    /// One counter past it: it confirms an update if one issued from the confirmed state
    /// leads to its digest.
    Next,
    /// Older than the confirmed state; `after_confirm` when the container made it after the
    /// server saw the newer state (the container was rolled back to a copy).
    Stale { after_confirm: bool },
    /// Nothing the server issued leads there (same counter with another digest, or further
    /// ahead than one update).
    Unknown,
}

pub fn standing(shown: Shown, confirmed: ConfirmedState) -> Standing {
    let counter = i64::try_from(shown.counter).unwrap_or(i64::MAX);
    if counter == confirmed.counter && shown.digest == confirmed.digest {
        Standing::Current
    } else if counter < confirmed.counter {
        Standing::Stale {
            after_confirm: shown.made_at > confirmed.at,
        }
    } else if Some(counter) == confirmed.counter.checked_add(1) {
        Standing::Next
    } else {
        Standing::Unknown
    }
}

/// A context after the update it may confirm was looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Current,
    /// It proves an issued update applied: that update is now the confirmed state.
    Confirms,
    Stale {
        after_confirm: bool,
    },
    Unknown,
}

impl Standing {
    /// `update_found`: for `Next`, whether an issued update leads to the shown digest.
    pub fn resolve(self, update_found: bool) -> Seen {
        match self {
            Standing::Current => Seen::Current,
            Standing::Next if update_found => Seen::Confirms,
            Standing::Next | Standing::Unknown => Seen::Unknown,
            Standing::Stale { after_confirm } => Seen::Stale { after_confirm },
        }
    }
}

/// What a request (any contact but a receipt) may do, by what its context shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestVerdict {
    /// Go on (a confirmed update, if any, is settled first).
    Proceed,
    /// A container this request registered was issued nothing: it must show counter 0 and
    /// no licenses; the registration is not kept.
    RefuseNewContainer,
    /// An old request made before the newer state was confirmed: refused, nothing marked.
    RefuseStale,
    /// The container shows a state no update leads to, or was rolled back: it is marked as
    /// manipulated and gets nothing until a person decides.
    Manipulated { rolled_back: bool },
}

pub fn request_verdict(seen: Seen, registered_now: bool) -> RequestVerdict {
    match seen {
        Seen::Current | Seen::Confirms => RequestVerdict::Proceed,
        _ if registered_now => RequestVerdict::RefuseNewContainer,
        Seen::Stale {
            after_confirm: false,
        } => RequestVerdict::RefuseStale,
        Seen::Stale {
            after_confirm: true,
        } => RequestVerdict::Manipulated { rolled_back: true },
        Seen::Unknown => RequestVerdict::Manipulated { rolled_back: false },
    }
}

/// How a confirmed update settles one of the container's licenses of the firm, by its state
/// and whether the confirmed content holds it: pending and held becomes activated; returning
/// and not held becomes available; withdrawing and not held becomes deleted. Anything else
/// stays as it is (`None`). The PostgreSQL store settles in one statement that must agree
/// with this (a test runs both on every case).
pub fn settled(state: LicenseState, held: bool) -> Option<LicenseState> {
    use LicenseState as S;
    match (state, held) {
        (S::Pending, true) => Some(S::Activated),
        (S::Returning, false) => Some(S::Available),
        (S::Withdrawing, false) => Some(S::Deleted),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D0: &str = "d0";
    const D1: &str = "d1";

    fn t(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .naive_utc()
    }

    fn shown(counter: u64, digest: &str, made_at: i64) -> Shown<'_> {
        Shown {
            counter,
            digest,
            made_at: t(made_at),
        }
    }

    #[test]
    fn a_context_stands_where_its_counter_and_digest_put_it() {
        let at5 = ConfirmedState {
            counter: 5,
            digest: D0,
            at: t(1000),
        };
        let cases = [
            (shown(5, D0, 2000), Standing::Current),
            (shown(5, D1, 2000), Standing::Unknown),
            (shown(6, D1, 2000), Standing::Next),
            (shown(7, D1, 2000), Standing::Unknown),
            (
                shown(4, D1, 999),
                Standing::Stale {
                    after_confirm: false,
                },
            ),
            (
                shown(4, D1, 1000),
                Standing::Stale {
                    after_confirm: false,
                },
            ),
            (
                shown(4, D1, 1001),
                Standing::Stale {
                    after_confirm: true,
                },
            ),
            (shown(u64::MAX, D1, 0), Standing::Unknown),
        ];
        for (s, want) in cases {
            assert_eq!(standing(s, at5), want, "{s:?}");
        }
        // A counter at the largest number cannot be "one past".
        let top = ConfirmedState {
            counter: i64::MAX,
            digest: D0,
            at: t(0),
        };
        assert_eq!(standing(shown(u64::MAX, D1, 0), top), Standing::Unknown);
    }

    #[test]
    fn one_past_confirms_only_an_update_that_was_issued() {
        assert_eq!(Standing::Next.resolve(true), Seen::Confirms);
        assert_eq!(Standing::Next.resolve(false), Seen::Unknown);
        assert_eq!(Standing::Current.resolve(false), Seen::Current);
        assert_eq!(Standing::Unknown.resolve(true), Seen::Unknown);
        let stale = Standing::Stale {
            after_confirm: true,
        };
        assert_eq!(
            stale.resolve(true),
            Seen::Stale {
                after_confirm: true
            }
        );
    }

    #[test]
    fn a_request_goes_on_only_from_a_state_the_server_issued() {
        use RequestVerdict as V;
        let stale = |after_confirm| Seen::Stale { after_confirm };
        let cases = [
            (Seen::Current, false, V::Proceed),
            (Seen::Current, true, V::Proceed),
            (Seen::Confirms, false, V::Proceed),
            (stale(false), false, V::RefuseStale),
            (stale(true), false, V::Manipulated { rolled_back: true }),
            (Seen::Unknown, false, V::Manipulated { rolled_back: false }),
            // A container registered by this request was issued nothing.
            (stale(false), true, V::RefuseNewContainer),
            (stale(true), true, V::RefuseNewContainer),
            (Seen::Unknown, true, V::RefuseNewContainer),
        ];
        for (seen, registered, want) in cases {
            assert_eq!(
                request_verdict(seen, registered),
                want,
                "{seen:?} {registered}"
            );
        }
    }

    #[test]
    fn a_confirmed_update_settles_what_it_proves() {
        use LicenseState as S;
        let table = [
            (S::Available, true, None),
            (S::Available, false, None),
            (S::Pending, true, Some(S::Activated)),
            // Not in the confirmed content: its adding update was not the one applied.
            (S::Pending, false, None),
            (S::Activated, true, None),
            (S::Activated, false, None),
            // Still held: the deleting update was not the one applied.
            (S::Returning, true, None),
            (S::Returning, false, Some(S::Available)),
            (S::Withdrawing, true, None),
            (S::Withdrawing, false, Some(S::Deleted)),
            (S::Deleted, true, None),
            (S::Deleted, false, None),
        ];
        assert_eq!(
            table.len(),
            LicenseState::ALL.len() * 2,
            "every case is listed"
        );
        for (state, held, want) in table {
            assert_eq!(settled(state, held), want, "{state} held={held}");
        }
    }
}
