//! A small namespace-aware tree of a SAML message, read with quick-xml. Strict on purpose:
//! no DOCTYPE (no entities to expand), no comment and no processing instruction (a comment
//! inside a NameID must not split what one reader sees from what another signs), one root,
//! bounded depth.
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::connectors::xml::{resolve_ref, xml_text};

/// The deepest nesting a SAML message needs (Response / Assertion / AttributeStatement /
/// Attribute / AttributeValue is five; signatures add a few).
const MAX_DEPTH: usize = 24;

#[derive(Debug, Clone, Default)]
pub struct El {
    /// The namespace URI ("" when none).
    pub ns: String,
    pub name: String,
    /// (namespace URI, local name, value).
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<El>,
    /// The element's own text, every piece joined.
    pub text: String,
}

impl El {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An attribute without a namespace (as SAML's are).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| ns.is_empty() && n == name)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a El> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The one child of that name; none or several: none.
    pub fn only_child<'a>(&'a self, ns: &'a str, name: &'a str) -> Option<&'a El> {
        let mut it = self.children_named(ns, name);
        let first = it.next()?;
        if it.next().is_some() {
            return None;
        }
        Some(first)
    }

    /// How many elements of that name the tree holds, this one included, at any depth.
    pub fn count(&self, ns: &str, name: &str) -> usize {
        usize::from(self.is(ns, name))
            + self
                .children
                .iter()
                .map(|c| c.count(ns, name))
                .sum::<usize>()
    }
}

/// Reads a whole message.
pub fn parse(body: &[u8]) -> std::result::Result<El, String> {
    let mut reader = quick_xml::NsReader::from_reader(body);
    let mut stack: Vec<El> = vec![];
    let mut root = None;
    let mut buf = vec![];
    loop {
        let (ns, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).to_string(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(format!(
                    "the prefix {:?} is not declared",
                    String::from_utf8_lossy(&p)
                ))
            }
        };
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Comment(_) => return Err("an XML comment is not accepted".into()),
            Event::PI(_) => return Err("a processing instruction is not accepted".into()),
            Event::Start(e) | Event::Empty(e) => {
                if root.is_some() {
                    return Err("more than one root element".into());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} elements"));
                }
                let mut attrs = vec![];
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("attribute: {e}"))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(a.key);
                    let ans = match ans {
                        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).to_string(),
                        ResolveResult::Unbound => String::new(),
                        ResolveResult::Unknown(p) => {
                            return Err(format!(
                                "the prefix {:?} is not declared",
                                String::from_utf8_lossy(&p)
                            ))
                        }
                    };
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("attribute: {e}"))?;
                    xml_text(&v).map_err(|e| format!("attribute: {e}"))?;
                    attrs.push((
                        ans,
                        String::from_utf8_lossy(local.as_ref()).to_string(),
                        v.to_string(),
                    ));
                }
                stack.push(El {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).to_string(),
                    attrs,
                    ..Default::default()
                });
                if empty {
                    close(&mut stack, &mut root);
                }
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(t) => {
                let t = t.decode().map_err(|e| format!("text: {e}"))?;
                let t = xml_text(&t)?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(t),
                    None if t.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
            Event::CData(t) => {
                let t = t.decode().map_err(|e| format!("CDATA: {e}"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(xml_text(&t)?);
                }
            }
            Event::GeneralRef(r) => {
                let c = resolve_ref(&r)?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err("an element is not closed".into());
    }
    root.ok_or_else(|| "no XML element".into())
}

fn close(stack: &mut Vec<El>, root: &mut Option<El>) {
    if let Some(done) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => *root = Some(done),
        }
    }
}

/// XML escaping for text and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_doctypes_and_instructions_are_refused() {
        let ok =
            parse(br#"<a xmlns="urn:x" xmlns:p="urn:p" p:k="1" k="2"><b>x&amp;y</b></a>"#).unwrap();
        assert!(ok.is("urn:x", "a"));
        assert_eq!(ok.attr("k"), Some("2"));
        assert_eq!(ok.children[0].text, "x&y");
        for bad in [
            &b"<a><b>user@example.com<!---->.evil.com</b></a>"[..],
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a><?php x ?></a>",
            b"<a/><b/>",
            b"<p:a/>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
