//! The back office's tables (its sessions) and the lists and counts its pages read: orders
//! paged by key, the dashboard's counts per day. Declared here, beside their only queries.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    blacklist, customers, events, firms, items, licenses, order_lines, orders, outbox, tickets,
    users, writebacks,
};
use super::Conn;
use crate::domain::{QueueState, Role};
use crate::error::Result;
use crate::store::customers::CustomerRow;

diesel::table! {
    admin_sessions (id) {
        id -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(admin_sessions -> users (user_id));

diesel::define_sql_function! {
    /// SQL's `lower` (both databases have it): the customer search ignores case alike.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
diesel::allow_tables_to_appear_in_same_query!(admin_sessions, users);

/// A live staff session with its user as the user is now.
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub id: String,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub last_seen_at: NaiveDateTime,
}

pub fn insert_session(
    c: &mut Conn,
    id: &str,
    user_id: i64,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<()> {
    diesel::insert_into(admin_sessions::table)
        .values((
            admin_sessions::id.eq(id),
            admin_sessions::user_id.eq(user_id),
            admin_sessions::created_at.eq(now),
            admin_sessions::last_seen_at.eq(now),
            admin_sessions::expires_at.eq(expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// The session `id` if it is neither past its end nor idle since before `idle_since`, and
/// its user is still active.
pub fn live_session(
    c: &mut Conn,
    id: &str,
    now: NaiveDateTime,
    idle_since: NaiveDateTime,
) -> Result<Option<StaffRow>> {
    let row: Option<(String, i64, NaiveDateTime, String, String)> = admin_sessions::table
        .inner_join(users::table)
        .filter(admin_sessions::id.eq(id))
        .filter(admin_sessions::expires_at.gt(now))
        .filter(admin_sessions::last_seen_at.gt(idle_since))
        .filter(users::active.eq(true))
        .select((
            admin_sessions::id,
            admin_sessions::user_id,
            admin_sessions::last_seen_at,
            users::username,
            users::role,
        ))
        .first(c)
        .optional()?;
    row.map(|(id, user_id, last_seen_at, username, role)| {
        Ok(StaffRow {
            id,
            user_id,
            username,
            role: Role::parse(&role)?,
            last_seen_at,
        })
    })
    .transpose()
}

pub fn touch_session(c: &mut Conn, id: &str, now: NaiveDateTime) -> Result<()> {
    diesel::update(admin_sessions::table.filter(admin_sessions::id.eq(id)))
        .set(admin_sessions::last_seen_at.eq(now))
        .execute(c)?;
    Ok(())
}

pub fn delete_session(c: &mut Conn, id: &str) -> Result<()> {
    diesel::delete(admin_sessions::table.filter(admin_sessions::id.eq(id))).execute(c)?;
    Ok(())
}

/// Ends every session of a user (a new password, deactivation).
pub fn delete_sessions_of(c: &mut Conn, user_id: i64) -> Result<usize> {
    Ok(
        diesel::delete(admin_sessions::table.filter(admin_sessions::user_id.eq(user_id)))
            .execute(c)?,
    )
}

/// Deletes the sessions past their end or idle since before `idle_since`.
pub fn delete_expired(
    c: &mut Conn,
    now: NaiveDateTime,
    idle_since: NaiveDateTime,
) -> Result<usize> {
    Ok(diesel::delete(
        admin_sessions::table.filter(
            admin_sessions::expires_at
                .le(now)
                .or(admin_sessions::last_seen_at.le(idle_since)),
        ),
    )
    .execute(c)?)
}

/// An order as the back office lists it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct OrderLine {
    pub order_id: i64,
    pub source: String,
    pub erp_order_id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub ticket: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// What the order list is narrowed to: a text matched exactly against the ERP order id,
/// the customer's id and the ticket (as stored), so every search uses an index.
pub enum OrderSearch<'a> {
    All,
    ErpOrderId(&'a str),
    /// The customers with one external id (one per scope).
    Customers(Vec<i64>),
    Ticket(i64),
    /// A text that is more than one of them (an ERP order id that is also a customer's id):
    /// the orders of each (each term through its index; the page is sorted after).
    Any {
        erp_order_id: &'a str,
        customers: Vec<i64>,
        ticket: Option<i64>,
    },
}

/// Whether some order has this ERP order id (of any source).
pub fn erp_order_id_exists(c: &mut Conn, erp_order_id: &str) -> Result<bool> {
    Ok(orders::table
        .filter(orders::erp_order_id.eq(erp_order_id))
        .select(orders::id)
        .first::<i64>(c)
        .optional()?
        .is_some())
}

/// The newest orders before `before` (an order id; none: from the newest), at most `limit`.
pub fn orders_page(
    c: &mut Conn,
    search: OrderSearch,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<OrderLine>> {
    let mut q = orders::table
        .inner_join(tickets::table)
        .inner_join(customers::table.on(customers::id.eq(orders::customer_id)))
        .select((
            orders::id,
            orders::source,
            orders::erp_order_id,
            customers::external_id,
            customers::name,
            tickets::code,
            orders::created_by,
            orders::created_at,
        ))
        .into_boxed();
    q = match search {
        OrderSearch::All => q,
        OrderSearch::ErpOrderId(id) => q.filter(orders::erp_order_id.eq(id.to_string())),
        OrderSearch::Customers(ids) => q.filter(orders::customer_id.eq_any(ids)),
        OrderSearch::Ticket(id) => q.filter(orders::ticket_id.eq(id)),
        // Ids are positive: -1 matches nothing.
        OrderSearch::Any {
            erp_order_id,
            customers,
            ticket,
        } => q.filter(
            orders::erp_order_id
                .eq(erp_order_id.to_string())
                .or(orders::customer_id.eq_any(customers))
                .or(orders::ticket_id.eq(ticket.unwrap_or(-1))),
        ),
    };
    if let Some(b) = before {
        q = q.filter(orders::id.lt(b));
    }
    Ok(q.order(orders::id.desc()).limit(limit).load(c)?)
}

/// Customers, newest first, before customer id `before`, at most `limit`: those whose id is
/// `search` exactly, else those whose name or e-mail address contains it (a scan of the
/// customers, stopped at the page's end).
pub fn customers_page(
    c: &mut Conn,
    search: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CustomerRow>> {
    if !search.is_empty() {
        let exact: Vec<CustomerRow> = customers::table
            .filter(customers::external_id.eq(search))
            .load(c)?;
        if !exact.is_empty() {
            return Ok(exact);
        }
    }
    let mut q = customers::table.into_boxed();
    if !search.is_empty() {
        let pattern = format!(
            "%{}%",
            search
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q = q.filter(
            lower(customers::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(customers::email).like(pattern).escape('\\')),
        );
    }
    if let Some(b) = before {
        q = q.filter(customers::id.lt(b));
    }
    Ok(q.order(customers::id.desc()).limit(limit).load(c)?)
}

/// The tickets of a customer with their state, newest first.
pub fn tickets_of_customer(
    c: &mut Conn,
    customer_id: i64,
) -> Result<Vec<(String, String, NaiveDateTime)>> {
    Ok(tickets::table
        .filter(tickets::customer_id.eq(customer_id))
        .select((tickets::code, tickets::state, tickets::created_at))
        .order(tickets::id.desc())
        .limit(1000)
        .load(c)?)
}

/// How many events of `action` fall in [from, to).
pub fn count_events(
    c: &mut Conn,
    action: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<i64> {
    Ok(events::table
        .filter(events::action.eq(action))
        .filter(events::at.ge(from))
        .filter(events::at.lt(to))
        .count()
        .get_result(c)?)
}

/// Approval requests waiting for a decision.
pub fn open_approvals(c: &mut Conn) -> Result<i64> {
    use super::schema::approvals;
    Ok(approvals::table
        .filter(approvals::state.eq(crate::domain::ApprovalState::Open.as_str()))
        .count()
        .get_result(c)?)
}

/// Mails and ERP write-backs that failed for good (waiting for a person).
pub fn failed_queues(c: &mut Conn) -> Result<(i64, i64)> {
    let failed = QueueState::Failed.as_str();
    let mails = outbox::table
        .filter(outbox::state.eq(failed))
        .count()
        .get_result(c)?;
    let writebacks = writebacks::table
        .filter(writebacks::state.eq(failed))
        .count()
        .get_result(c)?;
    Ok((mails, writebacks))
}

/// A blacklist entry as the back office lists it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct BlacklistLine {
    pub id: i64,
    pub firm_code: i64,
    pub serial: String,
    pub description: String,
    pub placed_at: NaiveDateTime,
    pub placed_by: String,
    pub lock_sent_at: Option<NaiveDateTime>,
    pub lock_validated_at: Option<NaiveDateTime>,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_by: Option<String>,
    pub removed_reason: Option<String>,
}

/// Blacklist entries, newest first from before entry `before`, open ones only unless `all`;
/// `serial` narrows to one.
pub fn blacklist_page(
    c: &mut Conn,
    serial: Option<&str>,
    all: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<BlacklistLine>> {
    let mut q = blacklist::table
        .inner_join(firms::table.on(firms::id.eq(blacklist::firm_id)))
        .select((
            blacklist::id,
            firms::firm_code,
            blacklist::serial,
            blacklist::description,
            blacklist::placed_at,
            blacklist::placed_by,
            blacklist::lock_sent_at,
            blacklist::lock_validated_at,
            blacklist::removed_at,
            blacklist::removed_by,
            blacklist::removed_reason,
        ))
        .into_boxed();
    if let Some(s) = serial {
        q = q.filter(blacklist::serial.eq(s.to_string()));
    }
    if !all {
        q = q.filter(blacklist::removed_at.is_null());
    }
    if let Some(b) = before {
        q = q.filter(blacklist::id.lt(b));
    }
    Ok(q.order(blacklist::id.desc()).limit(limit).load(c)?)
}

/// A license of a container as its details show it (the seeds' "Details on CmContainer").
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerLicenseLine {
    pub license_id: i64,
    pub item_id: String,
    pub state: String,
    pub ticket: String,
    pub order_id: i64,
    pub erp_order_id: String,
    pub activated_at: Option<NaiveDateTime>,
    /// How often it was activated, re-activated or restored into a container.
    pub activations: i64,
}

/// The licenses container `serial` holds (or is getting or giving back), with their ticket,
/// order and number of activations.
pub fn container_licenses(c: &mut Conn, serial: &str) -> Result<Vec<ContainerLicenseLine>> {
    /// License, item, state, ticket, order, ERP order id, activation time.
    type Row = (
        i64,
        String,
        String,
        String,
        i64,
        String,
        Option<NaiveDateTime>,
    );
    let rows: Vec<Row> = licenses::table
        .inner_join(items::table)
        .inner_join(tickets::table)
        .inner_join(order_lines::table.on(order_lines::id.eq(licenses::order_line_id)))
        .inner_join(orders::table.on(orders::id.eq(order_lines::order_id)))
        .filter(licenses::serial.eq(serial))
        .select((
            licenses::id,
            items::item_id,
            licenses::state,
            tickets::code,
            orders::id,
            orders::erp_order_id,
            licenses::activated_at,
        ))
        .order(licenses::id.asc())
        .load(c)?;
    let mut out = vec![];
    for (license_id, item_id, state, ticket, order_id, erp_order_id, activated_at) in rows {
        let activations = events::table
            .filter(events::license_id.eq(license_id))
            .filter(events::action.eq_any([
                "license.activated",
                "license.reactivated",
                "license.restored",
            ]))
            .count()
            .get_result(c)?;
        out.push(ContainerLicenseLine {
            license_id,
            item_id,
            state,
            ticket,
            order_id,
            erp_order_id,
            activated_at,
            activations,
        });
    }
    Ok(out)
}

/// Mails, newest first from before mail `before`, in `state` or in any.
pub fn mail_page(
    c: &mut Conn,
    state: Option<QueueState>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<crate::store::outbox::MailView>> {
    use crate::store::outbox::MailView;
    let mut q = outbox::table.select(MailView::as_select()).into_boxed();
    if let Some(s) = state {
        q = q.filter(outbox::state.eq(s.as_str()));
    }
    if let Some(b) = before {
        q = q.filter(outbox::id.lt(b));
    }
    Ok(q.order(outbox::id.desc()).limit(limit).load(c)?)
}

diesel::table! {
    portal_look (id) {
        id -> Integer,
        color -> Text,
        accent_color -> Text,
        license_columns -> Text,
        updated_at -> Timestamp,
    }
}

/// The portal's look as set in the back office: colour, accent colour, columns (each
/// empty where the configuration's holds); none if it was never set.
pub fn portal_look(c: &mut Conn) -> Result<Option<(String, String, String)>> {
    Ok(portal_look::table
        .select((
            portal_look::color,
            portal_look::accent_color,
            portal_look::license_columns,
        ))
        .first(c)
        .optional()?)
}

pub fn set_portal_look(
    c: &mut Conn,
    color: &str,
    accent_color: &str,
    columns: &str,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::delete(portal_look::table).execute(c)?;
    diesel::insert_into(portal_look::table)
        .values((
            portal_look::id.eq(1),
            portal_look::color.eq(color),
            portal_look::accent_color.eq(accent_color),
            portal_look::license_columns.eq(columns),
            portal_look::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}
