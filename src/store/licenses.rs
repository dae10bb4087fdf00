//! Licenses: what the lifecycle reads of them, and the one conditional write that changes
//! them (DESIGN.md, rule 1: `UPDATE … WHERE id = ? AND state = ? AND version = ?`; zero rows
//! means someone else changed the license first).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{items, licenses, order_lines, tickets};
use super::{Conn, Reused};
use crate::domain::reactivation::LicenseFacts;
use crate::domain::ticket::TicketCode;
use crate::domain::{check_in_deadline, ItemOptions, LicenseState, TicketState};
use crate::error::{Error, Result};
use crate::on_backend;
use crate::protocol::Entry;

/// A license as the lifecycle needs it, with its item's id.
#[derive(Debug, Clone, Queryable)]
pub struct LicRow {
    pub id: i64,
    #[diesel(deserialize_as = String)]
    pub state: LicenseState,
    pub version: i32,
    pub serial: Option<String>,
    pub generation: i32,
    pub product_code: i64,
    pub options: String,
    pub firm_id: i64,
    pub item_id: String,
    pub ticket_id: i64,
    pub activated_at: Option<NaiveDateTime>,
    pub self_service_used: i32,
}

pub(super) type LicSelect = (
    licenses::id,
    licenses::state,
    licenses::version,
    licenses::serial,
    licenses::generation,
    licenses::product_code,
    licenses::options,
    licenses::firm_id,
    items::item_id,
    licenses::ticket_id,
    licenses::activated_at,
    licenses::self_service_used,
);
pub(super) const LIC_SELECT: LicSelect = (
    licenses::id,
    licenses::state,
    licenses::version,
    licenses::serial,
    licenses::generation,
    licenses::product_code,
    licenses::options,
    licenses::firm_id,
    items::item_id,
    licenses::ticket_id,
    licenses::activated_at,
    licenses::self_service_used,
);

impl LicRow {
    pub fn options(&self) -> Result<ItemOptions> {
        serde_json::from_str(&self.options)
            .map_err(|e| Error::internal(format!("license {} options: {e}", self.id)))
    }

    /// The entry this license is in container `serial` of `firm_code`, made at `now` (a
    /// license that must check in gets its deadline from then).
    pub fn entry(&self, serial: &str, firm_code: i64, now: NaiveDateTime) -> Result<Entry> {
        let o = self.options()?;
        Ok(Entry {
            license_id: self.id,
            generation: self.generation,
            serial: serial.to_string(),
            firm_code,
            product_code: self.product_code,
            feature_map: o.feature_map,
            quantity: o.license_quantity,
            activation_time: o.activation_time.map(|t| t.timestamp()),
            expiration_time: o.expiration_time.map(|t| t.timestamp()),
            usage_period_days: o.usage_period_days,
            unit_counter: o.unit_counter,
            maintenance_period_days: o.maintenance_period_days,
            text: o.text,
            user_data: o.user_data,
            protected_data: o.protected_data,
            check_in_until: o.check_in_days.map(|d| check_in_deadline(now, d)),
        })
    }

    /// What the re-activation rules look at.
    pub fn facts(&self) -> LicenseFacts {
        LicenseFacts {
            id: self.id,
            state: self.state,
            activated_at: self.activated_at,
            self_service_used: self.self_service_used,
        }
    }

    /// Whether it is in container `serial`.
    pub fn is_in(&self, serial: &str) -> bool {
        self.serial.as_deref() == Some(serial)
    }
}

/// License `id`.
pub fn find(c: &mut Conn, id: i64) -> Result<LicRow> {
    licenses::table
        .inner_join(items::table)
        .filter(licenses::id.eq(id))
        .select(LIC_SELECT)
        .first(c)
        .optional()?
        .ok_or_else(|| Error::not_found("license", id))
}

/// What a conditional write changes besides the version (always raised by one) and the
/// time of the change. `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = licenses)]
pub struct Change<'a> {
    pub state: Option<&'static str>,
    pub serial: Option<Option<&'a str>>,
    pub generation: Option<i32>,
    pub self_service_used: Option<i32>,
    pub options: Option<&'a str>,
    pub activated_at: Option<Option<NaiveDateTime>>,
}

/// The one conditional write of a license: it changes only if it is still in `state` at
/// `version` (as the caller read it). Zero rows: another request changed it first, and the
/// caller gets a conflict.
pub fn change(
    c: &mut Conn,
    id: i64,
    state: LicenseState,
    version: i32,
    set: Change,
    now: NaiveDateTime,
) -> Result<()> {
    let row = licenses::table
        .filter(licenses::id.eq(id))
        .filter(licenses::state.eq(state.as_str()))
        .filter(licenses::version.eq(version));
    let set = (
        set,
        licenses::version.eq(version + 1),
        licenses::updated_at.eq(now),
    );
    let n = on_backend!(c, x => Reused(diesel::update(row).set(set).returning(licenses::id))
        .load::<i64>(x))?
    .len();
    if n == 0 {
        return Err(Error::Conflict(format!(
            "license {id} was changed by another request at the same time"
        )));
    }
    Ok(())
}

/// Moves license `l` to state `to` in container `serial` (none: in no container).
/// Becoming `activated` also records when (the blocking period counts from it).
pub fn set_state(
    c: &mut Conn,
    l: &LicRow,
    to: LicenseState,
    serial: Option<&str>,
    now: NaiveDateTime,
) -> Result<()> {
    let set = Change {
        state: Some(to.as_str()),
        serial: Some(serial),
        activated_at: (to == LicenseState::Activated).then_some(Some(now)),
        ..Change::default()
    };
    change(c, l.id, l.state, l.version, set, now)
}

/// The licenses of ticket `ticket_id` that have not left it (not deleted).
pub fn of_ticket(c: &mut Conn, ticket_id: i64) -> Result<Vec<LicRow>> {
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?)
}

/// The container's licenses of the firm that are not available (pending, activated,
/// returning, withdrawing): what its next update is made from.
pub fn outstanding_in(c: &mut Conn, serial: &str, firm_id: i64) -> Result<Vec<LicRow>> {
    Ok(on_backend!(c, x => licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(serial))
        .filter(licenses::firm_id.eq(firm_id))
        .filter(licenses::state.ne(LicenseState::Available.as_str()))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(x))?)
}

/// Every license of the firm in the container, whatever its state.
pub fn all_in(c: &mut Conn, serial: &str, firm_id: i64) -> Result<Vec<LicRow>> {
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(serial))
        .filter(licenses::firm_id.eq(firm_id))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?)
}

/// The container's licenses of the firm in one of `states`.
pub fn in_container(
    c: &mut Conn,
    serial: &str,
    firm_id: i64,
    states: &[LicenseState],
) -> Result<Vec<LicRow>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(serial))
        .filter(licenses::firm_id.eq(firm_id))
        .filter(licenses::state.eq_any(states))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?)
}

/// Every license in container `serial` (any firm, any state): id, item id, state.
pub fn listed_in(c: &mut Conn, serial: &str) -> Result<Vec<(i64, String, String)>> {
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(serial))
        .select((licenses::id, items::item_id, licenses::state))
        .order(licenses::id.asc())
        .load(c)?)
}

/// When a license in container `serial` was last activated, if ever.
pub fn last_activation_in(c: &mut Conn, serial: &str) -> Result<Option<NaiveDateTime>> {
    Ok(licenses::table
        .filter(licenses::serial.eq(serial))
        .select(diesel::dsl::max(licenses::activated_at))
        .first(c)?)
}

/// The ticket's licenses of the firm an activation of "all" takes: the available ones, and
/// those this container already asked for (a retry whose answer was lost gets them again).
pub fn activatable_of_ticket(
    c: &mut Conn,
    ticket_id: i64,
    serial: &str,
    firm_id: i64,
) -> Result<Vec<LicRow>> {
    Ok(on_backend!(c, x => licenses::table
        .inner_join(items::table)
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::state.eq(LicenseState::Available.as_str()).or(licenses::state
            .eq(LicenseState::Pending.as_str())
            .and(licenses::serial.eq(serial))))
        .filter(licenses::firm_id.eq(firm_id))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(x))?)
}

/// How many licenses of the ticket are available.
pub fn count_available_of_ticket(c: &mut Conn, ticket_id: i64) -> Result<i64> {
    Ok(on_backend!(c, x => licenses::table
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::state.eq(LicenseState::Available.as_str()))
        .count()
        .get_result(x))?)
}

/// The first license of the ticket bound to a container other than `serial`, with that
/// container's serial.
pub fn first_of_ticket_elsewhere(
    c: &mut Conn,
    ticket_id: i64,
    serial: &str,
) -> Result<Option<(i64, String)>> {
    let found: Option<(i64, Option<String>)> = on_backend!(c, x => licenses::table
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::serial.is_not_null())
        .filter(licenses::serial.ne(serial))
        .select((licenses::id, licenses::serial))
        .order(licenses::id.asc())
        .first(x)
        .optional())?;
    Ok(found.map(|(id, s)| (id, s.unwrap_or_default())))
}

/// The order a license was sold on.
pub fn order_of(c: &mut Conn, id: i64) -> Result<i64> {
    Ok(order_lines::table
        .filter(
            order_lines::id.eq(licenses::table
                .filter(licenses::id.eq(id))
                .select(licenses::order_line_id)
                .single_value()
                .assume_not_null()),
        )
        .select(order_lines::order_id)
        .first(c)?)
}

/// The order line and item (primary keys) a license was made from.
pub fn line_and_item(c: &mut Conn, id: i64) -> Result<(i64, i64)> {
    Ok(licenses::table
        .filter(licenses::id.eq(id))
        .select((licenses::order_line_id, licenses::item_id))
        .first(c)?)
}

/// The ticket code of a license, if the license exists.
pub fn ticket_code_of(c: &mut Conn, id: i64) -> Result<Option<String>> {
    Ok(licenses::table
        .inner_join(tickets::table)
        .filter(licenses::id.eq(id))
        .select(tickets::code)
        .first::<String>(c)
        .optional()?)
}

/// A license row to insert.
pub struct NewLicense<'a> {
    pub ticket_id: i64,
    pub order_line_id: i64,
    pub item_pk: i64,
    pub firm_id: i64,
    pub product_code: i64,
    pub options: &'a str,
    pub state: LicenseState,
    pub serial: Option<&'a str>,
}

pub fn insert(c: &mut Conn, l: &NewLicense, now: NaiveDateTime) -> Result<i64> {
    Ok(
        on_backend!(c, x => Reused(diesel::insert_into(licenses::table)
        .values((
            licenses::ticket_id.eq(l.ticket_id),
            licenses::order_line_id.eq(l.order_line_id),
            licenses::item_id.eq(l.item_pk),
            licenses::firm_id.eq(l.firm_id),
            licenses::product_code.eq(l.product_code),
            licenses::options.eq(l.options),
            licenses::state.eq(l.state.as_str()),
            licenses::serial.eq(l.serial),
            licenses::generation.eq(1),
            licenses::version.eq(1),
            licenses::created_at.eq(now),
            licenses::updated_at.eq(now),
        ))
        .returning(licenses::id))
        .get_result(x))?,
    )
}

/// The licenses of a ticket an update item changes: its firm and product code, not
/// withdrawn or deleted.
pub fn matching_product(
    c: &mut Conn,
    ticket_id: i64,
    firm_id: i64,
    product_code: i64,
) -> Result<Vec<LicRow>> {
    Ok(licenses::table
        .inner_join(items::table)
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::firm_id.eq(firm_id))
        .filter(licenses::product_code.eq(product_code))
        .filter(licenses::state.ne_all([
            LicenseState::Deleted.as_str(),
            LicenseState::Withdrawing.as_str(),
        ]))
        // A license made for a borrow lasts the borrow and serves one user: updates pass it.
        .filter(diesel::dsl::not(licenses::id.eq_any(
            super::schema::cloud_borrows::table.select(super::schema::cloud_borrows::license_id),
        )))
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(c)?)
}

/// The licenses a request names, read together with the container's outstanding ones (its
/// firm's licenses in it that are not available), so the update needs no read of its own.
/// A change another writer commits to the container's other licenses in between is not
/// seen (as it would not be a moment earlier): the next update of the container brings it.
pub struct Named {
    /// Every license read, kept up to date with the request's changes (`set`), each with
    /// whether it belongs to the ticket the request named.
    rows: Vec<(LicRow, bool)>,
    /// What the named ticket is for, when a license of it was read.
    ticket: Option<TicketState>,
}

impl Named {
    /// Reads the licenses `ids` (those of the ticket `code`, when given, are marked) and the
    /// outstanding licenses of container `serial` for `firm_id`, in one query.
    pub fn load(
        c: &mut Conn,
        ids: &[i64],
        code: Option<&TicketCode>,
        serial: &str,
        firm_id: i64,
    ) -> Result<Named> {
        let code = code.map(|c| c.as_stored()).unwrap_or_default();
        macro_rules! load {
            ($named:expr, $prepared:expr) => {{
                let q = licenses::table
                    .inner_join(items::table)
                    .left_join(
                        tickets::table.on(tickets::id
                            .eq(licenses::ticket_id)
                            .and(tickets::code.eq(code))),
                    )
                    .filter(
                        $named.or(licenses::serial
                            .eq(serial)
                            .and(licenses::firm_id.eq(firm_id))
                            .and(licenses::state.ne(LicenseState::Available.as_str()))),
                    )
                    .select((LIC_SELECT, tickets::id.nullable(), tickets::state.nullable()))
                    .order(licenses::id.asc());
                if $prepared {
                    on_backend!(c, x => Reused(q).load(x))
                } else {
                    on_backend!(c, x => q.load(x))
                }
            }};
        }
        // One license (the usual request) is named with `=`: PostgreSQL plans `= ANY($1)`
        // anew on every run (its generic plan never looks cheap enough), `= $1` once. A short
        // IN list keeps its statement prepared (on SQLite one per length; diesel prepares a
        // statement with an IN list anew on every run).
        let found: Vec<(LicRow, Option<i64>, Option<String>)> = match ids {
            [id] => load!(licenses::id.eq(*id), true)?,
            _ => load!(licenses::id.eq_any(ids), ids.len() <= 8)?,
        };
        let ticket = found
            .iter()
            .find_map(|(_, _, state)| state.as_deref())
            .map(TicketState::parse)
            .transpose()?;
        let rows = found
            .into_iter()
            .map(|(l, t, _)| (l, t.is_some()))
            .collect();
        Ok(Named { rows, ticket })
    }

    /// What the named ticket is for, if any of its licenses was read.
    pub fn ticket_state(&self) -> Option<TicketState> {
        self.ticket
    }

    /// License `id` as named by the request: of the ticket, when the request named one.
    pub fn get(&self, id: i64, ticket: bool) -> Result<&LicRow> {
        self.rows
            .iter()
            .find(|(l, of_ticket)| l.id == id && (*of_ticket || !ticket))
            .map(|(l, _)| l)
            .ok_or_else(|| Error::not_found("license", id))
    }

    /// `set_state` for license `id` (to pending or returning), remembered here.
    pub fn set(
        &mut self,
        c: &mut Conn,
        id: i64,
        to: LicenseState,
        serial: &str,
        now: NaiveDateTime,
    ) -> Result<()> {
        debug_assert_ne!(to, LicenseState::Activated, "activated_at is not kept here");
        let (l, _) = self
            .rows
            .iter_mut()
            .find(|(l, _)| l.id == id)
            .ok_or_else(|| Error::not_found("license", id))?;
        set_state(c, l, to, Some(serial), now)?;
        l.state = to;
        l.serial = Some(serial.to_string());
        l.version += 1;
        Ok(())
    }

    /// The container's outstanding licenses after the changes made here.
    pub fn outstanding(self, serial: &str, firm_id: i64) -> Vec<LicRow> {
        self.rows
            .into_iter()
            .map(|(l, _)| l)
            .filter(|l| l.is_in(serial))
            .filter(|l| l.firm_id == firm_id && l.state != LicenseState::Available)
            .collect()
    }
}

/// Every pending license with its container: license, serial, container id, firm id.
pub fn pending_with_container(c: &mut Conn) -> Result<Vec<(i64, String, i64, i64)>> {
    use super::schema::containers;
    Ok(licenses::table
        .inner_join(containers::table.on(containers::serial.nullable().eq(licenses::serial)))
        .filter(licenses::state.eq(LicenseState::Pending.as_str()))
        .select((
            licenses::id,
            containers::serial,
            containers::id,
            licenses::firm_id,
        ))
        .load(c)?)
}

/// A license as a ticket lists it.
#[derive(Debug, Queryable)]
pub struct TicketLicenseRow {
    pub id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub state: String,
    pub generation: i32,
    pub serial: Option<String>,
    pub options: String,
}

/// The licenses on a ticket that have not left it, and license `keep` even if it has.
pub fn listed_on_ticket(
    c: &mut Conn,
    ticket_id: i64,
    keep: Option<i64>,
) -> Result<Vec<TicketLicenseRow>> {
    use super::schema::firms;
    Ok(licenses::table
        .inner_join(items::table)
        .inner_join(firms::table.on(firms::id.eq(licenses::firm_id)))
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(
            licenses::state
                .ne(LicenseState::Deleted.as_str())
                .or(licenses::id.eq(keep.unwrap_or(-1))),
        )
        .select((
            licenses::id,
            items::item_id,
            firms::firm_code,
            licenses::product_code,
            licenses::state,
            licenses::generation,
            licenses::serial,
            licenses::options,
        ))
        .order(licenses::id.asc())
        .load(c)?)
}
