//! What our hand-kept XSDs allow in each operation's request, read from the XSD itself, and
//! the check of a request against it: every element known and in its namespace, in the order
//! of its sequence, as often as it may appear, and a value without child elements, within its
//! simple type's length and range facets. The XSDs use one form only (named or inline
//! `complexType`s of `sequence`s of `element`s, simple types by name, restricted by
//! `minLength`, `maxLength`, `minInclusive`, `maxInclusive`), which is all this reads. The
//! value's type itself (an `xs:int` that is not a number) is the decoder's to refuse.
//!
//! The service layer names fields as the JSON API does (`lines[0].quantity`); `name_field`
//! names them as the schema does (`CreateOrder/Line[1]/Quantity`), so that every SOAP fault
//! speaks of the request the client sent.
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

/// The length and range facets of a simple type (none: any value of its base type).
#[derive(Clone, Default)]
struct Facets {
    min_length: Option<usize>,
    max_length: Option<usize>,
    min: Option<i64>,
    max: Option<i64>,
}

impl Facets {
    /// The facets of a `simpleType`'s `restriction`.
    fn of(t: &El) -> Result<Facets, String> {
        let mut f = Facets::default();
        for r in xs(t, "restriction") {
            for facet in &r.children {
                let value = facet.attr("value").unwrap_or("");
                let bad = || format!("facet {} value {value:?}", facet.name);
                match facet.name.as_str() {
                    "minLength" => f.min_length = Some(value.parse().map_err(|_| bad())?),
                    "maxLength" => f.max_length = Some(value.parse().map_err(|_| bad())?),
                    "minInclusive" => f.min = Some(value.parse().map_err(|_| bad())?),
                    "maxInclusive" => f.max = Some(value.parse().map_err(|_| bad())?),
                    _ => {}
                }
            }
        }
        Ok(f)
    }

    /// Checks a value's text against the facets. An empty value is left to the service,
    /// which takes an empty optional element (`<Locale/>`, as many clients send one) as
    /// absent and says when a required one must not be empty.
    fn check(&self, path: &str, text: &str) -> Result<(), Error> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let chars = text.chars().count();
        if let Some(min) = self.min_length.filter(|m| chars < *m) {
            return Err(Error::invalid(
                path.to_string(),
                format!("has {chars} characters; at least {min}"),
            ));
        }
        if let Some(max) = self.max_length.filter(|m| chars > *m) {
            return Err(Error::invalid(
                path.to_string(),
                format!("has {chars} characters; at most {max}"),
            ));
        }
        if self.min.is_some() || self.max.is_some() {
            // Not a number: the decoder says it is not of its type.
            if let Ok(n) = text.trim().parse::<i64>() {
                if self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m) {
                    let range = match (self.min, self.max) {
                        (Some(a), Some(b)) => format!("between {a} and {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => unreachable!("a bound is set"),
                    };
                    return Err(Error::invalid(
                        path.to_string(),
                        format!("is {n}; must be {range}"),
                    ));
                }
            }
        }
        Ok(())
    }
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
    /// A value: text, no child elements, within its facets.
    Simple(Facets),
    Named(String),
    Inline(Vec<Particle>),
}

impl Schema {
    /// Reads the schema of the service with namespace `ns`.
    pub fn read(ns: &'static str, xsd: &str) -> Result<Schema, String> {
        let root = parse(xsd.as_bytes()).map_err(|e| e.to_string())?;
        let mut simple = HashMap::new();
        for t in xs(&root, "simpleType") {
            if let Some(name) = t.attr("name") {
                simple.insert(name.to_string(), Facets::of(t)?);
            }
        }
        let declared = Declared {
            complex: xs(&root, "complexType")
                .filter_map(|t| t.attr("name"))
                .collect(),
            simple,
        };
        let mut types = HashMap::new();
        for t in xs(&root, "complexType") {
            if let Some(name) = t.attr("name") {
                types.insert(name.to_string(), sequence(t, &declared)?);
            }
        }
        let mut elements = HashMap::new();
        for e in xs(&root, "element") {
            let p = particle(e, &declared)?;
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
            Content::Simple(facets) => {
                return match el.children.first() {
                    Some(c) => Err(Error::invalid(
                        path.to_string(),
                        format!("is a value and holds no elements (found {})", c.name),
                    )),
                    None => facets.check(path, &el.text),
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

impl Schema {
    /// `e` with its field named as the schema of operation `op` names it, when the service
    /// named it as the JSON API does and the operation has that element: `lines[0].quantity`
    /// of `CreateOrder` is `CreateOrder/Line[1]/Quantity` (snake case in Pascal case, a
    /// list's plural name in the singular of its repeated element, indexes from 1). Any other
    /// error, or a field the schema does not have, is left as it is.
    pub fn name_field(&self, op: &str, e: Error) -> Error {
        let Error::Invalid { field, reason } = e else {
            return e;
        };
        match self.path_of(op, &field) {
            Some(path) => Error::Invalid {
                field: path,
                reason,
            },
            None => Error::Invalid { field, reason },
        }
    }

    fn path_of(&self, op: &str, field: &str) -> Option<String> {
        if field.is_empty() || field.contains('/') {
            return None;
        }
        let mut content = self.elements.get(op)?;
        let mut path = op.to_string();
        for segment in field.split('.') {
            let (name, index) = match segment.split_once('[') {
                Some((n, rest)) => (n, Some(rest.strip_suffix(']')?.parse::<usize>().ok()?)),
                None => (segment, None),
            };
            let pascal: String = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect();
            let seq = match content {
                Content::Named(t) => self.types.get(t)?,
                Content::Inline(seq) => seq,
                Content::Simple(_) => return None,
            };
            let singular = pascal.strip_suffix('s').unwrap_or(&pascal);
            let p = seq
                .iter()
                .find(|p| p.name == pascal)
                .or_else(|| seq.iter().find(|p| p.name == singular))?;
            path = match index {
                Some(i) if p.max != Some(1) => format!("{path}/{}[{}]", p.name, i + 1),
                _ => format!("{path}/{}", p.name),
            };
            content = &p.content;
        }
        Some(path)
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

/// The named types of a schema: complex ones by name, simple ones with their facets.
struct Declared<'a> {
    complex: Vec<&'a str>,
    simple: HashMap<String, Facets>,
}

/// The particles of a `complexType`'s `sequence` (an empty type has none).
fn sequence(t: &El, declared: &Declared) -> Result<Vec<Particle>, String> {
    let mut out = vec![];
    for seq in xs(t, "sequence") {
        for e in xs(seq, "element") {
            out.push(particle(e, declared)?);
        }
    }
    Ok(out)
}

fn particle(e: &El, declared: &Declared) -> Result<Particle, String> {
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
            if t.starts_with("xs:") {
                Content::Simple(Facets::default())
            } else if declared.complex.contains(&local) {
                Content::Named(local.to_string())
            } else {
                Content::Simple(declared.simple.get(local).cloned().unwrap_or_default())
            }
        }
        (None, Some(inline)) => Content::Inline(sequence(inline, declared)?),
        (None, None) => match xs(e, "simpleType").next() {
            Some(inline) => Content::Simple(Facets::of(inline)?),
            None => Content::Simple(Facets::default()),
        },
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

    fn sales() -> &'static Schema {
        of(super::super::SERVICES
            .iter()
            .find(|s| s.name == "Sales")
            .unwrap())
        .unwrap()
    }

    #[test]
    fn service_field_names_become_the_schemas() {
        let s = sales();
        let named = |op: &str, f: &str| match s.name_field(op, Error::invalid(f, "x")) {
            Error::Invalid { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            named("CreateOrder", "lines[0].quantity"),
            "CreateOrder/Line[1]/Quantity"
        );
        assert_eq!(
            named("CreateOrder", "lines[2].item_id"),
            "CreateOrder/Line[3]/ItemId"
        );
        assert_eq!(
            named("CreateOrder", "customer.email"),
            "CreateOrder/Customer/Email"
        );
        assert_eq!(named("CreateOrder", "comment"), "CreateOrder/Comment");
        assert_eq!(
            named("CreateOrder", "erp_order_id"),
            "CreateOrder/ErpOrderId"
        );
        assert_eq!(named("CreateOrder", "lines"), "CreateOrder/Line");
        // Not in the operation, or already a path: as it was.
        assert_eq!(named("CreateOrder", "quantities"), "quantities");
        assert_eq!(
            named("CreateOrder", "CreateOrder/Comment"),
            "CreateOrder/Comment"
        );
        assert_eq!(
            named("CreateOrder", "lines[x].quantity"),
            "lines[x].quantity"
        );
        assert_eq!(named("GetTicket", "ticket"), "GetTicket/Ticket");
    }

    #[test]
    fn facets_bound_lengths_and_numbers() {
        let f = Facets {
            min_length: Some(1),
            max_length: Some(4),
            min: Some(1),
            max: Some(10),
        };
        f.check("X", "10").unwrap();
        // Empty: the service's to judge (an empty optional element is absent).
        f.check("X", "").unwrap();
        let e = Facets {
            min_length: Some(2),
            ..Facets::default()
        }
        .check("X", "a")
        .unwrap_err()
        .to_string();
        assert!(e.contains("has 1 characters; at least 2"), "{e}");
        let e = f.check("X", "ääääää").unwrap_err().to_string();
        assert!(e.contains("has 6 characters; at most 4"), "{e}");
        let e = f.check("X", "0").unwrap_err().to_string();
        assert!(e.contains("is 0; must be between 1 and 10"), "{e}");
        // Not a number: left to the decoder, which names the type.
        f.check("X", "two").unwrap();
    }

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
