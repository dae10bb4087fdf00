//! The Report service's codec: `RunReport`.
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::connectors::esc;
use crate::service::Core;

/// `RunReport`: a report's columns, rows and CSV (the same as `GET /api/v1/reports/…`).
pub async fn call(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    use crate::service::reports::{self, Report};
    let name = op
        .text_of("Name")
        .ok_or_else(|| Error::invalid("RunReport/Name", "is missing"))?;
    if let Some(d) = op.text_of("Days") {
        d.parse::<i32>()
            .map_err(|_| Error::invalid("RunReport/Days", format!("{d:?} is not an xs:int")))?;
    }
    if let Some(l) = op.text_of("LicenseId") {
        l.parse::<i64>().map_err(|_| {
            Error::invalid("RunReport/LicenseId", format!("{l:?} is not an xs:long"))
        })?;
    }
    let param = |p: &str| -> Option<String> {
        let element = match p {
            "serial" => "Serial",
            "days" => "Days",
            "customer_id" => "CustomerId",
            "ticket" => "Ticket",
            "license_id" => "LicenseId",
            _ => return None,
        };
        op.text_of(element)
    };
    let report = Report::parse(&name, param).map_err(|e| match e {
        Error::Invalid { field, reason } => Error::invalid(format!("RunReport/{field}"), reason),
        other => other,
    })?;
    let table = reports::run(core, actor, report).await?;
    let mut x = format!(
        "<r:RunReportResponse xmlns:r=\"{ns}\"><r:Report>{}</r:Report>",
        esc(table.report)
    );
    for c in table.columns {
        x.push_str(&format!("<r:Column>{}</r:Column>", esc(c)));
    }
    for row in &table.rows {
        x.push_str("<r:Row>");
        for v in row {
            let text = match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            x.push_str(&format!("<r:Value>{}</r:Value>", esc(&text)));
        }
        x.push_str("</r:Row>");
    }
    x.push_str(&format!(
        "<r:Csv>{}</r:Csv></r:RunReportResponse>",
        esc(&table.to_csv()?)
    ));
    Ok(x)
}
