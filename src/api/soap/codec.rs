//! What the codecs of the four services share: decoding a checked operation element into its
//! request type and encoding a response type (both with yaserde), the text type of responses,
//! and reading typed values with the path of their element named in an error.
//!
//! The request and response types mirror the XSD; yaserde maps elements to fields (names,
//! prefixes, namespace declaration, order, optional and repeated elements, nesting). Three
//! things stay ours, each for a reason:
//! - Escaping of text. Our wire has always written `"` in text as `&quot;` (and `'` as is);
//!   the XML writer under yaserde (xml-rs) escapes only `<`, `>` and `&` in text. So the
//!   encoder turns the writer's escaping off and every text field is a [`Text`], which escapes
//!   itself as before; numbers and booleans need none.
//! - Typed values of requests. Request fields are the element's text (`String`); yaserde's own
//!   parsing of `i64`/`bool` fields fails with a message that names neither the element nor
//!   its path (`invalid digit found in string`), where ours says
//!   `CreateOrder/Line[1]/Quantity: "two" is not an xs:int`, accepts `1`/`0` for booleans
//!   and treats an empty value as a missing one. The readers below do that.
//! - Reading the bytes. yaserde reads with xml-rs, which knows nothing of our limits
//!   (DOCTYPE, entities, depth, characters XML does not allow, CDATA as text); the envelope is
//!   read and checked by `envelope` and `schema` first, and [`decode`] hands yaserde the
//!   checked operation element written out again (elements and text only, nothing else can
//!   be in it by then).
use std::io::Write;

use yaserde::__xml as xml;
use yaserde::{YaDeserialize, YaSerialize};

use super::envelope::El;
use crate::connectors::xml::esc;
use crate::error::Error;

/// The text of a response element, escaped as our answers always were (see above).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Text(pub String);

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text(s.clone())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(s)
    }
}

impl YaSerialize for Text {
    fn serialize<W: Write>(&self, writer: &mut yaserde::ser::Serializer<W>) -> yaserde::Result<()> {
        yaserde::primitives::serialize_primitives(self, "Text", writer, |t| esc(&t.0))
    }

    fn serialize_attributes(
        &self,
        attributes: Vec<xml::attribute::OwnedAttribute>,
        namespace: xml::namespace::Namespace,
    ) -> yaserde::Result<(
        Vec<xml::attribute::OwnedAttribute>,
        xml::namespace::Namespace,
    )> {
        Ok((attributes, namespace))
    }
}

/// Writes a response: `body` as the element `name` (with its prefix, e.g.
/// `d:ActivateResponse`: one type may answer several operations, as the XSD's `Update`).
/// No declaration (the envelope has it), `<a></a>` for an empty element as before, and no
/// escaping by the writer: [`Text`] escapes.
pub fn encode<T: YaSerialize>(name: &str, body: &T) -> Result<String, Error> {
    let mut config = xml::EmitterConfig::new()
        .write_document_declaration(false)
        .normalize_empty_elements(false);
    config.perform_escaping = false;
    let mut writer =
        yaserde::ser::Serializer::new(xml::EventWriter::new_with_config(Vec::new(), config));
    writer.set_start_event_name(Some(name.to_string()));
    body.serialize(&mut writer)
        .map_err(|e| Error::internal(format!("encoding {name}: {e}")))?;
    String::from_utf8(writer.into_inner()).map_err(|e| Error::internal(e.to_string()))
}

/// Reads the operation element `op` (already checked against the schema) into its request
/// type, whose elements carry the prefix `p`.
pub fn decode<T: YaDeserialize>(p: &str, op: &El) -> Result<T, Error> {
    let mut x = String::new();
    write_el(&mut x, p, op, true);
    yaserde::de::from_str(&x).map_err(|e| Error::invalid(op.name.clone(), e.to_string()))
}

fn write_el(x: &mut String, p: &str, el: &El, root: bool) {
    x.push_str(&format!("<{p}:{}", el.name));
    if root {
        x.push_str(&format!(" xmlns:{p}=\"{}\"", esc(&el.ns)));
    }
    x.push('>');
    for c in &el.children {
        write_el(x, p, c, false);
    }
    // A carriage return as a reference, so that the reader keeps it as it came.
    x.push_str(&esc(&el.text).replace('\r', "&#13;"));
    x.push_str(&format!("</{p}:{}>", el.name));
}

pub fn iso(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An optional value: trimmed, and none when empty (as if the element were absent).
pub fn opt(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// A value the operation needs: trimmed; empty is missing.
pub fn need(path: &str, v: &str) -> Result<String, Error> {
    opt(&Some(v.to_string())).ok_or_else(|| Error::invalid(path, "is missing"))
}

pub fn opt_long(path: &str, v: &Option<String>) -> Result<Option<i64>, Error> {
    opt(v)
        .map(|t| {
            t.parse()
                .map_err(|_| Error::invalid(path, format!("{t:?} is not an xs:long")))
        })
        .transpose()
}

pub fn long(path: &str, v: &str) -> Result<i64, Error> {
    opt_long(path, &Some(v.to_string()))?.ok_or_else(|| Error::invalid(path, "is missing"))
}

pub fn boolean(path: &str, v: &str) -> Result<bool, Error> {
    match need(path, v)?.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::invalid(
            path,
            format!("{other:?} is not an xs:boolean"),
        )),
    }
}

pub fn opt_boolean(path: &str, v: &Option<String>) -> Result<Option<bool>, Error> {
    opt(v).map(|t| boolean(path, &t)).transpose()
}

/// Repeated xs:long elements (`LicenseId`), each named by its position.
pub fn longs(path: &str, vs: &[String]) -> Result<Vec<i64>, Error> {
    vs.iter()
        .enumerate()
        .map(|(i, v)| {
            let t = v.trim();
            t.parse().map_err(|_| {
                Error::invalid(
                    format!("{path}[{}]", i + 1),
                    format!("{t:?} is not an xs:long"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaserde::{YaDeserialize, YaSerialize};

    #[derive(Debug, Default, YaDeserialize, YaSerialize)]
    #[yaserde(rename = "Op", prefix = "t", namespaces = {"t" = "urn:t"})]
    struct Op {
        #[yaserde(prefix = "t", rename = "Value")]
        value: Vec<String>,
    }

    #[derive(YaSerialize)]
    #[yaserde(rename = "Out", prefix = "t", namespaces = {"t" = "urn:t"})]
    struct Out {
        #[yaserde(prefix = "t", rename = "Text")]
        text: Text,
        #[yaserde(prefix = "t", rename = "Empty")]
        empty: Text,
        #[yaserde(prefix = "t", rename = "Absent")]
        absent: Option<Text>,
    }

    #[test]
    fn decoded_text_is_the_text_read_and_encoded_text_is_escaped_as_before() {
        // What the envelope reader made of the request (references and CDATA resolved).
        let text = "a & <b> \"c\" 'd'\r\n-----END LICENTIA REQUEST-----";
        let op = El {
            ns: "urn:t".into(),
            name: "Op".into(),
            children: vec![El {
                ns: "urn:t".into(),
                name: "Value".into(),
                text: text.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let got: Op = decode("t", &op).unwrap();
        assert_eq!(got.value, vec![text.to_string()]);
        let out = Out {
            text: text.into(),
            empty: Text::default(),
            absent: None,
        };
        assert_eq!(
            encode("t:OutResponse", &out).unwrap(),
            "<t:OutResponse xmlns:t=\"urn:t\"><t:Text>a &amp; &lt;b&gt; &quot;c&quot; 'd'\r\n\
             -----END LICENTIA REQUEST-----</t:Text><t:Empty></t:Empty></t:OutResponse>"
        );
    }
}
