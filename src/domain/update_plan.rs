//! What an update carries. Every update is made from what the container last confirmed (the
//! server's mirror of it) and brings it to what the server wants it to hold; these rules say
//! which operation each license of the container needs, given its state and its entry.
use super::LicenseState;

/// How the container's entry for a license (as last confirmed) compares with the entry the
/// server would issue for it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The container holds no entry for it.
    No,
    /// It holds exactly that entry.
    Same,
    /// It holds an entry for it that differs (another generation, changed options).
    Differs,
}

/// What an update does about one license of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Add its entry; reported as added.
    Add,
    /// Replace the entry the container kept from an older generation; reported as added
    /// (the license comes back into this container).
    Readd,
    /// Replace a changed entry (an update item changed the license); reported as changed.
    Change,
    /// Delete its entry; reported as deleted.
    Delete,
    /// Nothing to send for it, but an update must still be made: the one outstanding for it
    /// is voided by the new one, whose receipt settles the license.
    Settle,
    /// Nothing.
    Nothing,
}

/// The operation for one license of the container, by its state and what the container holds.
pub fn step(state: LicenseState, held: Held) -> Step {
    use LicenseState as S;
    match (state, held) {
        (S::Pending, Held::No) => Step::Add,
        // Back in a container that kept an older generation of it.
        (S::Pending, Held::Differs) => Step::Readd,
        // Already there as it should be: the receipt of a new update proves it.
        (S::Pending, Held::Same) => Step::Settle,
        (S::Returning | S::Withdrawing, Held::Same | Held::Differs) => Step::Delete,
        // Withdrawn (or returned) while its update was still unconfirmed and never applied,
        // or the container was resynchronised from a copy made before it got the license.
        (S::Returning | S::Withdrawing, Held::No) => Step::Settle,
        // It lives here, but the container was resynchronised from a copy made before it
        // got the license: it comes back.
        (S::Activated, Held::No) => Step::Add,
        (S::Activated, Held::Differs) => Step::Change,
        _ => Step::Nothing,
    }
}

/// What an update does about the firm's lock on the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStep {
    /// Blacklisted and not yet locked: the update is the lock and nothing else.
    LockOnly,
    /// Locked and (as far as this update goes) not blacklisted: the lock is lifted first,
    /// then the rest.
    Unlock,
    /// Neither: licenses only.
    Licenses,
}

pub fn lock_step(blacklisted: bool, locked: bool) -> LockStep {
    match (blacklisted, locked) {
        (true, false) => LockStep::LockOnly,
        // Blacklisted and locked never gets an update (the contact refuses it first).
        (_, true) => LockStep::Unlock,
        (false, false) => LockStep::Licenses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LicenseState as S;

    #[test]
    fn each_state_and_entry_gets_its_operation() {
        let table = [
            (S::Available, Held::No, Step::Nothing),
            (S::Available, Held::Same, Step::Nothing),
            (S::Available, Held::Differs, Step::Nothing),
            (S::Pending, Held::No, Step::Add),
            (S::Pending, Held::Same, Step::Settle),
            (S::Pending, Held::Differs, Step::Readd),
            (S::Activated, Held::No, Step::Add),
            (S::Activated, Held::Same, Step::Nothing),
            (S::Activated, Held::Differs, Step::Change),
            (S::Returning, Held::No, Step::Settle),
            (S::Returning, Held::Same, Step::Delete),
            (S::Returning, Held::Differs, Step::Delete),
            (S::Withdrawing, Held::No, Step::Settle),
            (S::Withdrawing, Held::Same, Step::Delete),
            (S::Withdrawing, Held::Differs, Step::Delete),
            (S::Deleted, Held::No, Step::Nothing),
            (S::Deleted, Held::Same, Step::Nothing),
            (S::Deleted, Held::Differs, Step::Nothing),
        ];
        assert_eq!(
            table.len(),
            LicenseState::ALL.len() * 3,
            "every case is listed"
        );
        for (state, held, want) in table {
            assert_eq!(step(state, held), want, "{state} with {held:?}");
        }
    }

    #[test]
    fn the_lock_goes_alone_and_is_lifted_first() {
        assert_eq!(lock_step(true, false), LockStep::LockOnly);
        assert_eq!(lock_step(false, true), LockStep::Unlock);
        assert_eq!(lock_step(false, false), LockStep::Licenses);
        assert_eq!(lock_step(true, true), LockStep::Unlock);
    }
}
