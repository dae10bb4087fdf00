//! What an ERP gets back for an order it sent: the ticket and its licenses, as XML or JSON.
use serde_json::json;

use super::definition::BodyFormat;
use super::xml::esc;

/// An order's ticket as a write-back reports it.
pub struct Ticket<'a> {
    /// The ERP's order number.
    pub order_id: &'a str,
    pub customer_id: &'a str,
    pub ticket: &'a str,
    /// Each line's item id and license ids.
    pub lines: Vec<(&'a str, &'a [i64])>,
}

/// The write-back's content type and body.
pub fn body(format: BodyFormat, t: &Ticket) -> (&'static str, String) {
    match format {
        BodyFormat::Json => {
            let licenses: Vec<serde_json::Value> = t
                .lines
                .iter()
                .flat_map(|(item_id, ids)| {
                    ids.iter()
                        .map(move |id| json!({"license_id": id, "item_id": item_id}))
                })
                .collect();
            (
                "application/json",
                json!({"order_id": t.order_id, "customer_id": t.customer_id,
                    "ticket": t.ticket, "licenses": licenses})
                .to_string(),
            )
        }
        BodyFormat::Xml => {
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LicentiaTicket>\
                 <OrderNumber>{}</OrderNumber><SoldTo>{}</SoldTo><Ticket>{}</Ticket><Licenses>",
                esc(t.order_id),
                esc(t.customer_id),
                esc(t.ticket)
            );
            for (item_id, ids) in &t.lines {
                for id in ids.iter() {
                    x.push_str(&format!(
                        "<License id=\"{id}\" material=\"{}\"/>",
                        esc(item_id)
                    ));
                }
            }
            x.push_str("</Licenses></LicentiaTicket>\n");
            ("application/xml", x)
        }
    }
}
