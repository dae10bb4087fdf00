//! A report sent as it is read: the first page (read before the answer starts, so a wrong
//! parameter is still a 400), then each page as the connection takes it, with chunked
//! transfer. The server holds one page at a time however long the report.
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::reports::{self, Reading};
use crate::service::Core;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// From a `format` query parameter (none: JSON).
    pub fn parse(v: Option<&str>) -> Result<Format> {
        match v {
            Some("csv") => Ok(Format::Csv),
            None | Some("json") => Ok(Format::Json),
            Some(other) => Err(Error::invalid(
                "format",
                format!("{other:?}: use csv or json"),
            )),
        }
    }
}

/// The answer of a report opened with `Reading::first`: `first` its first page's rows.
pub fn respond(
    core: web::Data<Core>,
    reading: Reading,
    first: Vec<Vec<Value>>,
    format: Format,
) -> Result<HttpResponse> {
    let columns = reading.columns;
    let head = match format {
        Format::Csv => reports::csv_rows(Some(columns), &first)?,
        Format::Json => {
            let mut h = reports::json_head(reading.name, columns);
            h.extend(reports::json_rows(columns, &first, true));
            h
        }
    };
    let name = reading.name;
    let state = Sending {
        core,
        reading,
        rows_sent: !first.is_empty(),
        done: false,
    };
    let rest = stream::try_unfold(state, move |mut st| async move {
        if st.done {
            return Ok(None);
        }
        let page = st.reading.next(&st.core).await.inspect_err(|e| {
            // The answer has begun: the client sees it cut short; the log says why.
            tracing::error!(report = name, error = %e, "report stopped while being sent");
        })?;
        let Some(rows) = page else {
            st.done = true;
            return Ok(match format {
                Format::Csv => None,
                Format::Json => Some((Bytes::from_static(reports::JSON_TAIL), st)),
            });
        };
        let bytes = match format {
            Format::Csv => reports::csv_rows(None, &rows)?,
            Format::Json => reports::json_rows(columns, &rows, !st.rows_sent),
        };
        st.rows_sent |= !rows.is_empty();
        Ok(Some((Bytes::from(bytes), st)))
    });
    let body = stream::once(async move { Ok::<_, Error>(Bytes::from(head)) }).chain(rest);
    let mut answer = HttpResponse::Ok();
    match format {
        Format::Csv => answer
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.csv\""),
            )),
        Format::Json => answer.content_type("application/json"),
    };
    Ok(answer.streaming(body))
}

/// A report being sent: the pages after the first.
struct Sending {
    core: web::Data<Core>,
    reading: Reading,
    /// Whether a row has been written (JSON: a comma goes before the next).
    rows_sent: bool,
    /// Whether the last page (and JSON's tail) has been written.
    done: bool,
}
