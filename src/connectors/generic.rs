//! The GenericConnector: an order as GET query or POST form parameters.
use super::Incoming;
use crate::error::{Error, Result};

/// The GenericConnector's parameters (GET query or POST form).
pub fn read_generic(params: &[(String, String)]) -> Result<(String, String, Incoming)> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.trim().to_string())
    };
    let need = |k: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::invalid(k, "is missing"))
    };
    let user = need("user")?;
    let password = get("password").unwrap_or_default();
    let count: usize = need("item_count")?
        .parse()
        .map_err(|_| Error::invalid("item_count", "must be a whole number"))?;
    if !(1..=crate::domain::MAX_LINES).contains(&count) {
        return Err(Error::invalid(
            "item_count",
            format!("between 1 and {}", crate::domain::MAX_LINES),
        ));
    }
    let mut lines = vec![];
    for i in 1..=count {
        let id = need(&format!("item{i}_id"))?;
        let q = format!("item{i}_quantity");
        let quantity = match get(&q) {
            None => 1,
            Some(v) => v
                .parse()
                .map_err(|_| Error::invalid(q.clone(), format!("{v:?} is not a whole number")))?,
        };
        lines.push((id, quantity));
    }
    let incoming = Incoming {
        // License Central's call sends `orderid=` empty for a new order each time.
        order_id: get("orderid").unwrap_or_default(),
        document: None,
        customer_id: need("customerid")?,
        customer_name: get("customer_name").filter(|v| !v.is_empty()),
        customer_email: get("customer_email").filter(|v| !v.is_empty()),
        lines,
    };
    Ok((user, password, incoming))
}
