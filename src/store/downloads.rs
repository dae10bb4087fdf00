//! Links to reports too large to mail: stored by the SHA-256 of their token.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::report_downloads;
use super::Conn;
use crate::error::Result;

/// A report a link downloads.
#[derive(Debug, Clone, Queryable)]
pub struct Download {
    pub report: String,
    /// The report's parameters (JSON object of name to text).
    pub params: String,
    /// The time the report was of (the expiring report's window begins there).
    pub report_at: NaiveDateTime,
    /// The rows of the link: column to value (JSON object), all matching.
    pub rows_of: String,
    pub expires_at: NaiveDateTime,
}

pub struct NewDownload<'a> {
    pub token_hash: &'a str,
    pub report: &'a str,
    pub params: &'a str,
    pub report_at: NaiveDateTime,
    pub rows_of: &'a str,
    pub expires_at: NaiveDateTime,
}

pub fn insert(c: &mut Conn, d: &NewDownload, now: NaiveDateTime) -> Result<()> {
    diesel::insert_into(report_downloads::table)
        .values((
            report_downloads::token_hash.eq(d.token_hash),
            report_downloads::report.eq(d.report),
            report_downloads::params.eq(d.params),
            report_downloads::report_at.eq(d.report_at),
            report_downloads::rows_of.eq(d.rows_of),
            report_downloads::created_at.eq(now),
            report_downloads::expires_at.eq(d.expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// The download of a token's hash, expired or not.
pub fn find(c: &mut Conn, token_hash: &str) -> Result<Option<Download>> {
    Ok(report_downloads::table
        .filter(report_downloads::token_hash.eq(token_hash))
        .select((
            report_downloads::report,
            report_downloads::params,
            report_downloads::report_at,
            report_downloads::rows_of,
            report_downloads::expires_at,
        ))
        .first(c)
        .optional()?)
}

/// Forgets links that expired before `before`.
pub fn delete_expired(c: &mut Conn, before: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(report_downloads::table.filter(report_downloads::expires_at.lt(before)))
            .execute(c)?,
    )
}
