//! The vendor's global settings, one JSON document per firm (none stored: the defaults).
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

pub fn parse(body: Option<String>) -> Result<Settings> {
    match body {
        Some(b) => serde_json::from_str(&b).map_err(|e| Error::internal(format!("settings: {e}"))),
        None => Ok(Settings::default()),
    }
}
