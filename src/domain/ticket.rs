//! Ticket codes: 24 random characters and one check character, from an alphabet of 31
//! characters without look-alikes (no I, O, Y, 0, 1), shown as five groups of five.
use std::fmt;

use rand::Rng;

use crate::error::{Error, Result};

pub const ALPHABET: &[u8; 31] = b"ABCDEFGHJKLMNPQRSTUVWXZ23456789";
const LEN: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketCode(String);

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Weighted sum mod 31 (prime): weights 1..=24 are distinct and non-zero, so every single
/// wrong character and every swap of two neighbours changes the check character.
fn check_char(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as u32 + 1) * value(c).expect("alphabet character"))
        .sum();
    ALPHABET[(sum % 31) as usize]
}

impl TicketCode {
    /// A new code from the operating system's CSPRNG.
    pub fn generate() -> TicketCode {
        TicketCode::generate_from(&mut rand::rngs::OsRng)
    }

    /// A new code from `rng`, a cryptographically secure one (a ticket is a credential):
    /// the data generator draws a million from the thread's generator, not a system call each.
    pub fn generate_from<R: Rng + rand::CryptoRng>(rng: &mut R) -> TicketCode {
        let mut body: Vec<u8> = (0..LEN - 1)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
            .collect();
        body.push(check_char(&body));
        TicketCode(String::from_utf8(body).expect("ascii"))
    }

    /// Accepts any case, with or without dashes or spaces; checks length, alphabet and check
    /// character before any database lookup.
    pub fn parse(input: &str) -> Result<TicketCode> {
        let bad = |why: &str| Error::InvalidTicket(why.to_string());
        if input.len() > 64 {
            return Err(bad("too long"));
        }
        let chars: Vec<u8> = input
            .bytes()
            .filter(|c| *c != b'-' && *c != b' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if chars.len() != LEN {
            return Err(bad("a ticket has 25 characters"));
        }
        if let Some(c) = chars.iter().find(|c| value(**c).is_none()) {
            return Err(bad(&format!("'{}' is not a ticket character", *c as char)));
        }
        if check_char(&chars[..LEN - 1]) != chars[LEN - 1] {
            return Err(bad("check character does not match (typo?)"));
        }
        Ok(TicketCode(String::from_utf8(chars).expect("ascii")))
    }

    /// The stored form: 25 characters, no dashes.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.as_bytes().chunks(5).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(chunk).expect("ascii"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_in_any_form() {
        for _ in 0..500 {
            let t = TicketCode::generate();
            let shown = t.to_string();
            assert_eq!(shown.len(), 29);
            assert_eq!(TicketCode::parse(&shown).unwrap(), t);
            assert_eq!(TicketCode::parse(&shown.to_lowercase()).unwrap(), t);
            assert_eq!(TicketCode::parse(t.as_stored()).unwrap(), t);
        }
    }

    #[test]
    fn every_single_typo_and_neighbour_swap_is_caught() {
        let t = TicketCode::generate();
        let s = t.as_stored().as_bytes().to_vec();
        for i in 0..LEN {
            for &c in ALPHABET.iter() {
                if c == s[i] {
                    continue;
                }
                let mut typo = s.clone();
                typo[i] = c;
                assert!(TicketCode::parse(std::str::from_utf8(&typo).unwrap()).is_err());
            }
            if i + 1 < LEN && s[i] != s[i + 1] {
                let mut swap = s.clone();
                swap.swap(i, i + 1);
                assert!(TicketCode::parse(std::str::from_utf8(&swap).unwrap()).is_err());
            }
        }
    }

    #[test]
    fn wrong_shapes_are_refused() {
        assert!(TicketCode::parse("").is_err());
        assert!(TicketCode::parse("ABCDE-FGHJK").is_err());
        assert!(TicketCode::parse("ABCDE-FGHJK-LMNPQ-RSTUV-WXZ2O").is_err());
        let e = TicketCode::parse("IIIII-IIIII-IIIII-IIIII-IIIII").unwrap_err();
        assert_eq!(e.code(), "invalid_ticket");
    }
}
