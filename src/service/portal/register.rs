//! Self-registration with an e-mail address, and the trial licenses a registered customer
//! may take.
//!
//! A visitor gives an address (and a name); a link goes there by mail. Following it proves
//! the address: the customer of that address (made at the first registration, external id
//! `self-` and a digest of the address, so that no ERP customer is ever taken over) gets a
//! session that sees every ticket of theirs. Asking again with the same address is how a
//! registered customer signs in later. The page answers the same whether the address is new
//! or known; requests count against the client's address and the e-mail address, like failed
//! logins, so nobody can fill someone's mailbox.
//!
//! A trial is an item whose options say `trial`; a customer of a session that names one
//! (registered, or by single sign-on) takes one license of it as an order from source
//! `trial`, whose order id names the customer and the item: the orders' idempotency makes a
//! second take, also a racing one, find the first instead of making another.
use std::net::IpAddr;

use chrono::NaiveDateTime;

use super::login::client_key;
use super::{new_row, open, LoginMethod, NewSession, Session};
use crate::domain::ticket::TicketCode;
use crate::domain::{check_email, check_name, Actor, ItemKind, ItemOptions, Role, MAX_TEXT};
use crate::error::{Error, Result};
use crate::service::catalog::CustomerData;
use crate::service::orders::{self, NewOrder, OrderLine};
use crate::service::Core;
use crate::store::customers::{self, Contact};
use crate::store::portal::{self as store, RegistrationRow};

/// How long a registration link may be followed.
pub const LINK_HOURS: i64 = 24;

/// The order source of trials.
pub const TRIAL_SOURCE: &str = "trial";

/// What a registration request came to.
pub enum RegisterOutcome {
    /// A link is on its way (or, for an address held back, nothing; the page says the same).
    Sent,
    /// Too many requests from this client address: nothing was sent until then.
    HeldBack { until: NaiveDateTime },
}

/// The external id of the customer an e-mail address registers (at most 64 characters
/// whatever the address; the same for the same address in any case).
pub fn customer_id_for(email: &str) -> String {
    let digest = openssl::sha::sha256(email.trim().to_lowercase().as_bytes());
    format!("self-{}", &hex::encode(digest)[..32])
}

fn link_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn link_id(token: &str) -> String {
    hex::encode(openssl::sha::sha256(
        format!("portal-register\0{token}").as_bytes(),
    ))
}

/// The portal's address the link points into (`portal_url`, else `<public_url>/portal`).
fn portal_url(core: &Core) -> String {
    let cfg = core.config();
    if cfg.portal_url.is_empty() {
        format!("{}/portal", cfg.public_url.trim_end_matches('/'))
    } else {
        cfg.portal_url.trim_end_matches('/').to_string()
    }
}

fn enabled(core: &Core) -> Result<()> {
    if core.config().portal_self_registration {
        Ok(())
    } else {
        Err(Error::NotAllowed("registration is not offered here".into()))
    }
}

/// A visitor asks to register (or to sign in again) with `email`: a link by mail, in
/// `locale`. Bad input is refused before anything is counted or sent.
pub async fn request(
    core: &Core,
    client: IpAddr,
    email: &str,
    name: &str,
    locale: &str,
) -> Result<RegisterOutcome> {
    enabled(core)?;
    let email = email.trim().to_string();
    if email.is_empty() {
        return Err(Error::invalid("email", "enter your e-mail address"));
    }
    check_email("email", &email)?;
    let name = name.trim().to_string();
    check_name("name", &name, MAX_TEXT)?;
    let cfg = core.config();
    let limit = cfg.portal_login_limit;
    let window = chrono::Duration::seconds(cfg.portal_login_window_secs as i64);
    let now = crate::service::now();
    let token = link_token();
    let row = RegistrationRow {
        id: link_id(&token),
        email: email.clone(),
        name,
        locale: locale.to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::hours(LINK_HOURS),
    };
    let url = format!("{}/register/verify?token={token}", portal_url(core));
    let address = format!("register:{}", client_key(client));
    let mailbox = format!("register:email:{}", email.to_lowercase());
    // One write: the count, the link and its mail go together. The request counts against
    // the client and the mailbox; a mailbox that had its share gets nothing more, though the
    // page says the same as ever (no one learns which addresses registered).
    let held = core
        .db
        .write(move |c| {
            let since = now - window;
            let recent = store::recent_failures(c, &address, since, i64::from(limit))?;
            if recent.len() >= limit as usize {
                let oldest = *recent.last().expect("at least one");
                return Ok(Some(oldest + window));
            }
            let to_mailbox = store::recent_failures(c, &mailbox, since, i64::from(limit))?;
            store::record_failures(c, &[address.clone(), mailbox.clone()], now)?;
            if to_mailbox.len() >= limit as usize {
                tracing::warn!("portal registration: this mailbox had its share of links");
                return Ok(None);
            }
            store::insert_registration(c, &row)?;
            crate::service::mail::enqueue(
                c,
                crate::service::mail::NewMail {
                    kind: "verify_email",
                    recipient: &row.email,
                    locale: &row.locale,
                    params: serde_json::json!({"name": row.name, "email": row.email,
                        "verify_url": url, "hours": LINK_HOURS}),
                    attachment: None,
                },
            )?;
            Ok(None)
        })
        .await?;
    match held {
        Some(until) => Ok(RegisterOutcome::HeldBack { until }),
        None => Ok(RegisterOutcome::Sent),
    }
}

/// Follows a registration link: the address is proven; its customer (made now, the first
/// time) gets a new session. The link opens one session only.
pub async fn complete(core: &Core, token: &str) -> Result<(String, Session)> {
    enabled(core)?;
    let gone = || {
        Error::NotAllowed(
            "this link is not valid: it was used already, it expired, or it was not ours".into(),
        )
    };
    if token.is_empty() || token.len() > 64 {
        return Err(gone());
    }
    let id = link_id(token);
    let now = crate::service::now();
    let new = NewSession {
        method: LoginMethod::Email,
        tickets: vec![],
        customer_id: None,
    };
    let (session_token, base_row) = new_row(core, &new, now);
    let (row, tickets) = core
        .db
        .write(move |c| {
            let Some(reg) = store::take_registration(c, &id, now)? else {
                return Err(gone());
            };
            let external_id = customer_id_for(&reg.email);
            // A customer who registers is the vendor's own.
            let customer = match customers::by_external_id(c, "", &external_id)? {
                Some(cu) => cu,
                None => {
                    let fallback = reg.email.split('@').next().unwrap_or_default().to_string();
                    let name = if reg.name.is_empty() {
                        &fallback
                    } else {
                        &reg.name
                    };
                    let contact = Contact {
                        name,
                        email: &reg.email,
                        locale: &reg.locale,
                    };
                    let cu = customers::insert(c, "", &external_id, &contact, now)?;
                    let actor = Actor {
                        name: format!("customer:{}", cu.id),
                        role: Role::Customer,
                        interface: crate::domain::Interface::Portal,
                    };
                    crate::service::audit::record(
                        &actor,
                        crate::service::audit::Event {
                            action: "customer.registered",
                            details: serde_json::json!({"external_id": external_id}),
                            ..Default::default()
                        },
                    )?;
                    cu
                }
            };
            let mut row = base_row.clone();
            row.customer_id = Some(customer.id);
            store::insert_session(c, &row)?;
            let tickets = store::tickets_of_customer(c, customer.id)?;
            Ok((row, tickets))
        })
        .await?;
    let tickets = tickets
        .iter()
        .map(|t| TicketCode::parse(t))
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(tickets = tickets.len(), "portal login by e-mail link");
    let session = open(row, &session_token, tickets)?;
    Ok((session_token, session))
}

/// An item a customer may try, and whether they did.
#[derive(Debug, Clone)]
pub struct TrialOffer {
    pub item_id: String,
    pub name: String,
    pub options: ItemOptions,
    /// Whether the customer took it already.
    pub taken: bool,
}

/// The order id a customer's trial of an item is made under: one per customer and item.
fn trial_order_id(customer_id: i64, item_id: &str) -> String {
    let readable = format!("c{customer_id}:{item_id}");
    if readable.len() <= 64 {
        readable
    } else {
        let digest = hex::encode(openssl::sha::sha256(item_id.as_bytes()));
        format!("c{customer_id}:{}", &digest[..40])
    }
}

/// The trials the session's customer may take (none for a session without a customer).
pub async fn trials(core: &Core, s: &Session) -> Result<Vec<TrialOffer>> {
    let Some(customer) = s.customer_id else {
        return Ok(vec![]);
    };
    core.db
        .read(move |c| {
            let taken = crate::store::orders::erp_ids_of_customer(c, TRIAL_SOURCE, customer)?;
            let mut out = vec![];
            for (row, _firm_code) in crate::store::items::all(c)? {
                if !row.active || row.kind != ItemKind::License {
                    continue;
                }
                let Ok(options) = serde_json::from_str::<ItemOptions>(&row.options) else {
                    continue;
                };
                if !options.trial {
                    continue;
                }
                let order_id = trial_order_id(customer, &row.item_id);
                out.push(TrialOffer {
                    taken: taken.contains(&order_id),
                    item_id: row.item_id,
                    name: row.name,
                    options,
                });
            }
            Ok(out)
        })
        .await
}

/// Takes the trial of `item_id` for the session's customer: a new ticket with one license of
/// it (its ticket mail sent as for any order). A second take is refused, and so is an item
/// that is not a trial.
pub async fn take_trial(core: &Core, s: &Session, item_id: &str) -> Result<String> {
    let Some(customer) = s.customer_id else {
        return Err(Error::NotAllowed(
            "trial licenses are for registered customers: register or sign in first".into(),
        ));
    };
    let offer = trials(core, s)
        .await?
        .into_iter()
        .find(|o| o.item_id == item_id)
        .ok_or_else(|| Error::not_found("item", item_id))?;
    if offer.taken {
        return Err(Error::NotAllowed(format!(
            "you have taken the trial of {} already",
            offer.name
        )));
    }
    let known = core.db.read(move |c| customers::get(c, customer)).await?;
    let order = NewOrder {
        source: TRIAL_SOURCE.into(),
        erp_order_id: Some(trial_order_id(customer, item_id)),
        customer: CustomerData {
            scope: known.scope,
            external_id: known.external_id,
            name: None,
            email: None,
            locale: None,
        },
        comment: format!("trial of {item_id} taken in the portal"),
        lines: vec![OrderLine {
            item_id: item_id.to_string(),
            quantity: 1,
        }],
    };
    let (view, _) = orders::place_order(core, &s.actor(), order, None, |_, _| Ok(())).await?;
    if !view.created {
        // Another take of the same trial was faster.
        return Err(Error::NotAllowed(format!(
            "you have taken the trial of {} already",
            offer.name
        )));
    }
    tracing::info!(item = item_id, ticket = %view.ticket, "trial taken in the portal");
    Ok(view.ticket)
}
