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
}

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
    let table = reports::run(core, actor, report).await?;
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
    };
    encode(&format!("{P}:RunReportResponse"), &out)
}
