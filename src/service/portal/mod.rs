//! The license portal's use cases: sessions kept in the database (any node serves them),
//! the ticket login with its limit on failures, what the customer's pages read (their
//! tickets' licenses, a license's history), and the offline transfer in three steps, each
//! step calling the same service function as the activation gateway.
//!
//! A session says which tickets its customer may see; how the customer proved that is its
//! `LoginMethod`. A ticket login names the tickets; a login through single sign-on or by a
//! registered e-mail address's link names the customer (every ticket of theirs).
pub mod cloud;
mod licenses;
mod login;
pub mod register;
pub mod sso;
mod transfer;

pub use licenses::{
    license_history, overview, split, HistoryEntry, LicenseHistory, PortalLicense, TicketLicenses,
};
pub use login::{client_key, ticket_failed, ticket_guard, ticket_login, LoginOutcome, MAX_TICKETS};
pub use transfer::{
    activate, confirm_receipt, deactivate, pull_updates, reactivate, restore, restore_salt,
    ActivateForm, Done, ReactivateForm, RestoreForm, ReturnForm, Transfer, TransferKind,
    UpdatesOutcome,
};

use chrono::NaiveDateTime;

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, Interface, Role};
use crate::error::{Error, Result};
use crate::store::portal::{self as store, SessionRow};

/// How the customer of a session proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// With one or more tickets.
    Ticket,
    /// With a container's signed request (the automatic updates of that container); the
    /// session sees no ticket.
    Container,
    /// Through the vendor's SAML identity provider: the session sees every ticket of the
    /// customer the user belongs to.
    Sso,
    /// With a link sent to the e-mail address the customer registered (self-registration):
    /// every ticket of that customer.
    Email,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Ticket => "ticket",
            LoginMethod::Container => "container",
            LoginMethod::Sso => "saml",
            LoginMethod::Email => "email",
        }
    }
    fn parse(s: &str) -> Result<LoginMethod> {
        match s {
            "ticket" => Ok(LoginMethod::Ticket),
            "container" => Ok(LoginMethod::Container),
            "saml" => Ok(LoginMethod::Sso),
            "email" => Ok(LoginMethod::Email),
            other => Err(Error::internal(format!("unknown login method {other:?}"))),
        }
    }
}

/// A live portal session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the cookie's token (what is stored).
    id: String,
    pub method: LoginMethod,
    /// Every ticket the session may see: those it was started with and, for a customer's
    /// session, each of that customer's tickets.
    tickets: Vec<TicketCode>,
    /// The transfer in progress, if any.
    pub flow: Option<Transfer>,
    pub expires_at: NaiveDateTime,
    csrf: String,
    /// With single sign-on: the user, as the identity provider names them (NameID).
    sso_user: Option<String>,
    /// The customer whose every ticket the session sees (single sign-on, an e-mail link).
    pub customer_id: Option<i64>,
}

impl Session {
    pub fn tickets(&self) -> &[TicketCode] {
        &self.tickets
    }

    /// The ticket `code` (any form) if this session may see it; else unknown, as a ticket
    /// the session does not hold is none of its business.
    pub fn ticket(&self, code: &str) -> Result<TicketCode> {
        let code = TicketCode::parse(code)?;
        if self.tickets.contains(&code) {
            Ok(code)
        } else {
            Err(Error::not_found("ticket", code))
        }
    }

    /// The token every form of this session carries (CSRF): derived from the session's
    /// secret token, so it is bound to the session and known only to its pages.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        given.len() == self.csrf.len()
            && openssl::memcmp::eq(given.as_bytes(), self.csrf.as_bytes())
    }

    /// Who acts through this session, for the history.
    pub(in crate::service) fn actor(&self) -> Actor {
        let name = match (&self.sso_user, self.customer_id, self.tickets.first()) {
            (Some(user), _, _) => format!("saml:{user}"),
            (None, Some(customer), _) => format!("customer:{customer}"),
            (None, None, Some(t)) => format!("ticket:{}", t.as_stored()),
            (None, None, None) => "portal".to_string(),
        };
        Actor {
            name,
            role: Role::Customer,
            interface: Interface::Portal,
        }
    }
}

/// What a new session may see.
pub struct NewSession {
    pub method: LoginMethod,
    pub tickets: Vec<TicketCode>,
    /// Every ticket of this customer as well (single sign-on).
    pub customer_id: Option<i64>,
}

/// A new random session token (what the cookie carries): 256 bits, URL-safe.
fn new_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn token_id(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

fn csrf_of(token: &str) -> String {
    hex::encode(openssl::sha::sha256(
        format!("portal-csrf\0{token}").as_bytes(),
    ))
}

/// The row of a new session, with its token.
fn new_row(core: &Core, s: &NewSession, now: NaiveDateTime) -> (String, SessionRow) {
    let token = new_token();
    let minutes = i64::from(core.config().portal_session_minutes);
    let codes: Vec<&str> = s.tickets.iter().map(TicketCode::as_stored).collect();
    let row = SessionRow {
        id: token_id(&token),
        method: s.method.as_str().to_string(),
        tickets: serde_json::to_string(&codes).expect("ticket codes"),
        customer_id: s.customer_id,
        flow: String::new(),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(minutes),
    };
    (token, row)
}

/// Starts a session; its token goes into the cookie.
pub async fn start_session(core: &Core, s: NewSession) -> Result<(String, Session)> {
    let (token, row) = new_row(core, &s, super::now());
    let stored = row.clone();
    core.db
        .write(move |c| store::insert_session(c, &stored))
        .await?;
    let session = open(row, &token, s.tickets)?;
    Ok((token, session))
}

fn open(row: SessionRow, token: &str, tickets: Vec<TicketCode>) -> Result<Session> {
    let flow = if row.flow.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str(&row.flow)
                .map_err(|e| Error::internal(format!("portal session flow: {e}")))?,
        )
    };
    Ok(Session {
        id: row.id,
        method: LoginMethod::parse(&row.method)?,
        tickets,
        flow,
        expires_at: row.expires_at,
        csrf: csrf_of(token),
        sso_user: None,
        customer_id: row.customer_id,
    })
}

/// The live session of a cookie's token, if there is one (expired or ended: none).
pub async fn session(core: &Core, token: &str) -> Result<Option<Session>> {
    if token.is_empty() || token.len() > 64 {
        return Ok(None);
    }
    let id = token_id(token);
    let token = token.to_string();
    core.db
        .read(move |c| {
            let Some(row) = store::live_session(c, &id, super::now())? else {
                return Ok(None);
            };
            let mut codes: Vec<String> = serde_json::from_str(&row.tickets)
                .map_err(|e| Error::internal(format!("portal session tickets: {e}")))?;
            if let Some(customer) = row.customer_id {
                for code in store::tickets_of_customer(c, customer)? {
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
            }
            let tickets = codes
                .iter()
                .map(|t| TicketCode::parse(t))
                .collect::<Result<Vec<_>>>()?;
            let sso_user = if row.method == LoginMethod::Sso.as_str() {
                crate::store::saml::sso_session(c, &row.id)?.map(|s| s.name_id)
            } else {
                None
            };
            let mut session = open(row, &token, tickets)?;
            session.sso_user = sso_user;
            Ok(Some(session))
        })
        .await
}

/// Ends a session (logout): its token opens nothing any more, on any node.
pub async fn end_session(core: &Core, s: &Session) -> Result<()> {
    let id = s.id.clone();
    core.db.write(move |c| store::delete_session(c, &id)).await
}

/// Keeps the transfer in progress with the session (replacing an earlier one).
async fn keep_flow(core: &Core, s: &Session, flow: &Transfer) -> Result<()> {
    let id = s.id.clone();
    let text = serde_json::to_string(flow).map_err(|e| Error::internal(e.to_string()))?;
    let kept = core
        .db
        .write(move |c| store::set_flow(c, &id, &text, super::now()))
        .await?;
    if kept {
        Ok(())
    } else {
        Err(Error::Unauthenticated)
    }
}

/// What housekeeping deletes (in its write): the sessions that expired, and the failed
/// logins older than the window (`window_secs`), which no longer count.
pub fn housekeeping(c: &mut crate::store::Conn, window_secs: u64) -> Result<(usize, usize)> {
    let now = super::now();
    let sessions = store::delete_expired_sessions(c, now)?;
    let window = chrono::Duration::seconds(window_secs as i64);
    let failures = store::delete_login_failures(c, now - window)?;
    // Single sign-on's requests and remembered assertions once they expired (an assertion
    // past its validity is refused as expired, so it need not be remembered as seen).
    crate::store::saml::delete_expired(c, now)?;
    store::delete_expired_registrations(c, now)?;
    Ok((sessions, failures))
}
