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
//!
//! Here: the reports and their parameters, the table and its CSV and JSON forms; `reading`
//! reads a report a page at a time, `build` reads one page from the database.
mod build;
mod reading;

pub use reading::{Reading, PAGE_ROWS};
use serde_json::{json, Value};

use super::Core;
use crate::domain::{Actor, Role};
use crate::error::{Error, Result};

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
