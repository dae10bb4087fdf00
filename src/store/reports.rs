//! The reports' reads. A report reads across tables (a license with its item, ticket,
//! customer and firm; a customer's containers with their licenses and blacklist entries), so
//! its queries live here together rather than with one table each.
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    activation_counts, blacklist, containers, customers, firms, items, licenses, settings, tickets,
};
use super::Conn;
use crate::domain::{ContainerState, ContainerType, ItemOptions, LicenseState};
use crate::error::{Error, Result};

/// A license as the license reports list it.
#[derive(Debug, Clone, Queryable)]
pub struct LicenseLine {
    pub id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    #[diesel(deserialize_as = String)]
    pub state: LicenseState,
    pub generation: i32,
    pub serial: Option<String>,
    /// The ticket's code as stored.
    pub ticket: String,
    /// The license options (JSON of `ItemOptions`).
    pub options: String,
    pub activated_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// The customer's external id, and its scope (empty: the vendor's).
    pub customer_id: String,
    pub customer_scope: String,
}

impl LicenseLine {
    pub fn options(&self) -> Result<ItemOptions> {
        serde_json::from_str(&self.options)
            .map_err(|e| Error::internal(format!("license options: {e}")))
    }
}

/// Licenses with their item, ticket, customer and firm code; each report adds its filter,
/// its order and its page.
macro_rules! license_lines {
    () => {
        licenses::table
            .inner_join(items::table)
            .inner_join(tickets::table.inner_join(customers::table))
            .inner_join(firms::table.on(firms::id.eq(licenses::firm_id)))
            .select((
                licenses::id,
                items::item_id,
                firms::firm_code,
                licenses::product_code,
                licenses::state,
                licenses::generation,
                licenses::serial,
                tickets::code,
                licenses::options,
                licenses::activated_at,
                licenses::created_at,
                customers::external_id,
                customers::scope,
            ))
    };
}

/// The license reports read a page of `limit` licenses at a time, each after the last one
/// of the page before (by key, never by offset), so a page costs the same at the start and
/// at the end of ten million.
///
/// Every license in container `serial`, in any state, after license `after`.
pub fn licenses_in(c: &mut Conn, serial: &str, after: i64, limit: i64) -> Result<Vec<LicenseLine>> {
    Ok(license_lines!()
        .filter(licenses::serial.eq(serial))
        .filter(licenses::id.gt(after))
        .order(licenses::id.asc())
        .limit(limit)
        .load(c)?)
}

/// The licenses of ticket `ticket_id` that have not left it (not deleted), after license
/// `after`.
pub fn licenses_of_ticket(
    c: &mut Conn,
    ticket_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<LicenseLine>> {
    Ok(license_lines!()
        .filter(licenses::ticket_id.eq(ticket_id))
        .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
        .filter(licenses::id.gt(after))
        .order(licenses::id.asc())
        .limit(limit)
        .load(c)?)
}

/// The key of the expiring report: a license's expiration time to the second
/// (`YYYY-MM-DDTHH:MM:SS`, as the `expires_at` column holds it), then its id.
pub type ExpiryKey = (String, i64);

/// The expiration time as the `expires_at` column holds it.
pub fn expiry_second(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The licenses (not deleted) whose expiration second falls between `from` and `until`,
/// soonest first (by license id within a second), after `after`: the rows and each one's
/// expiration time. The caller drops those outside the exact bounds (a fraction of a second
/// either side).
pub fn expiring(
    c: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<&ExpiryKey>,
    limit: i64,
) -> Result<Vec<(NaiveDateTime, LicenseLine)>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Bool, Text};
    // `expires_at` is kept by the database (generated from the options), so it is not in the
    // schema diesel writes with; its conditions are written out. A page after a key seeks to
    // the key's second (a row value, `(expires_at, id) > (…)`, would not be sought by SQLite
    // beside the report's own bound, and every page would read from the window's start).
    let from = expiry_second(from);
    let (key, id) = match after {
        Some((k, id)) if *k >= from => (k.clone(), *id),
        _ => (from, 0),
    };
    let rows: Vec<LicenseLine> = license_lines!()
        .filter(
            sql::<Bool>("licenses.expires_at >= ")
                .bind::<Text, _>(key.clone())
                .sql(" AND licenses.expires_at <= ")
                .bind::<Text, _>(expiry_second(until))
                .sql(" AND (licenses.expires_at > ")
                .bind::<Text, _>(key)
                .sql(" OR licenses.id > ")
                .bind::<BigInt, _>(id)
                // As the partial index `licenses_expires_at` names them.
                .sql(") AND licenses.expires_at IS NOT NULL AND licenses.state <> 'deleted'"),
        )
        .order(sql::<Text>("licenses.expires_at, licenses.id"))
        .limit(limit)
        .load(c)?;
    rows.into_iter()
        .map(|l| {
            let t = l.options()?.expiration_time.ok_or_else(|| {
                Error::internal(format!("license {} has expires_at but no expiration", l.id))
            })?;
            Ok((t.naive_utc(), l))
        })
        .collect()
}

/// How many licenses (not deleted) expire on each UTC day whose expiration second falls
/// between `from` and `until`, read from the index alone.
pub fn expiring_per_day(
    c: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Vec<(String, i64)>> {
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Day {
        #[diesel(sql_type = Text)]
        day: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let q = |from: &str, until: &str| {
        diesel::sql_query(
            "SELECT substr(expires_at, 1, 10) AS day, COUNT(*) AS n FROM licenses \
             WHERE expires_at >= $1 AND expires_at <= $2 \
             AND expires_at IS NOT NULL AND state <> 'deleted' GROUP BY substr(expires_at, 1, 10)",
        )
        .bind::<Text, _>(from.to_string())
        .bind::<Text, _>(until.to_string())
    };
    let (from, until) = (expiry_second(from), expiry_second(until));
    let days: Vec<Day> = crate::on_backend!(c, x => q(&from, &until).load(x))?;
    Ok(days.into_iter().map(|d| (d.day, d.n)).collect())
}

/// The licenses made and never activated (available, first generation, no activation
/// time), after license `after`.
pub fn never_activated(c: &mut Conn, after: i64, limit: i64) -> Result<Vec<LicenseLine>> {
    // Written as the partial index `licenses_never_activated` names them, so both databases
    // read that index rather than the table.
    Ok(license_lines!()
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "licenses.state = 'available' AND licenses.activated_at IS NULL \
             AND licenses.generation = 1",
        ))
        .filter(licenses::id.gt(after))
        .order(licenses::id.asc())
        .limit(limit)
        .load(c)?)
}

/// A container of a customer, as the customer's report lists it.
#[derive(Debug, Clone, Queryable)]
pub struct CustomerContainer {
    pub serial: String,
    #[diesel(deserialize_as = String)]
    pub kind: ContainerType,
    #[diesel(deserialize_as = String)]
    pub state: ContainerState,
    pub created_at: NaiveDateTime,
}

/// The containers customer `customer` (primary key) owns, in the order they were registered.
pub fn containers_of_customer(c: &mut Conn, customer: i64) -> Result<Vec<CustomerContainer>> {
    Ok(containers::table
        .filter(containers::customer_id.eq(customer))
        .select((
            containers::serial,
            containers::kind,
            containers::state,
            containers::created_at,
        ))
        .order(containers::id.asc())
        .load(c)?)
}

/// How many licenses (not deleted) each of the containers `serials` holds; a container
/// with none is not in the map.
pub fn license_counts(c: &mut Conn, serials: &[&str]) -> Result<HashMap<String, i64>> {
    let counts: Vec<(Option<String>, i64)> = licenses::table
        .filter(licenses::serial.eq_any(serials))
        .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
        .group_by(licenses::serial)
        .select((licenses::serial, diesel::dsl::count_star()))
        .load(c)?;
    Ok(counts
        .into_iter()
        .filter_map(|(s, n)| s.map(|s| (s, n)))
        .collect())
}

/// Which of the containers `serials` have an open entry on the blacklist of any firm (one
/// serial per open entry).
pub fn blacklisted_among(c: &mut Conn, serials: &[&str]) -> Result<Vec<String>> {
    Ok(blacklist::table
        .filter(blacklist::serial.eq_any(serials))
        .filter(blacklist::removed_at.is_null())
        .select(blacklist::serial)
        .load(c)?)
}

/// A blacklist entry, open or removed, with its firm's code.
#[derive(Debug, Clone, Queryable)]
pub struct BlacklistLine {
    pub serial: String,
    pub firm_code: i64,
    pub description: String,
    pub placed_at: NaiveDateTime,
    pub placed_by: String,
    pub lock_sent_at: Option<NaiveDateTime>,
    pub lock_validated_at: Option<NaiveDateTime>,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_by: Option<String>,
    pub removed_reason: Option<String>,
    pub lock_update_id: Option<i64>,
}

/// Every blacklist entry of every firm, open and removed, in the order they were placed.
pub fn blacklist_entries(c: &mut Conn) -> Result<Vec<BlacklistLine>> {
    Ok(blacklist::table
        .inner_join(firms::table.on(firms::id.eq(blacklist::firm_id)))
        .select((
            blacklist::serial,
            firms::firm_code,
            blacklist::description,
            blacklist::placed_at,
            blacklist::placed_by,
            blacklist::lock_sent_at,
            blacklist::lock_validated_at,
            blacklist::removed_at,
            blacklist::removed_by,
            blacklist::removed_reason,
            blacklist::lock_update_id,
        ))
        .order(blacklist::id.asc())
        .load(c)?)
}

/// The activations of one firm in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationMonth {
    pub firm_code: i64,
    /// `YYYY-MM`.
    pub month: String,
    pub activations: i64,
    pub refused: i64,
    /// The firm's monthly quota as its settings say now (0: none).
    pub quota: u32,
}

/// Activations and refusals per firm and month, by firm code and month.
pub fn activations_per_month(c: &mut Conn) -> Result<Vec<ActivationMonth>> {
    let rows: Vec<(i64, String, i64, i64, Option<String>)> = activation_counts::table
        .inner_join(firms::table.on(firms::id.eq(activation_counts::firm_id)))
        .left_join(settings::table.on(settings::firm_id.eq(activation_counts::firm_id)))
        .select((
            firms::firm_code,
            activation_counts::month,
            activation_counts::activations,
            activation_counts::refused,
            settings::body.nullable(),
        ))
        .order((firms::firm_code.asc(), activation_counts::month.asc()))
        .load(c)?;
    // The count of a month is spread over shards (see `super::quota`): add them up.
    let mut months: BTreeMap<(i64, String), (i64, i64, u32)> = BTreeMap::new();
    for (firm_code, month, n, refused, body) in rows {
        let quota = super::settings::parse(body)?.monthly_activation_quota;
        let m = months.entry((firm_code, month)).or_insert((0, 0, quota));
        m.0 += n;
        m.1 += refused;
    }
    Ok(months
        .into_iter()
        .map(
            |((firm_code, month), (activations, refused, quota))| ActivationMonth {
                firm_code,
                month,
                activations,
                refused,
                quota,
            },
        )
        .collect())
}

/// A copy of a license in a container where it does not live: the container's confirmed
/// content holds an entry of it, and the license is elsewhere (or nowhere) now.
#[derive(Debug)]
pub struct DuplicateLine {
    pub serial: String,
    pub firm_code: i64,
    pub license_id: i64,
    pub lives_in: Option<String>,
    pub state: String,
}

/// Every copy of a license held by a container it does not live in, by container and
/// license (from the containers' confirmed contents).
pub fn duplicates(c: &mut Conn) -> Result<Vec<DuplicateLine>> {
    use super::schema::{container_firms, containers, firms, licenses};
    let held: Vec<(String, i64, String)> = container_firms::table
        .inner_join(containers::table.on(containers::id.eq(container_firms::container_id)))
        .inner_join(firms::table.on(firms::id.eq(container_firms::firm_id)))
        .filter(container_firms::counter.gt(0))
        .select((
            containers::serial,
            firms::firm_code,
            container_firms::content,
        ))
        .order((containers::serial.asc(), firms::firm_code.asc()))
        .load(c)?;
    let mut out = vec![];
    for (serial, firm_code, content) in held {
        let v: serde_json::Value = serde_json::from_str(&content)
            .map_err(|e| Error::internal(format!("content of {serial}: {e}")))?;
        let ids: Vec<i64> = v["entries"]
            .as_object()
            .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            continue;
        }
        let homes: HashMap<i64, (Option<String>, String)> = licenses::table
            .filter(licenses::id.eq_any(&ids))
            .select((licenses::id, licenses::serial, licenses::state))
            .load::<(i64, Option<String>, String)>(c)?
            .into_iter()
            .map(|(id, s, st)| (id, (s, st)))
            .collect();
        for id in ids {
            let (lives_in, state) = homes
                .get(&id)
                .cloned()
                .unwrap_or((None, "unknown".to_string()));
            let here = lives_in.as_deref() == Some(serial.as_str())
                && state != LicenseState::Available.as_str()
                && state != LicenseState::Deleted.as_str();
            if !here {
                out.push(DuplicateLine {
                    serial: serial.clone(),
                    firm_code,
                    license_id: id,
                    lives_in,
                    state,
                });
            }
        }
    }
    Ok(out)
}

/// A license that must check in, with what its container last confirmed of its firm.
pub struct CheckInLine {
    pub license: LicenseLine,
    /// When the container last confirmed an update of the license's firm (none: never).
    pub confirmed_at: Option<NaiveDateTime>,
    /// The deadline of the license's entry in that confirmed content (none: not there yet).
    pub check_in_until: Option<i64>,
}

/// The activated licenses whose options say they must check in, with their containers'
/// confirmed state.
pub fn must_check_in(c: &mut Conn) -> Result<Vec<CheckInLine>> {
    use super::schema::{container_firms, containers};
    use crate::protocol::{Content, Entry};
    use LicenseState as S;
    // The option lives in the license options, written only when set.
    let rows: Vec<LicenseLine> = license_lines!()
        .filter(licenses::state.eq(S::Activated.as_str()))
        .filter(licenses::options.like("%\"check_in_days\":%"))
        .load(c)?;
    let serials: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|l| l.serial.as_deref()).collect();
    let mut mirrors: HashMap<(String, i64), (NaiveDateTime, Content<Entry>)> = HashMap::new();
    for (serial, firm_code, at, content) in container_firms::table
        .inner_join(containers::table.on(containers::id.eq(container_firms::container_id)))
        .inner_join(firms::table.on(firms::id.eq(container_firms::firm_id)))
        .filter(containers::serial.eq_any(&serials))
        .filter(container_firms::counter.gt(0))
        .select((
            containers::serial,
            firms::firm_code,
            container_firms::confirmed_at,
            container_firms::content,
        ))
        .load::<(String, i64, NaiveDateTime, String)>(c)?
    {
        let content = serde_json::from_str(&content)
            .map_err(|e| Error::internal(format!("content of {serial}: {e}")))?;
        mirrors.insert((serial, firm_code), (at, content));
    }
    Ok(rows
        .into_iter()
        .map(|l| {
            let key = (l.serial.clone().unwrap_or_default(), l.firm_code);
            let mirror = mirrors.get(&key);
            CheckInLine {
                confirmed_at: mirror.map(|m| m.0),
                check_in_until: mirror
                    .and_then(|m| m.1.entries.get(&l.id))
                    .and_then(|e| e.check_in_until),
                license: l,
            }
        })
        .collect())
}

/// An activated pay-per-use license, with the units its container last reported used.
pub struct UnitsLine {
    pub license: LicenseLine,
    /// The highest count the container reported, and when (none: not reported yet).
    pub used: Option<(i64, NaiveDateTime)>,
}

/// The activated licenses with a unit counter, with the units their containers reported.
pub fn pay_per_use(c: &mut Conn) -> Result<Vec<UnitsLine>> {
    use super::schema::license_units;
    let rows: Vec<LicenseLine> = license_lines!()
        .filter(licenses::state.eq(LicenseState::Activated.as_str()))
        .filter(licenses::options.like("%\"unit_counter\":%"))
        .filter(licenses::options.not_like("%\"unit_counter\":null%"))
        .load(c)?;
    let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
    let reported: HashMap<(String, i64), (i64, NaiveDateTime)> = license_units::table
        .inner_join(containers::table.on(containers::id.eq(license_units::container_id)))
        .filter(license_units::license_id.eq_any(&ids))
        .select((
            containers::serial,
            license_units::license_id,
            license_units::used,
            license_units::reported_at,
        ))
        .load::<(String, i64, i64, NaiveDateTime)>(c)?
        .into_iter()
        .map(|(serial, id, used, at)| ((serial, id), (used, at)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|l| {
            let key = (l.serial.clone().unwrap_or_default(), l.id);
            UnitsLine {
                used: reported.get(&key).copied(),
                license: l,
            }
        })
        .collect())
}
