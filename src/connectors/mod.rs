//! Connector kinds as pure parsers: what a shop or an ERP sends is read into orders, its
//! signature checked, and what goes back (a shop's answer, an ERP write-back) written; no
//! database, no network, no files (`service::connectors` places the orders, keeps the log
//! and sends the write-backs; the definitions are loaded from the `connectors/` folder there).
pub mod definition;
pub mod generic;
pub mod idoc;
pub mod shop;
pub mod signature;
pub mod writeback;
pub mod xml;

/// An order as a connector read it, before items are mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The shop's or ERP's order number: the idempotency key. Empty (the GenericConnector's
    /// `orderid=`): a new order every time.
    pub order_id: String,
    /// The sender's number of this very message (an IDoc's DOCNUM): what tells an append of
    /// new lines to an existing order from a resend of the same message.
    pub document: Option<String>,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// Product id or material number, quantity.
    pub lines: Vec<(String, i64)>,
}
