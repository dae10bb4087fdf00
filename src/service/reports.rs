//! Reports: each is a table with fixed columns, given out as JSON rows or as CSV (RFC 4180,
//! UTF-8, a header row, times in ISO 8601 UTC).
//!
//! The license reports (a container's, a ticket's, expiring, never activated) grow with the
//! licenses, so they are read a page at a time (`Reading`): each page in its own read
//! transaction, by key after the page before, and the front doors send each page as it is
//! read, so memory stays that of one page however many rows follow. A license changed while
//! its report is being read shows as it was when its page was read: one whose expiration
//! moves later while the expiring report is read may show again at its new time, one that
//! moves earlier not at all. The other reports are read whole, in one transaction.
use serde_json::{json, Value};

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{check_id, check_serial, Actor, ItemOptions, Role};
use crate::error::{Error, Result};
use crate::store::reports::{self as store, LicenseLine};
use crate::store::{cloud, containers, customers, history, licenses, tickets, Conn};

/// Which report, with its parameters.
#[derive(Debug, Clone)]
pub enum Report {
    /// The licenses a container holds (or is getting or giving back).
    ContainerLicenses {
        serial: String,
    },
    /// Licenses whose expiration time falls in the next `days` days.
    Expiring {
        days: u32,
    },
    /// The containers of customer `customer_id` of `scope` (`""`: the vendor's).
    CustomerContainers {
        scope: String,
        customer_id: String,
    },
    TicketLicenses {
        ticket: String,
    },
    LicenseHistory {
        license_id: i64,
    },
    /// Every blacklist entry, open and removed, with lock sent and validated.
    Blacklist,
    /// Licenses created and never activated.
    NeverActivated,
    /// Activations per firm and month against the monthly quota.
    ActivationsPerMonth,
    /// Dongles programmed and failures counted per day and production order.
    Production,
    /// Copies of licenses held by containers they do not live in (the duplicate check).
    Duplicates,
    /// The licenses in cloud containers and their seats in use now.
    CloudSeats,
    /// Seats taken, the most in use at once, and denials per license and UTC day over the
    /// last `days` days.
    CloudUse {
        days: u32,
    },
    /// The licenses that must check in: when their containers last did, their deadlines,
    /// and which are overdue (most overdue first).
    CheckIn,
    /// The activated pay-per-use licenses: units granted and used as their containers
    /// reported them.
    Units,
}

impl Report {
    pub const NAMES: &'static [&'static str] = &[
        "container-licenses",
        "expiring",
        "customer-containers",
        "ticket-licenses",
        "license-history",
        "blacklist",
        "never-activated",
        "activations",
        "production",
        "duplicates",
        "cloud-seats",
        "cloud-use",
        "check-in",
        "units",
    ];

    /// The report named `name` with the parameters it needs.
    pub fn parse(name: &str, p: &Params) -> Result<Report> {
        let need = |field: &'static str, v: &Option<String>| {
            v.clone()
                .ok_or_else(|| Error::invalid(field, format!("the {name} report needs {field}")))
        };
        let number = |field: &'static str, v: String| {
            v.parse::<i64>()
                .map_err(|_| Error::invalid(field, format!("{v:?} is not a number")))
        };
        Ok(match name {
            "container-licenses" => Report::ContainerLicenses {
                serial: need("serial", &p.serial)?,
            },
            "expiring" | "cloud-use" => {
                let days = match p.days.clone() {
                    Some(v) => number("days", v)?,
                    None => 30,
                };
                if !(1..=3650).contains(&days) {
                    return Err(Error::invalid("days", "between 1 and 3650"));
                }
                let days = days as u32;
                if name == "expiring" {
                    Report::Expiring { days }
                } else {
                    Report::CloudUse { days }
                }
            }
            "customer-containers" => Report::CustomerContainers {
                scope: p.scope.clone().unwrap_or_default(),
                customer_id: need("customer_id", &p.customer_id)?,
            },
            "ticket-licenses" => Report::TicketLicenses {
                ticket: need("ticket", &p.ticket)?,
            },
            "license-history" => Report::LicenseHistory {
                license_id: number("license_id", need("license_id", &p.license_id)?)?,
            },
            "blacklist" => Report::Blacklist,
            "never-activated" => Report::NeverActivated,
            "activations" => Report::ActivationsPerMonth,
            "production" => Report::Production,
            "duplicates" => Report::Duplicates,
            "check-in" => Report::CheckIn,
            "units" => Report::Units,
            "cloud-seats" => Report::CloudSeats,
            other => {
                return Err(Error::invalid(
                    "report",
                    format!(
                        "unknown report {other:?}; one of {}",
                        Report::NAMES.join(", ")
                    ),
                ))
            }
        })
    }
}

impl Report {
    /// The report's name and its parameters as `parse` takes them (`Params::from_pairs`).
    pub fn to_query(&self) -> (&'static str, Vec<(String, String)>) {
        let one = |k: &str, v: String| vec![(k.to_string(), v)];
        match self {
            Report::ContainerLicenses { serial } => {
                ("container-licenses", one("serial", serial.clone()))
            }
            Report::Expiring { days } => ("expiring", one("days", days.to_string())),
            Report::CustomerContainers { scope, customer_id } => (
                "customer-containers",
                vec![
                    ("scope".into(), scope.clone()),
                    ("customer_id".into(), customer_id.clone()),
                ],
            ),
            Report::TicketLicenses { ticket } => ("ticket-licenses", one("ticket", ticket.clone())),
            Report::LicenseHistory { license_id } => {
                ("license-history", one("license_id", license_id.to_string()))
            }
            Report::Blacklist => ("blacklist", vec![]),
            Report::NeverActivated => ("never-activated", vec![]),
            Report::ActivationsPerMonth => ("activations", vec![]),
            Report::Production => ("production", vec![]),
            Report::Duplicates => ("duplicates", vec![]),
            Report::CloudSeats => ("cloud-seats", vec![]),
            Report::CloudUse { days } => ("cloud-use", one("days", days.to_string())),
            Report::CheckIn => ("check-in", vec![]),
            Report::Units => ("units", vec![]),
        }
    }
}

/// The parameters a report may take, as every front door passes them: the JSON API's query
/// string (`from_pairs`), the SOAP Report service's elements and the CLI's options fill the
/// same fields. Values are text as given; `Report::parse` checks them.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub serial: Option<String>,
    pub days: Option<String>,
    pub customer_id: Option<String>,
    /// The scope of `customer_id` (none: the vendor's).
    pub scope: Option<String>,
    pub ticket: Option<String>,
    pub license_id: Option<String>,
}

impl Params {
    /// From `name=value` pairs; a name that is no report parameter is refused.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params> {
        let mut p = Params::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "serial" => &mut p.serial,
                "days" => &mut p.days,
                "customer_id" => &mut p.customer_id,
                "scope" => &mut p.scope,
                "ticket" => &mut p.ticket,
                "license_id" => &mut p.license_id,
                _ => return Err(Error::invalid(name, "not a report parameter")),
            };
            *slot = Some(value);
        }
        Ok(p)
    }
}

/// A report's result: named columns, rows of JSON values.
#[derive(Debug, serde::Serialize)]
pub struct Table {
    pub report: &'static str,
    pub columns: &'static [&'static str],
    #[serde(skip)]
    pub rows: Vec<Vec<Value>>,
}

/// A report as JSON: its name, its columns, and a row per object keyed by column. The JSON
/// API writes this shape a page at a time (`json_head`, `json_rows`, `JSON_TAIL`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ReportJson {
    pub report: &'static str,
    pub columns: &'static [&'static str],
    pub rows: Vec<serde_json::Map<String, Value>>,
}

/// What a report's JSON begins with, up to its first row.
pub fn json_head(report: &str, columns: &[&str]) -> Vec<u8> {
    let mut out = br#"{"report":"#.to_vec();
    out.extend(json!(report).to_string().as_bytes());
    out.extend(br#","columns":"#);
    out.extend(json!(columns).to_string().as_bytes());
    out.extend(br#","rows":["#);
    out
}

/// What a report's JSON ends with, after its last row.
pub const JSON_TAIL: &[u8] = b"]}";

/// Rows as JSON objects keyed by column (in column order), each preceded by a comma unless
/// it is the report's first row.
pub fn json_rows(columns: &[&str], rows: &[Vec<Value>], first: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 256);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 || !first {
            out.push(b',');
        }
        out.push(b'{');
        for (j, (c, v)) in columns.iter().zip(row).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend(json!(c).to_string().as_bytes());
            out.push(b':');
            out.extend(v.to_string().as_bytes());
        }
        out.push(b'}');
    }
    out
}

/// Rows as CSV records, after the header row when `header` names the columns.
pub fn csv_rows(header: Option<&[&str]>, rows: &[Vec<Value>]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 128));
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let io = |e: csv::Error| Error::internal(format!("csv: {e}"));
    if let Some(h) = header {
        w.write_record(h).map_err(io)?;
    }
    for r in rows {
        w.write_record(r.iter().map(cell)).map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| Error::internal(format!("csv: {e}")))
}

impl Table {
    /// Rows as objects keyed by column.
    pub fn to_json(&self) -> ReportJson {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.to_string(), v.clone()))
                    .collect()
            })
            .collect();
        ReportJson {
            report: self.report,
            columns: self.columns,
            rows,
        }
    }

    /// The whole report as CSV with its header row.
    pub fn to_csv(&self) -> Result<String> {
        String::from_utf8(csv_rows(Some(self.columns), &self.rows)?)
            .map_err(|e| Error::internal(format!("csv: {e}")))
    }
}

/// ISO 8601 in UTC.
fn iso(t: chrono::NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
fn iso_opt(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map(iso).unwrap_or(Value::Null)
}

fn expiration(o: &ItemOptions) -> Value {
    o.expiration_time
        .map(|t| iso(t.naive_utc()))
        .unwrap_or(Value::Null)
}

const LICENSE_COLUMNS: &[&str] = &[
    "license_id",
    "ticket",
    "item_id",
    "firm_code",
    "product_code",
    "state",
    "generation",
    "serial",
    "quantity",
    "feature_map",
    "expiration_time",
    "activated_at",
    "created_at",
    "customer_id",
    "customer_scope",
];

fn license_cells(l: LicenseLine) -> Result<Vec<Value>> {
    let o = l.options()?;
    Ok(vec![
        json!(l.id),
        json!(TicketCode::parse(&l.ticket)?.to_string()),
        json!(l.item_id),
        json!(l.firm_code),
        json!(l.product_code),
        json!(l.state.as_str()),
        json!(l.generation),
        json!(l.serial),
        json!(o.license_quantity),
        json!(o.feature_map),
        expiration(&o),
        iso_opt(l.activated_at),
        iso(l.created_at),
        json!(l.customer_id),
        json!(l.customer_scope),
    ])
}

/// The license report `report` of `rows`.
fn license_table(report: &'static str, rows: Vec<LicenseLine>) -> Result<Table> {
    Ok(Table {
        report,
        columns: LICENSE_COLUMNS,
        rows: rows.into_iter().map(license_cells).collect::<Result<_>>()?,
    })
}

/// How long a continuation of a report read in pages serves.
const CONTINUATION_LASTS: chrono::Duration = chrono::Duration::days(7);

/// Rows of a page of the license reports: enough that a page's queries cost little beside
/// its rows, few enough that a page in memory is a few hundred kilobytes.
pub const PAGE_ROWS: i64 = 1000;

/// Where a paged report's next page begins.
#[derive(Debug, Clone)]
enum Key {
    /// After this license id.
    License(i64),
    /// The expiring report: after this expiration second and license id.
    Expiry(store::ExpiryKey),
}

impl Key {
    fn license(&self) -> i64 {
        match self {
            Key::License(id) => *id,
            Key::Expiry((_, id)) => *id,
        }
    }
}

/// A report being read a page at a time: `first` checks the caller and the parameters and
/// reads the first page, `next` the pages after it until none is left.
pub struct Reading {
    report: Report,
    pub name: &'static str,
    pub columns: &'static [&'static str],
    rows_per_page: i64,
    /// The time the report is of (the expiring report's window), the same for every page.
    now: chrono::NaiveDateTime,
    /// Where the next page begins; `None` once the last page has been read.
    next: Option<Option<Key>>,
}

impl Reading {
    /// Opens `report` for `actor` (vendor roles only) and reads its first page of at most
    /// `rows_per_page` rows (the license reports; the others come whole in one page).
    pub async fn first(
        core: &Core,
        actor: &Actor,
        report: Report,
        rows_per_page: i64,
    ) -> Result<(Reading, Vec<Vec<Value>>)> {
        require(actor)?;
        let mut r = Reading::start(report, rows_per_page);
        let rows = r.next(core).await?.unwrap_or_default();
        Ok((r, rows))
    }

    /// `first` of the report as it was at `now` (the expiring report's window begins there).
    pub async fn first_at(
        core: &Core,
        actor: &Actor,
        report: Report,
        rows_per_page: i64,
        now: chrono::NaiveDateTime,
    ) -> Result<(Reading, Vec<Vec<Value>>)> {
        require(actor)?;
        let mut r = Reading::start(report, rows_per_page);
        r.now = now;
        let rows = r.next(core).await?.unwrap_or_default();
        Ok((r, rows))
    }

    /// The time the report is of.
    pub fn now(&self) -> chrono::NaiveDateTime {
        self.now
    }

    /// Opens `report` for `actor` again where a page read before ended (`after`, the
    /// `continuation` that page gave), and reads the page that follows it.
    pub async fn resume(
        core: &Core,
        actor: &Actor,
        report: Report,
        after: &str,
        rows_per_page: i64,
    ) -> Result<(Reading, Vec<Vec<Value>>)> {
        require(actor)?;
        let mut r = Reading::start(report, rows_per_page);
        let (now, key) = r.parse_continuation(after)?;
        r.now = now;
        r.next = Some(Some(key));
        let rows = r.next(core).await?.unwrap_or_default();
        Ok((r, rows))
    }

    /// Where the next page begins, as text to hand to `resume`: the report's time, the key
    /// of the last row read, and a tag of the report and its parameters (a continuation
    /// serves only the report it came from); none when no page follows.
    pub fn continuation(&self) -> Option<String> {
        let micros = self.now.and_utc().timestamp_micros();
        let tag = self.tag();
        match &self.next {
            Some(Some(Key::License(id))) => Some(format!("{micros}.{id}.{tag}")),
            Some(Some(Key::Expiry((second, id)))) => Some(format!("{micros}.{second}.{id}.{tag}")),
            _ => None,
        }
    }

    /// The report and its parameters, in eight hex digits.
    fn tag(&self) -> String {
        let (name, query) = self.report.to_query();
        let text = serde_json::json!([name, query]).to_string();
        hex::encode(&openssl::sha::sha256(text.as_bytes())[..4])
    }

    /// The time and key of a continuation of this report.
    fn parse_continuation(&self, text: &str) -> Result<(chrono::NaiveDateTime, Key)> {
        let bad = || {
            let shown: String = text.chars().take(60).collect();
            Error::invalid(
                "after",
                format!("{shown:?} is not a continuation a report page gave"),
            )
        };
        let mut parts: Vec<&str> = text.split('.').collect();
        if parts.pop() != Some(self.tag().as_str()) {
            return Err(Error::invalid(
                "after",
                "is not where a page of this report (with these parameters) ended",
            ));
        }
        let number = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
        let now = number(parts[0])
            .and_then(chrono::DateTime::from_timestamp_micros)
            .ok_or_else(bad)?
            .naive_utc();
        // A report is read through within days; a continuation from another time is none.
        let here = super::now();
        if now > here + chrono::Duration::minutes(1) || now < here - CONTINUATION_LASTS {
            return Err(Error::invalid(
                "after",
                format!(
                    "is older than {} days (or from the future): read the report again",
                    CONTINUATION_LASTS.num_days()
                ),
            ));
        }
        let key = match parts[1..] {
            [id] => Key::License(number(id).ok_or_else(bad)?),
            [second, id] => {
                let t = chrono::NaiveDateTime::parse_from_str(second, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| bad())?;
                Key::Expiry((store::expiry_second(t), number(id).ok_or_else(bad)?))
            }
            _ => return Err(bad()),
        };
        let fits = matches!(
            (&self.report, &key),
            (Report::Expiring { .. }, Key::Expiry(_))
                | (
                    Report::ContainerLicenses { .. }
                        | Report::TicketLicenses { .. }
                        | Report::NeverActivated,
                    Key::License(_),
                )
        );
        if !fits {
            return Err(bad());
        }
        Ok((now, key))
    }

    fn start(report: Report, rows_per_page: i64) -> Reading {
        Reading {
            report,
            name: "",
            columns: &[],
            rows_per_page: rows_per_page.max(1),
            now: super::now(),
            next: Some(None),
        }
    }

    /// Whether a page may follow the ones read.
    pub fn more(&self) -> bool {
        self.next.is_some()
    }

    /// The next page's rows; `None` after the last page.
    pub async fn next(&mut self, core: &Core) -> Result<Option<Vec<Vec<Value>>>> {
        let Some(after) = self.next.take() else {
            return Ok(None);
        };
        let (report, limit, now) = (self.report.clone(), self.rows_per_page, self.now);
        let (table, next) = core
            .db
            .read(move |c| build(c, &report, now, after.as_ref(), limit))
            .await?;
        self.name = table.report;
        self.columns = table.columns;
        self.next = next.map(Some);
        Ok(Some(table.rows))
    }
}

fn require(actor: &Actor) -> Result<()> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read reports",
    )
}

/// Runs a report whole. Vendor roles only.
pub async fn run(core: &Core, actor: &Actor, report: Report) -> Result<Table> {
    require(actor)?;
    read(core, report).await
}

/// Runs a report whole for the system (scheduled jobs).
pub async fn read(core: &Core, report: Report) -> Result<Table> {
    let mut reading = Reading::start(report, PAGE_ROWS);
    let mut rows = vec![];
    while let Some(more) = reading.next(core).await? {
        rows.extend(more);
    }
    Ok(Table {
        report: reading.name,
        columns: reading.columns,
        rows,
    })
}

/// A page of license report `report`: its rows, and where the next page begins when this
/// one was full.
fn license_page(
    report: &'static str,
    rows: Vec<LicenseLine>,
    limit: i64,
) -> Result<(Table, Option<Key>)> {
    let next = match rows.last() {
        Some(l) if rows.len() as i64 >= limit => Some(Key::License(l.id)),
        _ => None,
    };
    Ok((license_table(report, rows)?, next))
}

/// A page of `report` after `after` with at most `limit` rows (the license reports), or the
/// whole report (the others); and where the next page begins, if one may follow.
fn build(
    c: &mut Conn,
    report: &Report,
    now: chrono::NaiveDateTime,
    after: Option<&Key>,
    limit: i64,
) -> Result<(Table, Option<Key>)> {
    let after_id = after.map_or(0, Key::license);
    let table = match report {
        Report::ContainerLicenses { serial } => {
            check_serial("serial", serial)?;
            containers::get(c, serial)?;
            let rows = store::licenses_in(c, serial, after_id, limit)?;
            return license_page("container-licenses", rows, limit);
        }
        Report::TicketLicenses { ticket } => {
            let code = TicketCode::parse(ticket)?;
            let tid = tickets::id_of(c, &code)?;
            let rows = store::licenses_of_ticket(c, tid, after_id, limit)?;
            return license_page("ticket-licenses", rows, limit);
        }
        Report::Expiring { days } => {
            let until = now + chrono::Duration::days(i64::from(*days));
            let key = match after {
                Some(Key::Expiry(k)) => Some(k),
                _ => None,
            };
            let rows = store::expiring(c, now, until, key, limit)?;
            let next = match rows.last() {
                Some((t, l)) if rows.len() as i64 >= limit => {
                    Some(Key::Expiry((store::expiry_second(*t), l.id)))
                }
                _ => None,
            };
            // The page is read to the second; the report's bounds are exact.
            let rows = rows
                .into_iter()
                .filter(|(t, _)| *t >= now && *t <= until)
                .map(|(_, l)| l)
                .collect();
            return Ok((license_table("expiring", rows)?, next));
        }
        Report::NeverActivated => {
            let rows = store::never_activated(c, after_id, limit)?;
            return license_page("never-activated", rows, limit);
        }
        Report::CustomerContainers { scope, customer_id } => {
            check_id("customer_id", customer_id)?;
            super::catalog::check_scope("scope", scope)?;
            let cust = customers::id_of(c, scope, customer_id)?;
            let rows = store::containers_of_customer(c, cust)?;
            let serials: Vec<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
            let counts = store::license_counts(c, &serials)?;
            let listed = store::blacklisted_among(c, &serials)?;
            Table {
                report: "customer-containers",
                columns: &[
                    "serial",
                    "type",
                    "state",
                    "blacklisted",
                    "licenses",
                    "created_at",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        vec![
                            json!(r.serial),
                            json!(r.kind.as_str()),
                            json!(r.state.as_str()),
                            json!(listed.contains(&r.serial)),
                            json!(counts.get(&r.serial).copied().unwrap_or(0)),
                            iso(r.created_at),
                        ]
                    })
                    .collect(),
            }
        }
        Report::LicenseHistory { license_id } => {
            licenses::find(c, *license_id)?;
            let rows = history::of_license(c, *license_id)?;
            Table {
                report: "license-history",
                columns: &[
                    "event_id",
                    "at",
                    "actor",
                    "interface",
                    "action",
                    "serial",
                    "details",
                ],
                rows: rows
                    .into_iter()
                    .map(|e| {
                        vec![
                            json!(e.id),
                            iso(e.at),
                            json!(e.actor),
                            json!(e.interface),
                            json!(e.action),
                            json!(e.serial),
                            json!(e.details),
                        ]
                    })
                    .collect(),
            }
        }
        Report::Blacklist => {
            let rows = store::blacklist_entries(c)?;
            Table {
                report: "blacklist",
                columns: &[
                    "serial",
                    "firm_code",
                    "description",
                    "placed_at",
                    "placed_by",
                    "lock_sent_at",
                    "lock_validated_at",
                    "removed_at",
                    "removed_by",
                    "removed_reason",
                    "lock_update_id",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        vec![
                            json!(r.serial),
                            json!(r.firm_code),
                            json!(r.description),
                            iso(r.placed_at),
                            json!(r.placed_by),
                            iso_opt(r.lock_sent_at),
                            iso_opt(r.lock_validated_at),
                            iso_opt(r.removed_at),
                            json!(r.removed_by),
                            json!(r.removed_reason),
                            json!(r.lock_update_id),
                        ]
                    })
                    .collect(),
            }
        }
        Report::ActivationsPerMonth => {
            let out = store::activations_per_month(c)?
                .into_iter()
                .map(|m| {
                    let quota = if m.quota == 0 {
                        Value::Null
                    } else {
                        json!(m.quota)
                    };
                    vec![
                        json!(m.firm_code),
                        json!(m.month),
                        json!(m.activations),
                        json!(m.refused),
                        quota,
                    ]
                })
                .collect();
            Table {
                report: "activations",
                columns: &["firm_code", "month", "activations", "refused", "quota"],
                rows: out,
            }
        }
        Report::Duplicates => Table {
            report: "duplicates",
            columns: &["serial", "firm_code", "license_id", "lives_in", "state"],
            rows: store::duplicates(c)?
                .into_iter()
                .map(|d| {
                    vec![
                        json!(d.serial),
                        json!(d.firm_code),
                        json!(d.license_id),
                        json!(d.lives_in),
                        json!(d.state),
                    ]
                })
                .collect(),
        },
        Report::CloudSeats => Table {
            report: "cloud-seats",
            columns: &[
                "serial",
                "license_id",
                "item_id",
                "firm_code",
                "product_code",
                "seats",
                "in_use",
                "borrowed",
            ],
            rows: cloud::seats_report(c, now)?
                .into_iter()
                .map(|r| {
                    let seats = serde_json::from_str::<ItemOptions>(&r.options)
                        .map(|o| crate::domain::cloud::seats(o.license_quantity))
                        .map_err(|e| Error::internal(format!("license {} options: {e}", r.id)))?;
                    Ok(vec![
                        json!(r.serial),
                        json!(r.id),
                        json!(r.item_id),
                        json!(r.firm_code),
                        json!(r.product_code),
                        json!(seats),
                        json!(r.in_use),
                        json!(r.borrowed),
                    ])
                })
                .collect::<Result<_>>()?,
        },
        Report::CloudUse { days } => {
            let since = (now - chrono::Duration::days((*days).into()))
                .format("%Y-%m-%d")
                .to_string();
            Table {
                report: "cloud-use",
                columns: &[
                    "day",
                    "serial",
                    "license_id",
                    "item_id",
                    "opened",
                    "peak",
                    "denials",
                ],
                rows: cloud::use_report(c, &since)?
                    .into_iter()
                    .map(|d| {
                        vec![
                            json!(d.day),
                            json!(d.serial),
                            json!(d.license_id),
                            json!(d.item_id),
                            json!(d.opened),
                            json!(d.peak),
                            json!(d.denials),
                        ]
                    })
                    .collect(),
            }
        }
        Report::CheckIn => {
            let mut rows = store::must_check_in(c)?;
            // Overdue or never checked in first, the oldest deadline first.
            rows.sort_by_key(|r| (r.check_in_until.unwrap_or(i64::MIN), r.license.id));
            let at = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|t| iso(t.naive_utc()))
                    .unwrap_or(Value::Null)
            };
            let now_s = now.and_utc().timestamp();
            Table {
                report: "check-in",
                columns: &[
                    "license_id",
                    "item_id",
                    "serial",
                    "customer_id",
                    "check_in_days",
                    "last_check_in",
                    "check_in_until",
                    "overdue",
                ],
                rows: rows
                    .into_iter()
                    .map(|r| {
                        let days = r.license.options()?.check_in_days;
                        Ok(vec![
                            json!(r.license.id),
                            json!(r.license.item_id),
                            json!(r.license.serial),
                            json!(r.license.customer_id),
                            json!(days),
                            iso_opt(r.confirmed_at),
                            r.check_in_until.map(at).unwrap_or(Value::Null),
                            json!(r.check_in_until.is_some_and(|t| t <= now_s)),
                        ])
                    })
                    .collect::<Result<_>>()?,
            }
        }
        Report::Units => Table {
            report: "units",
            columns: &[
                "license_id",
                "item_id",
                "serial",
                "customer_id",
                "unit_counter",
                "used",
                "reported_at",
            ],
            rows: store::pay_per_use(c)?
                .into_iter()
                .map(|r| {
                    let counter = r.license.options()?.unit_counter;
                    Ok(vec![
                        json!(r.license.id),
                        json!(r.license.item_id),
                        json!(r.license.serial),
                        json!(r.license.customer_id),
                        json!(counter),
                        json!(r.used.map_or(0, |u| u.0)),
                        iso_opt(r.used.map(|u| u.1)),
                    ])
                })
                .collect::<Result<_>>()?,
        },
        Report::Production => Table {
            report: "production",
            columns: &["day", "production_order_id", "programmed", "failed"],
            rows: super::production::report_rows(c)?,
        },
    };
    Ok((table, None))
}
