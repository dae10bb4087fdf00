//! What our hand-kept XSDs allow in each operation's request, read from the XSD itself, and
//! the check of a request against it: every element known and in its namespace, in the order
//! of its sequence, as often as it may appear, and a value without child elements. The XSDs
//! use one form only (named or inline `complexType`s of `sequence`s of `element`s, simple
//! types by name), which is all this reads.
use std::collections::HashMap;

use super::envelope::{parse, El};
use crate::error::Error;

const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// The schema of `svc`, read once.
pub fn of(svc: &super::Service) -> Result<&'static Schema, Error> {
    use std::sync::OnceLock;
    static READ: OnceLock<Vec<Result<Schema, String>>> = OnceLock::new();
    let all = READ.get_or_init(|| {
        super::SERVICES
            .iter()
            .map(|s| Schema::read(s.ns, s.xsd))
            .collect()
    });
    let i = super::SERVICES
        .iter()
        .position(|s| s.name == svc.name)
        .ok_or_else(|| Error::internal(format!("no service {}", svc.name)))?;
    all[i]
        .as_ref()
        .map_err(|e| Error::internal(format!("the {} schema: {e}", svc.name)))
}

/// The element structure of one service's schema.
pub struct Schema {
    ns: &'static str,
    /// Named complex types, and each top-level element's content.
    types: HashMap<String, Vec<Particle>>,
    elements: HashMap<String, Content>,
}

struct Particle {
    name: String,
    content: Content,
    min: u32,
    /// `None`: unbounded.
    max: Option<u32>,
}

enum Content {
    /// A value: text, no child elements.
    Simple,
    Named(String),
    Inline(Vec<Particle>),
}

impl Schema {
    /// Reads the schema of the service with namespace `ns`.
    pub fn read(ns: &'static str, xsd: &str) -> Result<Schema, String> {
        let root = parse(xsd.as_bytes()).map_err(|e| e.to_string())?;
        let complex: Vec<&str> = xs(&root, "complexType")
            .filter_map(|t| t.attr("name"))
            .collect();
        let mut types = HashMap::new();
        for t in xs(&root, "complexType") {
            if let Some(name) = t.attr("name") {
                types.insert(name.to_string(), sequence(t, &complex)?);
            }
        }
        let mut elements = HashMap::new();
        for e in xs(&root, "element") {
            let p = particle(e, &complex)?;
            elements.insert(p.name, p.content);
        }
        Ok(Schema {
            ns,
            types,
            elements,
        })
    }

    /// Checks the operation element `op` against its declaration.
    pub fn check(&self, op: &El) -> Result<(), Error> {
        let content = self
            .elements
            .get(&op.name)
            .ok_or_else(|| Error::invalid(op.name.clone(), "is not declared in the schema"))?;
        self.check_content(&op.name, op, content)
    }

    fn check_content(&self, path: &str, el: &El, content: &Content) -> Result<(), Error> {
        let seq = match content {
            Content::Simple => {
                return match el.children.first() {
                    Some(c) => Err(Error::invalid(
                        path.to_string(),
                        format!("is a value and holds no elements (found {})", c.name),
                    )),
                    None => Ok(()),
                }
            }
            Content::Named(t) => self
                .types
                .get(t)
                .ok_or_else(|| Error::internal(format!("schema type {t} is not declared")))?,
            Content::Inline(seq) => seq,
        };
        let names = || {
            seq.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // An unknown or foreign element first: the likeliest mistake is a misspelt name.
        for c in &el.children {
            if c.ns != self.ns {
                return Err(Error::invalid(
                    format!("{path}/{}", c.name),
                    format!("namespace {:?} is not {}", c.ns, self.ns),
                ));
            }
            if !seq.iter().any(|p| p.name == c.name) {
                let has = match seq.len() {
                    0 => "none".to_string(),
                    _ => names(),
                };
                return Err(Error::invalid(
                    format!("{path}/{}", c.name),
                    format!("is not an element of {path} (its elements: {has})"),
                ));
            }
        }
        if !seq.is_empty() && !el.text.trim().is_empty() {
            return Err(Error::invalid(
                path.to_string(),
                "holds text beside its elements",
            ));
        }
        let mut next = el.children.iter().peekable();
        for p in seq {
            let mut n = 0u32;
            while let Some(c) = next.next_if(|c| c.name == p.name) {
                n += 1;
                if p.max.is_some_and(|max| n > max) {
                    let max = p.max.unwrap_or_default();
                    return Err(Error::invalid(
                        format!("{path}/{}", p.name),
                        format!(
                            "may appear at most {max} time{}",
                            if max == 1 { "" } else { "s" }
                        ),
                    ));
                }
                let here = if p.max == Some(1) {
                    format!("{path}/{}", p.name)
                } else {
                    format!("{path}/{}[{n}]", p.name)
                };
                self.check_content(&here, c, &p.content)?;
            }
            if n < p.min {
                // There, but after an element that belongs further on.
                if let Some(c) = next.peek().filter(|_| el.all(&p.name).next().is_some()) {
                    return Err(out_of_order(path, c, names()));
                }
                return Err(Error::invalid(format!("{path}/{}", p.name), "is missing"));
            }
        }
        match next.next() {
            Some(c) => Err(out_of_order(path, c, names())),
            None => Ok(()),
        }
    }
}

fn out_of_order(path: &str, c: &El, names: String) -> Error {
    Error::invalid(
        format!("{path}/{}", c.name),
        format!("is out of order; the elements of {path} go in this order: {names}"),
    )
}

/// The children of `el` in the XML Schema namespace named `name`.
fn xs<'a>(el: &'a El, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
    el.children
        .iter()
        .filter(move |c| c.ns == XS && c.name == name)
}

/// The particles of a `complexType`'s `sequence` (an empty type has none).
fn sequence(t: &El, complex: &[&str]) -> Result<Vec<Particle>, String> {
    let mut out = vec![];
    for seq in xs(t, "sequence") {
        for e in xs(seq, "element") {
            out.push(particle(e, complex)?);
        }
    }
    Ok(out)
}

fn particle(e: &El, complex: &[&str]) -> Result<Particle, String> {
    let name = e
        .attr("name")
        .ok_or("an element without a name")?
        .to_string();
    let occurs = |attr: &str, default: u32| -> Result<Option<u32>, String> {
        match e.attr(attr) {
            None => Ok(Some(default)),
            Some("unbounded") => Ok(None),
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}: {attr} {n:?}")),
        }
    };
    let content = match (e.attr("type"), xs(e, "complexType").next()) {
        (Some(t), _) => {
            let local = t.rsplit(':').next().unwrap_or(t);
            if complex.contains(&local) && !t.starts_with("xs:") {
                Content::Named(local.to_string())
            } else {
                Content::Simple
            }
        }
        (None, Some(inline)) => Content::Inline(sequence(inline, complex)?),
        (None, None) => Content::Simple,
    };
    Ok(Particle {
        content,
        min: occurs("minOccurs", 1)?.unwrap_or(0),
        max: occurs("maxOccurs", 1)?,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_reads_and_declares_every_operation() {
        for svc in super::super::SERVICES {
            let schema = of(svc).unwrap();
            for op in svc.operations {
                assert!(schema.elements.contains_key(*op), "{}: {op}", svc.name);
            }
        }
    }
}
