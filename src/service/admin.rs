//! The back office's own use cases: staff sessions and what only its pages read (orders
//! paged by key, the blacklist as a list, the dashboard's figures). Everything a page
//! changes goes through the same service functions as the JSON API and SOAP, with the
//! session's `Actor`.
//!
//! A staff session is a row keyed by the SHA-256 of the cookie's token. Every request reads
//! it joined with its user, so a deactivated user is out at once and a changed role holds
//! at the next request; it ends on logout, after `admin_idle_minutes` without a request and
//! `admin_session_hours` after the login. Failed logins count against the client's address
//! and the user name, as the portal's ticket logins do, and hold both back at the limit.
use std::net::IpAddr;

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::portal::client_key;
use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, Interface, Role};
use crate::error::{Error, Result};
use crate::store::admin::{self as store, BlacklistLine, OrderLine, OrderSearch};
use crate::store::{customers, portal as failures, tickets};

/// The roles that may use the back office at all.
pub const STAFF: &[Role] = &[Role::Admin, Role::Sales, Role::Support];

/// A live staff session: who acts, and the token its forms carry.
#[derive(Debug, Clone)]
pub struct StaffSession {
    id: String,
    csrf: String,
    pub actor: Actor,
}

impl StaffSession {
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        given.len() == self.csrf.len()
            && openssl::memcmp::eq(given.as_bytes(), self.csrf.as_bytes())
    }
}

fn token_id(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

fn csrf_of(token: &str) -> String {
    hex::encode(openssl::sha::sha256(
        format!("admin-csrf\0{token}").as_bytes(),
    ))
}

fn idle(core: &Core) -> Duration {
    Duration::minutes(i64::from(core.config().admin_idle_minutes))
}

fn user_key(username: &str) -> String {
    format!("staff:{}", username.to_lowercase())
}

/// Logs a user in from `client`; the token goes into the cookie. A wrong name or password
/// is `Unauthenticated` (which of them is not said); a role that has no back office
/// (erp, production) is refused as forbidden.
pub async fn login(
    core: &Core,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<(String, StaffSession)> {
    let cfg = core.config();
    let limit = cfg.portal_login_limit;
    let window = Duration::seconds(cfg.portal_login_window_secs as i64);
    let keys = vec![client_key(client), user_key(username)];
    let now = super::now();
    let held = {
        let keys = keys.clone();
        core.db
            .read(move |c| {
                for key in &keys {
                    let recent = failures::recent_failures(c, key, now - window, i64::from(limit))?;
                    if recent.len() >= limit as usize {
                        return Ok(recent.last().map(|oldest| *oldest + window));
                    }
                }
                Ok(None)
            })
            .await?
    };
    if let Some(until) = held {
        return Err(Error::RateLimited {
            retry_after: (until - now).num_seconds().max(1) as u64,
        });
    }
    let actor =
        match super::users::authenticate_uncached(core, username, password, Interface::Admin).await
        {
            Ok(a) => a,
            Err(Error::Unauthenticated) => {
                core.db
                    .write(move |c| failures::record_failures(c, &keys, now))
                    .await?;
                return Err(Error::Unauthenticated);
            }
            Err(e) => return Err(e),
        };
    actor.require(STAFF, "use the back office")?;
    let token = {
        use base64::Engine;
        let mut b = [0u8; 32];
        openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let id = token_id(&token);
    let name = actor.name.clone();
    let ends = now + Duration::hours(i64::from(cfg.admin_session_hours));
    {
        let id = id.clone();
        core.db
            .write(move |c| {
                let user = crate::store::users::by_name(c, &name)?.ok_or(Error::Unauthenticated)?;
                store::insert_session(c, &id, user.id, now, ends)
            })
            .await?;
    }
    let session = StaffSession {
        id,
        csrf: csrf_of(&token),
        actor,
    };
    Ok((token, session))
}

/// The live session of a cookie's token, with its user's role as it is now; none if it
/// ended, idled out or its user was deactivated. A request keeps it alive (written at
/// most once a minute).
pub async fn session(core: &Core, token: &str) -> Result<Option<StaffSession>> {
    if token.is_empty() || token.len() > 64 {
        return Ok(None);
    }
    let id = token_id(token);
    let now = super::now();
    let idle_since = now - idle(core);
    let row = {
        let id = id.clone();
        core.db
            .read(move |c| store::live_session(c, &id, now, idle_since))
            .await?
    };
    // A user whose role has no back office any more (erp, production) is out at once.
    let Some(row) = row.filter(|r| STAFF.contains(&r.role)) else {
        return Ok(None);
    };
    if now - row.last_seen_at > Duration::seconds(60) {
        let id = id.clone();
        core.db
            .write(move |c| store::touch_session(c, &id, now))
            .await?;
    }
    Ok(Some(StaffSession {
        id: row.id,
        csrf: csrf_of(token),
        actor: Actor {
            name: row.username,
            role: row.role,
            interface: Interface::Admin,
        },
    }))
}

/// Ends a session (logout) on every node.
pub async fn logout(core: &Core, s: &StaffSession) -> Result<()> {
    let id = s.id.clone();
    core.db.write(move |c| store::delete_session(c, &id)).await
}

/// Orders, newest first, `per_page` at a time from before `before`; `search` is matched
/// exactly against an ERP order id, a customer id and a ticket.
pub async fn orders(
    core: &Core,
    actor: &Actor,
    search: &str,
    before: Option<i64>,
    per_page: i64,
) -> Result<Page<OrderLine>> {
    actor.require(STAFF, "read orders")?;
    let search = search.trim().to_string();
    core.db
        .read(move |c| {
            // The text may be a ticket, a customer's id and an ERP order id at once: the
            // orders of each. One of them alone (the usual case) pages by key through its
            // own index.
            let by = if search.is_empty() {
                OrderSearch::All
            } else {
                let ticket = ticket_id(c, &search)?;
                let customers = customers::all_named(c, &search)?;
                let erp = store::erp_order_id_exists(c, &search)?;
                match (ticket, customers.is_empty(), erp) {
                    (Some(t), true, false) => OrderSearch::Ticket(t),
                    (None, false, false) => OrderSearch::Customers(customers),
                    (None, true, _) => OrderSearch::ErpOrderId(&search),
                    (ticket, _, _) => OrderSearch::Any {
                        erp_order_id: &search,
                        customers,
                        ticket,
                    },
                }
            };
            let rows = store::orders_page(c, by, before, per_page + 1)?;
            Ok(Page::of(rows, per_page, |r| r.order_id))
        })
        .await
}

/// The first order of ticket `ticket` (lines appended to "an existing ticket" go to it);
/// a text that is no ticket's code is refused as such, never read as something else.
pub async fn order_of_ticket(core: &Core, actor: &Actor, ticket: &str) -> Result<i64> {
    actor.require(STAFF, "read orders")?;
    let code = TicketCode::parse(ticket.trim())?;
    core.db
        .read(move |c| {
            let id = tickets::id_of(c, &code)?;
            store::orders_page(c, OrderSearch::Ticket(id), None, 1000)?
                .iter()
                .map(|o| o.order_id)
                .min()
                .ok_or_else(|| Error::not_found("ticket", code.to_string()))
        })
        .await
}

/// The id of the ticket `text` names, if it is a ticket code of a ticket that exists.
fn ticket_id(c: &mut crate::store::Conn, text: &str) -> Result<Option<i64>> {
    let Ok(code) = TicketCode::parse(text) else {
        return Ok(None);
    };
    match tickets::id_of(c, &code) {
        Ok(id) => Ok(Some(id)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A page of a list, and the key of the next page if there is one.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Cuts a read of `per_page + 1` rows to the page; the key of the next is the last
    /// row's.
    fn of(mut rows: Vec<T>, per_page: i64, key: impl Fn(&T) -> i64) -> Page<T> {
        let next = if rows.len() as i64 > per_page {
            rows.truncate(per_page as usize);
            rows.last().map(key)
        } else {
            None
        };
        Page { rows, next }
    }
}

/// The blacklist, newest first; `serial` narrows it, `all` shows removed entries too.
pub async fn blacklist(
    core: &Core,
    actor: &Actor,
    serial: Option<String>,
    all: bool,
    before: Option<i64>,
    per_page: i64,
) -> Result<Page<BlacklistLine>> {
    actor.require(super::lifecycle::SUPPORT_ROLES, "read the blacklist")?;
    core.db
        .read(move |c| {
            let rows = store::blacklist_page(c, serial.as_deref(), all, before, per_page + 1)?;
            Ok(Page::of(rows, per_page, |r| r.id))
        })
        .await
}

/// The outbox, newest first, optionally in one state.
pub async fn outbox(
    core: &Core,
    actor: &Actor,
    state: Option<String>,
    before: Option<i64>,
    per_page: i64,
) -> Result<Page<crate::store::outbox::MailView>> {
    actor.require(&[Role::Admin, Role::Support], "read the outbox")?;
    let state = state
        .map(|s| {
            crate::domain::QueueState::parse(&s)
                .map_err(|_| Error::invalid("state", "must be queued, sending, sent or failed"))
        })
        .transpose()?;
    core.db
        .read(move |c| {
            let rows = store::mail_page(c, state, before, per_page + 1)?;
            Ok(Page::of(rows, per_page, |r| r.id))
        })
        .await
}

/// One day's counts on the dashboard.
#[derive(Debug, Serialize)]
pub struct Day {
    pub day: String,
    pub activations: i64,
    pub returns: i64,
    pub reactivations: i64,
}

/// The dashboard's figures.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    /// The last `DAYS` UTC days, oldest first.
    pub days: Vec<Day>,
    /// Licenses expiring in each of the next `WEEKS` weeks.
    pub expiring: Vec<(String, i64)>,
    /// This month's activations and the quota (0: none), per firm code.
    pub quota: Vec<(i64, i64, i64)>,
    pub failed_mails: i64,
    pub failed_writebacks: i64,
    pub open_approvals: i64,
}

pub const DAYS: i64 = 14;
pub const WEEKS: i64 = 8;

/// What the dashboard shows: activations, returns and re-activations per day; licenses
/// expiring per week; the month's quota; what failed and waits for a person.
pub async fn dashboard(core: &Core, actor: &Actor) -> Result<Dashboard> {
    actor.require(STAFF, "read the dashboard")?;
    let now = super::now();
    let today = now.date().and_hms_opt(0, 0, 0).expect("midnight");
    let (days, failed, open_approvals) = core
        .db
        .read(move |c| {
            let mut days = vec![];
            for back in (0..DAYS).rev() {
                let from: NaiveDateTime = today - Duration::days(back);
                let to = from + Duration::days(1);
                days.push(Day {
                    day: from.format("%Y-%m-%d").to_string(),
                    activations: store::count_events(c, "license.activated", from, to)?,
                    returns: store::count_events(c, "license.returned", from, to)?,
                    reactivations: store::count_events(c, "license.reactivated", from, to)?,
                });
            }
            Ok((days, store::failed_queues(c)?, store::open_approvals(c)?))
        })
        .await?;
    // The expiring licenses of the next weeks, counted per week from today (per day by the
    // database, from the expiration index alone).
    let until = now + Duration::days(WEEKS * 7);
    let per_day = core
        .db
        .read(move |c| crate::store::reports::expiring_per_day(c, now, until))
        .await?;
    let mut weeks = vec![0i64; WEEKS as usize];
    for (day, n) in per_day {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
            let w = (d - today.date()).num_days() / 7;
            if let Some(slot) = weeks.get_mut(w.max(0) as usize) {
                *slot += n;
            }
        }
    }
    let expiring = weeks
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let from = today + Duration::days(i as i64 * 7);
            (from.format("%Y-%m-%d").to_string(), n)
        })
        .collect();
    let month = now.format("%Y-%m").to_string();
    let quota = super::reports::read(core, super::reports::Report::ActivationsPerMonth)
        .await?
        .to_json()
        .rows
        .into_iter()
        .filter(|r| r.get("month").and_then(|m| m.as_str()) == Some(month.as_str()))
        .map(|r| {
            let number = |c: &str| r.get(c).and_then(|v| v.as_i64()).unwrap_or_default();
            (number("firm_code"), number("activations"), number("quota"))
        })
        .collect();
    Ok(Dashboard {
        days,
        expiring,
        quota,
        failed_mails: failed.0,
        failed_writebacks: failed.1,
        open_approvals,
    })
}

/// Customers, newest first; `search` is a customer id, or part of a name or an e-mail
/// address.
pub async fn customers(
    core: &Core,
    actor: &Actor,
    search: &str,
    before: Option<i64>,
    per_page: i64,
) -> Result<Page<super::catalog::Customer>> {
    actor.require(STAFF, "read customers")?;
    let search = search.trim().to_string();
    core.db
        .read(move |c| {
            let rows = store::customers_page(c, &search, before, per_page + 1)?;
            let page = Page::of(rows, per_page, |r| r.id);
            Ok(Page {
                rows: page.rows.into_iter().map(Into::into).collect(),
                next: page.next,
            })
        })
        .await
}

/// A customer's tickets as the customer page lists them.
#[derive(Debug, Serialize)]
pub struct CustomerTicket {
    pub ticket: String,
    pub state: String,
    pub created_at: NaiveDateTime,
}

/// The tickets of customer `id` (as `catalog::get_customer` found them), newest first.
pub async fn customer_tickets(core: &Core, actor: &Actor, id: i64) -> Result<Vec<CustomerTicket>> {
    actor.require(STAFF, "read customers")?;
    core.db
        .read(move |c| {
            store::tickets_of_customer(c, id)?
                .into_iter()
                .map(|(code, state, created_at)| {
                    Ok(CustomerTicket {
                        ticket: TicketCode::parse(&code)?.to_string(),
                        state,
                        created_at,
                    })
                })
                .collect()
        })
        .await
}

/// What the container page shows beyond the support view: each license with its ticket,
/// order and activations, and when a license last went in.
#[derive(Debug, Serialize)]
pub struct ContainerDetails {
    pub licenses: Vec<store::ContainerLicenseLine>,
    pub last_activation: Option<NaiveDateTime>,
}

pub async fn container_details(
    core: &Core,
    actor: &Actor,
    serial: String,
) -> Result<ContainerDetails> {
    actor.require(STAFF, "read containers")?;
    core.db
        .read(move |c| {
            let mut licenses = store::container_licenses(c, &serial)?;
            for l in &mut licenses {
                l.ticket = TicketCode::parse(&l.ticket)?.to_string();
            }
            Ok(ContainerDetails {
                licenses,
                last_activation: crate::store::licenses::last_activation_in(c, &serial)?,
            })
        })
        .await
}

/// The portal's colours and license columns as the back office sets them; an empty value
/// is the configuration's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PortalLook {
    pub color: String,
    pub accent_color: String,
    /// Comma separated, in order.
    pub columns: String,
}

impl PortalLook {
    /// The colours and columns in force: these where set, else the configuration's.
    pub fn in_force(&self, config: &crate::config::Config) -> PortalLook {
        let or = |mine: &str, theirs: &str| {
            if mine.is_empty() {
                theirs.to_string()
            } else {
                mine.to_string()
            }
        };
        PortalLook {
            color: or(&self.color, &config.portal_color),
            accent_color: or(&self.accent_color, &config.portal_accent_color),
            columns: or(&self.columns, &config.portal_columns),
        }
    }

    /// The columns, in order.
    pub fn column_list(&self) -> Vec<String> {
        self.columns
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The portal's look as set in the back office (all empty if never set). Read by the
/// portal's pages on every request, so a change holds at once on every node.
pub async fn portal_look(core: &Core) -> Result<PortalLook> {
    let row = core.db.read(store::portal_look).await?;
    Ok(row
        .map(|(color, accent_color, columns)| PortalLook {
            color,
            accent_color,
            columns,
        })
        .unwrap_or_default())
}

/// Sets the portal's colours and columns (admin); empty values go back to the
/// configuration's.
pub async fn set_portal_look(core: &Core, actor: &Actor, look: PortalLook) -> Result<PortalLook> {
    actor.require(&[Role::Admin], "change the portal's look")?;
    for (name, value) in [
        ("portal_color", &look.color),
        ("portal_accent_color", &look.accent_color),
    ] {
        if !value.is_empty() && crate::config::parse_color(value).is_none() {
            return Err(Error::invalid(
                name,
                format!("{value:?} is not a colour like #1d4f73"),
            ));
        }
    }
    let columns = look.column_list();
    if let Some(bad) = columns
        .iter()
        .find(|c| !crate::config::PORTAL_COLUMNS.contains(&c.as_str()))
    {
        return Err(Error::invalid(
            "portal_columns",
            format!(
                "{bad:?} is not one of {}",
                crate::config::PORTAL_COLUMNS.join(", ")
            ),
        ));
    }
    let look = PortalLook {
        color: look.color.to_lowercase(),
        accent_color: look.accent_color.to_lowercase(),
        columns: columns.join(","),
    };
    let stored = look.clone();
    let actor = actor.clone();
    core.db
        .write(move |c| {
            store::set_portal_look(
                c,
                &stored.color,
                &stored.accent_color,
                &stored.columns,
                super::now(),
            )?;
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "settings.portal_look_changed",
                    details: serde_json::json!({"color": stored.color,
                        "accent_color": stored.accent_color, "columns": stored.columns}),
                    ..Default::default()
                },
            )
        })
        .await?;
    Ok(look)
}
