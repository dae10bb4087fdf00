//! Inserts of a row whose key a person or a client chose (a user name, an item id, a
//! WS-Security nonce): a row with that key already there is an answer, not a failure, and
//! the service decides what it means (already exists, a replayed request).
use super::is_unique_violation;
use crate::error::Result;

/// The outcome of such an insert: `None` if a row with the same key is there already.
pub fn unique_or_none<T>(r: diesel::QueryResult<T>) -> Result<Option<T>> {
    match r {
        Err(e) if is_unique_violation(&e) => Ok(None),
        r => Ok(Some(r?)),
    }
}
