//! The Report service's codec (`xsd/licentia-report-v1.xsd`): `RunReport`. Request and
//! response are the XSD's elements as types, (de)serialised with yaserde; typed values are
//! read by `codec` (see there for why).
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{decode, encode, opt, Text};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::reports::{self, Report};
use crate::service::Core;

/// The prefix the types below give the service's namespace.
const P: &str = "r";

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "RunReport", prefix = "r", namespaces = {"r" = "http://licentia.dev/ns/report/v1"})]
struct RunReport {
    #[yaserde(prefix = "r", rename = "Name")]
    name: String,
    #[yaserde(prefix = "r", rename = "Serial")]
    serial: Option<String>,
    #[yaserde(prefix = "r", rename = "Days")]
    days: Option<String>,
    #[yaserde(prefix = "r", rename = "CustomerId")]
    customer_id: Option<String>,
    #[yaserde(prefix = "r", rename = "Scope")]
    scope: Option<String>,
    #[yaserde(prefix = "r", rename = "Ticket")]
    ticket: Option<String>,
    #[yaserde(prefix = "r", rename = "LicenseId")]
    license_id: Option<String>,
    #[yaserde(prefix = "r", rename = "PageSize")]
    page_size: Option<String>,
    #[yaserde(prefix = "r", rename = "After")]
    after: Option<String>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "RunReportResponse", prefix = "r", namespaces = {"r" = "http://licentia.dev/ns/report/v1"})]
struct RunReportResponse {
    #[yaserde(prefix = "r", rename = "Report")]
    report: Text,
    #[yaserde(prefix = "r", rename = "Column")]
    column: Vec<Text>,
    #[yaserde(prefix = "r", rename = "Row")]
    row: Vec<Row>,
    /// The same rows as CSV (RFC 4180, header row, ISO 8601 UTC times).
    #[yaserde(prefix = "r", rename = "Csv")]
    csv: Text,
    /// Where the next page begins (pass it as `After`); absent on the last page.
    #[yaserde(prefix = "r", rename = "Next")]
    next: Option<Text>,
}

/// The most rows one answer carries: a longer report is read in pages (`PageSize`, `After`).
const MAX_ROWS: usize = 10_000;

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Row", prefix = "r", namespaces = {"r" = "http://licentia.dev/ns/report/v1"})]
struct Row {
    /// One per column, in the columns' order; empty for no value.
    #[yaserde(prefix = "r", rename = "Value")]
    value: Vec<Text>,
}

/// `RunReport`: a report's columns, rows and CSV (the same as `GET /api/v1/reports/…`).
pub async fn call(core: &Core, actor: &Actor, op: &El) -> Result<String, Error> {
    let r: RunReport = decode(P, op)?;
    let name =
        opt(&Some(r.name.clone())).ok_or_else(|| Error::invalid("RunReport/Name", "is missing"))?;
    if let Some(d) = opt(&r.days) {
        d.parse::<i32>()
            .map_err(|_| Error::invalid("RunReport/Days", format!("{d:?} is not an xs:int")))?;
    }
    if let Some(l) = opt(&r.license_id) {
        l.parse::<i64>().map_err(|_| {
            Error::invalid("RunReport/LicenseId", format!("{l:?} is not an xs:long"))
        })?;
    }
    let params = reports::Params {
        serial: opt(&r.serial),
        days: opt(&r.days),
        customer_id: opt(&r.customer_id),
        scope: opt(&r.scope),
        ticket: opt(&r.ticket),
        license_id: opt(&r.license_id),
    };
    let report = Report::parse(&name, &params).map_err(|e| match e {
        Error::Invalid { field, reason } => Error::invalid(format!("RunReport/{field}"), reason),
        other => other,
    })?;
    let page_size = match opt(&r.page_size) {
        None => None,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if (1..=MAX_ROWS).contains(&n) => Some(n),
            _ => {
                return Err(Error::invalid(
                    "RunReport/PageSize",
                    format!("{p:?} is not a number of rows between 1 and {MAX_ROWS}"),
                ))
            }
        },
    };
    let rows_per_page = page_size.unwrap_or(MAX_ROWS) as i64;
    let (mut reading, mut rows) = match (opt(&r.after), page_size) {
        (None, _) => reports::Reading::first(core, actor, report, rows_per_page).await?,
        (Some(after), Some(_)) => {
            reports::Reading::resume(core, actor, report, &after, rows_per_page)
                .await
                .map_err(|e| match e {
                    Error::Invalid { field, reason } if field == "after" => {
                        Error::invalid("RunReport/After", reason)
                    }
                    other => other,
                })?
        }
        (Some(_), None) => {
            return Err(Error::invalid(
                "RunReport/After",
                "continues a report read in pages: give PageSize too",
            ))
        }
    };
    let next = match page_size {
        Some(_) => reading.continuation(),
        // The whole report in one answer, as long as it fits.
        None => {
            while let Some(more) = reading.next(core).await? {
                rows.extend(more);
                if rows.len() > MAX_ROWS {
                    return Err(Error::invalid(
                        "RunReport/PageSize",
                        format!(
                            "the {} report has more than {MAX_ROWS} rows: read it in pages \
                             (PageSize, then each answer's Next as After)",
                            reading.name
                        ),
                    ));
                }
            }
            None
        }
    };
    let table = reports::Table {
        report: reading.name,
        columns: reading.columns,
        rows,
    };
    let out = RunReportResponse {
        report: table.report.into(),
        column: table.columns.iter().map(|c| Text::from(*c)).collect(),
        row: table
            .rows
            .iter()
            .map(|row| Row {
                value: row
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::Null => Text::default(),
                        serde_json::Value::String(s) => s.into(),
                        other => other.to_string().into(),
                    })
                    .collect(),
            })
            .collect(),
        csv: table.to_csv()?.into(),
        next: next.map(Into::into),
    };
    encode(&format!("{P}:RunReportResponse"), &out)
}
