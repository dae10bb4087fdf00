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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_back_escapes_what_the_erp_sent_and_lists_every_license() {
        let t = Ticket {
            order_id: "4711<&>",
            customer_id: "C\"1",
            ticket: "ABCDE-FGHJK-LMNPQ-RSTUV-WXZ23",
            lines: vec![("SKU-1", &[1, 2]), ("SKU&2", &[3])],
        };
        let (ct, xml) = body(BodyFormat::Xml, &t);
        assert_eq!(ct, "application/xml");
        assert!(
            xml.contains("<OrderNumber>4711&lt;&amp;&gt;</OrderNumber>"),
            "{xml}"
        );
        assert!(xml.contains("<SoldTo>C&quot;1</SoldTo>"), "{xml}");
        assert_eq!(xml.matches("<License ").count(), 3, "{xml}");
        assert!(
            xml.contains("<License id=\"3\" material=\"SKU&amp;2\"/>"),
            "{xml}"
        );
        let (ct, json) = body(BodyFormat::Json, &t);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["order_id"], "4711<&>");
        assert_eq!(
            v["licenses"][2],
            serde_json::json!({"license_id": 3, "item_id": "SKU&2"})
        );
    }
}
