//! What each container request (by its nonce) was used for: a request is signed but says
//! nothing of its purpose, so the server remembers it.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::request_uses;
use super::Conn;
use crate::error::Result;
use crate::on_backend;

/// Records that the container's request `nonce` is used for `operation`, unless it was used
/// before; then the operation it was first used for.
pub fn use_for(
    c: &mut Conn,
    container_id: i64,
    nonce: &str,
    operation: &str,
    now: NaiveDateTime,
) -> Result<Option<String>> {
    let first = on_backend!(c, x => diesel::insert_into(request_uses::table)
        .values((
            request_uses::container_id.eq(container_id),
            request_uses::nonce.eq(nonce),
            request_uses::operation.eq(operation),
            request_uses::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(x))?
        == 1;
    if first {
        return Ok(None);
    }
    Ok(Some(on_backend!(c, x => request_uses::table
        .find((container_id, nonce))
        .select(request_uses::operation)
        .first(x))?))
}
