//! The ticket login: one or more tickets separated by `;`. Each is checked (length,
//! alphabet, check character) before the database is asked, so a typo is reported at once
//! and costs nothing. A login naming a ticket that does not exist is a failure, counted in
//! the database against the client's address and against every ticket it named; an address
//! or a ticket with `portal_login_limit` failures within `portal_login_window_secs` is held
//! back until the oldest of those failures leaves the window, on every node alike.
use std::net::IpAddr;

use chrono::NaiveDateTime;

use super::{new_row, open, LoginMethod, NewSession, Session};
use crate::domain::ticket::TicketCode;
use crate::error::{Error, Result};
use crate::service::Core;
use crate::store::portal as store;

/// Most tickets one login may name.
pub const MAX_TICKETS: usize = 10;

/// What a login came to (an error says why it failed: a typo, an unknown ticket).
pub enum LoginOutcome {
    /// A new session; its token goes into the cookie.
    Started {
        token: String,
        session: Box<Session>,
    },
    /// Too many failures: the address (`ticket` none) or that ticket is held back until
    /// the time given; nothing was looked up.
    HeldBack {
        until: NaiveDateTime,
        ticket: Option<String>,
    },
}

/// The key failures of a client address are counted under. An IPv6 client usually has a
/// whole /64 to pick addresses from, so its prefix counts as one address.
pub fn client_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("addr:{a}"),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = a.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn ticket_key(t: &TicketCode) -> String {
    format!("ticket:{}", t.as_stored())
}

/// Reads the tickets a customer typed: separated by `;`, each in any case, with or without
/// dashes; every one checked before the database is asked.
fn parse_tickets(input: &str) -> Result<Vec<TicketCode>> {
    let parts: Vec<&str> = input
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(Error::invalid("ticket", "enter your ticket"));
    }
    if parts.len() > MAX_TICKETS {
        return Err(Error::invalid(
            "ticket",
            format!("at most {MAX_TICKETS} tickets at once"),
        ));
    }
    let mut codes: Vec<TicketCode> = vec![];
    for (i, p) in parts.iter().enumerate() {
        let code = TicketCode::parse(p).map_err(|e| match e {
            Error::InvalidTicket(why) if parts.len() > 1 => {
                Error::InvalidTicket(format!("ticket {} of {}: {why}", i + 1, parts.len()))
            }
            other => other,
        })?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// Before the gateway looks a ticket up: the gateway's lookups share the portal's count of
/// failures, so an address or a ticket held back by one is held back by the other, on
/// every node. A code that does not parse is the lookup's to refuse (a typo costs nothing).
pub async fn ticket_guard(core: &Core, client: IpAddr, ticket: &str) -> Result<()> {
    let Ok(code) = TicketCode::parse(ticket) else {
        return Ok(());
    };
    let cfg = core.config();
    let limit = cfg.portal_login_limit;
    let window = chrono::Duration::seconds(cfg.portal_login_window_secs as i64);
    let keys = [client_key(client), ticket_key(&code)];
    let now = crate::service::now();
    let held = core
        .db
        .read(move |c| {
            for key in &keys {
                let recent = store::recent_failures(c, key, now - window, i64::from(limit))?;
                if recent.len() >= limit as usize {
                    return Ok(recent.last().map(|oldest| *oldest + window));
                }
            }
            Ok(None)
        })
        .await?;
    match held {
        Some(until) => Err(Error::RateLimited {
            retry_after: (until - now).num_seconds().max(1) as u64,
        }),
        None => Ok(()),
    }
}

/// After the gateway found no such ticket: a failure of the address and of the ticket.
pub async fn ticket_failed(core: &Core, client: IpAddr, ticket: &str) -> Result<()> {
    let Ok(code) = TicketCode::parse(ticket) else {
        return Ok(());
    };
    let keys = vec![client_key(client), ticket_key(&code)];
    let now = crate::service::now();
    core.db
        .write(move |c| store::record_failures(c, &keys, now))
        .await
}

/// What the login's write decided.
enum Step {
    Started,
    HeldBack {
        until: NaiveDateTime,
        ticket: Option<String>,
    },
    Unknown(String),
}

/// Logs a customer in with the tickets in `input` from address `client`.
pub async fn ticket_login(core: &Core, client: IpAddr, input: &str) -> Result<LoginOutcome> {
    let codes = parse_tickets(input)?;
    let cfg = core.config();
    let limit = cfg.portal_login_limit;
    let window = chrono::Duration::seconds(cfg.portal_login_window_secs as i64);
    let now = crate::service::now();
    let new = NewSession {
        method: LoginMethod::Ticket,
        tickets: codes.clone(),
        customer_id: None,
    };
    let (token, row) = new_row(core, &new, now);
    let stored = row.clone();
    let address = client_key(client);
    let keys: Vec<(String, Option<String>)> = std::iter::once((address.clone(), None))
        .chain(codes.iter().map(|t| (ticket_key(t), Some(t.to_string()))))
        .collect();
    let stored_codes: Vec<String> = codes.iter().map(|t| t.as_stored().to_string()).collect();
    // One write: the check, the lookup and the failure it records go together (on SQLite
    // one writer decides them one after the other; on PostgreSQL two writers may each let
    // one more attempt through).
    let step = core
        .db
        .write(move |c| {
            let since = now - window;
            for (key, ticket) in &keys {
                let recent = store::recent_failures(c, key, since, i64::from(limit))?;
                if recent.len() >= limit as usize {
                    let oldest = *recent.last().expect("at least one failure");
                    return Ok(Step::HeldBack {
                        until: oldest + window,
                        ticket: ticket.clone(),
                    });
                }
            }
            let found = store::existing_tickets(c, &stored_codes)?;
            if let Some(missing) = stored_codes.iter().find(|t| !found.contains(t)) {
                let all: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
                store::record_failures(c, &all, now)?;
                return Ok(Step::Unknown(missing.clone()));
            }
            store::insert_session(c, &stored)?;
            Ok(Step::Started)
        })
        .await?;
    match step {
        Step::Started => Ok(LoginOutcome::Started {
            session: Box::new(open(row, &token, codes)?),
            token,
        }),
        Step::HeldBack { until, ticket } => {
            tracing::warn!(client = %address, ticket = ticket.as_deref().unwrap_or(""),
                "portal login held back");
            Ok(LoginOutcome::HeldBack { until, ticket })
        }
        Step::Unknown(code) => {
            tracing::info!(client = %address, tickets = codes.len(), "portal login failed");
            let code = TicketCode::parse(&code)?;
            Err(Error::not_found("ticket", code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_read_and_checked_before_any_lookup() {
        let a = TicketCode::generate();
        let b = TicketCode::generate();
        let two = parse_tickets(&format!(" {a} ; {};", b.as_stored().to_lowercase())).unwrap();
        assert_eq!(two, vec![a.clone(), b.clone()]);
        assert_eq!(parse_tickets(&format!("{a};{a}")).unwrap(), vec![a.clone()]);
        let shown = a.to_string();
        let last = shown.chars().last().unwrap();
        let typo = format!(
            "{}{}",
            &shown[..shown.len() - 1],
            if last == 'A' { 'B' } else { 'A' }
        );
        let e = parse_tickets(&format!("{b}; {typo}")).unwrap_err();
        assert_eq!(e.code(), "invalid_ticket");
        assert!(e.to_string().contains("ticket 2 of 2"), "{e}");
        assert_eq!(parse_tickets(" ; ").unwrap_err().code(), "invalid_input");
        let many = vec![a.to_string(); MAX_TICKETS + 1].join(";");
        assert_eq!(parse_tickets(&many).unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "addr:192.0.2.7");
    }
}
