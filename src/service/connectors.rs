//! Connectors: shops and ERPs send orders to `/connect/<name>`; each connector is defined by
//! a TOML file in `connectors/` (checked at start). An order from a connector becomes a
//! ticket through the same `create_order` as the JSON API, so the same notification twice
//! is one order. Every notification is recorded with its outcome; an ERP connector may post
//! the ticket back through a durable queue.
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use diesel::prelude::*;
use quick_xml::events::Event as XmlEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::catalog::CustomerData;
use super::orders::{self, NewOrder, OrderLine, OrderView};
use super::queue;
use super::workers::{Next, Stopping, Worker};
use super::Core;
use crate::domain::{check_id, Actor, Role};
use crate::error::{Error, Result};
use crate::store::schema::{notifications, writebacks};
use crate::store::{is_unique_violation, Conn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The GenericConnector: `user`, `password`, `orderid`, `customerid`, `item_count`,
    /// `item1_id`, `item1_quantity` … as GET or POST parameters.
    Generic,
    /// SAP ORDERS05 IDoc XML over HTTP.
    Idoc,
    /// A web shop's order notification (JSON or form), mapped by the definition's `[shop]`.
    Shop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Xml,
    Json,
}

/// Where an ERP wants the ticket posted back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBack {
    pub url: String,
    #[serde(default = "xml")]
    pub format: BodyFormat,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
}

fn xml() -> BodyFormat {
    BodyFormat::Xml
}

/// A connector definition (`connectors/<name>.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(skip)]
    pub name: String,
    pub kind: Kind,
    /// What the connector is, for people.
    #[serde(default)]
    pub description: String,
    /// The order source its orders are recorded under (default: the connector's name).
    #[serde(default)]
    pub source: String,
    /// The shop's product id or the ERP's material number → our item id. Ids not listed
    /// are taken as item ids.
    #[serde(default)]
    pub items: BTreeMap<String, String>,
    pub writeback: Option<WriteBack>,
    pub shop: Option<Shop>,
    /// Why the connector refuses everything (not set up), if it does.
    #[serde(skip)]
    pub off: Option<String>,
}

/// How a shop's notification is read, checked and answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shop {
    /// `json` or `form`.
    pub format: ShopFormat,
    /// Path to a list of notifications in one body (FastSpring sends several events).
    #[serde(default)]
    pub orders: Option<String>,
    /// Only notifications whose `event` path has one of `events` place orders; the rest
    /// are acknowledged and recorded as ignored.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    /// Further conditions, path → accepted values (Paddle: only first purchases, not
    /// subscription renewals); the rest are acknowledged and recorded as ignored.
    #[serde(default)]
    pub only: BTreeMap<String, Vec<String>>,
    pub order_id: String,
    pub customer_id: String,
    #[serde(default)]
    pub customer_email: Option<String>,
    /// Paths joined with a space (first and last name).
    #[serde(default)]
    pub customer_name: Vec<String>,
    /// Path to the list of items (or to one item); without it `item_product` and
    /// `item_quantity` are parallel lists (form fields like `IPN_PID[]`).
    #[serde(default)]
    pub items: Option<String>,
    pub item_product: String,
    #[serde(default)]
    pub item_quantity: Option<String>,
    pub auth: ShopAuth,
    /// What the shop expects back: `json` (order ids and tickets), `text` (the tickets, a
    /// line each, for the buyer), `2checkout` (the IPN read receipt).
    pub reply: ShopReply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopFormat {
    Json,
    Form,
    /// Elements become fields, repeated elements lists, attributes `@name` fields (and an
    /// element's text beside attributes `#text`).
    Xml,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopAuth {
    /// `hmac-sha256-base64` or `hmac-sha256-hex` of the body in `header`; `paddle`
    /// (`ts=…;h1=…`, HMAC-SHA256 of `ts:body`); `2checkout` (the IPN's HASH field,
    /// HMAC-MD5 over every field's byte length and value).
    pub scheme: AuthScheme,
    #[serde(default)]
    pub header: String,
    /// The shared secret; better `secret_env`, the name of an environment variable that
    /// holds it. A connector without one (or with a `change-me` placeholder) is off.
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub secret_env: String,
    /// For `paddle`: how old a signature's timestamp may be.
    #[serde(default = "five_minutes")]
    pub max_age_secs: i64,
}

fn five_minutes() -> i64 {
    300
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    HmacSha256Base64,
    HmacSha256Hex,
    Paddle,
    #[serde(rename = "2checkout")]
    TwoCheckout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopReply {
    Json,
    Text,
    #[serde(rename = "2checkout")]
    TwoCheckout,
}

/// The connectors of this server, by name.
#[derive(Debug, Default)]
pub struct Connectors(pub BTreeMap<String, Definition>);

impl Connectors {
    /// Reads every `*.toml` in `dir` (none if it does not exist). A bad definition stops
    /// the start with a message naming the file and the field.
    pub fn load(dir: &str) -> Result<Connectors> {
        let mut out = BTreeMap::new();
        let path = Path::new(dir);
        if dir.is_empty() || !path.is_dir() {
            return Ok(Connectors(out));
        }
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| Error::invalid("connectors_dir", format!("{dir}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let bad = |field: &str, why: String| {
                Error::invalid(
                    "connectors_dir",
                    format!("{}: {field}: {why}", file.display()),
                )
            };
            check_id("connector name", &name).map_err(|e| bad("file name", e.to_string()))?;
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    "file name",
                    "letters, digits, - and _ only (it is the URL /connect/<name>)".into(),
                ));
            }
            let text = std::fs::read_to_string(&file).map_err(|e| bad("file", e.to_string()))?;
            let mut def: Definition = toml::from_str(&text).map_err(|e| {
                let field = e
                    .span()
                    .map(|s| format!("at byte {}", s.start))
                    .unwrap_or_else(|| "definition".into());
                bad(&field, e.message().to_string())
            })?;
            def.name = name.clone();
            if def.source.is_empty() {
                def.source = name.clone();
            }
            check_id("source", &def.source).map_err(|e| bad("source", e.to_string()))?;
            for (from, to) in &def.items {
                check_id("items", from).map_err(|e| bad("items", e.to_string()))?;
                check_id("items", to).map_err(|e| bad(&format!("items.{from}"), e.to_string()))?;
            }
            match (def.kind, &def.shop) {
                (Kind::Shop, None) => {
                    return Err(bad("shop", "a shop connector needs [shop]".into()))
                }
                (Kind::Shop, Some(_)) => {
                    let shop = def.shop.as_mut().expect("matched");
                    if !shop.auth.secret_env.is_empty() {
                        if let Ok(v) = std::env::var(&shop.auth.secret_env) {
                            shop.auth.secret = v;
                        }
                    }
                    if shop.auth.secret.is_empty() || shop.auth.secret.contains("change-me") {
                        let why = if shop.auth.secret_env.is_empty() {
                            "shop.auth.secret is not set".to_string()
                        } else {
                            format!(
                                "the environment variable {} is not set",
                                shop.auth.secret_env
                            )
                        };
                        tracing::warn!(connector = %name, %why, "connector off");
                        def.off = Some(why);
                    } else if shop.auth.secret.len() < 8 {
                        return Err(bad("shop.auth.secret", "at least 8 characters".into()));
                    }
                    if shop.auth.max_age_secs < 1 {
                        return Err(bad("shop.auth.max_age_secs", "at least 1".into()));
                    }
                    let shop = def.shop.as_ref().expect("matched");
                    if matches!(
                        shop.auth.scheme,
                        AuthScheme::HmacSha256Base64
                            | AuthScheme::HmacSha256Hex
                            | AuthScheme::Paddle
                    ) && shop.auth.header.is_empty()
                    {
                        return Err(bad(
                            "shop.auth.header",
                            "name the signature's header".into(),
                        ));
                    }
                    if (shop.auth.scheme == AuthScheme::TwoCheckout)
                        != (shop.format == ShopFormat::Form)
                    {
                        return Err(bad(
                            "shop.auth.scheme",
                            "2checkout goes with format = \"form\" and only with it".into(),
                        ));
                    }
                    if shop.items.is_some() == (shop.format == ShopFormat::Form)
                        && shop.items.is_some()
                    {
                        return Err(bad(
                            "shop.items",
                            "form notifications carry parallel item fields; leave items out".into(),
                        ));
                    }
                }
                (_, Some(_)) => {
                    return Err(bad("shop", "only kind = \"shop\" takes [shop]".into()))
                }
                _ => {}
            }
            if let Some(w) = &def.writeback {
                if def.kind != Kind::Idoc {
                    return Err(bad(
                        "writeback",
                        "only ERP (idoc) connectors post back".into(),
                    ));
                }
                if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                    return Err(bad(
                        "writeback.url",
                        format!("{:?} is not an http(s) URL", w.url),
                    ));
                }
            }
            out.insert(name, def);
        }
        Ok(Connectors(out))
    }

    pub fn get(&self, name: &str) -> Result<&Definition> {
        let def = self
            .0
            .get(name)
            .ok_or_else(|| Error::not_found("connector", name))?;
        match &def.off {
            Some(why) => Err(Error::NotAllowed(format!(
                "connector {name} is not set up: {why}"
            ))),
            None => Ok(def),
        }
    }
}

/// An order as a connector read it, before items are mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The shop's or ERP's order number: the idempotency key.
    pub order_id: String,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// Product id or material number, quantity.
    pub lines: Vec<(String, i64)>,
}

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
        order_id: need("orderid")?,
        customer_id: need("customerid")?,
        customer_name: get("customer_name").filter(|v| !v.is_empty()),
        customer_email: get("customer_email").filter(|v| !v.is_empty()),
        lines,
    };
    Ok((user, password, incoming))
}

/// The five predefined entities and character references (`&#38;`, `&#x26;`); any other
/// entity is refused (nothing declares one: DOCTYPE is refused).
pub(crate) fn resolve_ref(r: &quick_xml::events::BytesRef) -> std::result::Result<char, String> {
    let name = r.decode().map_err(|e| format!("entity: {e}"))?;
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()
            }
            Some(_) => None,
            None if number.bytes().all(|b| b.is_ascii_digit()) => number.parse().ok(),
            None => None,
        };
        return match code.and_then(char::from_u32) {
            Some(c) => xml_text(&c.to_string()).map(|_| c),
            None => Err(format!("&{name}; is not a character")),
        };
    }
    match name.as_ref() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(format!("the entity &{other}; is not accepted")),
    }
}

/// Text as XML 1.0 allows it: no control character but tab, line feed and carriage return,
/// and neither U+FFFE nor U+FFFF (written raw or as a character reference).
pub(crate) fn xml_text(s: &str) -> std::result::Result<&str, String> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    match s.chars().find(|c| !allowed(*c)) {
        None => Ok(s),
        Some(c) => Err(format!(
            "the character U+{:04X} is not allowed in XML",
            c as u32
        )),
    }
}

/// An item segment being read: its quantity and its (qualifier, material number)s.
type ItemSegment = (Option<String>, Vec<(String, String)>);

/// Reads a SAP ORDERS05 IDoc: the order number from the header segment (E1EDK01-BELNR, or
/// E1EDK02 with qualifier 001), the sold-to party from the partner segment with function
/// AG (E1EDKA1-PARTN, NAME1), and from each item segment (E1EDP01) the quantity (MENGE)
/// and the material (E1EDP19-IDTNR, the vendor's number with qualifier 002 before the
/// customer's, 001). DOCTYPE and entity declarations are refused; depth is bounded.
pub fn read_idoc(body: &[u8]) -> Result<Incoming> {
    let bad = |why: String| Error::invalid("idoc", why);
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut path: Vec<String> = vec![];
    let mut buf = vec![];
    let (mut belnr, mut po, mut sold_to, mut name) = (None, None, None, None);
    // Per segment instance: the fields read so far.
    let mut k02: (Option<String>, Option<String>) = (None, None);
    let mut ka1: (Option<String>, Option<String>, Option<String>) = (None, None, None);
    let mut item: Option<ItemSegment> = None;
    let mut p19: (Option<String>, Option<String>) = (None, None);
    let mut lines = vec![];
    let mut seen_root = false;
    let mut text = String::new();
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            bad(format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        match ev {
            XmlEvent::DocType(_) => {
                return Err(bad(
                    "a DOCTYPE (and entity declarations) is not accepted".into()
                ))
            }
            XmlEvent::Start(e) => {
                text.clear();
                let tag = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                if path.is_empty() {
                    if seen_root {
                        return Err(bad("more than one root element".into()));
                    }
                    seen_root = true;
                    if !tag.starts_with("ORDERS05") {
                        return Err(bad(format!("the root element is {tag}, not ORDERS05")));
                    }
                }
                path.push(tag.clone());
                if path.len() > 16 {
                    return Err(bad("nested deeper than 16 elements".into()));
                }
                match tag.as_str() {
                    "E1EDK02" => k02 = (None, None),
                    "E1EDKA1" => ka1 = (None, None, None),
                    "E1EDP01" => item = Some((None, vec![])),
                    "E1EDP19" => p19 = (None, None),
                    _ => {}
                }
            }
            XmlEvent::End(_) => {
                let value = std::mem::take(&mut text).trim().to_string();
                let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
                let field = path.last().map(String::as_str);
                match (parent, field) {
                    (Some("E1EDK01"), Some("BELNR")) => belnr = Some(value),
                    (Some("E1EDK02"), Some("QUALF")) => k02.0 = Some(value),
                    (Some("E1EDK02"), Some("BELNR")) => k02.1 = Some(value),
                    (Some("E1EDKA1"), Some("PARVW")) => ka1.0 = Some(value),
                    (Some("E1EDKA1"), Some("PARTN")) => ka1.1 = Some(value),
                    (Some("E1EDKA1"), Some("NAME1")) => ka1.2 = Some(value),
                    (Some("E1EDP01"), Some("MENGE")) => {
                        if let Some(it) = item.as_mut() {
                            it.0 = Some(value)
                        }
                    }
                    (Some("E1EDP19"), Some("QUALF")) => p19.0 = Some(value),
                    (Some("E1EDP19"), Some("IDTNR")) => p19.1 = Some(value),
                    _ => {}
                }
                let tag = path.pop().unwrap_or_default();
                match tag.as_str() {
                    "E1EDK02" if k02.0.as_deref() == Some("001") => po = k02.1.take(),
                    "E1EDKA1" if ka1.0.as_deref() == Some("AG") => {
                        sold_to = ka1.1.take();
                        name = ka1.2.take();
                    }
                    "E1EDP19" => {
                        if let (Some(q), Some(id), Some(it)) =
                            (p19.0.take(), p19.1.take(), item.as_mut())
                        {
                            it.1.push((q, id));
                        }
                    }
                    "E1EDP01" => {
                        let (menge, ids) = item.take().unwrap_or_default();
                        let material = ids
                            .iter()
                            .find(|(q, _)| q == "002")
                            .or_else(|| ids.iter().find(|(q, _)| q == "001"))
                            .map(|(_, id)| id.clone())
                            .ok_or_else(|| {
                                bad(format!(
                                    "item {} has no material number (E1EDP19 IDTNR)",
                                    lines.len() + 1
                                ))
                            })?;
                        let menge = menge.ok_or_else(|| {
                            bad(format!("item {material} has no quantity (MENGE)"))
                        })?;
                        let q: f64 = menge.trim().parse().map_err(|_| {
                            bad(format!(
                                "item {material}: quantity {menge:?} is not a number"
                            ))
                        })?;
                        if q.fract() != 0.0 || q < 1.0 || q > crate::domain::MAX_QUANTITY as f64 {
                            return Err(bad(format!(
                                "item {material}: quantity {menge:?} must be a whole number \
                                 from 1 to {}",
                                crate::domain::MAX_QUANTITY
                            )));
                        }
                        lines.push((material, q as i64));
                    }
                    _ => {}
                }
            }
            XmlEvent::Text(t) => {
                let t = t.decode().map_err(|e| bad(format!("text: {e}")))?;
                text.push_str(xml_text(&t).map_err(bad)?);
            }
            XmlEvent::CData(t) => {
                let t = t.decode().map_err(|e| bad(format!("CDATA: {e}")))?;
                text.push_str(xml_text(&t).map_err(bad)?);
            }
            XmlEvent::GeneralRef(r) => text.push(resolve_ref(&r).map_err(bad)?),
            XmlEvent::Eof => {
                if let Some(open) = path.last() {
                    return Err(bad(format!(
                        "not well-formed XML: <{open}> is not closed at the end"
                    )));
                }
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(bad("the body holds no ORDERS05 document".into()));
    }
    let order_id = belnr
        .or(po)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no order number (E1EDK01 BELNR or E1EDK02 QUALF 001)".into()))?;
    let customer_id = sold_to
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no sold-to party (E1EDKA1 with PARVW AG)".into()))?;
    if lines.is_empty() {
        return Err(bad("no items (E1EDP01)".into()));
    }
    Ok(Incoming {
        order_id,
        customer_id,
        customer_name: name,
        customer_email: None,
        lines,
    })
}

pub mod outcome {
    pub const RECEIVED: &str = "received";
    pub const ORDER_CREATED: &str = "order_created";
    /// The same notification again: the order it made first is the answer.
    pub const DUPLICATE: &str = "duplicate";
    pub const REJECTED: &str = "rejected";
    /// An event of the shop that places no order (a refund, a subscription update …).
    pub const IGNORED: &str = "ignored";
}

/// Turns a notification into an order: recorded as received, then the order, then the
/// outcome. The order's (source, order id) makes a repeated notification the same order.
pub async fn place(
    core: &Core,
    def: &Definition,
    actor: &Actor,
    incoming: Incoming,
    body: &[u8],
) -> Result<OrderView> {
    let note = record(core, &def.name, &incoming.order_id, body).await?;
    let result = place_order(core, def, actor, &incoming).await;
    let (state, detail, ticket) = match &result {
        Ok(v) if v.created => (
            outcome::ORDER_CREATED,
            format!("order {}", v.order_id),
            Some(v.ticket.clone()),
        ),
        Ok(v) => (
            outcome::DUPLICATE,
            format!("order {}", v.order_id),
            Some(v.ticket.clone()),
        ),
        Err(e) => (
            outcome::REJECTED,
            format!("{}: {}", e.code(), e.public_message()),
            None,
        ),
    };
    set_outcome(core, note, state, detail, ticket).await?;
    result
}

/// Records a notification that was refused before it could become an order.
pub async fn reject(
    core: &Core,
    connector: &str,
    reference: &str,
    body: &[u8],
    why: &Error,
) -> Result<()> {
    let id = record(core, connector, reference, body).await?;
    let detail = format!("{}: {}", why.code(), why.public_message());
    set_outcome(core, id, outcome::REJECTED, detail, None).await
}

/// Writes what became of a recorded notification.
async fn set_outcome(
    core: &Core,
    id: i64,
    state: &'static str,
    detail: String,
    ticket: Option<String>,
) -> Result<()> {
    core.db
        .write(move |c| {
            diesel::update(notifications::table.filter(notifications::id.eq(id)))
                .set((
                    notifications::outcome.eq(state),
                    notifications::detail.eq(&detail),
                    notifications::ticket.eq(&ticket),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
}

async fn record(core: &Core, connector: &str, reference: &str, body: &[u8]) -> Result<i64> {
    let (connector, reference) = (connector.to_string(), reference.to_string());
    let body = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_string();
    core.db
        .write(move |c| {
            Ok(diesel::insert_into(notifications::table)
                .values((
                    notifications::connector.eq(&connector),
                    notifications::reference.eq(&reference),
                    notifications::received_at.eq(super::now()),
                    notifications::outcome.eq(outcome::RECEIVED),
                    notifications::detail.eq(""),
                    notifications::body.eq(&body),
                ))
                .returning(notifications::id)
                .get_result(c)?)
        })
        .await
}

async fn place_order(
    core: &Core,
    def: &Definition,
    actor: &Actor,
    incoming: &Incoming,
) -> Result<OrderView> {
    let lines = incoming
        .lines
        .iter()
        .map(|(id, q)| OrderLine {
            item_id: def.items.get(id).cloned().unwrap_or_else(|| id.clone()),
            quantity: *q,
        })
        .collect();
    let req = NewOrder {
        source: def.source.clone(),
        erp_order_id: Some(incoming.order_id.clone()),
        customer: CustomerData {
            external_id: incoming.customer_id.clone(),
            name: incoming.customer_name.clone(),
            email: incoming.customer_email.clone(),
            locale: None,
        },
        comment: format!("via connector {}", def.name),
        lines,
    };
    let writeback = def.writeback.clone().map(|w| (def.name.clone(), w));
    orders::create_order_then(core, actor, req, move |c, view| match &writeback {
        Some((name, w)) => queue_writeback(c, name, w, view),
        None => Ok(()),
    })
    .await
}

/// Queues the write-back of a new order's ticket (in the order's transaction).
fn queue_writeback(c: &mut Conn, connector: &str, w: &WriteBack, v: &OrderView) -> Result<()> {
    let licenses: Vec<serde_json::Value> = v
        .lines
        .iter()
        .flat_map(|l| {
            l.licenses
                .iter()
                .map(move |id| json!({"license_id": id, "item_id": l.item_id}))
        })
        .collect();
    let (content_type, body) = match w.format {
        BodyFormat::Json => (
            "application/json",
            json!({"order_id": v.erp_order_id, "customer_id": v.customer_id,
                "ticket": v.ticket, "licenses": licenses})
            .to_string(),
        ),
        BodyFormat::Xml => {
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LicentiaTicket>\
                 <OrderNumber>{}</OrderNumber><SoldTo>{}</SoldTo><Ticket>{}</Ticket><Licenses>",
                esc(&v.erp_order_id),
                esc(&v.customer_id),
                esc(&v.ticket)
            );
            for l in &v.lines {
                for id in &l.licenses {
                    x.push_str(&format!(
                        "<License id=\"{id}\" material=\"{}\"/>",
                        esc(&l.item_id)
                    ));
                }
            }
            x.push_str("</Licenses></LicentiaTicket>\n");
            ("application/xml", x)
        }
    };
    // Due at once on the clock the senders reckon with (see `queue`).
    let now = crate::store::db_now(c)?;
    let res = diesel::insert_into(writebacks::table)
        .values((
            writebacks::connector.eq(connector),
            writebacks::order_id.eq(v.order_id),
            writebacks::url.eq(&w.url),
            writebacks::content_type.eq(content_type),
            writebacks::body.eq(&body),
            writebacks::state.eq(wb::QUEUED),
            writebacks::attempts.eq(0),
            writebacks::next_attempt_at.eq(now),
            writebacks::last_error.eq(""),
            writebacks::created_at.eq(now),
        ))
        .execute(c);
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::Retry),
        r => r.map(|_| ()).map_err(Error::from),
    }
}

/// XML text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Write-back states.
pub use super::queue::state as wb;

#[derive(Queryable)]
struct Due {
    id: i64,
    connector: String,
    url: String,
    content_type: String,
    body: String,
    attempts: i32,
}

/// Posts the write-backs that are due (at most one batch); each is claimed by one node (as
/// mails are). Once `stop` is set no further write-back is claimed.
pub async fn post_due(core: &Core, defs: &Connectors, stop: &Stopping) -> Result<usize> {
    let due = core.db.read(|c| queue::writebacks::due(c, 32)).await?;
    let mut tried = 0;
    for id in due {
        if stop.is_set() {
            break;
        }
        let node = core.node.clone();
        let claimed: Option<Due> = core
            .db
            .write(move |c| {
                if !queue::writebacks::claim(c, id, &node)? {
                    return Ok(None);
                }
                Ok(Some(
                    writebacks::table
                        .filter(writebacks::id.eq(id))
                        .select((
                            writebacks::id,
                            writebacks::connector,
                            writebacks::url,
                            writebacks::content_type,
                            writebacks::body,
                            writebacks::attempts,
                        ))
                        .first(c)?,
                ))
            })
            .await?;
        let Some(d) = claimed else { continue };
        tried += 1;
        let auth = defs
            .0
            .get(&d.connector)
            .and_then(|def| def.writeback.as_ref())
            .filter(|w| !w.user.is_empty())
            .map(|w| {
                use base64::Engine;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", w.user, w.password))
                )
            });
        let (url, ct, body) = (d.url.clone(), d.content_type.clone(), d.body.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            // Redirects are not followed: a redirected POST comes back as a GET without the
            // ticket (a logon page, say), and its 200 would count the ticket as delivered.
            let agent = ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(10))
                .build();
            let mut req = agent.post(&url).set("Content-Type", &ct);
            if let Some(a) = &auth {
                req = req.set("Authorization", a);
            }
            match req.send_string(&body) {
                Ok(r) if (200..300).contains(&r.status()) => Ok(()),
                Ok(r) => Err(format!(
                    "HTTP {} {} (only a 2xx answer counts as delivered; redirects are not \
                     followed{})",
                    r.status(),
                    r.status_text(),
                    r.header("Location")
                        .map(|l| format!(", Location: {}", l.chars().take(200).collect::<String>()))
                        .unwrap_or_default()
                )),
                Err(ureq::Error::Status(s, r)) => Err(format!(
                    "HTTP {s}: {}",
                    r.into_string()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("task: {e}")));
        // An ERP's answer may change with time: no error is taken as permanent.
        let outcome = outcome.map_err(|why| (false, why));
        let (max, base) = (
            core.config.writeback_max_attempts as i32,
            core.config.mail_retry_secs as i64,
        );
        let node = core.node.clone();
        let recorded = core
            .db
            .write(move |c| {
                queue::writebacks::record(c, d.id, &node, d.attempts, &outcome, max, base)
            })
            .await?;
        if recorded == queue::Recorded::TakenOver {
            tracing::warn!(
                writeback = d.id,
                "write-back outcome not recorded: claimed by another node"
            );
        }
    }
    Ok(tried)
}

/// The ERP write-back sender: posts the write-backs that are due, then looks again every
/// half second (another node may have queued one).
#[derive(Default)]
pub struct WriteBackSender;

impl WriteBackSender {
    pub fn new() -> WriteBackSender {
        WriteBackSender
    }
}

impl Worker for WriteBackSender {
    fn name(&self) -> &'static str {
        "writeback"
    }

    async fn step(&mut self, core: &std::sync::Arc<Core>, stop: &Stopping) -> Result<Next> {
        Ok(match post_due(core, &core.connectors, stop).await? {
            0 => Next::After(Duration::from_millis(500)),
            _ => Next::Now,
        })
    }
}

#[derive(Debug, Serialize, Queryable)]
pub struct NotificationView {
    pub id: i64,
    pub connector: String,
    pub reference: String,
    pub received_at: chrono::NaiveDateTime,
    pub outcome: String,
    pub detail: String,
    pub ticket: Option<String>,
}

#[derive(Debug, Serialize, Queryable)]
pub struct WriteBackView {
    pub id: i64,
    pub connector: String,
    pub order_id: i64,
    pub url: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: String,
    pub sent_at: Option<chrono::NaiveDateTime>,
}

/// The newest notifications (at most 1,000) and the write-backs, for support.
pub async fn list(
    core: &Core,
    actor: &Actor,
    connector: Option<String>,
) -> Result<(Vec<NotificationView>, Vec<WriteBackView>)> {
    actor.require(
        &[Role::Admin, Role::Support],
        "read connector notifications",
    )?;
    core.db
        .read(move |c| {
            let mut q = notifications::table
                .select((
                    notifications::id,
                    notifications::connector,
                    notifications::reference,
                    notifications::received_at,
                    notifications::outcome,
                    notifications::detail,
                    notifications::ticket,
                ))
                .into_boxed();
            let mut w = writebacks::table
                .select((
                    writebacks::id,
                    writebacks::connector,
                    writebacks::order_id,
                    writebacks::url,
                    writebacks::state,
                    writebacks::attempts,
                    writebacks::last_error,
                    writebacks::sent_at,
                ))
                .into_boxed();
            if let Some(n) = &connector {
                q = q.filter(notifications::connector.eq(n.clone()));
                w = w.filter(writebacks::connector.eq(n.clone()));
            }
            Ok((
                q.order(notifications::id.desc()).limit(1000).load(c)?,
                w.order(writebacks::id.desc()).limit(1000).load(c)?,
            ))
        })
        .await
}

/// What one shop notification holds: an order, or an event that places none.
#[derive(Debug)]
pub enum ShopNotice {
    Order(Incoming),
    Ignored { reference: String, event: String },
}

fn hmac(md: openssl::hash::MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key).map_err(|e| Error::internal(e.to_string()))?;
    let mut s = openssl::sign::Signer::new(md, &key).map_err(|e| Error::internal(e.to_string()))?;
    s.update(data).map_err(|e| Error::internal(e.to_string()))?;
    s.sign_to_vec().map_err(|e| Error::internal(e.to_string()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// A form body's fields, in order.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| Error::invalid("body", format!("not a form: {e}")))
}

/// 2Checkout's HMAC source: each value prefixed by its length in bytes, an empty one as 0.
fn length_prefixed<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .map(|v| {
            if v.is_empty() {
                "0".to_string()
            } else {
                format!("{}{v}", v.len())
            }
        })
        .collect()
}

/// Checks that the shop signed the body.
pub fn verify_shop(
    shop: &Shop,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<()> {
    use openssl::hash::MessageDigest;
    let key = shop.auth.secret.as_bytes();
    let wrong = || Error::Unauthenticated;
    match shop.auth.scheme {
        AuthScheme::HmacSha256Base64 => {
            use base64::Engine;
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let want = base64::engine::general_purpose::STANDARD.encode(hmac(
                MessageDigest::sha256(),
                key,
                body,
            )?);
            same(given.trim().as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or_else(wrong)
        }
        AuthScheme::HmacSha256Hex => {
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let want = hex::encode(hmac(MessageDigest::sha256(), key, body)?);
            same(
                given.trim().to_ascii_lowercase().as_bytes(),
                want.as_bytes(),
            )
            .then_some(())
            .ok_or_else(wrong)
        }
        AuthScheme::Paddle => {
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let mut ts = None;
            let mut h1 = vec![];
            for part in given.split(';') {
                match part.trim().split_once('=') {
                    Some(("ts", v)) => ts = Some(v.to_string()),
                    Some(("h1", v)) => h1.push(v.to_ascii_lowercase()),
                    _ => {}
                }
            }
            let ts = ts.ok_or_else(wrong)?;
            let at: i64 = ts.parse().map_err(|_| wrong())?;
            let fresh = matches!(now.checked_sub(at), Some(d) if d.abs() <= shop.auth.max_age_secs);
            if !fresh {
                return Err(Error::NotAllowed(format!(
                    "the signature's timestamp {at} is more than {} seconds away from now \
                     (a replayed or delayed notification)",
                    shop.auth.max_age_secs
                )));
            }
            let mut signed = ts.into_bytes();
            signed.push(b':');
            signed.extend_from_slice(body);
            let want = hex::encode(hmac(MessageDigest::sha256(), key, &signed)?);
            h1.iter()
                .any(|h| same(h.as_bytes(), want.as_bytes()))
                .then_some(())
                .ok_or_else(wrong)
        }
        AuthScheme::TwoCheckout => {
            let fields = form_fields(body)?;
            let given = fields
                .iter()
                .find(|(k, _)| k == "HASH")
                .map(|(_, v)| v.to_ascii_lowercase())
                .ok_or_else(wrong)?;
            let source = length_prefixed(
                fields
                    .iter()
                    .filter(|(k, _)| k != "HASH" && !k.starts_with("SIGNATURE_"))
                    .map(|(_, v)| v.as_str()),
            );
            let want = hex::encode(hmac(MessageDigest::md5(), key, source.as_bytes())?);
            same(given.as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or_else(wrong)
        }
    }
}

/// 2Checkout's IPN read receipt: `<EPAYMENT>DATE|HASH</EPAYMENT>`, HASH the HMAC-MD5 of the
/// length-prefixed IPN_PID[0], IPN_PNAME[0], IPN_DATE and DATE.
pub fn twocheckout_receipt(shop: &Shop, body: &[u8], date: &str) -> Result<String> {
    let fields = form_fields(body)?;
    let first = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let source = length_prefixed(
        [
            first("IPN_PID[]"),
            first("IPN_PNAME[]"),
            first("IPN_DATE"),
            date,
        ]
        .into_iter(),
    );
    let hash = hex::encode(hmac(
        openssl::hash::MessageDigest::md5(),
        shop.auth.secret.as_bytes(),
        source.as_bytes(),
    )?);
    Ok(format!("<EPAYMENT>{date}|{hash}</EPAYMENT>"))
}

/// The value at a dot path (`data.items`, `events.0.id`); numbers index lists.
fn at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        serde_json::Value::Object(m) => m.get(seg),
        serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

fn as_list(v: Option<&serde_json::Value>) -> Vec<&serde_json::Value> {
    match v {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(serde_json::Value::Null) | None => vec![],
        Some(other) => vec![other],
    }
}

/// Reads a (verified) shop notification into the orders it asks for.
pub fn read_shop(shop: &Shop, body: &[u8]) -> Result<Vec<ShopNotice>> {
    let root: serde_json::Value = match shop.format {
        ShopFormat::Json => serde_json::from_slice(body)
            .map_err(|e| Error::invalid("body", format!("not JSON: {e}")))?,
        ShopFormat::Form => {
            // Repeated names (IPN_PID[]) become lists.
            let mut m = serde_json::Map::new();
            for (k, v) in form_fields(body)? {
                if k.ends_with("[]") {
                    if let Some(a) = m
                        .entry(k)
                        .or_insert_with(|| serde_json::Value::Array(vec![]))
                        .as_array_mut()
                    {
                        a.push(serde_json::Value::String(v));
                    }
                } else {
                    m.insert(k, serde_json::Value::String(v));
                }
            }
            serde_json::Value::Object(m)
        }
        ShopFormat::Xml => xml_value(body)?,
    };
    let notices: Vec<&serde_json::Value> = match &shop.orders {
        Some(p) => as_list(at(&root, p)),
        None => vec![&root],
    };
    if notices.is_empty() {
        return Err(Error::invalid(
            shop.orders.clone().unwrap_or_default(),
            "the notification holds no orders",
        ));
    }
    let mut out = vec![];
    for n in notices {
        let field = |path: &str| at(n, path).and_then(scalar);
        let need = |path: &str| field(path).ok_or_else(|| Error::invalid(path, "is missing"));
        if let Some(ev) = &shop.event {
            let got = field(ev).unwrap_or_default();
            if !shop.events.contains(&got) {
                out.push(ShopNotice::Ignored {
                    reference: field(&shop.order_id).unwrap_or_default(),
                    event: got,
                });
                continue;
            }
        }
        if let Some((path, got)) = shop.only.iter().find_map(|(path, values)| {
            let got = field(path).unwrap_or_default();
            (!values.contains(&got)).then(|| (path.clone(), got))
        }) {
            out.push(ShopNotice::Ignored {
                reference: field(&shop.order_id).unwrap_or_default(),
                event: format!("{path} = {got}"),
            });
            continue;
        }
        let mut lines = vec![];
        match &shop.items {
            Some(items) => {
                for (i, it) in as_list(at(n, items)).into_iter().enumerate() {
                    let product = at(it, &shop.item_product).and_then(scalar).ok_or_else(|| {
                        Error::invalid(format!("{items}.{i}.{}", shop.item_product), "is missing")
                    })?;
                    let q = quantity(
                        shop.item_quantity.as_deref().and_then(|p| at(it, p)),
                        &product,
                    )?;
                    lines.push((product, q));
                }
            }
            None => {
                let products = as_list(at(n, &shop.item_product));
                let quantities = shop
                    .item_quantity
                    .as_deref()
                    .map(|p| as_list(at(n, p)))
                    .unwrap_or_default();
                for (i, p) in products.into_iter().enumerate() {
                    let product = scalar(p).ok_or_else(|| {
                        Error::invalid(format!("{}[{i}]", shop.item_product), "is empty")
                    })?;
                    let q = quantity(quantities.get(i).copied(), &product)?;
                    lines.push((product, q));
                }
            }
        }
        if lines.is_empty() {
            return Err(Error::invalid("items", "the order has no items"));
        }
        let name: Vec<String> = shop.customer_name.iter().filter_map(|p| field(p)).collect();
        out.push(ShopNotice::Order(Incoming {
            order_id: need(&shop.order_id)?,
            customer_id: need(&shop.customer_id)?,
            customer_name: (!name.is_empty()).then(|| name.join(" ")),
            customer_email: shop.customer_email.as_deref().and_then(field),
            lines,
        }));
    }
    Ok(out)
}

/// An XML notification as a JSON value: the root element's children as fields (repeated
/// names as lists), attributes as `@name`, text as a string. DOCTYPE and entity
/// references are refused; depth is bounded.
fn xml_value(body: &[u8]) -> Result<serde_json::Value> {
    use serde_json::{Map, Value};
    let bad = |why: String| Error::invalid("body", why);
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    // The open elements: name and the fields read so far.
    let mut stack: Vec<(String, Map<String, Value>, String)> = vec![];
    let mut root: Option<Value> = None;
    let mut buf = vec![];
    let add = |m: &mut Map<String, Value>, k: String, v: Value| match m.get_mut(&k) {
        Some(Value::Array(a)) => a.push(v),
        Some(old) => {
            let first = old.take();
            *old = Value::Array(vec![first, v]);
        }
        None => {
            m.insert(k, v);
        }
    };
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| {
            bad(format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        let is_empty = matches!(ev, XmlEvent::Empty(_));
        match ev {
            XmlEvent::DocType(_) => return Err(bad("a DOCTYPE is not accepted".into())),
            XmlEvent::GeneralRef(r) => {
                let c = resolve_ref(&r).map_err(bad)?;
                if let Some(top) = stack.last_mut() {
                    top.2.push(c);
                }
            }
            XmlEvent::Start(e) | XmlEvent::Empty(e) => {
                if root.is_some() {
                    return Err(bad("more than one root element".into()));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                let mut m = Map::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(format!("attribute: {e}")))?;
                    let k = format!("@{}", String::from_utf8_lossy(a.key.local_name().as_ref()));
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| bad(format!("attribute {k}: {e}")))?;
                    xml_text(&v).map_err(|e| bad(format!("attribute {k}: {e}")))?;
                    m.insert(k, Value::String(v.to_string()));
                }
                if stack.len() >= 16 {
                    return Err(bad("nested deeper than 16 elements".into()));
                }
                stack.push((name, m, String::new()));
                if is_empty {
                    close(&mut stack, &mut root, &add);
                }
            }
            XmlEvent::Text(t) => {
                let text = t.decode().map_err(|e| bad(format!("text: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(xml_text(&text).map_err(bad)?);
                }
            }
            XmlEvent::CData(t) => {
                let text = t.decode().map_err(|e| bad(format!("CDATA: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(xml_text(&text).map_err(bad)?);
                }
            }
            XmlEvent::End(_) => close(&mut stack, &mut root, &add),
            XmlEvent::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if let Some((open, _, _)) = stack.last() {
        return Err(bad(format!(
            "not well-formed XML: <{open}> is not closed at the end"
        )));
    }
    root.ok_or_else(|| bad("the body holds no XML element".into()))
}

/// Ends the innermost element: a field of its parent, or the root.
fn close(
    stack: &mut Vec<(String, serde_json::Map<String, serde_json::Value>, String)>,
    root: &mut Option<serde_json::Value>,
    add: &impl Fn(&mut serde_json::Map<String, serde_json::Value>, String, serde_json::Value),
) {
    let Some((name, fields, text)) = stack.pop() else {
        return;
    };
    let text = text.trim().to_string();
    let value = if fields.is_empty() {
        serde_json::Value::String(text)
    } else {
        let mut fields = fields;
        if !text.is_empty() {
            fields.insert("#text".into(), serde_json::Value::String(text));
        }
        serde_json::Value::Object(fields)
    };
    match stack.last_mut() {
        Some(parent) => add(&mut parent.1, name, value),
        None => *root = Some(value),
    }
}

fn quantity(v: Option<&serde_json::Value>, product: &str) -> Result<i64> {
    let Some(v) = v else { return Ok(1) };
    let text = scalar(v).unwrap_or_default();
    text.parse::<i64>()
        .ok()
        .filter(|q| (1..=crate::domain::MAX_QUANTITY as i64).contains(q))
        .ok_or_else(|| {
            Error::invalid(
                "quantity",
                format!(
                    "{product}: {text:?} is not a whole number from 1 to {}",
                    crate::domain::MAX_QUANTITY
                ),
            )
        })
}

/// A shop's notification: its signature checked, read, each order placed and each other
/// event recorded as ignored. A refusal is recorded (without the body when the signature
/// fails); the shop is the actor, its signature stands for it.
pub async fn receive_shop(
    core: &Core,
    def: &Definition,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Vec<OrderView>> {
    let shop = def
        .shop
        .as_ref()
        .ok_or_else(|| Error::internal(format!("{} is not a shop", def.name)))?;
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify_shop(shop, header, body, now) {
        reject(core, &def.name, "", b"", &e).await?;
        return Err(e);
    }
    let notices = match read_shop(shop, body) {
        Ok(n) => n,
        Err(e) => {
            reject(core, &def.name, "", body, &e).await?;
            return Err(e);
        }
    };
    let actor = Actor {
        name: format!("connector:{}", def.name),
        role: Role::Erp,
        interface: crate::domain::Interface::Connector,
    };
    let mut placed = vec![];
    for n in notices {
        match n {
            ShopNotice::Ignored { reference, event } => {
                ignore(core, &def.name, &reference, &event, body).await?
            }
            // An error goes to the shop, which retries or alerts; orders placed before it
            // are idempotent.
            ShopNotice::Order(incoming) => {
                placed.push(place(core, def, &actor, incoming, body).await?)
            }
        }
    }
    Ok(placed)
}

/// Records an event the connector acknowledges without an order.
pub async fn ignore(
    core: &Core,
    connector: &str,
    reference: &str,
    event: &str,
    body: &[u8],
) -> Result<()> {
    let id = record(core, connector, reference, body).await?;
    let detail = format!("event {event:?} places no order");
    set_outcome(core, id, outcome::IGNORED, detail, None).await
}

/// Puts a failed write-back back in the queue.
pub async fn requeue_writeback(core: &Core, actor: &Actor, id: i64) -> Result<()> {
    actor.require(&[Role::Admin, Role::Support], "re-queue write-backs")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let now = crate::store::db_now(c)?;
            let n = diesel::update(
                writebacks::table
                    .filter(writebacks::id.eq(id))
                    .filter(writebacks::state.eq(wb::FAILED)),
            )
            .set((
                writebacks::state.eq(wb::QUEUED),
                writebacks::attempts.eq(0),
                writebacks::next_attempt_at.eq(now),
            ))
            .execute(c)?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "write-back {id} is not failed (or does not exist)"
                )));
            }
            super::audit::record(
                &actor,
                super::audit::Event {
                    action: "writeback.requeued",
                    details: json!({ "writeback_id": id }),
                    ..Default::default()
                },
            )
        })
        .await
}
