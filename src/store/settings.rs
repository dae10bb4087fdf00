//! The vendor's global settings, one JSON document per firm (none stored: the defaults).
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::settings;
use super::Conn;
use crate::domain::Settings;
use crate::error::{Error, Result};

pub fn load(c: &mut Conn, firm_id: i64) -> Result<Settings> {
    let body = settings::table
        .filter(settings::firm_id.eq(firm_id))
        .select(settings::body)
        .first::<String>(c)
        .optional()?;
    parse(body)
}

/// Stores the firm's settings (`body`, JSON of `Settings`) as their next version (the
/// first, if the firm had none).
pub fn save(c: &mut Conn, firm_id: i64, body: &str, now: NaiveDateTime) -> Result<()> {
    let n = diesel::update(settings::table.filter(settings::firm_id.eq(firm_id)))
        .set((
            settings::body.eq(body),
            settings::version.eq(settings::version + 1),
            settings::updated_at.eq(now),
        ))
        .execute(c)?;
    if n == 0 {
        diesel::insert_into(settings::table)
            .values((
                settings::firm_id.eq(firm_id),
                settings::body.eq(body),
                settings::version.eq(1),
                settings::updated_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

pub fn parse(body: Option<String>) -> Result<Settings> {
    match body {
        Some(b) => serde_json::from_str(&b).map_err(|e| Error::internal(format!("settings: {e}"))),
        None => Ok(Settings::default()),
    }
}
