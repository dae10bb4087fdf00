//! The rules of seats in cloud containers: how many a license has, how long a lease lasts,
//! how seats are counted, and which slot a new seat takes.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A lease kept without an item's `lease_seconds`: 15 minutes.
pub const DEFAULT_LEASE_SECONDS: u32 = 900;
/// The shortest lease an item may set.
pub const MIN_LEASE_SECONDS: u32 = 5;
/// The longest lease an item may set: a day.
pub const MAX_LEASE_SECONDS: u32 = 86_400;

/// How a floating license counts its users (CodeMeter's user limit counts either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SeatCounting {
    /// Every open takes a seat of its own.
    #[default]
    PerAccess,
    /// All opens from one station share its one seat.
    PerStation,
}

impl SeatCounting {
    pub fn is_default(&self) -> bool {
        *self == SeatCounting::PerAccess
    }
}

/// The seats of a license of `quantity` (0: a single user, so one seat).
pub fn seats(quantity: u32) -> u32 {
    quantity.max(1)
}

/// The lease of an item's `lease_seconds` (none: the default).
pub fn lease_seconds(configured: Option<u32>) -> u32 {
    configured.unwrap_or(DEFAULT_LEASE_SECONDS)
}

/// Checks an item's `lease_seconds`.
pub fn check_lease(configured: Option<u32>) -> Result<()> {
    match configured {
        Some(s) if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&s) => Err(Error::invalid(
            "lease_seconds",
            format!("between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS} seconds"),
        )),
        _ => Ok(()),
    }
}

/// The lowest slot of `0..seats` that none of `taken` holds; none when all are held.
pub fn free_slot(taken: &[i32], seats: u32) -> Option<i32> {
    let mut held = vec![false; seats as usize];
    for &t in taken {
        if let Some(h) = usize::try_from(t).ok().and_then(|i| held.get_mut(i)) {
            *h = true;
        }
    }
    held.iter().position(|h| !h).map(|i| i as i32)
}

/// A station's name as the client gives it (a host name or an id of its choosing): 1 to
/// 128 printable characters.
pub fn check_station(station: &str) -> Result<()> {
    if station.is_empty() || station.chars().count() > 128 {
        return Err(Error::invalid("station", "1 to 128 characters"));
    }
    if station.chars().any(char::is_control) {
        return Err(Error::invalid("station", "no control characters"));
    }
    Ok(())
}

/// Whether a license with feature map `map` serves a request for the feature bits `wanted`.
pub fn serves(map: u32, wanted: u32) -> bool {
    map & wanted == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_seat_takes_the_lowest_free_slot_and_none_beyond_the_quantity() {
        assert_eq!(free_slot(&[], 5), Some(0));
        assert_eq!(free_slot(&[0, 1, 3], 5), Some(2));
        assert_eq!(free_slot(&[4, 3, 2, 1, 0], 5), None);
        // A slot beyond the quantity (the quantity was lowered) holds nothing new.
        assert_eq!(free_slot(&[7, 0], 2), Some(1));
        assert_eq!(free_slot(&[0], 1), None);
        assert_eq!(seats(0), 1);
        assert_eq!(seats(5), 5);
    }

    #[test]
    fn leases_and_stations_are_checked() {
        assert_eq!(lease_seconds(None), DEFAULT_LEASE_SECONDS);
        assert!(check_lease(Some(4)).is_err());
        assert!(check_lease(Some(86_401)).is_err());
        assert!(check_lease(Some(5)).is_ok());
        assert!(check_station("").is_err());
        assert!(check_station("a\nb").is_err());
        assert!(check_station(&"x".repeat(129)).is_err());
        assert!(check_station("office-pc-17").is_ok());
        assert!(serves(0b111, 0b101));
        assert!(!serves(0b001, 0b011));
    }
}
