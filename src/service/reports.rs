//! Reports: each is a table with fixed columns, read in one transaction, and given out as
//! JSON rows or as CSV (RFC 4180, UTF-8, a header row, times in ISO 8601 UTC).
use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{json, Value};

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{check_id, Actor, ItemOptions, LicenseState, Role};
use crate::error::{Error, Result};
use crate::store::schema::{
    activation_counts, blacklist, containers, customers, events, firms, items, licenses, settings,
    tickets,
};
use crate::store::Conn;

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
    CustomerContainers {
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
    ];

    /// The report named `name`, its parameters taken from `param`.
    pub fn parse(name: &str, param: impl Fn(&str) -> Option<String>) -> Result<Report> {
        let need = |p: &str| {
            param(p).ok_or_else(|| Error::invalid(p, format!("the {name} report needs {p}")))
        };
        let number = |p: &str, v: String| {
            v.parse::<i64>()
                .map_err(|_| Error::invalid(p, format!("{v:?} is not a number")))
        };
        Ok(match name {
            "container-licenses" => Report::ContainerLicenses {
                serial: need("serial")?,
            },
            "expiring" => {
                let days = match param("days") {
                    Some(v) => number("days", v)?,
                    None => 30,
                };
                if !(1..=3650).contains(&days) {
                    return Err(Error::invalid("days", "between 1 and 3650"));
                }
                Report::Expiring { days: days as u32 }
            }
            "customer-containers" => Report::CustomerContainers {
                customer_id: need("customer_id")?,
            },
            "ticket-licenses" => Report::TicketLicenses {
                ticket: need("ticket")?,
            },
            "license-history" => Report::LicenseHistory {
                license_id: number("license_id", need("license_id")?)?,
            },
            "blacklist" => Report::Blacklist,
            "never-activated" => Report::NeverActivated,
            "activations" => Report::ActivationsPerMonth,
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

/// A report's result: named columns, rows of JSON values.
#[derive(Debug, serde::Serialize)]
pub struct Table {
    pub report: &'static str,
    pub columns: &'static [&'static str],
    #[serde(skip)]
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Rows as objects keyed by column, for JSON.
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.columns
                        .iter()
                        .zip(r)
                        .map(|(c, v)| (c.to_string(), v.clone()))
                        .collect(),
                )
            })
            .collect();
        json!({"report": self.report, "columns": self.columns, "rows": rows})
    }

    pub fn to_csv(&self) -> Result<String> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(vec![]);
        let cell = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let io = |e: csv::Error| Error::internal(format!("csv: {e}"));
        w.write_record(self.columns).map_err(io)?;
        for r in &self.rows {
            w.write_record(r.iter().map(cell)).map_err(io)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::internal(format!("csv: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::internal(format!("csv: {e}")))
    }
}

/// ISO 8601 in UTC.
fn iso(t: chrono::NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}
fn iso_opt(t: Option<chrono::NaiveDateTime>) -> Value {
    t.map(iso).unwrap_or(Value::Null)
}

fn options(raw: &str) -> Result<ItemOptions> {
    serde_json::from_str(raw).map_err(|e| Error::internal(format!("license options: {e}")))
}

fn expiration(o: &ItemOptions) -> Value {
    o.expiration_time
        .map(|t| iso(t.naive_utc()))
        .unwrap_or(Value::Null)
}

/// license id, item, firm code, product code, state, generation, serial, ticket, options,
/// activated at, created at, customer.
type LicenseLine = (
    i64,
    String,
    i64,
    i64,
    String,
    i32,
    Option<String>,
    String,
    String,
    Option<chrono::NaiveDateTime>,
    chrono::NaiveDateTime,
    String,
);

/// event id, at, actor, interface, action, serial, details.
type EventLine = (
    i64,
    chrono::NaiveDateTime,
    String,
    String,
    String,
    Option<String>,
    String,
);

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
];

fn license_cells(l: LicenseLine) -> Result<Vec<Value>> {
    let o = options(&l.8)?;
    Ok(vec![
        json!(l.0),
        json!(TicketCode::parse(&l.7)?.to_string()),
        json!(l.1),
        json!(l.2),
        json!(l.3),
        json!(l.4),
        json!(l.5),
        json!(l.6),
        json!(o.license_quantity),
        json!(o.feature_map),
        expiration(&o),
        iso_opt(l.9),
        iso(l.10),
        json!(l.11),
    ])
}

macro_rules! license_query {
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
            ))
            .order(licenses::id.asc())
    };
}

/// Runs a report. Vendor roles only.
pub async fn run(core: &Core, actor: &Actor, report: Report) -> Result<Table> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read reports",
    )?;
    read(core, report).await
}

/// Runs a report for the system (scheduled jobs).
pub async fn read(core: &Core, report: Report) -> Result<Table> {
    core.db.read(move |c| build(c, &report)).await
}

fn build(c: &mut Conn, report: &Report) -> Result<Table> {
    let now = super::now();
    Ok(match report {
        Report::ContainerLicenses { serial } => {
            check_id("serial", serial)?;
            let known: i64 = containers::table
                .filter(containers::serial.eq(serial))
                .count()
                .get_result(c)?;
            if known == 0 {
                return Err(Error::not_found("container", serial));
            }
            let rows: Vec<LicenseLine> = license_query!()
                .filter(licenses::serial.eq(serial))
                .load(c)?;
            Table {
                report: "container-licenses",
                columns: LICENSE_COLUMNS,
                rows: rows.into_iter().map(license_cells).collect::<Result<_>>()?,
            }
        }
        Report::TicketLicenses { ticket } => {
            let code = TicketCode::parse(ticket)?;
            let tid: i64 = tickets::table
                .filter(tickets::code.eq(code.as_stored()))
                .select(tickets::id)
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("ticket", &code))?;
            let rows: Vec<LicenseLine> = license_query!()
                .filter(licenses::ticket_id.eq(tid))
                .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
                .load(c)?;
            Table {
                report: "ticket-licenses",
                columns: LICENSE_COLUMNS,
                rows: rows.into_iter().map(license_cells).collect::<Result<_>>()?,
            }
        }
        Report::Expiring { days } => {
            let until = now + chrono::Duration::days(i64::from(*days));
            // The expiration time lives in the license options; licenses without one
            // never expire, so only those naming one are read.
            let rows: Vec<LicenseLine> = license_query!()
                .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
                .filter(licenses::options.like("%\"expiration_time\":\"%"))
                .load(c)?;
            let mut out = vec![];
            for l in rows {
                let o = options(&l.8)?;
                if let Some(t) = o.expiration_time.map(|t| t.naive_utc()) {
                    if t >= now && t <= until {
                        out.push((t, license_cells(l)?));
                    }
                }
            }
            out.sort_by_key(|(t, _)| *t);
            Table {
                report: "expiring",
                columns: LICENSE_COLUMNS,
                rows: out.into_iter().map(|(_, r)| r).collect(),
            }
        }
        Report::NeverActivated => {
            let rows: Vec<LicenseLine> = license_query!()
                .filter(licenses::state.eq(LicenseState::Available.as_str()))
                .filter(licenses::activated_at.is_null())
                .filter(licenses::generation.eq(1))
                .load(c)?;
            Table {
                report: "never-activated",
                columns: LICENSE_COLUMNS,
                rows: rows.into_iter().map(license_cells).collect::<Result<_>>()?,
            }
        }
        Report::CustomerContainers { customer_id } => {
            check_id("customer_id", customer_id)?;
            let cust: i64 = customers::table
                .filter(customers::external_id.eq(customer_id))
                .select(customers::id)
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("customer", customer_id))?;
            let rows: Vec<(String, String, String, chrono::NaiveDateTime)> = containers::table
                .filter(containers::customer_id.eq(cust))
                .select((
                    containers::serial,
                    containers::kind,
                    containers::state,
                    containers::created_at,
                ))
                .order(containers::id.asc())
                .load(c)?;
            let serials: Vec<&String> = rows.iter().map(|r| &r.0).collect();
            let counts: Vec<(Option<String>, i64)> = licenses::table
                .filter(licenses::serial.eq_any(&serials))
                .filter(licenses::state.ne(LicenseState::Deleted.as_str()))
                .group_by(licenses::serial)
                .select((licenses::serial, diesel::dsl::count_star()))
                .load(c)?;
            let counts: HashMap<String, i64> = counts
                .into_iter()
                .filter_map(|(s, n)| s.map(|s| (s, n)))
                .collect();
            let listed: Vec<String> = blacklist::table
                .filter(blacklist::serial.eq_any(&serials))
                .filter(blacklist::removed_at.is_null())
                .select(blacklist::serial)
                .load(c)?;
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
                    .map(|(serial, kind, state, at)| {
                        vec![
                            json!(serial),
                            json!(kind),
                            json!(state),
                            json!(listed.contains(&serial)),
                            json!(counts.get(&serial).copied().unwrap_or(0)),
                            iso(at),
                        ]
                    })
                    .collect(),
            }
        }
        Report::LicenseHistory { license_id } => {
            let known: i64 = licenses::table
                .filter(licenses::id.eq(license_id))
                .count()
                .get_result(c)?;
            if known == 0 {
                return Err(Error::not_found("license", license_id));
            }
            let rows: Vec<EventLine> = events::table
                .filter(events::license_id.eq(license_id))
                .select((
                    events::id,
                    events::at,
                    events::actor,
                    events::interface,
                    events::action,
                    events::serial,
                    events::details,
                ))
                .order(events::id.asc())
                .load(c)?;
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
                    .map(|(id, at, actor, interface, action, serial, details)| {
                        vec![
                            json!(id),
                            iso(at),
                            json!(actor),
                            json!(interface),
                            json!(action),
                            json!(serial),
                            json!(details),
                        ]
                    })
                    .collect(),
            }
        }
        Report::Blacklist => {
            #[allow(clippy::type_complexity)]
            let rows: Vec<(
                String,
                i64,
                String,
                chrono::NaiveDateTime,
                String,
                Option<chrono::NaiveDateTime>,
                Option<chrono::NaiveDateTime>,
                Option<chrono::NaiveDateTime>,
                Option<String>,
                Option<String>,
                Option<i64>,
            )> = blacklist::table
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
                .load(c)?;
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
                            json!(r.0),
                            json!(r.1),
                            json!(r.2),
                            iso(r.3),
                            json!(r.4),
                            iso_opt(r.5),
                            iso_opt(r.6),
                            iso_opt(r.7),
                            json!(r.8),
                            json!(r.9),
                            json!(r.10),
                        ]
                    })
                    .collect(),
            }
        }
        Report::ActivationsPerMonth => {
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
            // The count of a month is spread over shards: add them up.
            let mut months: std::collections::BTreeMap<(i64, String), (i64, i64, u32)> =
                Default::default();
            for (firm_code, month, n, refused, body) in rows {
                let quota = crate::store::settings::parse(body)?.monthly_activation_quota;
                let m = months.entry((firm_code, month)).or_insert((0, 0, quota));
                m.0 += n;
                m.1 += refused;
            }
            let out = months
                .into_iter()
                .map(|((firm_code, month), (n, refused, quota))| {
                    let quota = if quota == 0 {
                        Value::Null
                    } else {
                        json!(quota)
                    };
                    vec![
                        json!(firm_code),
                        json!(month),
                        json!(n),
                        json!(refused),
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
    })
}
