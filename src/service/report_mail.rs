//! The reports the scheduled jobs mail (expiring, never activated): one mail per firm code
//! (or per customer) and recipient. The report is read a page at a time and each mail's rows
//! kept as CSV only while they may still fit an attachment; an attachment over 64 KiB goes
//! compressed (gzip), and one that even so exceeds `report_attachment_max_bytes` is not
//! attached: the mail then says how many rows there are and carries a link to download them
//! from the back office, signed in, for `report_link_days` days.
use std::collections::HashMap;
use std::io::Write;

use base64::Engine;
use serde_json::{json, Value};

use super::mail::{self, NewMail};
use super::reports::{self, Params, Reading, Report};
use super::Core;
use crate::domain::{Actor, Interface};
use crate::error::{Error, Result};
use crate::store::downloads::{self, NewDownload};

/// Rows of a mail are kept as CSV up to this many times the largest attachment (CSV
/// compresses about tenfold); past that the mail carries a link. All mails' rows together
/// are held to the same bound.
const CSV_PER_ATTACHED_BYTE: usize = 8;

/// An attachment larger than this goes compressed.
const GZIP_ABOVE: usize = 64 * 1024;

/// One mail's rows: how many, and their CSV while it may still be attached.
struct Group {
    key: Vec<Value>,
    rows: u64,
    csv: Option<Vec<u8>>,
}

fn recipients(core: &Core) -> Vec<String> {
    core.config
        .report_recipients
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Mails license report `report` to the report recipients, one mail per group (firm code,
/// or firm code and customer) and recipient; `extra` goes to the template beside the
/// group's figures.
pub async fn mail_report(
    core: &Core,
    kind: &'static str,
    report: Report,
    per_customer: bool,
    extra: Value,
) -> Result<String> {
    let to = recipients(core);
    let system = Actor::system(Interface::System);
    let (mut reading, first) =
        Reading::first(core, &system, report.clone(), reports::PAGE_ROWS).await?;
    let columns = reading.columns;
    // A customer is its id in its scope: a shop's 1001 and the vendor's 1001 get two mails.
    let keys: &[&str] = if per_customer {
        &["firm_code", "customer_id", "customer_scope"]
    } else {
        &["firm_code"]
    };
    let idx: Vec<usize> = keys
        .iter()
        .filter_map(|k| columns.iter().position(|c| c == k))
        .collect();
    let max = core.config.report_attachment_max_bytes as usize;
    let cap = max.saturating_mul(CSV_PER_ATTACHED_BYTE);
    let mut groups: Vec<Group> = vec![];
    let mut group_of: HashMap<String, usize> = HashMap::new();
    let (mut total, mut buffered) = (0u64, 0usize);
    let mut page = Some(first);
    while let Some(rows) = page {
        let mut new_rows: HashMap<usize, Vec<Vec<Value>>> = HashMap::new();
        for row in rows {
            let key: Vec<Value> = idx.iter().map(|i| row[*i].clone()).collect();
            let g = *group_of
                .entry(Value::Array(key.clone()).to_string())
                .or_insert_with(|| {
                    groups.push(Group {
                        key,
                        rows: 0,
                        csv: Some(vec![]),
                    });
                    groups.len() - 1
                });
            groups[g].rows += 1;
            total += 1;
            if groups[g].csv.is_some() && !to.is_empty() {
                new_rows.entry(g).or_default().push(row);
            }
        }
        for (g, rows) in new_rows {
            let more = reports::csv_rows(None, &rows)?;
            let csv = groups[g].csv.as_mut().expect("kept");
            buffered += more.len();
            csv.extend(more);
            if csv.len() > cap {
                buffered -= csv.len();
                groups[g].csv = None;
            }
        }
        // All mails' rows together: the largest go as links until the rest fit.
        while buffered > cap {
            let Some(g) = groups
                .iter_mut()
                .filter(|g| g.csv.is_some())
                .max_by_key(|g| g.csv.as_ref().map_or(0, Vec::len))
            else {
                break;
            };
            buffered -= g.csv.take().map_or(0, |c| c.len());
        }
        page = reading.next(core).await?;
    }
    if to.is_empty() {
        return Ok(format!("{total} row(s); no report_recipients configured"));
    }
    let (name, query) = report.to_query();
    let now = super::now();
    let link_days = core.config.report_link_days;
    let mut mails = vec![];
    let mut links = vec![];
    let mut linked = 0;
    for g in groups {
        let mut params = extra.clone();
        params["firm_code"] = g.key[0].clone();
        params["customer_id"] = g.key.get(1).cloned().unwrap_or(Value::Null);
        params["customer_scope"] = g.key.get(2).cloned().unwrap_or(Value::Null);
        params["rows"] = json!(g.rows);
        params["columns"] = json!(columns.join(", "));
        params["link"] = Value::Null;
        params["link_days"] = json!(link_days);
        let scope = g
            .key
            .get(2)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let file = match (g.key.get(1).and_then(Value::as_str), scope) {
            (Some(cust), Some(scope)) => format!("{name}-{}-{scope}-{cust}", g.key[0]),
            (Some(cust), None) => format!("{name}-{}-{cust}", g.key[0]),
            _ => format!("{name}-{}", g.key[0]),
        };
        let attachment = match g.csv {
            Some(rows) => attachment(&file, columns, rows, max)?,
            None => None,
        };
        if attachment.is_none() {
            let mut token = [0u8; 32];
            openssl::rand::rand_bytes(&mut token).map_err(|e| Error::internal(e.to_string()))?;
            let token = hex::encode(token);
            let rows_of: serde_json::Map<String, Value> = keys
                .iter()
                .map(|k| k.to_string())
                .zip(g.key.iter().cloned())
                .collect();
            links.push((
                hex::encode(openssl::sha::sha256(token.as_bytes())),
                Value::Object(rows_of).to_string(),
            ));
            params["link"] = json!(format!(
                "{}/admin/downloads/{token}",
                core.config.public_url.trim_end_matches('/')
            ));
            linked += 1;
        }
        mails.push((params, attachment));
    }
    let n = mails.len();
    let report_at = reading.now();
    let query = serde_json::to_string(&query).map_err(|e| Error::internal(e.to_string()))?;
    let expires_at = now + chrono::Duration::days(i64::from(link_days));
    core.db
        .write(move |c| {
            for (hash, rows_of) in &links {
                downloads::insert(
                    c,
                    &NewDownload {
                        token_hash: hash,
                        report: name,
                        params: &query,
                        report_at,
                        rows_of,
                        expires_at,
                    },
                    now,
                )?;
            }
            for (params, attachment) in &mails {
                for r in &to {
                    mail::enqueue(
                        c,
                        NewMail {
                            kind,
                            recipient: r,
                            locale: "en",
                            params: params.clone(),
                            attachment: attachment.clone(),
                        },
                    )?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(format!(
        "{total} row(s) in {n} report(s) queued ({linked} too large to attach: linked)"
    ))
}

/// The attachment of a mail's rows: CSV, compressed (gzip, as base64 text for the outbox)
/// above 64 KiB; none when even compressed it is larger than `max`.
fn attachment(
    file: &str,
    columns: &[&str],
    rows: Vec<u8>,
    max: usize,
) -> Result<Option<(String, String)>> {
    let mut csv = reports::csv_rows(Some(columns), &[])?;
    csv.extend(rows);
    if csv.len() <= GZIP_ABOVE && csv.len() <= max {
        let text = String::from_utf8(csv).map_err(|e| Error::internal(format!("csv: {e}")))?;
        return Ok(Some((format!("{file}.csv"), text)));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv)
        .map_err(|e| Error::internal(format!("gzip: {e}")))?;
    let gz = gz
        .finish()
        .map_err(|e| Error::internal(format!("gzip: {e}")))?;
    Ok((gz.len() <= max).then(|| {
        (
            format!("{file}.csv.gz"),
            base64::engine::general_purpose::STANDARD.encode(gz),
        )
    }))
}

/// A link's report, opened for `actor` as it was when mailed, keeping only the link's rows:
/// its first page.
pub async fn open_download(
    core: &Core,
    actor: &Actor,
    token: &str,
) -> Result<(Reading, Vec<Vec<Value>>)> {
    let unknown = || Error::not_found("report link", "this");
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let hash = hex::encode(openssl::sha::sha256(token.as_bytes()));
    let d = core
        .db
        .read(move |c| downloads::find(c, &hash))
        .await?
        .ok_or_else(unknown)?;
    if d.expires_at <= super::now() {
        return Err(Error::NotAllowed(format!(
            "the link expired at {} UTC; the report is under Reports",
            d.expires_at.format("%Y-%m-%d %H:%M")
        )));
    }
    let bad = |e: serde_json::Error| Error::internal(format!("report link: {e}"));
    let params: Vec<(String, String)> = serde_json::from_str(&d.params).map_err(bad)?;
    let rows_of: serde_json::Map<String, Value> = serde_json::from_str(&d.rows_of).map_err(bad)?;
    let report = Report::parse(&d.report, &Params::from_pairs(params)?)?;
    let (mut reading, first) =
        Reading::first_at(core, actor, report, reports::PAGE_ROWS, d.report_at).await?;
    let keep = rows_of
        .into_iter()
        .map(
            |(k, v)| match reading.columns.iter().position(|c| *c == k) {
                Some(i) => Ok((i, v)),
                None => Err(Error::internal(format!("report link: no column {k}"))),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    let first = reading.keep_only(keep, first);
    Ok((reading, first))
}

/// Forgets report links that expired a day ago or more (housekeeping).
pub fn forget_expired(c: &mut crate::store::Conn, now: chrono::NaiveDateTime) -> Result<usize> {
    downloads::delete_expired(c, now - chrono::Duration::days(1))
}
