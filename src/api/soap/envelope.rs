//! The SOAP envelope: reading a request (hostile input refused before anything looks at it),
//! telling its version, checking what surrounds the operation, and writing answers and faults.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::security::WSSE;
use super::{schema, Service};
use crate::connectors::xml::{esc, resolve_ref, xml_text};
use crate::error::Error;

pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V11,
    V12,
}

impl Version {
    /// Until the envelope says which SOAP it speaks, the Content-Type does.
    pub fn of_content_type(ct: &str) -> Version {
        if ct.starts_with("application/soap+xml") {
            Version::V12
        } else {
            Version::V11
        }
    }
}

/// An element of the request: namespace, local name, children, text.
#[derive(Debug, Default)]
pub struct El {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<El>,
    pub text: String,
}

impl El {
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// The body as UTF-8: by its byte order mark, else the Content-Type's `charset`, else the
/// XML declaration's `encoding`, else UTF-8 as it is. UTF-16 and ISO-8859-1 (and every other
/// encoding the WHATWG names) are decoded; a name no encoding has, or bytes that are not
/// what the encoding says, are refused with a fault that says so.
pub fn utf8<'a>(ct: &str, body: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    use std::borrow::Cow;
    let bad = |why: String| Error::invalid("envelope", why);
    let (encoding, rest) = match encoding_rs::Encoding::for_bom(body) {
        Some((e, bom)) => (e, &body[bom..]),
        None => {
            let named = charset(ct)
                .map(|c| ("the Content-Type's charset", c))
                .or_else(|| declared(body).map(|c| ("the XML declaration's encoding", c)));
            match named {
                None => return Ok(Cow::Borrowed(body)),
                Some((where_, label)) => {
                    let e =
                        encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                            let shown: String = label.chars().take(40).collect();
                            bad(format!(
                                "{where_} {shown:?} names no encoding this server reads"
                            ))
                        })?;
                    (e, body)
                }
            }
        }
    };
    if encoding == encoding_rs::UTF_8 {
        return Ok(Cow::Owned(rest.to_vec()));
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(rest);
    if had_errors {
        return Err(bad(format!("the body is not valid {}", encoding.name())));
    }
    // The declaration still names the old encoding; the parser reads the bytes as UTF-8.
    Ok(Cow::Owned(text.into_owned().into_bytes()))
}

/// The `charset` parameter of a Content-Type.
fn charset(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The `encoding` of an XML declaration at the start of an ASCII-compatible body.
fn declared(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(200)];
    let head = std::str::from_utf8(head)
        .ok()
        .or_else(|| std::str::from_utf8(&head[..head.iter().position(|b| *b >= 0x80)?]).ok())?;
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Reads the request: DOCTYPE and entity declarations refused, depth at most 32.
pub fn parse(body: &[u8]) -> Result<El, Error> {
    let bad = |why: String| Error::invalid("envelope", why);
    let mut reader = quick_xml::NsReader::from_reader(body);
    let mut stack: Vec<El> = vec![];
    let mut root = None;
    let mut buf = vec![];
    loop {
        let (ns, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| bad(format!("not well-formed XML: {e}")))?;
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).to_string(),
            _ => String::new(),
        };
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::DocType(_) => return Err(bad("a DOCTYPE is not accepted".into())),
            Event::Start(e) | Event::Empty(e) => {
                if root.is_some() {
                    return Err(bad("more than one root element".into()));
                }
                if stack.len() >= 32 {
                    return Err(bad("nested deeper than 32 elements".into()));
                }
                let mut attrs = vec![];
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(format!("attribute: {e}")))?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| bad(format!("attribute: {e}")))?;
                    xml_text(&v).map_err(|e| bad(format!("attribute: {e}")))?;
                    attrs.push((
                        String::from_utf8_lossy(a.key.local_name().as_ref()).to_string(),
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
                let t = t.decode().map_err(|e| bad(format!("text: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(xml_text(&t).map_err(bad)?);
                }
            }
            // CDATA is text written without escapes.
            Event::CData(t) => {
                let t = t.decode().map_err(|e| bad(format!("CDATA: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(xml_text(&t).map_err(bad)?);
                }
            }
            Event::GeneralRef(r) => {
                let c = resolve_ref(&r).map_err(bad)?;
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
        return Err(bad("an element is not closed".into()));
    }
    root.ok_or_else(|| bad("no XML element".into()))
}

fn close(stack: &mut Vec<El>, root: &mut Option<El>) {
    if let Some(done) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(done),
            None => *root = Some(done),
        }
    }
}

/// A request whose envelope holds: its version, the whole document (the WS-Security header
/// is read from it) and the index of the operation element in its Body.
pub struct Request {
    pub version: Version,
    pub doc: El,
    body: usize,
}

impl Request {
    /// The operation element, checked against the service's schema.
    pub fn op(&self) -> &El {
        &self.doc.children[self.body].children[0]
    }

    /// The envelope's Header, if it has one.
    pub fn header(&self) -> Option<&El> {
        self.doc
            .children
            .iter()
            .find(|c| c.name == "Header" && c.ns == self.doc.ns)
    }
}

/// Why a request was refused before its operation ran: the error, the version the fault
/// speaks (as far as the request was read) and a SOAP fault code other than the error's.
pub struct Refused {
    pub version: Version,
    pub error: Error,
    pub code: Option<&'static str>,
}

/// Reads and checks the envelope of a request to `svc`: its version and the Content-Type
/// that goes with it, header blocks that must be understood, one operation of this service
/// in its namespace, as the schema declares it, named alike by SOAPAction or `action`.
pub fn read(svc: &Service, req: &HttpRequest, ct: &str, body: &[u8]) -> Result<Request, Refused> {
    let said = Version::of_content_type(ct);
    let refuse = |version, error| Refused {
        version,
        error,
        code: None,
    };
    let body = utf8(ct, body).map_err(|e| refuse(said, e))?;
    let doc = parse(&body).map_err(|e| refuse(said, e))?;
    let v = match (doc.name.as_str(), doc.ns.as_str()) {
        ("Envelope", SOAP11) => Version::V11,
        ("Envelope", SOAP12) => Version::V12,
        _ => {
            let e = Error::invalid(
                "Envelope",
                format!(
                    "{{{}}}{} is not a SOAP 1.1 or 1.2 envelope",
                    doc.ns, doc.name
                ),
            );
            return Err(refuse(said, e));
        }
    };
    let fail = |e: Error| refuse(v, e);
    let ct_ok = match v {
        Version::V11 => ct.starts_with("text/xml"),
        Version::V12 => ct.starts_with("application/soap+xml"),
    };
    if !ct_ok {
        return Err(fail(Error::invalid(
            "Content-Type",
            format!("{ct:?} does not go with this SOAP version's envelope"),
        )));
    }
    must_understand(&doc).map_err(|error| Refused {
        version: v,
        error,
        code: Some("MustUnderstand"),
    })?;
    // An optional Header first, then one Body, and nothing else: a gateway that inspected
    // the request can never see another operation than the one that runs.
    let shape = "an envelope holds an optional Header, then one Body, and nothing else";
    for (i, c) in doc.children.iter().enumerate() {
        let allowed = c.ns == doc.ns && (c.name == "Body" || (c.name == "Header" && i == 0));
        if !allowed {
            return Err(fail(Error::invalid(
                "Envelope",
                format!(
                    "{} at position {} is not allowed there: {shape}",
                    shown(&c.name),
                    i + 1
                ),
            )));
        }
    }
    let bodies = doc.children.iter().filter(|c| c.name == "Body").count();
    if bodies > 1 {
        return Err(fail(Error::invalid(
            "Envelope",
            format!("holds {bodies} Body elements: {shape}"),
        )));
    }
    let Some(body) = doc
        .children
        .iter()
        .position(|c| c.name == "Body" && c.ns == doc.ns)
    else {
        return Err(fail(Error::invalid("Body", "the envelope has no Body")));
    };
    let request = Request {
        version: v,
        body,
        doc,
    };
    let op = match request.doc.children[body].children.as_slice() {
        [op] => op,
        [] => {
            return Err(fail(Error::invalid(
                "Body",
                "the envelope has no operation",
            )))
        }
        _ => {
            return Err(fail(Error::invalid(
                "Body",
                "holds more than one operation; send one per request",
            )))
        }
    };
    if op.ns != svc.ns {
        return Err(fail(Error::invalid(
            op.name.clone(),
            format!("namespace {:?} is not {}", op.ns, svc.ns),
        )));
    }
    if !svc.operations.contains(&op.name.as_str()) {
        return Err(fail(Error::invalid(
            op.name.clone(),
            format!("the {} service has no operation {}", svc.name, op.name),
        )));
    }
    schema::of(svc).and_then(|s| s.check(op)).map_err(fail)?;
    // The action as the WSDL gives it (namespace/operation), or the bare operation name as
    // some clients send it.
    if let Some(a) = action(req, v) {
        if a != format!("{}/{}", svc.ns, op.name) && a != op.name {
            return Err(fail(Error::invalid(
                "SOAPAction",
                format!(
                    "{a:?} does not name the operation in the body ({})",
                    op.name
                ),
            )));
        }
    }
    Ok(request)
}

/// A header block marked mustUnderstand that this service does not process (it processes
/// the WS-Security one) may not be passed over. Checked before the Body is looked at.
fn must_understand(doc: &El) -> Result<(), Error> {
    let header = doc
        .children
        .iter()
        .find(|c| c.name == "Header" && c.ns == doc.ns);
    for block in header.iter().flat_map(|h| &h.children) {
        let must = matches!(block.attr("mustUnderstand"), Some("1" | "true"));
        if must && !(block.name == "Security" && block.ns == WSSE) {
            return Err(Error::invalid(
                format!("Header/{}", block.name),
                format!(
                    "{{{}}}{} is marked mustUnderstand and this service does not process it",
                    block.ns, block.name
                ),
            ));
        }
    }
    Ok(())
}

fn envelope(v: Version, body: &str) -> String {
    let ns = if v == Version::V11 { SOAP11 } else { SOAP12 };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope xmlns:env=\"{ns}\"><env:Body>{body}\
         </env:Body></env:Envelope>\n"
    )
}

/// Most characters of a fault's message: it may name what the request sent (an element's
/// name, a value), and a fault never echoes unbounded input.
const MAX_FAULT_MESSAGE: usize = 1000;

fn bounded(msg: String) -> String {
    if msg.chars().count() <= MAX_FAULT_MESSAGE {
        return msg;
    }
    let mut out: String = msg.chars().take(MAX_FAULT_MESSAGE).collect();
    out.push_str("… (cut)");
    out
}

/// A name from the request as a message shows it: at most 64 characters.
fn shown(name: &str) -> String {
    if name.chars().count() <= 64 {
        format!("{name:?}")
    } else {
        format!("{:?}…", name.chars().take(64).collect::<String>())
    }
}

/// An answer: the operation's response element in the envelope of the request's version.
pub fn respond(v: Version, status: StatusCode, body: &str) -> HttpResponse {
    let ct = match v {
        Version::V11 => "text/xml; charset=utf-8",
        Version::V12 => "application/soap+xml; charset=utf-8",
    };
    HttpResponse::build(status)
        .content_type(ct)
        .body(envelope(v, body))
}

/// A fault: SOAP 1.1 Client/Server, 1.2 Sender/Receiver, HTTP 500, our code in the detail
/// (the service's `LicentiaFault` element).
pub fn fault(svc: &Service, v: Version, e: &Error) -> HttpResponse {
    fault_coded(svc, v, e, None)
}

/// A fault with the SOAP fault code `code` (both versions name it alike) instead of the one
/// the error gives.
///
/// Written by hand, not with the codecs' yaserde types: the SOAP Fault is the envelope's
/// vocabulary, not an operation's, and `LicentiaFault` is one element in the namespace of
/// whichever service answers, while a yaserde type fixes its namespace when it is compiled.
pub fn fault_coded(svc: &Service, v: Version, e: &Error, code: Option<&str>) -> HttpResponse {
    if let Error::Internal(cause) = e {
        tracing::error!(%cause, "soap");
    }
    let server = matches!(e, Error::Internal(_) | Error::Busy | Error::Retry);
    let msg = esc(&bounded(e.public_message()));
    let detail = format!(
        "<l:LicentiaFault xmlns:l=\"{}\"><l:Code>{}</l:Code><l:Message>{msg}\
         </l:Message></l:LicentiaFault>",
        svc.ns,
        e.code()
    );
    let body = match v {
        Version::V11 => format!(
            "<env:Fault><faultcode>env:{}</faultcode><faultstring>{msg}</faultstring>\
             <detail>{detail}</detail></env:Fault>",
            code.unwrap_or(if server { "Server" } else { "Client" })
        ),
        Version::V12 => format!(
            "<env:Fault><env:Code><env:Value>env:{}</env:Value></env:Code><env:Reason>\
             <env:Text xml:lang=\"en\">{msg}</env:Text></env:Reason><env:Detail>{detail}\
             </env:Detail></env:Fault>",
            code.unwrap_or(if server { "Receiver" } else { "Sender" })
        ),
    };
    let mut r = respond(v, StatusCode::INTERNAL_SERVER_ERROR, &body);
    // A client held back for its rate learns when to come again, as over HTTP.
    if let Error::RateLimited { retry_after } = e {
        if let Ok(h) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, h);
        }
    }
    r
}

/// The action the request names (SOAPAction header, or the SOAP 1.2 `action` parameter).
fn action(req: &HttpRequest, v: Version) -> Option<String> {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|x| x.to_str().ok())
            .map(str::to_string)
    };
    let raw = match v {
        Version::V11 => h("soapaction"),
        Version::V12 => h("content-type").and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("action=").map(str::to_string))
        }),
    }?;
    let a = raw.trim().trim_matches('"').to_string();
    (!a.is_empty()).then_some(a)
}
