//! A report read a page at a time: where each page begins (a key, never an offset), the
//! continuation a client hands back to go on, and the report's time kept for every page.
use serde_json::Value;

use super::build::build;
use super::{require, Report};
use crate::domain::Actor;
use crate::error::{Error, Result};
use crate::service::Core;
use crate::store::reports as store;

/// How long a continuation of a report read in pages serves.
const CONTINUATION_LASTS: chrono::Duration = chrono::Duration::days(7);

/// Rows of a page of the license reports: enough that a page's queries cost little beside
/// its rows, few enough that a page in memory is a few hundred kilobytes.
pub const PAGE_ROWS: i64 = 1000;

/// Where a paged report's next page begins.
#[derive(Debug, Clone)]
pub(super) enum Key {
    /// After this license id.
    License(i64),
    /// The expiring report: after this expiration second and license id.
    Expiry(store::ExpiryKey),
}

impl Key {
    pub(super) fn license(&self) -> i64 {
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
    /// Only the rows whose cells match (column index and value; empty: every row).
    keep: Vec<(usize, Value)>,
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
        let here = crate::service::now();
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

    pub(super) fn start(report: Report, rows_per_page: i64) -> Reading {
        Reading {
            report,
            name: "",
            columns: &[],
            rows_per_page: rows_per_page.max(1),
            now: crate::service::now(),
            next: Some(None),
            keep: vec![],
        }
    }

    /// From here on only the rows whose cells match `keep` (column index and value): of
    /// `first`, the page read already, and of every page after it.
    pub fn keep_only(
        &mut self,
        keep: Vec<(usize, Value)>,
        first: Vec<Vec<Value>>,
    ) -> Vec<Vec<Value>> {
        self.keep = keep;
        self.kept(first)
    }

    fn kept(&self, mut rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
        if !self.keep.is_empty() {
            rows.retain(|r| self.keep.iter().all(|(i, v)| r.get(*i) == Some(v)));
        }
        rows
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
        Ok(Some(self.kept(table.rows)))
    }
}
