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
/// customer's, 001), and the IDoc's number (EDI_DC40-DOCNUM). DOCTYPE and entity
/// declarations are refused; depth and attributes are bounded; a field that may appear once
/// and appears twice is refused rather than read as "the last one wins"; quantities are read
/// as SAP writes them (digits with an optional decimal part), nothing else.
pub fn read_idoc(body: &[u8]) -> Result<Incoming> {
    let bad = |why: String| Error::invalid("idoc", why);
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut path: Vec<String> = vec![];
    let mut buf = vec![];
    let (mut belnr, mut po, mut sold_to, mut name) = (None, None, None, None);
    let mut docnum: Option<String> = None;
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
                if e.attributes().count() > MAX_ATTRIBUTES {
                    return Err(bad(format!(
                        "<{tag}> has more than {MAX_ATTRIBUTES} attributes (namespace \
                         declarations included)"
                    )));
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
                let once = |slot: &mut Option<String>, value: String| match slot {
                    Some(_) => Err(bad(format!(
                        "{} {} appears twice",
                        parent.unwrap_or_default(),
                        field.unwrap_or_default()
                    ))),
                    None => {
                        *slot = Some(value);
                        Ok(())
                    }
                };
                match (parent, field) {
                    (Some("EDI_DC40"), Some("DOCNUM")) => once(&mut docnum, value)?,
                    (Some("E1EDK01"), Some("BELNR")) => once(&mut belnr, value)?,
                    (Some("E1EDK02"), Some("QUALF")) => once(&mut k02.0, value)?,
                    (Some("E1EDK02"), Some("BELNR")) => once(&mut k02.1, value)?,
                    (Some("E1EDKA1"), Some("PARVW")) => once(&mut ka1.0, value)?,
                    (Some("E1EDKA1"), Some("PARTN")) => once(&mut ka1.1, value)?,
                    (Some("E1EDKA1"), Some("NAME1")) => once(&mut ka1.2, value)?,
                    (Some("E1EDP01"), Some("MENGE")) => {
                        if let Some(it) = item.as_mut() {
                            once(&mut it.0, value)?
                        }
                    }
                    (Some("E1EDP19"), Some("QUALF")) => once(&mut p19.0, value)?,
                    (Some("E1EDP19"), Some("IDTNR")) => once(&mut p19.1, value)?,
                    _ => {}
                }
                let tag = path.pop().unwrap_or_default();
                match tag.as_str() {
                    "E1EDK02" if k02.0.as_deref() == Some("001") => {
                        if po.is_some() {
                            return Err(bad("two order numbers (E1EDK02 QUALF 001)".into()));
                        }
                        po = k02.1.take();
                    }
                    "E1EDKA1" if ka1.0.as_deref() == Some("AG") => {
                        if sold_to.is_some() {
                            return Err(bad("two sold-to parties (E1EDKA1 PARVW AG)".into()));
                        }
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
                        let q = quantity(&menge).ok_or_else(|| {
                            bad(format!(
                                "item {material}: quantity {menge:?} must be a whole number \
                                 from 1 to {}, written as digits (a decimal part of zeros \
                                 allowed, as in 1.000)",
                                crate::domain::MAX_QUANTITY
                            ))
                        })?;
                        lines.push((material, q));
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
        document: docnum.filter(|d| !d.is_empty()),
        customer_id,
        customer_name: name,
        customer_email: None,
        lines,
    })
}

/// Attributes one element may carry (SAP writes one, `SEGMENT` or `BEGIN`).
const MAX_ATTRIBUTES: usize = 16;

/// A quantity as SAP writes MENGE (a packed number as text): digits, optionally a point and
/// a decimal part of zeros (`1`, `1.000`); no sign, exponent, separator or other fraction.
fn quantity(menge: &str) -> Option<i64> {
    let (whole, fraction) = match menge.split_once('.') {
        Some((w, f)) => (w, f),
        None => (menge, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || !digits(whole) || !fraction.bytes().all(|b| b == b'0')
    {
        return None;
    }
    let q: i64 = whole.parse().ok()?;
    (1..=crate::domain::MAX_QUANTITY as i64)
        .contains(&q)
        .then_some(q)
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn quantities_are_read_as_sap_writes_them_and_nothing_else() {
        for (menge, q) in [
            ("1", Some(1)),
            ("1.000", Some(1)),
            ("0012", Some(12)),
            ("10000", Some(10_000)),
        ] {
            assert_eq!(quantity(menge), q, "{menge}");
        }
        for menge in [
            "1e4", "1.5", "-1", "+1", "0", "1,000", "", ".0", "1.0e0", "10001", " 1", "１",
        ] {
            assert_eq!(quantity(menge), None, "{menge}");
        }
    }
}
