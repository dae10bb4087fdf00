//! SOAP 1.1 and 1.2 adapters described by the hand-kept WSDL in `wsdl/` and XSD in `xsd/`:
//! decode, authenticate, call the same service function as the JSON API, encode. So far the
//! Sales service's CreateOrder and GetTicket.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::domain::Interface;
use crate::error::Error;
use crate::service::catalog::CustomerData;
use crate::service::connectors::{esc, resolve_ref, xml_text};
use crate::service::orders::{self, NewOrder, OrderLine};
use crate::service::{users, Core};

type Core_ = web::Data<Core>;

const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

/// A SOAP service: its WSDL and schema, and the operations implemented for it.
pub struct Service {
    pub name: &'static str,
    pub ns: &'static str,
    pub wsdl: &'static str,
    pub xsd_name: &'static str,
    pub xsd: &'static str,
    /// Must be exactly the operations the WSDL declares (a test checks it).
    pub operations: &'static [&'static str],
}

pub const SERVICES: &[Service] = &[
    Service {
        name: "Sales",
        ns: "http://licentia.dev/ns/sales/v1",
        wsdl: include_str!("../../wsdl/sales-v1.wsdl"),
        xsd_name: "licentia-sales-v1.xsd",
        xsd: include_str!("../../xsd/licentia-sales-v1.xsd"),
        operations: &[
            "CreateOrder",
            "AddToOrder",
            "GetTicket",
            "WithdrawLicenses",
            "ReplaceLicense",
            "SplitLicense",
        ],
    },
    Service {
        name: "Report",
        ns: "http://licentia.dev/ns/report/v1",
        wsdl: include_str!("../../wsdl/report-v1.wsdl"),
        xsd_name: "licentia-report-v1.xsd",
        xsd: include_str!("../../xsd/licentia-report-v1.xsd"),
        operations: &["RunReport"],
    },
    Service {
        name: "Admin",
        ns: "http://licentia.dev/ns/admin/v1",
        wsdl: include_str!("../../wsdl/admin-v1.wsdl"),
        xsd_name: "licentia-admin-v1.xsd",
        xsd: include_str!("../../xsd/licentia-admin-v1.xsd"),
        operations: &[
            "BlacklistContainer",
            "RemoveFromBlacklist",
            "ResetContainer",
            "AssignContainer",
            "PushLicense",
            "ListApprovals",
            "DecideApproval",
            "PutCustomer",
            "GetCustomer",
            "ListUsers",
            "AddUser",
            "ChangeUser",
            "ListItems",
            "GetItem",
            "CreateItem",
            "ChangeItem",
            "GetSettings",
            "PutSettings",
        ],
    },
    Service {
        name: "Depot",
        ns: "http://licentia.dev/ns/depot/v1",
        wsdl: include_str!("../../wsdl/depot-v1.wsdl"),
        xsd_name: "licentia-depot-v1.xsd",
        xsd: include_str!("../../xsd/licentia-depot-v1.xsd"),
        operations: &[
            "TicketInfo",
            "Template",
            "Activate",
            "Reactivate",
            "Restore",
            "Return",
            "PullUpdates",
            "ConfirmReceipt",
        ],
    },
];

mod schema;

fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V11,
    V12,
}

/// An element of the request: namespace, local name, children, text.
#[derive(Debug, Default)]
struct El {
    ns: String,
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
    text: String,
}

impl El {
    fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// Reads the request: DOCTYPE and entity declarations refused, depth at most 32.
fn parse(body: &[u8]) -> Result<El, Error> {
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

fn envelope(v: Version, body: &str) -> String {
    let ns = if v == Version::V11 { SOAP11 } else { SOAP12 };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope xmlns:env=\"{ns}\"><env:Body>{body}\
         </env:Body></env:Envelope>\n"
    )
}

fn respond(v: Version, status: StatusCode, body: &str) -> HttpResponse {
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
fn fault(svc: &Service, v: Version, e: &Error) -> HttpResponse {
    fault_coded(svc, v, e, None)
}

/// A fault with the SOAP fault code `code` (both versions name it alike) instead of the one
/// the error gives.
fn fault_coded(svc: &Service, v: Version, e: &Error, code: Option<&str>) -> HttpResponse {
    if let Error::Internal(cause) = e {
        tracing::error!(%cause, "soap");
    }
    let server = matches!(e, Error::Internal(_) | Error::Busy | Error::Retry);
    let msg = esc(&e.public_message());
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
    respond(v, StatusCode::INTERNAL_SERVER_ERROR, &body)
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

async fn endpoint(
    core: Core_,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let Some(svc) = service(&name) else {
        return HttpResponse::NotFound().finish();
    };
    let fault = |v: Version, e: &Error| fault(svc, v, e);
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|x| x.to_str().ok())
        .unwrap_or("");
    // Until the envelope says which SOAP it speaks, the Content-Type does.
    let said = if ct.starts_with("application/soap+xml") {
        Version::V12
    } else {
        Version::V11
    };
    // Read here, under the configured limit, so that a body too large is a fault too.
    let limit = core.config.max_body_bytes;
    let body = match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            let e = Error::invalid("envelope", format!("the body could not be read: {e}"));
            return fault(said, &e);
        }
        Err(_) => {
            let e = Error::invalid("envelope", format!("is larger than {limit} bytes"));
            return fault(said, &e);
        }
    };
    let doc = match parse(&body) {
        Ok(d) => d,
        Err(e) => return fault(said, &e),
    };
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
            return fault(said, &e);
        }
    };
    let ct_ok = match v {
        Version::V11 => ct.starts_with("text/xml"),
        Version::V12 => ct.starts_with("application/soap+xml"),
    };
    if !ct_ok {
        let e = Error::invalid(
            "Content-Type",
            format!("{ct:?} does not go with this SOAP version's envelope"),
        );
        return fault(v, &e);
    }
    // A header block marked mustUnderstand that this service does not process (it
    // processes the WS-Security one) may not be passed over.
    let header = doc
        .children
        .iter()
        .find(|c| c.name == "Header" && c.ns == doc.ns);
    for block in header.iter().flat_map(|h| &h.children) {
        let must = matches!(block.attr("mustUnderstand"), Some("1" | "true"));
        if must && !(block.name == "Security" && block.ns == WSSE) {
            let e = Error::invalid(
                format!("Header/{}", block.name),
                format!(
                    "{{{}}}{} is marked mustUnderstand and this service does not process it",
                    block.ns, block.name
                ),
            );
            return fault_coded(svc, v, &e, Some("MustUnderstand"));
        }
    }
    let Some(body) = doc
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns == doc.ns)
    else {
        return fault(v, &Error::invalid("Body", "the envelope has no Body"));
    };
    let op = match body.children.as_slice() {
        [op] => op,
        [] => return fault(v, &Error::invalid("Body", "the envelope has no operation")),
        _ => {
            let e = Error::invalid(
                "Body",
                "holds more than one operation; send one per request",
            );
            return fault(v, &e);
        }
    };
    if op.ns != svc.ns {
        let e = Error::invalid(
            op.name.clone(),
            format!("namespace {:?} is not {}", op.ns, svc.ns),
        );
        return fault(v, &e);
    }
    if !svc.operations.contains(&op.name.as_str()) {
        let e = Error::invalid(
            op.name.clone(),
            format!("the {} service has no operation {}", svc.name, op.name),
        );
        return fault(v, &e);
    }
    if let Err(e) = schema::of(svc).and_then(|s| s.check(op)) {
        return fault(v, &e);
    }
    if let Some(a) = action(&req, v) {
        if a != format!("{}/{}", svc.ns, op.name) {
            let e = Error::invalid(
                "SOAPAction",
                format!(
                    "{a:?} does not name the operation in the body ({})",
                    op.name
                ),
            );
            return fault(v, &e);
        }
    }
    // The Depot is the activation wizard's: the ticket or the container's signature is the
    // credential, as in the JSON gateway.
    if svc.name == "Depot" {
        return match depot(&core, svc.ns, op).await {
            Ok(xml) => respond(v, StatusCode::OK, &xml),
            Err(e) => fault(v, &e),
        };
    }
    let token = doc
        .children
        .iter()
        .find(|c| c.name == "Header" && c.ns == doc.ns)
        .and_then(|h| {
            h.children
                .iter()
                .find(|c| c.name == "Security" && c.ns == WSSE)
        })
        .and_then(|s| s.child("UsernameToken"));
    let (credentials, nonce) = match token {
        Some(t) => match username_token(t) {
            Ok(Token::Text {
                user,
                password,
                nonce,
            }) => (Some((user, password)), nonce),
            Ok(Token::Digest(d)) => match d.check(&core).await {
                Ok(c) => (Some(c), Some(d.nonce)),
                Err(e) => return fault(v, &e),
            },
            Err(e) => return fault(v, &e),
        },
        None => (super::basic_auth(&req), None),
    };
    let actor = match credentials {
        Some((u, p)) => match users::authenticate(&core, &u, &p, Interface::Soap).await {
            Ok(a) => a,
            Err(e) => return fault(v, &e),
        },
        None => return fault(v, &Error::Unauthenticated),
    };
    // Only a token whose credentials hold uses up its nonce: a stranger can neither fill
    // the nonce table nor spend a user's nonce.
    if let Some(nonce) = nonce {
        if let Err(e) = users::remember_nonce(&core, nonce).await {
            return fault(v, &e);
        }
    }
    let out = match (svc.name, op.name.as_str()) {
        ("Sales", "CreateOrder") => create_order(&core, &actor, svc.ns, op).await,
        ("Sales", "GetTicket") => get_ticket(&core, &actor, svc.ns, op).await,
        ("Sales", "AddToOrder") => add_to_order(&core, &actor, svc.ns, op).await,
        ("Sales", _) => license_control(&core, &actor, svc.ns, op).await,
        ("Report", "RunReport") => run_report(&core, &actor, svc.ns, op).await,
        ("Admin", _) => admin(&core, &actor, svc.ns, op).await,
        (s, o) => Err(Error::internal(format!(
            "{s}.{o} is declared but not wired"
        ))),
    };
    match out {
        Ok(xml) => respond(v, StatusCode::OK, &xml),
        Err(e) => fault(v, &e),
    }
}

const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// How far a token's Created may be from now; its nonce is remembered that long.
const NONCE_WINDOW_SECS: i64 = 300;

/// A WS-Security UsernameToken as read, before its credentials are checked.
enum Token {
    /// PasswordText; with a Nonce (and Created, within five minutes of now) the nonce may be
    /// used once.
    Text {
        user: String,
        password: String,
        nonce: Option<String>,
    },
    /// PasswordDigest: Base64(SHA-1(nonce + created + password)).
    Digest(DigestToken),
}

struct DigestToken {
    user: String,
    digest: String,
    nonce: String,
    nonce_bytes: Vec<u8>,
    created: String,
}

impl DigestToken {
    /// Checks the digest with the password the server keeps sealed under the master key for
    /// this purpose, and returns the user's credentials.
    async fn check(&self, core: &Core) -> Result<(String, String), Error> {
        let Some(password) = users::digest_password(core, &self.user).await? else {
            return Err(Error::Unauthenticated);
        };
        let mut data = self.nonce_bytes.clone();
        data.extend_from_slice(self.created.as_bytes());
        data.extend_from_slice(password.as_bytes());
        use base64::Engine;
        let want = base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha1(&data));
        let given = self.digest.as_bytes();
        if given.len() == want.len() && openssl::memcmp::eq(given, want.as_bytes()) {
            Ok((self.user.clone(), password))
        } else {
            Err(Error::Unauthenticated)
        }
    }
}

/// Reads a UsernameToken: PasswordText or PasswordDigest; a Nonce is base64 of 1 to 64
/// bytes and goes with a Created within five minutes of now (a digest needs both).
fn username_token(t: &El) -> Result<Token, Error> {
    let user = t
        .text_of("Username")
        .ok_or_else(|| Error::invalid("UsernameToken/Username", "is missing"))?;
    let pw = t
        .child("Password")
        .ok_or_else(|| Error::invalid("UsernameToken/Password", "is missing"))?;
    let digest = pw
        .attr("Type")
        .is_some_and(|ty| ty.ends_with("#PasswordDigest"));
    let nonce = t.text_of("Nonce");
    let created = t.text_of("Created");
    if digest && (nonce.is_none() || created.is_none()) {
        return Err(Error::invalid(
            "UsernameToken/Password",
            "a PasswordDigest needs a Nonce and Created",
        ));
    }
    let Some(nonce) = nonce else {
        return Ok(Token::Text {
            user,
            password: pw.text.trim().to_string(),
            nonce: None,
        });
    };
    use base64::Engine;
    let nonce_bytes = base64::engine::general_purpose::STANDARD
        .decode(&nonce)
        .ok()
        .filter(|b| (1..=64).contains(&b.len()))
        .ok_or_else(|| Error::invalid("UsernameToken/Nonce", "must be base64 of 1 to 64 bytes"))?;
    let created =
        created.ok_or_else(|| Error::invalid("UsernameToken/Created", "goes with a Nonce"))?;
    let at = chrono::DateTime::parse_from_rfc3339(&created).map_err(|_| {
        Error::invalid(
            "UsernameToken/Created",
            format!("{created:?} is not a time"),
        )
    })?;
    let age = (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_seconds();
    if age.abs() > NONCE_WINDOW_SECS {
        return Err(Error::NotAllowed(format!(
            "the token was created {age} s ago; at most {NONCE_WINDOW_SECS} s either way"
        )));
    }
    Ok(if digest {
        Token::Digest(DigestToken {
            user,
            digest: pw.text.trim().to_string(),
            nonce,
            nonce_bytes,
            created,
        })
    } else {
        Token::Text {
            user,
            password: pw.text.trim().to_string(),
            nonce: Some(nonce),
        }
    })
}

/// The `Line`s of an order operation.
fn order_lines(op: &El) -> Result<Vec<OrderLine>, Error> {
    let mut lines = vec![];
    for (i, l) in op.all("Line").enumerate() {
        let path = format!("{}/Line[{}]", op.name, i + 1);
        let item_id = l
            .text_of("ItemId")
            .ok_or_else(|| Error::invalid(format!("{path}/ItemId"), "is missing"))?;
        let q = l
            .text_of("Quantity")
            .ok_or_else(|| Error::invalid(format!("{path}/Quantity"), "is missing"))?;
        let quantity = q.parse::<i32>().map_err(|_| {
            Error::invalid(
                format!("{path}/Quantity"),
                format!("{q:?} is not an xs:int"),
            )
        })?;
        lines.push(OrderLine {
            item_id,
            quantity: i64::from(quantity),
        });
    }
    Ok(lines)
}

/// An order's answer (`CreateOrderResponse`, `AddToOrderResponse`).
fn order_xml(ns: &str, element: &str, v: &orders::OrderView) -> String {
    let mut x = format!(
        "<s:{element} xmlns:s=\"{ns}\"><s:OrderId>{}</s:OrderId>\
         <s:ErpOrderId>{}</s:ErpOrderId><s:Ticket>{}</s:Ticket><s:Created>{}</s:Created>",
        v.order_id,
        esc(&v.erp_order_id),
        esc(&v.ticket),
        v.created
    );
    for l in &v.lines {
        x.push_str(&format!(
            "<s:Line><s:ItemId>{}</s:ItemId><s:Quantity>{}</s:Quantity>",
            esc(&l.item_id),
            l.quantity
        ));
        for id in &l.licenses {
            x.push_str(&format!("<s:LicenseId>{id}</s:LicenseId>"));
        }
        x.push_str("</s:Line>");
    }
    x.push_str(&format!("</s:{element}>"));
    x
}

async fn create_order(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    let cust = op
        .child("Customer")
        .ok_or_else(|| Error::invalid("CreateOrder/Customer", "is missing"))?;
    let req = NewOrder {
        source: op.text_of("Source").unwrap_or_else(|| "soap".into()),
        erp_order_id: op.text_of("ErpOrderId"),
        customer: CustomerData {
            external_id: cust
                .text_of("ExternalId")
                .ok_or_else(|| Error::invalid("CreateOrder/Customer/ExternalId", "is missing"))?,
            name: cust.text_of("Name"),
            email: cust.text_of("Email"),
            locale: cust.text_of("Locale"),
        },
        comment: op.text_of("Comment").unwrap_or_default(),
        lines: order_lines(op)?,
    };
    let v = orders::create_order(core, actor, req).await?;
    Ok(order_xml(ns, "CreateOrderResponse", &v))
}

async fn add_to_order(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    let req = orders::AddToOrder {
        batch_key: op.text_of("BatchKey"),
        lines: order_lines(op)?,
    };
    let v = orders::add_to_order(
        core,
        actor,
        need(op, "Source")?,
        need(op, "ErpOrderId")?,
        req,
    )
    .await?;
    Ok(order_xml(ns, "AddToOrderResponse", &v))
}

fn change_xml(tag: &str, c: &crate::service::lifecycle::LicenseChange) -> String {
    format!(
        "<s:{tag}><s:LicenseId>{}</s:LicenseId><s:State>{}</s:State>{}</s:{tag}>",
        c.license_id,
        c.state,
        c.serial
            .as_ref()
            .map(|s| format!("<s:Serial>{}</s:Serial>", esc(s)))
            .unwrap_or_default()
    )
}

/// WithdrawLicenses, ReplaceLicense, SplitLicense.
async fn license_control(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    use crate::service::lifecycle;
    let inner = match op.name.as_str() {
        "WithdrawLicenses" => {
            let req = lifecycle::WithdrawRequest {
                licenses: license_ids(op)?,
                reason: op.text_of("Reason").unwrap_or_default(),
            };
            let out = lifecycle::withdraw(core, actor, req).await?;
            out.iter().map(|c| change_xml("License", c)).collect()
        }
        "ReplaceLicense" => {
            let req = lifecycle::ReplaceRequest {
                license_id: long(op, "LicenseId")?,
                item_id: need(op, "ItemId")?,
            };
            let r = lifecycle::replace(core, actor, req).await?;
            format!("{}{}", change_xml("Old", &r.old), change_xml("New", &r.new))
        }
        "SplitLicense" => {
            let mut quantities = vec![];
            for (i, q) in op.all("Quantity").enumerate() {
                let t = q.text.trim();
                quantities.push(t.parse::<u32>().map_err(|_| {
                    Error::invalid(
                        format!("SplitLicense/Quantity[{}]", i + 1),
                        format!("{t:?} is not a positive xs:int"),
                    )
                })?);
            }
            let req = lifecycle::SplitRequest {
                license_id: long(op, "LicenseId")?,
                quantities,
            };
            let ids = lifecycle::split(core, actor, req).await?;
            ids.iter()
                .map(|id| format!("<s:LicenseId>{id}</s:LicenseId>"))
                .collect()
        }
        other => {
            return Err(Error::internal(format!(
                "Sales.{other} is declared but not wired"
            )))
        }
    };
    Ok(format!(
        "<s:{0}Response xmlns:s=\"{ns}\">{inner}</s:{0}Response>",
        op.name
    ))
}

async fn get_ticket(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    let code = op
        .text_of("Ticket")
        .ok_or_else(|| Error::invalid("GetTicket/Ticket", "is missing"))?;
    let t = orders::get_ticket(core, actor, &code).await?;
    let mut x = format!(
        "<s:GetTicketResponse xmlns:s=\"{ns}\"><s:Ticket>{}</s:Ticket>\
         <s:CustomerId>{}</s:CustomerId><s:State>{}</s:State>",
        esc(&t.ticket),
        esc(&t.customer_id),
        esc(&t.state)
    );
    for l in &t.licenses {
        x.push_str(&format!(
            "<s:License><s:LicenseId>{}</s:LicenseId><s:ItemId>{}</s:ItemId>\
             <s:FirmCode>{}</s:FirmCode><s:ProductCode>{}</s:ProductCode><s:State>{}</s:State>",
            l.license_id,
            esc(&l.item_id),
            l.firm_code,
            l.product_code,
            esc(&l.state)
        ));
        if let Some(s) = &l.serial {
            x.push_str(&format!("<s:Serial>{}</s:Serial>", esc(s)));
        }
        x.push_str("</s:License>");
    }
    x.push_str("</s:GetTicketResponse>");
    Ok(x)
}

/// `RunReport`: a report's columns, rows and CSV (the same as `GET /api/v1/reports/…`).
async fn run_report(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    use crate::service::reports::{self, Report};
    let name = op
        .text_of("Name")
        .ok_or_else(|| Error::invalid("RunReport/Name", "is missing"))?;
    if let Some(d) = op.text_of("Days") {
        d.parse::<i32>()
            .map_err(|_| Error::invalid("RunReport/Days", format!("{d:?} is not an xs:int")))?;
    }
    if let Some(l) = op.text_of("LicenseId") {
        l.parse::<i64>().map_err(|_| {
            Error::invalid("RunReport/LicenseId", format!("{l:?} is not an xs:long"))
        })?;
    }
    let param = |p: &str| -> Option<String> {
        let element = match p {
            "serial" => "Serial",
            "days" => "Days",
            "customer_id" => "CustomerId",
            "ticket" => "Ticket",
            "license_id" => "LicenseId",
            _ => return None,
        };
        op.text_of(element)
    };
    let report = Report::parse(&name, param).map_err(|e| match e {
        Error::Invalid { field, reason } => Error::invalid(format!("RunReport/{field}"), reason),
        other => other,
    })?;
    let table = reports::run(core, actor, report).await?;
    let mut x = format!(
        "<r:RunReportResponse xmlns:r=\"{ns}\"><r:Report>{}</r:Report>",
        esc(table.report)
    );
    for c in table.columns {
        x.push_str(&format!("<r:Column>{}</r:Column>", esc(c)));
    }
    for row in &table.rows {
        x.push_str("<r:Row>");
        for v in row {
            let text = match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            x.push_str(&format!("<r:Value>{}</r:Value>", esc(&text)));
        }
        x.push_str("</r:Row>");
    }
    x.push_str(&format!(
        "<r:Csv>{}</r:Csv></r:RunReportResponse>",
        esc(&table.to_csv()?)
    ));
    Ok(x)
}

fn iso(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The license ids an operation names (`LicenseId` elements), each an xs:long.
fn license_ids(op: &El) -> Result<Vec<i64>, Error> {
    op.all("LicenseId")
        .enumerate()
        .map(|(i, e)| {
            let t = e.text.trim();
            t.parse().map_err(|_| {
                Error::invalid(
                    format!("{}/LicenseId[{}]", op.name, i + 1),
                    format!("{t:?} is not an xs:long"),
                )
            })
        })
        .collect()
}

fn need(op: &El, name: &str) -> Result<String, Error> {
    op.text_of(name)
        .ok_or_else(|| Error::invalid(format!("{}/{name}", op.name), "is missing"))
}

/// An update's fields (the Depot's `Update` type), inside an element the caller opens.
fn update_fields(d: &str, u: &crate::service::activation::Issued) -> String {
    let list = |tag: &str, ids: &[i64]| -> String {
        ids.iter()
            .map(|id| format!("<{d}:{tag}>{id}</{d}:{tag}>"))
            .collect()
    };
    format!(
        "<{d}:Serial>{}</{d}:Serial><{d}:FirmCode>{}</{d}:FirmCode><{d}:UpdateId>{}</{d}:UpdateId>\
         <{d}:CounterFrom>{}</{d}:CounterFrom><{d}:CounterTo>{}</{d}:CounterTo>\
         <{d}:ExpiresAt>{}</{d}:ExpiresAt>{}{}{}<{d}:Locked>{}</{d}:Locked><{d}:Update>{}</{d}:Update>",
        esc(&u.serial),
        u.firm_code,
        u.update_id,
        u.counter_from,
        u.counter_to,
        iso(u.expires_at),
        list("Added", &u.added),
        list("Changed", &u.changed),
        list("Deleted", &u.deleted),
        u.locked,
        esc(&u.update)
    )
}

/// The Depot's operations: the same service functions as the JSON gateway.
async fn depot(core: &Core, ns: &str, op: &El) -> Result<String, Error> {
    use crate::service::{activation, lifecycle};
    let iface = Interface::Soap;
    let wrap = |name: &str, inner: String| {
        format!("<d:{name}Response xmlns:d=\"{ns}\">{inner}</d:{name}Response>")
    };
    Ok(match op.name.as_str() {
        "TicketInfo" => {
            let t = activation::ticket_info(core, &need(op, "Ticket")?).await?;
            let mut x = format!("<d:Ticket>{}</d:Ticket>", esc(&t.ticket));
            for l in &t.licenses {
                x.push_str(&format!(
                    "<d:License><d:LicenseId>{}</d:LicenseId><d:ItemId>{}</d:ItemId>\
                     <d:FirmCode>{}</d:FirmCode><d:ProductCode>{}</d:ProductCode>\
                     <d:State>{}</d:State>{}<d:Returnable>{}</d:Returnable></d:License>",
                    l.license_id,
                    esc(&l.item_id),
                    l.firm_code,
                    l.product_code,
                    l.state,
                    l.serial
                        .as_ref()
                        .map(|s| format!("<d:Serial>{}</d:Serial>", esc(s)))
                        .unwrap_or_default(),
                    l.returnable
                ));
            }
            wrap("TicketInfo", x)
        }
        "Template" => {
            let t = activation::template(core, long(op, "FirmCode")?).await?;
            let keys: String = t
                .keys
                .iter()
                .map(|(id, k)| {
                    format!(
                        "<d:Key><d:KeyId>{}</d:KeyId><d:PublicKey>{}</d:PublicKey></d:Key>",
                        esc(id),
                        esc(k)
                    )
                })
                .collect();
            wrap(
                "Template",
                format!(
                    "<d:FirmCode>{}</d:FirmCode><d:FirmName>{}</d:FirmName>{keys}\
                     <d:CurrentKey>{}</d:CurrentKey>\
                     <d:FingerprintTolerance>{}</d:FingerprintTolerance>",
                    t.firm_code,
                    esc(&t.firm_name),
                    esc(&t.current_key),
                    t.fingerprint_tolerance
                ),
            )
        }
        "Restore" => {
            let traits = op
                .all("Trait")
                .map(|t| crate::protocol::Trait {
                    name: t.text_of("Name").unwrap_or_default(),
                    hash: t.text_of("Hash").unwrap_or_default(),
                })
                .collect();
            let req = lifecycle::RestoreRequest {
                old_serial: need(op, "OldSerial")?,
                request: need(op, "Request")?,
                traits,
            };
            let u = lifecycle::restore(core, iface, req).await?;
            wrap("Restore", update_fields("d", &u))
        }
        "Activate" => {
            let req = activation::ActivateRequest {
                ticket: need(op, "Ticket")?,
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = activation::activate(core, iface, req).await?;
            wrap("Activate", update_fields("d", &u))
        }
        "Reactivate" => {
            let req = lifecycle::ReactivateRequest {
                ticket: need(op, "Ticket")?,
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = lifecycle::reactivate(core, iface, req).await?;
            wrap("Reactivate", update_fields("d", &u))
        }
        "Return" => {
            let req = activation::ReturnRequest {
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = activation::deactivate(core, iface, req).await?;
            wrap("Return", update_fields("d", &u))
        }
        "PullUpdates" => {
            let u = activation::pull_updates(core, iface, &need(op, "Request")?).await?;
            let inner = u
                .map(|u| format!("<d:Update>{}</d:Update>", update_fields("d", &u)))
                .unwrap_or_default();
            wrap("PullUpdates", inner)
        }
        "ConfirmReceipt" => {
            let c = activation::confirm_receipt(core, iface, &need(op, "Receipt")?).await?;
            let list = |tag: &str, ids: &[i64]| -> String {
                ids.iter()
                    .map(|id| format!("<d:{tag}>{id}</d:{tag}>"))
                    .collect()
            };
            wrap(
                "ConfirmReceipt",
                format!(
                    "<d:Serial>{}</d:Serial><d:FirmCode>{}</d:FirmCode><d:Counter>{}</d:Counter>\
                     <d:AlreadyConfirmed>{}</d:AlreadyConfirmed>{}{}",
                    esc(&c.serial),
                    c.firm_code,
                    c.counter,
                    c.already_confirmed,
                    list("Activated", &c.activated),
                    list("Released", &c.released)
                ),
            )
        }
        other => {
            return Err(Error::internal(format!(
                "Depot.{other} is declared but not wired"
            )))
        }
    })
}

fn opt_long(op: &El, name: &str) -> Result<Option<i64>, Error> {
    op.text_of(name)
        .map(|t| {
            t.parse().map_err(|_| {
                Error::invalid(
                    format!("{}/{name}", op.name),
                    format!("{t:?} is not an xs:long"),
                )
            })
        })
        .transpose()
}

fn long(op: &El, name: &str) -> Result<i64, Error> {
    opt_long(op, name)?.ok_or_else(|| Error::invalid(format!("{}/{name}", op.name), "is missing"))
}

fn boolean(op: &El, name: &str) -> Result<bool, Error> {
    match need(op, name)?.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::invalid(
            format!("{}/{name}", op.name),
            format!("{other:?} is not an xs:boolean"),
        )),
    }
}

fn approval_xml(a: &crate::service::lifecycle::ApprovalView) -> String {
    format!(
        "<a:Approval><a:ApprovalId>{}</a:ApprovalId><a:Kind>{}</a:Kind>{}<a:OldSerial>{}\
         </a:OldSerial><a:Serial>{}</a:Serial><a:Why>{}</a:Why><a:State>{}</a:State>\
         <a:RequestedAt>{}</a:RequestedAt>{}<a:Reason>{}</a:Reason></a:Approval>",
        a.approval_id,
        esc(&a.kind),
        a.license_id
            .map(|l| format!("<a:LicenseId>{l}</a:LicenseId>"))
            .unwrap_or_default(),
        esc(&a.old_serial),
        esc(&a.serial),
        esc(&a.why),
        a.state,
        iso(a.requested_at),
        a.decided_by
            .as_ref()
            .map(|d| format!("<a:DecidedBy>{}</a:DecidedBy>", esc(d)))
            .unwrap_or_default(),
        esc(&a.reason)
    )
}

fn role(op: &El) -> Result<Option<crate::domain::Role>, Error> {
    op.text_of("Role")
        .map(|r| {
            crate::domain::Role::parse(&r).map_err(|_| {
                Error::invalid(
                    format!("{}/Role", op.name),
                    format!("{r:?} is not admin, sales, support or erp"),
                )
            })
        })
        .transpose()
}

fn customer_xml(c: &crate::service::catalog::Customer) -> String {
    format!(
        "<a:Customer><a:ExternalId>{}</a:ExternalId><a:Name>{}</a:Name><a:Email>{}</a:Email>\
         <a:Locale>{}</a:Locale></a:Customer>",
        esc(&c.external_id),
        esc(&c.name),
        esc(&c.email),
        esc(&c.locale)
    )
}

fn user_xml(u: &users::User) -> String {
    format!(
        "<a:User><a:Username>{}</a:Username><a:Role>{}</a:Role><a:Active>{}</a:Active></a:User>",
        esc(&u.username),
        esc(&u.role),
        u.active
    )
}

/// How a field of a typed element (item options, settings) is read and written.
#[derive(Clone, Copy)]
enum Ty {
    Int,
    Bool,
    Str,
    Time,
    Enum(&'static [&'static str]),
    /// Repeated element, each an enumeration value.
    List(&'static [&'static str]),
    Obj(&'static [(&'static str, &'static str, Ty)]),
}

const POLICIES: &[&str] = &["allowed", "after_blocking_period", "approval", "never"];
const BEHAVIOURS: &[&str] = &["none", "blacklist", "withdraw"];

/// Item options: element, JSON field, type.
const OPTIONS: &[(&str, &str, Ty)] = &[
    (
        "ContainerType",
        "container_types",
        Ty::List(&["act", "dongle", "cloud"]),
    ),
    ("LicenseQuantity", "license_quantity", Ty::Int),
    ("FeatureMap", "feature_map", Ty::Int),
    ("ExpirationTime", "expiration_time", Ty::Time),
    ("UsagePeriodDays", "usage_period_days", Ty::Int),
    ("ActivationTime", "activation_time", Ty::Time),
    ("UnitCounter", "unit_counter", Ty::Int),
    ("MaintenancePeriodDays", "maintenance_period_days", Ty::Int),
    ("Text", "text", Ty::Str),
    ("UserData", "user_data", Ty::Str),
    ("ProtectedData", "protected_data", Ty::Str),
    ("DeactivationAllowed", "deactivation_allowed", Ty::Bool),
    ("Reactivation", "reactivation", Ty::Enum(POLICIES)),
    (
        "ReactivationBehaviour",
        "reactivation_behaviour",
        Ty::Enum(BEHAVIOURS),
    ),
    ("BlockingPeriodDays", "blocking_period_days", Ty::Int),
    ("SelfServiceCount", "self_service_count", Ty::Int),
    (
        "Update",
        "update",
        Ty::Obj(&[
            ("ExtendExpirationDays", "extend_expiration_days", Ty::Int),
            ("ExtendMaintenanceDays", "extend_maintenance_days", Ty::Int),
            ("AddFeatures", "add_features", Ty::Int),
            ("AddQuantity", "add_quantity", Ty::Int),
        ]),
    ),
];

/// The firm's settings: element, JSON field, type.
const SETTINGS: &[(&str, &str, Ty)] = &[
    ("DeactivationAllowed", "deactivation_allowed", Ty::Bool),
    (
        "ReactivationBehaviour",
        "reactivation_behaviour",
        Ty::Enum(BEHAVIOURS),
    ),
    ("BlockingPeriodDays", "blocking_period_days", Ty::Int),
    ("SelfServiceCount", "self_service_count", Ty::Int),
    ("LockItem", "lock_item", Ty::Str),
    (
        "AutomaticUpdateHandling",
        "automatic_update_handling",
        Ty::Bool,
    ),
    ("DuplicateCheck", "duplicate_check", Ty::Bool),
    (
        "AcceptExternallyCreatedEntries",
        "accept_externally_created_entries",
        Ty::Bool,
    ),
    (
        "MonthlyActivationQuota",
        "monthly_activation_quota",
        Ty::Int,
    ),
    ("SingleContainer", "single_container", Ty::Bool),
    (
        "ActivationMode",
        "activation_mode",
        Ty::Enum(&["all", "selected"]),
    ),
    ("FingerprintTolerance", "fingerprint_tolerance", Ty::Int),
    ("UpdateValidityDays", "update_validity_days", Ty::Int),
    ("Reactivation", "reactivation", Ty::Enum(POLICIES)),
    ("Restore", "restore", Ty::Enum(POLICIES)),
];

/// Reads a typed element's children into a JSON object; a wrong value or an unknown field
/// is an error naming the element.
fn typed_json(
    path: &str,
    el: &El,
    table: &[(&str, &str, Ty)],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    for c in &el.children {
        let at = format!("{path}/{}", c.name);
        let (_, key, ty) = table
            .iter()
            .find(|(x, _, _)| *x == c.name)
            .ok_or_else(|| Error::invalid(at.clone(), "is not a field here"))?;
        let t = c.text.trim();
        let bad = |what: &str| Error::invalid(at.clone(), format!("{t:?} is not {what}"));
        let v = match ty {
            Ty::Int => Value::from(t.parse::<i64>().map_err(|_| bad("an integer"))?),
            Ty::Bool => Value::Bool(match t {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad("an xs:boolean")),
            }),
            Ty::Str => Value::String(t.to_string()),
            Ty::Time => {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|_| bad("an xs:dateTime"))?;
                Value::String(t.to_string())
            }
            Ty::Enum(values) | Ty::List(values) => {
                if !values.contains(&t) {
                    return Err(bad(&format!("one of {}", values.join(", "))));
                }
                Value::String(t.to_string())
            }
            Ty::Obj(inner) => Value::Object(typed_json(&at, c, inner)?),
        };
        if let Ty::List(_) = ty {
            match out
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(vec![]))
            {
                Value::Array(a) => a.push(v),
                _ => unreachable!("a list field is an array"),
            }
        } else {
            out.insert(key.to_string(), v);
        }
    }
    Ok(out)
}

/// Writes a JSON object as the typed element's children (fields without a value left out).
fn typed_xml(p: &str, v: &serde_json::Value, table: &[(&str, &str, Ty)]) -> String {
    use serde_json::Value;
    let mut x = String::new();
    for (name, key, ty) in table {
        let text = |v: &Value| match v {
            Value::String(s) => esc(s),
            other => other.to_string(),
        };
        match (v.get(*key), ty) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::Array(a)), _) => {
                for e in a {
                    x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", text(e)));
                }
            }
            (Some(o @ Value::Object(_)), Ty::Obj(inner)) => {
                x.push_str(&format!(
                    "<{p}:{name}>{}</{p}:{name}>",
                    typed_xml(p, o, inner)
                ));
            }
            (Some(Value::String(s)), Ty::Time) => {
                let t = chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    })
                    .unwrap_or_else(|_| s.clone());
                x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", esc(&t)));
            }
            (Some(other), _) => x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", text(other))),
        }
    }
    x
}

fn item_xml(i: &crate::service::catalog::Item) -> String {
    let options = serde_json::to_value(&i.options).unwrap_or_default();
    format!(
        "<a:Item><a:ItemId>{}</a:ItemId><a:Name>{}</a:Name><a:Kind>{}</a:Kind>\
         <a:FirmCode>{}</a:FirmCode><a:ProductCode>{}</a:ProductCode><a:Active>{}</a:Active>\
         <a:Version>{}</a:Version><a:Options>{}</a:Options></a:Item>",
        esc(&i.item_id),
        esc(&i.name),
        i.kind.as_str(),
        i.firm_code,
        i.product_code,
        i.active,
        i.version,
        typed_xml("a", &options, OPTIONS)
    )
}

fn options_of(op: &El) -> Result<Option<crate::domain::ItemOptions>, Error> {
    let Some(o) = op.child("Options") else {
        return Ok(None);
    };
    let path = format!("{}/Options", op.name);
    let json = typed_json(&path, o, OPTIONS)?;
    serde_json::from_value(serde_json::Value::Object(json))
        .map(Some)
        .map_err(|e| Error::invalid(path, e.to_string()))
}

/// The Admin service's operations: the same service functions as the JSON API.
async fn admin(
    core: &Core,
    actor: &crate::domain::Actor,
    ns: &str,
    op: &El,
) -> Result<String, Error> {
    use crate::service::{activation, lifecycle};
    let wrap = |inner: String| {
        format!(
            "<a:{0}Response xmlns:a=\"{ns}\">{inner}</a:{0}Response>",
            op.name
        )
    };
    let serial = |op: &El| need(op, "Serial");
    Ok(match op.name.as_str() {
        "BlacklistContainer" => {
            let s = serial(op)?;
            let req = lifecycle::BlacklistAdd {
                serial: s.clone(),
                description: need(op, "Description")?,
                firm_code: opt_long(op, "FirmCode")?,
            };
            lifecycle::blacklist_add(core, actor, req).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "RemoveFromBlacklist" => {
            let s = serial(op)?;
            let (reason, firm) = (need(op, "Reason")?, opt_long(op, "FirmCode")?);
            lifecycle::blacklist_remove(core, actor, s.clone(), firm, reason).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "ResetContainer" => {
            let ids = lifecycle::reset(core, actor, serial(op)?, opt_long(op, "FirmCode")?).await?;
            wrap(
                ids.iter()
                    .map(|id| format!("<a:DeletedLicenseId>{id}</a:DeletedLicenseId>"))
                    .collect(),
            )
        }
        "AssignContainer" => {
            let s = serial(op)?;
            lifecycle::assign(core, actor, s.clone(), need(op, "CustomerId")?).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "PushLicense" => {
            activation::push_license(core, actor, serial(op)?, long(op, "LicenseId")?).await?;
            wrap("<a:Queued>true</a:Queued>".into())
        }
        "ListApprovals" => {
            let state = op.text_of("State");
            if let Some(st) = &state {
                if !["open", "approved", "denied"].contains(&st.as_str()) {
                    return Err(Error::invalid(
                        "ListApprovals/State",
                        format!("{st:?} is not open, approved or denied"),
                    ));
                }
            }
            let list = lifecycle::list_approvals(core, actor, state).await?;
            wrap(list.iter().map(approval_xml).collect())
        }
        "DecideApproval" => {
            let id = long(op, "ApprovalId")?;
            let approve = boolean(op, "Approve")?;
            let reason = op.text_of("Reason").unwrap_or_default();
            let a = lifecycle::decide(core, actor, id, approve, reason).await?;
            wrap(approval_xml(&a))
        }
        "PutCustomer" => {
            let data = CustomerData {
                external_id: need(op, "ExternalId")?,
                name: op.text_of("Name"),
                email: op.text_of("Email"),
                locale: op.text_of("Locale"),
            };
            let c = crate::service::catalog::put_customer(core, actor, data).await?;
            wrap(customer_xml(&c))
        }
        "GetCustomer" => {
            let c =
                crate::service::catalog::get_customer(core, actor, need(op, "ExternalId")?).await?;
            wrap(customer_xml(&c))
        }
        "ListItems" => {
            let list = crate::service::catalog::list_items(core, actor).await?;
            wrap(list.iter().map(item_xml).collect())
        }
        "GetItem" => {
            let i = crate::service::catalog::get_item(core, actor, need(op, "ItemId")?).await?;
            wrap(item_xml(&i))
        }
        "CreateItem" => {
            let kind = op.text_of("Kind").unwrap_or_else(|| "license".into());
            let req = crate::service::catalog::NewItem {
                item_id: need(op, "ItemId")?,
                name: need(op, "Name")?,
                kind: crate::domain::ItemKind::parse(&kind)
                    .map_err(|e| Error::invalid("CreateItem/Kind", e.to_string()))?,
                firm_code: opt_long(op, "FirmCode")?,
                product_code: long(op, "ProductCode")?,
                options: options_of(op)?.unwrap_or_default(),
            };
            wrap(item_xml(
                &crate::service::catalog::create_item(core, actor, req).await?,
            ))
        }
        "ChangeItem" => {
            let active = match op.text_of("Active") {
                Some(_) => Some(boolean(op, "Active")?),
                None => None,
            };
            let req = crate::service::catalog::ItemChange {
                version: i32::try_from(long(op, "Version")?)
                    .map_err(|_| Error::invalid("ChangeItem/Version", "out of range"))?,
                name: op.text_of("Name"),
                options: options_of(op)?,
                active,
            };
            let i =
                crate::service::catalog::change_item(core, actor, need(op, "ItemId")?, req).await?;
            wrap(item_xml(&i))
        }
        "GetSettings" => {
            let st = crate::service::catalog::get_settings(core, actor).await?;
            let v = serde_json::to_value(&st).unwrap_or_default();
            wrap(format!(
                "<a:Settings>{}</a:Settings>",
                typed_xml("a", &v, SETTINGS)
            ))
        }
        "PutSettings" => {
            let el = op
                .child("Settings")
                .ok_or_else(|| Error::invalid("PutSettings/Settings", "is missing"))?;
            let json = typed_json("PutSettings/Settings", el, SETTINGS)?;
            let new: crate::domain::Settings =
                serde_json::from_value(serde_json::Value::Object(json))
                    .map_err(|e| Error::invalid("PutSettings/Settings", e.to_string()))?;
            let st = crate::service::catalog::put_settings(core, actor, new).await?;
            let v = serde_json::to_value(&st).unwrap_or_default();
            wrap(format!(
                "<a:Settings>{}</a:Settings>",
                typed_xml("a", &v, SETTINGS)
            ))
        }
        "ListUsers" => {
            let list = users::list_users(core, actor).await?;
            wrap(list.iter().map(user_xml).collect())
        }
        "AddUser" => {
            let req = users::NewUser {
                username: need(op, "Username")?,
                password: need(op, "Password")?,
                role: role(op)?.ok_or_else(|| Error::invalid("AddUser/Role", "is missing"))?,
            };
            wrap(user_xml(&users::add_user(core, actor, req).await?))
        }
        "ChangeUser" => {
            let active = match op.text_of("Active") {
                Some(_) => Some(boolean(op, "Active")?),
                None => None,
            };
            let req = users::UserChange {
                password: op.text_of("Password"),
                role: role(op)?,
                active,
            };
            let u = users::change_user(core, actor, need(op, "Username")?, req).await?;
            wrap(user_xml(&u))
        }
        other => {
            return Err(Error::internal(format!(
                "Admin.{other} is declared but not wired"
            )))
        }
    })
}

/// `GET /soap/<Service>?wsdl`: the WSDL with this server's address.
async fn wsdl(core: Core_, name: web::Path<String>) -> HttpResponse {
    match service(&name) {
        Some(svc) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(
                svc.wsdl
                    .replace("{{BASE}}", core.config.public_url.trim_end_matches('/')),
            ),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn xsd(name: web::Path<String>) -> HttpResponse {
    match SERVICES.iter().find(|s| s.xsd_name == name.as_str()) {
        Some(svc) => HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(svc.xsd),
        None => HttpResponse::NotFound().finish(),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/soap/xsd/{name}", web::get().to(xsd))
        .route("/soap/{service}", web::post().to(endpoint))
        .route("/soap/{service}", web::get().to(wsdl));
}
