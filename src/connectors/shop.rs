//! Web shops' order notifications (JSON, form or XML), read by the paths of the shop's
//! definition.
use quick_xml::events::Event as XmlEvent;

use super::definition::{Shop, ShopFormat};
use super::signature::form_fields;
use super::xml::{resolve_ref, xml_text};
use super::Incoming;
use crate::error::{Error, Result};

/// What one shop notification holds: an order, or an event that places none.
#[derive(Debug)]
pub enum ShopNotice {
    Order(Incoming),
    Ignored { reference: String, event: String },
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
            document: None,
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
