//! SAP ORDERS05 IDocs.
use quick_xml::events::Event as XmlEvent;

use super::xml::{resolve_ref, xml_text};
use super::Incoming;
use crate::error::{Error, Result};

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
