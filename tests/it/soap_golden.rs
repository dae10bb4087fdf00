//! The bytes on the wire of every SOAP operation, compared with golden files.
//!
//! One fixed script of requests to a fresh TestApp covers every operation of the four
//! services (Sales, Report, Admin, Depot) over SOAP 1.1 and 1.2 (the operations added later,
//! such as the production orders, at the script's end, so that the numbers of the files
//! before them stay as they were), their answers and a set of
//! faults (hostile envelopes, schema violations, wrong types, unknown operations, failed
//! authentication, domain errors). The Depot's requests and receipts are made by the real
//! client runtime (`licentia::client::Container`). Each response body is compared byte for
//! byte with `tests/fixtures/soap/NNN-<service>-<what>-<version>.xml`, after replacing only
//! what differs from run to run:
//!
//! - the body of an armoured message (`-----BEGIN LICENTIA …-----` to `-----END …-----`
//!   keep their lines; the base64 between them is encrypted and signed afresh each run);
//! - ticket codes (five groups of five from the ticket alphabet, random; also as stored,
//!   without the dashes, where the history names a ticket's actor) and `act`
//!   container serials (`130-` and ten random digits), each replaced by `TICKET-n` /
//!   `SERIAL-n` numbered in order of first appearance, so that the same value stays the same
//!   label throughout the script;
//! - the firm's key ids and public keys (made at random when the demo catalog is seeded),
//!   learned from the `KeyId`, `PublicKey` and `CurrentKey` elements and replaced wherever
//!   they appear by `KEY-n`;
//! - the history's event hashes and a container's digest (they cover times), learned from
//!   the `Hash` and `Digest` elements and replaced by `HASH-n`;
//! - times within 400 days of the run's clock (`YYYY-MM-DDThh:mm:ss`, with fraction and zone
//!   as sent): their digits become letters of the same shape (`YYYY-MM-DDThh:mm:ssZ`), so a
//!   change in the format still fails. Times the script sets itself (2030, 2001) are kept.
//!
//! Nothing else: ids (orders, licenses, updates, approvals), counters and messages are
//! compared as they are; the script runs one request at a time from a fresh database, so
//! they are the same on SQLite and PostgreSQL.
//!
//! `LICENTIA_WRITE_GOLDENS=1` writes the files from this run instead of comparing, and then
//! fails on purpose so that a run that writes is never taken for one that compared.
use std::collections::BTreeMap;

use licentia::client::{hash_trait, unix_now, Container};
use licentia::domain::{ContainerType, Role};

use crate::activation::{traits, FIRM};
use crate::harness::{TestApp, ADMIN_PW};

const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PW_TEXT: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
const PW_DIGEST: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";

#[derive(Clone, Copy, PartialEq)]
enum V {
    V11,
    V12,
}
use V::{V11, V12};

impl V {
    fn tag(self) -> &'static str {
        match self {
            V11 => "11",
            V12 => "12",
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            V11 => "text/xml; charset=utf-8",
            V12 => "application/soap+xml; charset=utf-8",
        }
    }
    fn ns(self) -> &'static str {
        match self {
            V11 => SOAP11,
            V12 => SOAP12,
        }
    }
}

/// Who the request is from.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
}

/// The service's namespace and the prefix the script's requests bind to it.
fn service_ns(service: &str) -> (&'static str, &'static str) {
    match service {
        "Sales" => ("s", "http://licentia.dev/ns/sales/v1"),
        "Report" => ("r", "http://licentia.dev/ns/report/v1"),
        "Admin" => ("a", "http://licentia.dev/ns/admin/v1"),
        "Depot" => ("d", "http://licentia.dev/ns/depot/v1"),
        other => panic!("no service {other}"),
    }
}

/// A request as sent: everything may be set by hand for the hostile cases.
struct Req<'a> {
    service: &'a str,
    content_type: String,
    soap_action: Option<String>,
    auth: Auth<'a>,
    body: String,
}

/// Runs the script and keeps each answer, normalised, in order.
struct Script<'a> {
    app: &'a TestApp,
    answers: Vec<(String, String)>,
    labels: Labels,
}

impl<'a> Script<'a> {
    fn envelope(v: V, service: &str, header: &str, op: &str) -> String {
        let (p, ns) = service_ns(service);
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{}\" \
             xmlns:{p}=\"{ns}\">{header}<soap:Body>{op}</soap:Body></soap:Envelope>",
            v.ns()
        )
    }

    fn req(v: V, service: &'a str, auth: Auth<'a>, body: String) -> Req<'a> {
        Req {
            service,
            content_type: match v {
                V11 => "text/xml; charset=utf-8".into(),
                V12 => "application/soap+xml; charset=utf-8".into(),
            },
            soap_action: None,
            auth,
            body,
        }
    }

    /// Sends `req`; the answer must have `status` and speak SOAP `v`. Returns the raw body.
    fn send(&mut self, what: &str, v: V, status: u16, req: Req) -> String {
        use base64::Engine;
        let mut r = ureq::post(&format!("{}/soap/{}", self.app.base, req.service))
            .set("Content-Type", &req.content_type);
        if let Auth::Basic(u, p) = req.auth {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            r = r.set("Authorization", &format!("Basic {b}"));
        }
        if let Some(a) = &req.soap_action {
            r = r.set("SOAPAction", a);
        }
        let (got, ct, body) = match r.send_string(&req.body) {
            Ok(r) => (r.status(), r.header("content-type").map(str::to_string), r),
            Err(ureq::Error::Status(s, r)) => (s, r.header("content-type").map(str::to_string), r),
            Err(e) => panic!("{what}: {e}"),
        };
        let body = body.into_string().unwrap();
        let name = format!(
            "{:03}-{}-{what}-{}.xml",
            self.answers.len() + 1,
            req.service,
            v.tag()
        );
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(ct.as_deref(), Some(v.content_type()), "{name}: {body}");
        assert!(
            body.contains(&format!("xmlns:env=\"{}\"", v.ns())),
            "{name}: {body}"
        );
        let normal = self.labels.normalise(&body);
        self.answers.push((name, normal));
        body
    }

    /// An operation that succeeds.
    fn ok(&mut self, what: &str, v: V, service: &'a str, auth: Auth<'a>, op: &str) -> String {
        let body = Self::envelope(v, service, "", op);
        self.send(what, v, 200, Self::req(v, service, auth, body))
    }

    /// An operation answered by a fault.
    fn fault(&mut self, what: &str, v: V, service: &'a str, auth: Auth<'a>, op: &str) -> String {
        let body = Self::envelope(v, service, "", op);
        self.send(what, v, 500, Self::req(v, service, auth, body))
    }

    /// An operation refused for its credentials: 401 with a challenge, the fault as body.
    fn denied(&mut self, what: &str, v: V, service: &'a str, auth: Auth<'a>, op: &str) -> String {
        let body = Self::envelope(v, service, "", op);
        self.send(what, v, 401, Self::req(v, service, auth, body))
    }

    /// An operation with a WS-Security header instead of HTTP Basic.
    fn with_header(&mut self, what: &str, v: V, status: u16, header: &str, op: &str) -> String {
        let body = Self::envelope(v, "Sales", header, op);
        self.send(what, v, status, Self::req(v, "Sales", Auth::None, body))
    }
}

/// The values that differ from run to run, each with the label it is replaced by.
#[derive(Default)]
struct Labels {
    tickets: Vec<String>,
    serials: Vec<String>,
    keys: Vec<String>,
    hashes: Vec<String>,
}

fn label(list: &mut Vec<String>, value: &str, kind: &str) -> String {
    let n = match list.iter().position(|v| v == value) {
        Some(i) => i + 1,
        None => {
            list.push(value.to_string());
            list.len()
        }
    };
    format!("{kind}-{n}")
}

impl Labels {
    fn normalise(&mut self, body: &str) -> String {
        // Keys first: learned from their elements, then replaced wherever they appear.
        for tag in ["KeyId", "PublicKey", "CurrentKey"] {
            for v in texts(body, tag) {
                label(&mut self.keys, &v, "KEY");
            }
        }
        // The history's hashes and a container's digest cover times: learned the same way.
        for tag in ["Hash", "Digest"] {
            for v in texts(body, tag) {
                label(&mut self.hashes, &v, "HASH");
            }
        }
        let mut s = body.to_string();
        for (i, k) in self.keys.iter().enumerate() {
            s = s.replace(k.as_str(), &format!("KEY-{}", i + 1));
        }
        for (i, h) in self.hashes.iter().enumerate() {
            s = s.replace(h.as_str(), &format!("HASH-{}", i + 1));
        }
        let s = armour(&s);
        let s = self.scan(&s);
        times(&s)
    }

    /// Ticket codes and act serials.
    fn scan(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let alphabet = licentia::domain::ticket::ALPHABET;
        let boundary = |j: usize| j >= b.len() || !b[j].is_ascii_alphanumeric();
        while i < b.len() {
            let before = out.len();
            let start_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            // As shown (five groups) or as stored (25 characters, in the history).
            for (len, dashed) in [(29, true), (25, false)] {
                if !(start_ok && i + len <= b.len() && boundary(i + len)) {
                    continue;
                }
                let cand = &b[i..i + len];
                let is_ticket = cand.iter().enumerate().all(|(k, c)| {
                    if dashed && k % 6 == 5 {
                        *c == b'-'
                    } else {
                        alphabet.contains(c)
                    }
                });
                if is_ticket {
                    let code: String = std::str::from_utf8(cand).unwrap().replace('-', "");
                    out.push_str(&label(&mut self.tickets, &code, "TICKET"));
                    i += len;
                    break;
                }
            }
            if out.len() != before {
                continue;
            }
            if start_ok
                && b[i..].starts_with(b"130-")
                && i + 14 <= b.len()
                && b[i + 4..i + 14].iter().all(u8::is_ascii_digit)
                && (i + 14 == b.len() || !b[i + 14].is_ascii_digit())
            {
                let serial = std::str::from_utf8(&b[i..i + 14]).unwrap();
                out.push_str(&label(&mut self.serials, serial, "SERIAL"));
                i += 14;
                continue;
            }
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
        out
    }
}

/// The texts of the elements named `tag` (any prefix).
fn texts(body: &str, tag: &str) -> Vec<String> {
    let mut out = vec![];
    let open = format!(":{tag}>");
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        // An opening tag: `<p:Tag>`, not `</p:Tag>`.
        let before = &rest[..i];
        let lt = before.rfind('<').unwrap_or(0);
        if !before[lt..].starts_with("</") {
            if let Some(j) = after.find('<') {
                out.push(after[..j].to_string());
            }
        }
        rest = after;
    }
    out
}

/// The base64 of armoured messages.
fn armour(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("-----BEGIN LICENTIA ") {
        let Some(head_end) = rest[i..].find('\n').map(|j| i + j + 1) else {
            break;
        };
        let Some(end) = rest[head_end..]
            .find("-----END LICENTIA ")
            .map(|j| head_end + j)
        else {
            break;
        };
        out.push_str(&rest[..head_end]);
        out.push_str("(armoured)\n");
        rest = &rest[end..];
        out.push_str("-----END LICENTIA ");
        rest = &rest["-----END LICENTIA ".len()..];
    }
    out.push_str(rest);
    out
}

/// Times near the run's clock, digits masked, shape kept.
fn times(s: &str) -> String {
    let now = chrono::Utc::now().naive_utc();
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let fits = i + shape.len() <= b.len()
            && (i == 0 || !b[i - 1].is_ascii_digit())
            && shape.iter().zip(&b[i..]).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                other => other == c,
            });
        if fits {
            let text = &s[i..i + shape.len()];
            let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").unwrap();
            if (t - now).num_days().abs() <= 400 {
                out.push_str("YYYY-MM-DDThh:mm:ss");
                i += shape.len();
                // A fraction of a second is masked too; the zone is kept as it is.
                if b.get(i) == Some(&b'.') {
                    out.push('.');
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        out.push('f');
                        i += 1;
                    }
                }
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The first text of `<p:tag>` in an answer.
fn first(body: &str, tag: &str) -> String {
    texts(body, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
}

fn longs(body: &str, tag: &str) -> Vec<i64> {
    texts(body, tag)
        .iter()
        .map(|t| t.parse().unwrap())
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn token(user: &str, pw: &str, ty: &str, nonce: Option<(&str, &str)>) -> String {
    let extra = nonce
        .map(|(n, c)| format!("<wsse:Nonce>{n}</wsse:Nonce><wsu:Created>{c}</wsu:Created>"))
        .unwrap_or_default();
    format!(
        "<soap:Header><wsse:Security xmlns:wsse=\"{WSSE}\" xmlns:wsu=\"{WSU}\" \
         soap:mustUnderstand=\"1\"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username>\
         <wsse:Password Type=\"{ty}\">{pw}</wsse:Password>{extra}</wsse:UsernameToken>\
         </wsse:Security></soap:Header>"
    )
}

fn digest(nonce: &[u8], created: &str, pw: &str) -> String {
    use base64::Engine;
    let mut d = nonce.to_vec();
    d.extend_from_slice(created.as_bytes());
    d.extend_from_slice(pw.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha1(&d))
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A new act container trusting the firm keys of a Template answer.
fn container(template: &str) -> Container {
    let mut c = Container::create(ContainerType::Act, None, &traits(), 2).unwrap();
    let keys: BTreeMap<String, String> = texts(template, "KeyId")
        .into_iter()
        .zip(texts(template, "PublicKey"))
        .collect();
    c.trust(FIRM, &unescape(&first(template, "FirmName")), &keys);
    c
}

fn request(c: &mut Container) -> String {
    c.request(FIRM, unix_now()).unwrap()
}

/// Applies the Update of a Depot answer in `c`; its receipt.
fn apply(c: &mut Container, answer: &str) -> String {
    // In PullUpdates the armoured text is inside an `Update` element of its own.
    let update = texts(answer, "Update")
        .into_iter()
        .find(|u| u.starts_with("-----BEGIN"))
        .unwrap_or_else(|| panic!("no update in {answer}"));
    c.apply(&update, unix_now()).unwrap().receipt
}

fn ids_xml(p: &str, tag: &str, ids: &[i64]) -> String {
    ids.iter()
        .map(|i| format!("<{p}:{tag}>{i}</{p}:{tag}>"))
        .collect()
}

#[test]
fn soap_answers_are_byte_for_byte_the_golden_ones() {
    let app = TestApp::start();
    let erp_pw = app.add_user("erp", Role::Erp);
    let sam_pw = app.add_user("sam", Role::Sales);
    let sue_pw = app.add_user("sue", Role::Support);
    let erp = Auth::Basic("erp", &erp_pw);
    let sam = Auth::Basic("sam", &sam_pw);
    let sue = Auth::Basic("sue", &sue_pw);
    let admin = Auth::Basic("admin", ADMIN_PW);
    let mut g = Script {
        app: &app,
        answers: vec![],
        labels: Labels::default(),
    };

    // ---- Sales ----
    let order1 = "<s:CreateOrder><s:Source>sap</s:Source><s:ErpOrderId>SO-1</s:ErpOrderId>\
        <s:Customer><s:ExternalId>C-G</s:ExternalId><s:Name>Müller &amp; Co</s:Name>\
        <s:Email>m@example.com</s:Email><s:Locale>de</s:Locale></s:Customer>\
        <s:Comment>first &lt;order&gt;</s:Comment>\
        <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>2</s:Quantity></s:Line>\
        <s:Line><s:ItemId>SNP-FLOAT-5</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateOrder>";
    let r = g.ok("CreateOrder", V11, "Sales", erp, order1);
    let t1 = first(&r, "Ticket");
    let single = longs(&r, "LicenseId");
    g.ok("CreateOrder-again", V12, "Sales", erp, order1);
    // The second ticket's licenses go to the Depot; its quantity comes as CDATA.
    let r = g.ok(
        "CreateOrder",
        V12,
        "Sales",
        erp,
        "<s:CreateOrder><s:ErpOrderId>SO-2</s:ErpOrderId><s:Customer><s:ExternalId>C-G\
         </s:ExternalId></s:Customer><s:Line><s:ItemId>SNP-SINGLE</s:ItemId>\
         <s:Quantity><![CDATA[4]]></s:Quantity></s:Line></s:CreateOrder>",
    );
    let t2 = first(&r, "Ticket");
    let dep = longs(&r, "LicenseId");
    let r = g.ok(
        "CreateOrder-third",
        V11,
        "Sales",
        erp,
        "<s:CreateOrder><s:ErpOrderId>SO-3</s:ErpOrderId><s:Customer><s:ExternalId>C-H\
         </s:ExternalId></s:Customer><s:Line><s:ItemId>SNP-SINGLE</s:ItemId>\
         <s:Quantity>6</s:Quantity></s:Line></s:CreateOrder>",
    );
    let t3 = first(&r, "Ticket");
    let more = longs(&r, "LicenseId");
    let add = "<s:AddToOrder><s:Source>sap</s:Source><s:ErpOrderId>SO-1</s:ErpOrderId>\
        <s:BatchKey>upgrade</s:BatchKey><s:Line><s:ItemId>SNP-UPD-PRO</s:ItemId>\
        <s:Quantity>1</s:Quantity></s:Line></s:AddToOrder>";
    g.ok("AddToOrder", V11, "Sales", erp, add);
    g.ok("AddToOrder-again", V12, "Sales", erp, add);
    g.ok(
        "GetTicket",
        V11,
        "Sales",
        erp,
        &format!("<s:GetTicket><s:Ticket>{t1}</s:Ticket></s:GetTicket>"),
    );
    g.ok(
        "GetTicket",
        V12,
        "Sales",
        erp,
        &format!("<s:GetTicket><s:Ticket>{t2}</s:Ticket></s:GetTicket>"),
    );
    let float = single[2];
    let r = g.ok(
        "SplitLicense",
        V11,
        "Sales",
        sam,
        &format!(
            "<s:SplitLicense><s:LicenseId>{float}</s:LicenseId><s:Quantity>2</s:Quantity>\
             <s:Quantity>3</s:Quantity></s:SplitLicense>"
        ),
    );
    let parts = longs(&r, "LicenseId");
    let r = g.ok(
        "SplitLicense",
        V12,
        "Sales",
        sam,
        &format!(
            "<s:SplitLicense><s:LicenseId>{}</s:LicenseId><s:Quantity>1</s:Quantity>\
             <s:Quantity>2</s:Quantity></s:SplitLicense>",
            parts[1]
        ),
    );
    let parts2 = longs(&r, "LicenseId");
    let r = g.ok(
        "ReplaceLicense",
        V11,
        "Sales",
        erp,
        &format!(
            "<s:ReplaceLicense><s:LicenseId>{}</s:LicenseId><s:ItemId>SNP-FLOAT-5</s:ItemId>\
             </s:ReplaceLicense>",
            single[0]
        ),
    );
    let replaced = longs(&r, "LicenseId")[1];
    g.ok(
        "ReplaceLicense",
        V12,
        "Sales",
        erp,
        &format!(
            "<s:ReplaceLicense><s:LicenseId>{}</s:LicenseId><s:ItemId>SNP-SINGLE</s:ItemId>\
             </s:ReplaceLicense>",
            single[1]
        ),
    );
    g.ok(
        "WithdrawLicenses",
        V11,
        "Sales",
        erp,
        &format!(
            "<s:WithdrawLicenses><s:LicenseId>{}</s:LicenseId><s:Reason>refund</s:Reason>\
             </s:WithdrawLicenses>",
            parts[0]
        ),
    );
    g.ok(
        "WithdrawLicenses",
        V12,
        "Sales",
        erp,
        &format!(
            "<s:WithdrawLicenses>{}</s:WithdrawLicenses>",
            ids_xml("s", "LicenseId", &parts2)
        ),
    );
    // Domain errors.
    let unknown = "<s:GetTicket><s:Ticket>AAAAA-AAAAA-AAAAA-AAAAA-AAAAA</s:Ticket></s:GetTicket>";
    g.fault("GetTicket-invalid", V11, "Sales", erp, unknown);
    g.fault("GetTicket-invalid", V12, "Sales", erp, unknown);
    let ok_op = "<s:CreateOrder><s:Customer><s:ExternalId>C-1</s:ExternalId></s:Customer>\
        <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateOrder>";
    g.fault(
        "CreateOrder-unknown-item",
        V11,
        "Sales",
        erp,
        &ok_op.replace(">SNP-SINGLE<", ">NOPE<"),
    );
    g.fault(
        "SplitLicense-conflict",
        V11,
        "Sales",
        sam,
        &format!(
            "<s:SplitLicense><s:LicenseId>{replaced}</s:LicenseId><s:Quantity>1</s:Quantity>\
             <s:Quantity>1</s:Quantity></s:SplitLicense>"
        ),
    );
    g.fault(
        "SplitLicense-forbidden",
        V12,
        "Sales",
        erp,
        &format!(
            "<s:SplitLicense><s:LicenseId>{replaced}</s:LicenseId><s:Quantity>2</s:Quantity>\
             <s:Quantity>3</s:Quantity></s:SplitLicense>"
        ),
    );
    // Wrong types, named by their path.
    let two = ok_op.replace("<s:Quantity>1<", "<s:Quantity>two<");
    g.fault("CreateOrder-wrong-type", V11, "Sales", erp, &two);
    g.fault("CreateOrder-wrong-type", V12, "Sales", erp, &two);
    g.fault(
        "SplitLicense-wrong-type",
        V11,
        "Sales",
        sam,
        &format!(
            "<s:SplitLicense><s:LicenseId>{replaced}</s:LicenseId><s:Quantity>1</s:Quantity>\
             <s:Quantity>-1</s:Quantity></s:SplitLicense>"
        ),
    );
    g.fault(
        "ReplaceLicense-wrong-type",
        V12,
        "Sales",
        erp,
        "<s:ReplaceLicense><s:LicenseId>one</s:LicenseId><s:ItemId>X</s:ItemId></s:ReplaceLicense>",
    );
    // Schema violations.
    let misspelt = ok_op.replace("<s:Customer>", "<s:Commnet>x</s:Commnet><s:Customer>");
    g.fault("CreateOrder-unknown-element", V11, "Sales", erp, &misspelt);
    g.fault("CreateOrder-unknown-element", V12, "Sales", erp, &misspelt);
    g.fault(
        "CreateOrder-out-of-order",
        V11,
        "Sales",
        erp,
        &ok_op.replace("<s:Line>", "<s:Line><s:Quantity>1</s:Quantity>"),
    );
    g.fault(
        "CreateOrder-missing",
        V12,
        "Sales",
        erp,
        &ok_op.replace("<s:ExternalId>C-1</s:ExternalId>", ""),
    );
    g.fault(
        "CreateOrder-too-often",
        V11,
        "Sales",
        erp,
        &ok_op.replace(
            "<s:Customer>",
            "<s:Customer><s:ExternalId>C-0</s:ExternalId></s:Customer><s:Customer>",
        ),
    );
    g.fault(
        "CreateOrder-value-with-elements",
        V12,
        "Sales",
        erp,
        &ok_op.replace(
            "<s:Quantity>1</s:Quantity>",
            "<s:Quantity><s:Value>1</s:Value></s:Quantity>",
        ),
    );
    g.fault(
        "CreateOrder-foreign-element",
        V11,
        "Sales",
        erp,
        &ok_op.replace(
            "<s:Customer>",
            "<o:Customer xmlns:o=\"urn:other\"><o:ExternalId>C-1</o:ExternalId></o:Customer><s:Customer>",
        ),
    );
    g.fault(
        "CreateOrder-text-beside-elements",
        V12,
        "Sales",
        erp,
        &ok_op.replace("<s:Line>", "loose text<s:Line>"),
    );
    g.fault(
        "SplitLicense-too-few",
        V11,
        "Sales",
        sam,
        &format!(
            "<s:SplitLicense><s:LicenseId>{replaced}</s:LicenseId><s:Quantity>5</s:Quantity>\
             </s:SplitLicense>"
        ),
    );
    // Unknown operations and namespaces.
    g.fault(
        "unknown-operation",
        V11,
        "Sales",
        erp,
        "<s:DeleteEverything/>",
    );
    g.fault(
        "unknown-operation",
        V12,
        "Sales",
        erp,
        "<s:DeleteEverything/>",
    );
    g.fault(
        "foreign-operation",
        V11,
        "Sales",
        erp,
        "<o:GetTicket xmlns:o=\"urn:other\"><o:Ticket>x</o:Ticket></o:GetTicket>",
    );
    g.fault(
        "two-operations",
        V12,
        "Sales",
        erp,
        &format!("{ok_op}{ok_op}"),
    );
    g.fault("no-operation", V11, "Sales", erp, "");
    // Authentication.
    let get1 = format!("<s:GetTicket><s:Ticket>{t1}</s:Ticket></s:GetTicket>");
    g.denied(
        "wrong-password",
        V11,
        "Sales",
        Auth::Basic("erp", "wrong"),
        &get1,
    );
    g.denied(
        "wrong-password",
        V12,
        "Sales",
        Auth::Basic("erp", "wrong"),
        &get1,
    );
    g.denied("no-credentials", V11, "Sales", Auth::None, &get1);
    g.denied(
        "unknown-user",
        V12,
        "Sales",
        Auth::Basic("nobody", "x"),
        &get1,
    );
    // WS-Security UsernameToken: PasswordText and PasswordDigest, nonces once.
    let now = chrono::Utc::now().to_rfc3339();
    g.with_header(
        "token-text",
        V11,
        200,
        &token("erp", &erp_pw, PW_TEXT, None),
        &get1,
    );
    let with_nonce = token("erp", &erp_pw, PW_TEXT, Some(("bm9uY2UtMQ==", &now)));
    g.with_header("token-text-nonce", V12, 200, &with_nonce, &get1);
    g.with_header("token-replayed", V11, 500, &with_nonce, &get1);
    let d = digest(b"nonce-2", &now, &erp_pw);
    let dig = token("erp", &d, PW_DIGEST, Some((&b64(b"nonce-2"), &now)));
    g.with_header("token-digest", V12, 200, &dig, &get1);
    let bad = token(
        "erp",
        &digest(b"other", &now, &erp_pw),
        PW_DIGEST,
        Some((&b64(b"nonce-3"), &now)),
    );
    g.with_header("token-digest-wrong", V11, 401, &bad, &get1);
    g.with_header(
        "token-digest-no-nonce",
        V12,
        500,
        &token("erp", &d, PW_DIGEST, None),
        &get1,
    );
    g.with_header(
        "token-bad-nonce",
        V11,
        500,
        &token("erp", &erp_pw, PW_TEXT, Some(("not base64!", &now))),
        &get1,
    );
    g.with_header(
        "token-bad-created",
        V12,
        500,
        &token("erp", &erp_pw, PW_TEXT, Some(("bm9uY2UtNA==", "yesterday"))),
        &get1,
    );
    g.with_header(
        "token-wrong-password",
        V11,
        401,
        &token("erp", "wrong", PW_TEXT, None),
        &get1,
    );
    // Hostile or wrong envelopes.
    let good = Script::envelope(V11, "Sales", "", ok_op);
    let good12 = Script::envelope(V12, "Sales", "", ok_op);
    let hostile: Vec<(&str, V, String)> = vec![
        (
            "doctype",
            V11,
            good.replace(
                "<soap:Envelope",
                "<!DOCTYPE x [<!ENTITY e \"boom\">]><soap:Envelope",
            ),
        ),
        (
            "unknown-entity",
            V12,
            good12.replace(">C-1<", ">&unknown;<"),
        ),
        ("char-reference", V11, good.replace(">C-1<", ">C&#1;1<")),
        (
            "raw-control-char",
            V12,
            good12.replace(">C-1<", ">C\u{8}1<"),
        ),
        (
            "attribute-char",
            V11,
            good.replace("<s:Customer>", "<s:Customer a=\"&#xFFFF;\">"),
        ),
        (
            "cdata-control-char",
            V12,
            good12.replace(">C-1<", "><![CDATA[C\u{1b}1]]><"),
        ),
        (
            "too-deep",
            V11,
            good.replace(
                "<s:ExternalId>C-1</s:ExternalId>",
                &format!("{}{}", "<s:X>".repeat(40), "</s:X>".repeat(40)),
            ),
        ),
        ("not-closed", V12, good12.replace("</soap:Envelope>", "")),
        ("not-an-envelope", V11, "<Envelope/>".into()),
        (
            "no-body",
            V12,
            good12.replace(&format!("<soap:Body>{ok_op}</soap:Body>"), ""),
        ),
        (
            "must-understand",
            V11,
            good.replace(
                "<soap:Body>",
                "<soap:Header><x:Trace xmlns:x=\"urn:trace\" soap:mustUnderstand=\"1\"/>\
                 </soap:Header><soap:Body>",
            ),
        ),
        (
            "must-understand",
            V12,
            good12.replace(
                "<soap:Body>",
                "<soap:Header><x:Trace xmlns:x=\"urn:trace\" soap:mustUnderstand=\"true\"/>\
                 </soap:Header><soap:Body>",
            ),
        ),
    ];
    for (what, v, body) in hostile {
        g.send(what, v, 500, Script::req(v, "Sales", erp, body));
    }
    // Before the envelope is read, the Content-Type says which SOAP a fault speaks.
    let mut r = Script::req(V12, "Sales", erp, format!("<!DOCTYPE x>{good}"));
    r.content_type = "application/soap+xml".into();
    g.send("doctype-by-content-type", V12, 500, r);
    let mut r = Script::req(V11, "Sales", erp, good.clone());
    r.content_type = "application/soap+xml".into();
    g.send("content-type-mismatch", V11, 500, r);
    let limit = app.core.config().max_body_bytes;
    let big = good12.replace(
        "</s:Customer>",
        &format!("</s:Customer><s:Comment>{}</s:Comment>", "x".repeat(limit)),
    );
    g.send("too-large", V12, 500, Script::req(V12, "Sales", erp, big));
    // The action named outside the body must be the body's.
    let get1_11 = Script::envelope(V11, "Sales", "", &get1);
    let mut r = Script::req(V11, "Sales", erp, get1_11.clone());
    r.soap_action = Some("\"http://licentia.dev/ns/sales/v1/CreateOrder\"".into());
    g.send("soap-action-mismatch", V11, 500, r);
    let mut r = Script::req(V11, "Sales", erp, get1_11);
    r.soap_action = Some("\"http://licentia.dev/ns/sales/v1/GetTicket\"".into());
    g.send("soap-action", V11, 200, r);
    let get1_12 = Script::envelope(V12, "Sales", "", &get1);
    let mut r = Script::req(V12, "Sales", erp, get1_12.clone());
    r.content_type = "application/soap+xml; charset=utf-8; \
                      action=\"http://licentia.dev/ns/sales/v1/AddToOrder\""
        .into();
    g.send("action-mismatch", V12, 500, r);
    let mut r = Script::req(V12, "Sales", erp, get1_12);
    r.content_type = "application/soap+xml; charset=utf-8; \
                      action=\"http://licentia.dev/ns/sales/v1/GetTicket\""
        .into();
    g.send("action", V12, 200, r);

    // ---- Depot: the real client runtime makes requests and applies updates ----
    let tpl = format!("<d:Template><d:FirmCode>{FIRM}</d:FirmCode></d:Template>");
    let template = g.ok("Template", V11, "Depot", Auth::None, &tpl);
    g.ok("Template", V12, "Depot", Auth::None, &tpl);
    g.fault(
        "Template-unknown-firm",
        V11,
        "Depot",
        Auth::None,
        "<d:Template><d:FirmCode>1</d:FirmCode></d:Template>",
    );
    g.fault(
        "Template-wrong-type",
        V12,
        "Depot",
        Auth::None,
        "<d:Template><d:FirmCode>firm</d:FirmCode></d:Template>",
    );
    let info2 = format!("<d:TicketInfo><d:Ticket>{t2}</d:Ticket></d:TicketInfo>");
    g.ok("TicketInfo", V11, "Depot", Auth::None, &info2);
    g.ok(
        "TicketInfo",
        V12,
        "Depot",
        Auth::None,
        &format!("<d:TicketInfo><d:Ticket>{t1}</d:Ticket></d:TicketInfo>"),
    );
    g.fault(
        "TicketInfo-invalid",
        V12,
        "Depot",
        Auth::None,
        "<d:TicketInfo><d:Ticket>AAAAA</d:Ticket></d:TicketInfo>",
    );
    let activate = |ticket: &str, ids: &[i64], request: &str| {
        format!(
            "<d:Activate><d:Ticket>{ticket}</d:Ticket>{}<d:Request>{request}</d:Request>\
             </d:Activate>",
            ids_xml("d", "LicenseId", ids)
        )
    };
    let confirm = |receipt: &str| {
        format!("<d:ConfirmReceipt><d:Receipt>{receipt}</d:Receipt></d:ConfirmReceipt>")
    };
    // Container a: two activations, a pull with nothing waiting, a return.
    let mut a = container(&template);
    let req = request(&mut a);
    let r = g.ok(
        "Activate",
        V11,
        "Depot",
        Auth::None,
        &activate(&t2, &dep[..1], &req),
    );
    let receipt = apply(&mut a, &r);
    g.ok(
        "ConfirmReceipt",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let req = request(&mut a);
    let r = g.ok(
        "Activate",
        V12,
        "Depot",
        Auth::None,
        &activate(&t2, &dep[1..2], &req),
    );
    let receipt = apply(&mut a, &r);
    g.ok(
        "ConfirmReceipt",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    g.ok(
        "ConfirmReceipt-again",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let pull =
        |request: &str| format!("<d:PullUpdates><d:Request>{request}</d:Request></d:PullUpdates>");
    let req = request(&mut a);
    g.ok("PullUpdates-nothing", V11, "Depot", Auth::None, &pull(&req));
    let req = request(&mut a);
    g.ok("PullUpdates-nothing", V12, "Depot", Auth::None, &pull(&req));
    let ret = |ids: &[i64], request: &str| {
        format!(
            "<d:Return>{}<d:Request>{request}</d:Request></d:Return>",
            ids_xml("d", "LicenseId", ids)
        )
    };
    let req = request(&mut a);
    let r = g.ok("Return", V11, "Depot", Auth::None, &ret(&dep[1..2], &req));
    let receipt = apply(&mut a, &r);
    g.ok(
        "ConfirmReceipt-return",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let tampered = "-----BEGIN LICENTIA REQUEST-----\nAAAA\n-----END LICENTIA REQUEST-----";
    g.fault(
        "Activate-tampered",
        V12,
        "Depot",
        Auth::None,
        &activate(&t2, &dep[2..3], tampered),
    );
    g.fault(
        "Activate-missing-request",
        V11,
        "Depot",
        Auth::None,
        &format!("<d:Activate><d:Ticket>{t2}</d:Ticket></d:Activate>"),
    );
    // Container b: the same ticket's licenses, then a return of dep[1] (activated here).
    let mut b = container(&template);
    let req = request(&mut b);
    let r = g.ok(
        "Activate-two",
        V11,
        "Depot",
        Auth::None,
        &activate(&t2, &dep[1..3], &req),
    );
    let receipt = apply(&mut b, &r);
    g.ok(
        "ConfirmReceipt-two",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let req = request(&mut b);
    let r = g.ok("Return", V12, "Depot", Auth::None, &ret(&dep[2..3], &req));
    let receipt = apply(&mut b, &r);
    g.ok(
        "ConfirmReceipt-return",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    // Re-activation: dep[0] from a into c, dep[1] from b into d (the old containers are
    // blacklisted, the default behaviour).
    let reactivate = |ticket: &str, ids: &[i64], request: &str| {
        format!(
            "<d:Reactivate><d:Ticket>{ticket}</d:Ticket>{}<d:Request>{request}</d:Request>\
             </d:Reactivate>",
            ids_xml("d", "LicenseId", ids)
        )
    };
    let mut c = container(&template);
    let req = request(&mut c);
    let r = g.ok(
        "Reactivate",
        V11,
        "Depot",
        Auth::None,
        &reactivate(&t2, &dep[..1], &req),
    );
    let receipt = apply(&mut c, &r);
    g.ok(
        "ConfirmReceipt-reactivated",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let mut d = container(&template);
    let req = request(&mut d);
    let r = g.ok(
        "Reactivate",
        V12,
        "Depot",
        Auth::None,
        &reactivate(&t2, &dep[1..2], &req),
    );
    let receipt = apply(&mut d, &r);
    g.ok(
        "ConfirmReceipt-reactivated",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    g.fault(
        "Reactivate-none",
        V11,
        "Depot",
        Auth::None,
        &format!("<d:Reactivate><d:Ticket>{t2}</d:Ticket><d:Request>x</d:Request></d:Reactivate>"),
    );
    // The blacklisted container a pulls its lock.
    let req = request(&mut a);
    g.ok("PullUpdates-lock", V12, "Depot", Auth::None, &pull(&req));
    // Restore: e holds more[0], f holds more[1]; each is restored into a fresh container.
    let restore = |old: &Container, request: &str| {
        let salt = licentia::client::online::Gateway::new(&app.base)
            .salt(&old.serial)
            .unwrap();
        let traits: String = traits()
            .iter()
            .map(|(n, v)| {
                format!(
                    "<d:Trait><d:Name>{n}</d:Name><d:Hash>{}</d:Hash></d:Trait>",
                    hash_trait(&salt, n, v)
                )
            })
            .collect();
        format!(
            "<d:Restore><d:OldSerial>{}</d:OldSerial><d:Request>{request}</d:Request>\
             {traits}</d:Restore>",
            old.serial
        )
    };
    let mut e = container(&template);
    let req = request(&mut e);
    let r = g.ok(
        "Activate-for-restore",
        V11,
        "Depot",
        Auth::None,
        &activate(&t3, &more[..1], &req),
    );
    let receipt = apply(&mut e, &r);
    g.ok(
        "ConfirmReceipt",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let mut e2 = container(&template);
    let req = request(&mut e2);
    let r = g.ok("Restore", V11, "Depot", Auth::None, &restore(&e, &req));
    let receipt = apply(&mut e2, &r);
    g.ok(
        "ConfirmReceipt-restored",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let mut f = container(&template);
    let req = request(&mut f);
    let r = g.ok(
        "Activate-for-restore",
        V12,
        "Depot",
        Auth::None,
        &activate(&t3, &more[1..2], &req),
    );
    let receipt = apply(&mut f, &r);
    g.ok(
        "ConfirmReceipt",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    let mut f2 = container(&template);
    let req = request(&mut f2);
    let r = g.ok("Restore", V12, "Depot", Auth::None, &restore(&f, &req));
    let receipt = apply(&mut f2, &r);
    g.ok(
        "ConfirmReceipt-restored",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    g.fault(
        "Restore-trait-without-hash",
        V11,
        "Depot",
        Auth::None,
        "<d:Restore><d:OldSerial>130-1</d:OldSerial><d:Request>x</d:Request>\
         <d:Trait><d:Name>cpu</d:Name></d:Trait></d:Restore>",
    );

    // ---- Admin ----
    let put_c = "<a:PutCustomer><a:ExternalId>C-X</a:ExternalId><a:Name>Xaver</a:Name>\
        <a:Locale>de</a:Locale></a:PutCustomer>";
    g.ok("PutCustomer", V11, "Admin", admin, put_c);
    g.ok(
        "PutCustomer",
        V12,
        "Admin",
        admin,
        "<a:PutCustomer><a:ExternalId>C-Y</a:ExternalId><a:Name>O'Brien &amp; \"Sons\"\
         </a:Name><a:Email>ob@example.com</a:Email></a:PutCustomer>",
    );
    g.ok(
        "GetCustomer",
        V11,
        "Admin",
        sue,
        "<a:GetCustomer><a:ExternalId>C-X</a:ExternalId></a:GetCustomer>",
    );
    g.ok(
        "GetCustomer",
        V12,
        "Admin",
        admin,
        "<a:GetCustomer><a:ExternalId>C-G</a:ExternalId></a:GetCustomer>",
    );
    g.fault(
        "GetCustomer-unknown",
        V11,
        "Admin",
        admin,
        "<a:GetCustomer><a:ExternalId>C-NONE</a:ExternalId></a:GetCustomer>",
    );
    g.ok("ListUsers", V11, "Admin", admin, "<a:ListUsers/>");
    let add_bot = "<a:AddUser><a:Username>bot</a:Username><a:Password>bot-password-123\
        </a:Password><a:Role>erp</a:Role></a:AddUser>";
    g.ok("AddUser", V11, "Admin", admin, add_bot);
    g.ok(
        "AddUser",
        V12,
        "Admin",
        admin,
        "<a:AddUser><a:Username>bot2</a:Username><a:Password>bot2-password-123</a:Password>\
         <a:Role>sales</a:Role></a:AddUser>",
    );
    g.fault("AddUser-exists", V11, "Admin", admin, add_bot);
    g.fault("AddUser-forbidden", V12, "Admin", sue, add_bot);
    g.ok(
        "ChangeUser",
        V11,
        "Admin",
        admin,
        "<a:ChangeUser><a:Username>bot</a:Username><a:Active>false</a:Active></a:ChangeUser>",
    );
    g.ok(
        "ChangeUser",
        V12,
        "Admin",
        admin,
        "<a:ChangeUser><a:Username>bot2</a:Username><a:Password>another-password-1\
         </a:Password><a:Role>support</a:Role><a:Active>1</a:Active></a:ChangeUser>",
    );
    g.fault(
        "ChangeUser-wrong-role",
        V11,
        "Admin",
        admin,
        "<a:ChangeUser><a:Username>bot</a:Username><a:Role>boss</a:Role></a:ChangeUser>",
    );
    g.fault(
        "ChangeUser-wrong-boolean",
        V12,
        "Admin",
        admin,
        "<a:ChangeUser><a:Username>bot</a:Username><a:Active>yes</a:Active></a:ChangeUser>",
    );
    g.ok("ListUsers", V12, "Admin", admin, "<a:ListUsers/>");
    g.ok("ListItems", V11, "Admin", sue, "<a:ListItems/>");
    g.ok(
        "GetItem",
        V11,
        "Admin",
        admin,
        "<a:GetItem><a:ItemId>SNP-SINGLE</a:ItemId></a:GetItem>",
    );
    g.ok(
        "GetItem",
        V12,
        "Admin",
        admin,
        "<a:GetItem><a:ItemId>SNP-UPD-PRO</a:ItemId></a:GetItem>",
    );
    g.fault(
        "GetItem-unknown",
        V12,
        "Admin",
        admin,
        "<a:GetItem><a:ItemId>NOPE</a:ItemId></a:GetItem>",
    );
    let r = g.ok(
        "CreateItem",
        V11,
        "Admin",
        admin,
        "<a:CreateItem><a:ItemId>SNP-PRO</a:ItemId><a:Name>SampleNotePad Pro</a:Name>\
         <a:ProductCode>1010</a:ProductCode><a:Options><a:ContainerType>act</a:ContainerType>\
         <a:ContainerType>dongle</a:ContainerType><a:FeatureMap>5</a:FeatureMap>\
         <a:ExpirationTime>2030-01-01T00:00:00Z</a:ExpirationTime>\
         <a:Text>Pro &amp; more</a:Text><a:DeactivationAllowed>true</a:DeactivationAllowed>\
         <a:Reactivation>approval</a:Reactivation></a:Options></a:CreateItem>",
    );
    let version: i64 = first(&r, "Version").parse().unwrap();
    g.ok(
        "CreateItem",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:CreateItem><a:ItemId>SNP-UPD-X</a:ItemId><a:Name>Extension</a:Name>\
             <a:Kind>update</a:Kind><a:FirmCode>{FIRM}</a:FirmCode>\
             <a:ProductCode>1001</a:ProductCode><a:Options>\
             <a:ActivationTime>2030-06-01T12:00:00+02:00</a:ActivationTime>\
             <a:Update><a:ExtendExpirationDays>30</a:ExtendExpirationDays>\
             <a:AddFeatures>4</a:AddFeatures></a:Update></a:Options></a:CreateItem>"
        ),
    );
    g.ok("ListItems", V12, "Admin", admin, "<a:ListItems/>");
    g.ok(
        "ChangeItem",
        V11,
        "Admin",
        admin,
        &format!(
            "<a:ChangeItem><a:ItemId>SNP-PRO</a:ItemId><a:Version>{version}</a:Version>\
             <a:Name>Pro</a:Name></a:ChangeItem>"
        ),
    );
    g.ok(
        "ChangeItem",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:ChangeItem><a:ItemId>SNP-PRO</a:ItemId><a:Version>{}</a:Version>\
             <a:Options><a:LicenseQuantity>3</a:LicenseQuantity>\
             <a:ReactivationBehaviour>withdraw</a:ReactivationBehaviour></a:Options>\
             <a:Active>false</a:Active></a:ChangeItem>",
            version + 1
        ),
    );
    g.fault(
        "ChangeItem-stale",
        V11,
        "Admin",
        admin,
        &format!(
            "<a:ChangeItem><a:ItemId>SNP-PRO</a:ItemId><a:Version>{version}</a:Version>\
             <a:Name>Again</a:Name></a:ChangeItem>"
        ),
    );
    g.fault(
        "CreateItem-wrong-option",
        V12,
        "Admin",
        admin,
        "<a:CreateItem><a:ItemId>X</a:ItemId><a:Name>X</a:Name><a:ProductCode>1</a:ProductCode>\
         <a:Options><a:FeatureMap>lots</a:FeatureMap></a:Options></a:CreateItem>",
    );
    g.fault(
        "CreateItem-wrong-time",
        V11,
        "Admin",
        admin,
        "<a:CreateItem><a:ItemId>X</a:ItemId><a:Name>X</a:Name><a:ProductCode>1</a:ProductCode>\
         <a:Options><a:ExpirationTime>tomorrow</a:ExpirationTime></a:Options></a:CreateItem>",
    );
    g.fault(
        "CreateItem-wrong-kind",
        V12,
        "Admin",
        admin,
        "<a:CreateItem><a:ItemId>X</a:ItemId><a:Name>X</a:Name><a:Kind>gift</a:Kind>\
         <a:ProductCode>1</a:ProductCode></a:CreateItem>",
    );
    g.fault(
        "CreateItem-wrong-enum",
        V11,
        "Admin",
        admin,
        "<a:CreateItem><a:ItemId>X</a:ItemId><a:Name>X</a:Name><a:ProductCode>1</a:ProductCode>\
         <a:Options><a:ContainerType>cloud</a:ContainerType><a:ContainerType>usb\
         </a:ContainerType></a:Options></a:CreateItem>",
    );
    g.ok("GetSettings", V11, "Admin", admin, "<a:GetSettings/>");
    g.fault(
        "PutSettings-unknown-field",
        V11,
        "Admin",
        admin,
        "<a:PutSettings><a:Settings><a:Colour>red</a:Colour></a:Settings></a:PutSettings>",
    );
    g.fault(
        "PutSettings-refused",
        V12,
        "Admin",
        admin,
        "<a:PutSettings><a:Settings><a:Restore>approval</a:Restore></a:Settings></a:PutSettings>",
    );
    // Re-activation needs approval from now on.
    g.ok(
        "PutSettings",
        V11,
        "Admin",
        admin,
        "<a:PutSettings><a:Settings><a:SelfServiceCount>0</a:SelfServiceCount>\
         <a:LockItem>LOCK</a:LockItem><a:MonthlyActivationQuota>7</a:MonthlyActivationQuota>\
         <a:ActivationMode>selected</a:ActivationMode></a:Settings></a:PutSettings>",
    );
    // Container c holds dep[0] and e2 more[0] (restored there): new containers ask for them
    // and wait for a person's decision.
    let mut cg = container(&template);
    let req = request(&mut cg);
    g.fault(
        "Reactivate-needs-approval",
        V11,
        "Depot",
        Auth::None,
        &reactivate(&t2, &dep[..1], &req),
    );
    let mut ch = container(&template);
    let req = request(&mut ch);
    g.fault(
        "Reactivate-needs-approval",
        V12,
        "Depot",
        Auth::None,
        &reactivate(&t3, &more[..1], &req),
    );
    let r = g.ok(
        "ListApprovals",
        V11,
        "Admin",
        sue,
        "<a:ListApprovals><a:State>open</a:State></a:ListApprovals>",
    );
    let approvals = longs(&r, "ApprovalId");
    g.ok(
        "DecideApproval",
        V11,
        "Admin",
        sue,
        &format!(
            "<a:DecideApproval><a:ApprovalId>{}</a:ApprovalId><a:Approve>true</a:Approve>\
             <a:Reason>by phone</a:Reason></a:DecideApproval>",
            approvals[0]
        ),
    );
    g.fault(
        "DecideApproval-forbidden",
        V11,
        "Admin",
        sam,
        &format!(
            "<a:DecideApproval><a:ApprovalId>{}</a:ApprovalId><a:Approve>0</a:Approve>\
             </a:DecideApproval>",
            approvals[1]
        ),
    );
    g.fault(
        "DecideApproval-deny-without-reason",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:DecideApproval><a:ApprovalId>{}</a:ApprovalId><a:Approve>0</a:Approve>\
             </a:DecideApproval>",
            approvals[1]
        ),
    );
    g.ok(
        "DecideApproval",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:DecideApproval><a:ApprovalId>{}</a:ApprovalId><a:Approve>false</a:Approve>\
             <a:Reason>not the customer's</a:Reason></a:DecideApproval>",
            approvals[1]
        ),
    );
    g.fault(
        "DecideApproval-decided",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:DecideApproval><a:ApprovalId>{}</a:ApprovalId><a:Approve>1</a:Approve>\
             </a:DecideApproval>",
            approvals[1]
        ),
    );
    g.fault(
        "DecideApproval-wrong-type",
        V11,
        "Admin",
        sue,
        "<a:DecideApproval><a:ApprovalId>x</a:ApprovalId><a:Approve>true</a:Approve>\
         </a:DecideApproval>",
    );
    g.ok("ListApprovals", V12, "Admin", admin, "<a:ListApprovals/>");
    g.fault(
        "ListApprovals-wrong-state",
        V12,
        "Admin",
        sue,
        "<a:ListApprovals><a:State>maybe</a:State></a:ListApprovals>",
    );
    g.ok(
        "PutSettings",
        V12,
        "Admin",
        admin,
        "<a:PutSettings><a:Settings/></a:PutSettings>",
    );
    g.ok("GetSettings", V12, "Admin", sue, "<a:GetSettings/>");
    // Containers: a and b were blacklisted by the re-activations.
    let bl = |serial: &str, extra: &str| {
        format!(
            "<a:BlacklistContainer><a:Serial>{serial}</a:Serial>\
             <a:Description>stolen</a:Description>{extra}</a:BlacklistContainer>"
        )
    };
    g.fault(
        "BlacklistContainer-again",
        V11,
        "Admin",
        sue,
        &bl(&a.serial, ""),
    );
    g.ok("BlacklistContainer", V11, "Admin", sue, &bl(&e2.serial, ""));
    g.ok(
        "BlacklistContainer",
        V12,
        "Admin",
        sue,
        &bl(&f2.serial, &format!("<a:FirmCode>{FIRM}</a:FirmCode>")),
    );
    let unbl = |serial: &str, extra: &str| {
        format!(
            "<a:RemoveFromBlacklist><a:Serial>{serial}</a:Serial><a:Reason>found</a:Reason>\
             {extra}</a:RemoveFromBlacklist>"
        )
    };
    g.ok(
        "RemoveFromBlacklist",
        V11,
        "Admin",
        admin,
        &unbl(&e2.serial, ""),
    );
    g.ok(
        "RemoveFromBlacklist",
        V12,
        "Admin",
        admin,
        &unbl(&f2.serial, &format!("<a:FirmCode>{FIRM}</a:FirmCode>")),
    );
    g.fault(
        "RemoveFromBlacklist-none",
        V11,
        "Admin",
        admin,
        &unbl(&f2.serial, ""),
    );
    let assign = |serial: &str, customer: &str| {
        format!(
            "<a:AssignContainer><a:Serial>{serial}</a:Serial><a:CustomerId>{customer}\
             </a:CustomerId></a:AssignContainer>"
        )
    };
    g.ok(
        "AssignContainer",
        V11,
        "Admin",
        sue,
        &assign(&c.serial, "C-G"),
    );
    g.ok(
        "AssignContainer",
        V12,
        "Admin",
        sue,
        &assign(&d.serial, "C-X"),
    );
    g.fault(
        "AssignContainer-unknown",
        V11,
        "Admin",
        sue,
        &assign("130-1", "C-X"),
    );
    // Pushed licenses reach their containers through PullUpdates.
    let push = |serial: &str, id: i64| {
        format!(
            "<a:PushLicense><a:Serial>{serial}</a:Serial><a:LicenseId>{id}</a:LicenseId>\
             </a:PushLicense>"
        )
    };
    g.ok("PushLicense", V11, "Admin", sue, &push(&c.serial, more[3]));
    let req = request(&mut c);
    let r = g.ok("PullUpdates", V11, "Depot", Auth::None, &pull(&req));
    let receipt = apply(&mut c, &r);
    g.ok(
        "ConfirmReceipt-pushed",
        V11,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    g.ok(
        "PushLicense",
        V12,
        "Admin",
        admin,
        &push(&d.serial, more[4]),
    );
    let req = request(&mut d);
    let r = g.ok("PullUpdates", V12, "Depot", Auth::None, &pull(&req));
    let receipt = apply(&mut d, &r);
    g.ok(
        "ConfirmReceipt-pushed",
        V12,
        "Depot",
        Auth::None,
        &confirm(&receipt),
    );
    g.fault(
        "PushLicense-taken",
        V12,
        "Admin",
        admin,
        &push(&d.serial, more[4]),
    );
    let reset = |serial: &str| {
        format!("<a:ResetContainer><a:Serial>{serial}</a:Serial></a:ResetContainer>")
    };
    g.fault(
        "ResetContainer-forbidden",
        V11,
        "Admin",
        sue,
        &reset(&d.serial),
    );
    g.ok("ResetContainer", V11, "Admin", admin, &reset(&d.serial));
    g.ok(
        "ResetContainer",
        V12,
        "Admin",
        admin,
        &format!(
            "<a:ResetContainer><a:Serial>{}</a:Serial><a:FirmCode>{FIRM}</a:FirmCode>\
             </a:ResetContainer>",
            b.serial
        ),
    );

    // ---- Report ----
    let report = |name: &str, params: &str| {
        format!("<r:RunReport><r:Name>{name}</r:Name>{params}</r:RunReport>")
    };
    g.ok(
        "RunReport-never-activated",
        V11,
        "Report",
        erp,
        &report("never-activated", ""),
    );
    g.ok(
        "RunReport-ticket-licenses",
        V12,
        "Report",
        erp,
        &report("ticket-licenses", &format!("<r:Ticket>{t2}</r:Ticket>")),
    );
    g.ok(
        "RunReport-license-history",
        V11,
        "Report",
        sue,
        &report(
            "license-history",
            &format!("<r:LicenseId>{}</r:LicenseId>", dep[0]),
        ),
    );
    g.ok(
        "RunReport-blacklist",
        V12,
        "Report",
        sue,
        &report("blacklist", ""),
    );
    g.ok(
        "RunReport-container-licenses",
        V11,
        "Report",
        sue,
        &report(
            "container-licenses",
            &format!("<r:Serial>{}</r:Serial>", c.serial),
        ),
    );
    g.ok(
        "RunReport-customer-containers",
        V12,
        "Report",
        sue,
        &report("customer-containers", "<r:CustomerId>C-G</r:CustomerId>"),
    );
    g.ok(
        "RunReport-expiring",
        V11,
        "Report",
        erp,
        &report("expiring", "<r:Days>30</r:Days>"),
    );
    g.fault(
        "RunReport-wrong-type",
        V11,
        "Report",
        erp,
        &report("expiring", "<r:Days>soon</r:Days>"),
    );
    g.fault(
        "RunReport-wrong-type",
        V12,
        "Report",
        erp,
        &report("license-history", "<r:LicenseId>first</r:LicenseId>"),
    );
    g.fault(
        "RunReport-unknown",
        V11,
        "Report",
        erp,
        &report("everything", ""),
    );
    g.fault(
        "RunReport-missing-parameter",
        V12,
        "Report",
        erp,
        &report("container-licenses", ""),
    );
    g.fault(
        "RunReport-out-of-range",
        V11,
        "Report",
        erp,
        &report("expiring", "<r:Days>0</r:Days>"),
    );
    g.fault(
        "RunReport-unknown-container",
        V12,
        "Report",
        sue,
        &report("container-licenses", "<r:Serial>130-1</r:Serial>"),
    );

    // ---- Sales: production orders ----
    // Before any dongle is programmed, the production report has its columns and no rows.
    g.ok(
        "RunReport-production",
        V12,
        "Report",
        erp,
        &report("production", ""),
    );
    let prod = "<s:CreateProductionOrder><s:Source>sap</s:Source><s:ErpOrderId>PO-1</s:ErpOrderId>\
        <s:Comment>line 3</s:Comment><s:Dongles>2</s:Dongles>\
        <s:Line><s:ItemId>SNP-FLOAT-5</s:ItemId><s:Quantity>1</s:Quantity></s:Line>\
        <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>2</s:Quantity></s:Line>\
        </s:CreateProductionOrder>";
    let r = g.ok("CreateProductionOrder", V11, "Sales", erp, prod);
    let po = first(&r, "ProductionOrderId");
    g.ok("CreateProductionOrder-again", V12, "Sales", erp, prod);
    // Through the JSON API, as the bridge does it: one dongle programmed, one that failed
    // before its update was written (its slot is free again, the failure counted).
    let t = licentia::client::online::Gateway::new(&app.base)
        .template(FIRM)
        .unwrap();
    let line = |what: &str, body: serde_json::Value| {
        let (s, v) = app.admin(
            "POST",
            &format!("/api/v1/production/orders/{po}/{what}"),
            Some(body),
        );
        assert_eq!(s, 200, "{what}: {v}");
        v
    };
    let mut first_dongle =
        Container::create(ContainerType::Dongle, Some("3-1200001".into()), &[], 0).unwrap();
    first_dongle.trust(t.firm_code, &t.firm_name, &t.keys);
    let v = line(
        "program",
        serde_json::json!({"station": "st-1", "request": request(&mut first_dongle)}),
    );
    let receipt = first_dongle
        .apply(v["update"].as_str().unwrap(), unix_now())
        .unwrap()
        .receipt;
    line(
        "receipt",
        serde_json::json!({"station": "st-1", "receipt": receipt}),
    );
    let mut second =
        Container::create(ContainerType::Dongle, Some("3-1200002".into()), &[], 0).unwrap();
    second.trust(t.firm_code, &t.firm_name, &t.keys);
    line(
        "program",
        serde_json::json!({"station": "st-2", "request": request(&mut second)}),
    );
    line(
        "failed",
        serde_json::json!({"station": "st-2", "serial": "3-1200002", "written": false,
            "reason": "dongle removed <mid-write>"}),
    );
    let get = |id: &str| {
        format!("<s:GetProductionOrder><s:ProductionOrderId>{id}</s:ProductionOrderId></s:GetProductionOrder>")
    };
    g.ok("GetProductionOrder", V11, "Sales", sam, &get(&po));
    g.ok("GetProductionOrder", V12, "Sales", sue, &get(&po));
    g.fault("GetProductionOrder-unknown", V12, "Sales", erp, &get("99"));
    g.fault(
        "GetProductionOrder-wrong-type",
        V11,
        "Sales",
        erp,
        &get("first"),
    );
    g.fault(
        "CreateProductionOrder-not-for-dongles",
        V11,
        "Sales",
        erp,
        "<s:CreateProductionOrder><s:Dongles>2</s:Dongles><s:Line><s:ItemId>SNP-TRIAL-30\
         </s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateProductionOrder>",
    );
    g.fault(
        "CreateProductionOrder-wrong-type",
        V12,
        "Sales",
        erp,
        "<s:CreateProductionOrder><s:Dongles>two</s:Dongles><s:Line><s:ItemId>SNP-FLOAT-5\
         </s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateProductionOrder>",
    );
    g.fault(
        "CreateProductionOrder-forbidden",
        V11,
        "Sales",
        sue,
        "<s:CreateProductionOrder><s:Dongles>1</s:Dongles><s:Line><s:ItemId>SNP-FLOAT-5\
         </s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateProductionOrder>",
    );
    g.fault(
        "CreateProductionOrder-out-of-order",
        V12,
        "Sales",
        erp,
        "<s:CreateProductionOrder><s:Line><s:ItemId>SNP-FLOAT-5</s:ItemId><s:Quantity>1\
         </s:Quantity></s:Line><s:Dongles>1</s:Dongles></s:CreateProductionOrder>",
    );

    // ---- the operations added after the production orders ----
    let sales_get = |op: &str, inner: &str| format!("<s:{op}>{inner}</s:{op}>");
    let so1 = "<s:Source>sap</s:Source><s:ErpOrderId>SO-1</s:ErpOrderId>";
    g.ok("GetOrder", V11, "Sales", erp, &sales_get("GetOrder", so1));
    g.fault(
        "GetOrder-unknown",
        V12,
        "Sales",
        erp,
        &sales_get(
            "GetOrder",
            "<s:Source>sap</s:Source><s:ErpOrderId>SO-404</s:ErpOrderId>",
        ),
    );
    g.ok(
        "ResendTicketMail",
        V12,
        "Sales",
        sam,
        &sales_get("ResendTicketMail", so1),
    );
    g.fault(
        "ResendTicketMail-forbidden",
        V11,
        "Sales",
        erp,
        &sales_get("ResendTicketMail", so1),
    );
    let lic = |id: &str| sales_get("GetLicense", &format!("<s:LicenseId>{id}</s:LicenseId>"));
    g.ok(
        "GetLicense",
        V11,
        "Sales",
        erp,
        &lic(&single[0].to_string()),
    );
    g.fault("GetLicense-unknown", V12, "Sales", erp, &lic("999999"));
    g.fault("GetLicense-wrong-type", V11, "Sales", erp, &lic("one"));
    let switch =
        |op: &str, extra: &str| sales_get(op, &format!("<s:Ticket>{t3}</s:Ticket>{extra}"));
    g.ok(
        "DisableTicket",
        V11,
        "Sales",
        erp,
        &switch("DisableTicket", "<s:Reason>refunded</s:Reason>"),
    );
    g.ok(
        "DisableTicket-again",
        V12,
        "Sales",
        erp,
        &switch("DisableTicket", ""),
    );
    g.fault(
        "EnableTicket-forbidden",
        V11,
        "Sales",
        sue,
        &switch("EnableTicket", ""),
    );
    g.ok(
        "EnableTicket",
        V12,
        "Sales",
        sam,
        &switch("EnableTicket", ""),
    );
    g.fault(
        "EnableTicket-unknown",
        V11,
        "Sales",
        sam,
        &sales_get(
            "EnableTicket",
            "<s:Ticket>AAAAA-AAAAA-AAAAA-AAAAA-AAAAA</s:Ticket>",
        ),
    );
    let admin_op = |op: &str, inner: &str| format!("<a:{op}>{inner}</a:{op}>");
    g.ok(
        "ListCustomers",
        V11,
        "Admin",
        sue,
        &admin_op("ListCustomers", ""),
    );
    g.ok(
        "ListCustomers-page",
        V12,
        "Admin",
        sam,
        &admin_op(
            "ListCustomers",
            "<a:After>C-G</a:After><a:Limit>2</a:Limit>",
        ),
    );
    g.fault(
        "ListCustomers-limit",
        V11,
        "Admin",
        sam,
        &admin_op("ListCustomers", "<a:Limit>0</a:Limit>"),
    );
    let del = |id: &str| {
        admin_op(
            "DeleteCustomer",
            &format!("<a:ExternalId>{id}</a:ExternalId>"),
        )
    };
    g.fault(
        "DeleteCustomer-owns-licenses",
        V11,
        "Admin",
        sam,
        &del("C-G"),
    );
    g.fault("DeleteCustomer-forbidden", V12, "Admin", sue, &del("C-Y"));
    g.ok("DeleteCustomer", V11, "Admin", sam, &del("C-Y"));
    g.ok("DeleteCustomer-assigned", V12, "Admin", admin, &del("C-X"));
    g.fault("DeleteCustomer-unknown", V11, "Admin", admin, &del("C-Y"));
    let cont = |serial: &str| admin_op("GetContainer", &format!("<a:Serial>{serial}</a:Serial>"));
    g.ok("GetContainer", V11, "Admin", sue, &cont(&c.serial));
    g.fault(
        "GetContainer-unknown",
        V12,
        "Admin",
        sue,
        &cont("130-0000000001"),
    );
    g.fault(
        "GetContainer-no-such-name",
        V11,
        "Admin",
        sue,
        &cont("box 7"),
    );
    g.fault(
        "GetContainer-forbidden",
        V12,
        "Admin",
        erp,
        &cont(&c.serial),
    );
    g.ok(
        "GetHistory",
        V11,
        "Admin",
        sue,
        &admin_op("GetHistory", &format!("<a:Ticket>{t3}</a:Ticket>")),
    );
    g.fault(
        "GetHistory-wrong-type",
        V12,
        "Admin",
        sue,
        &admin_op("GetHistory", "<a:OrderId>first</a:OrderId>"),
    );
    g.fault(
        "GetHistory-forbidden",
        V11,
        "Admin",
        erp,
        &admin_op("GetHistory", &format!("<a:Ticket>{t3}</a:Ticket>")),
    );

    // The cloud containers' operations (their answers carry serials and credential files
    // made at random; zeep checks them in cloud.rs): the faults, byte for byte.
    g.fault(
        "CreateCloudContainer-unknown-customer",
        V11,
        "Admin",
        admin,
        &admin_op(
            "CreateCloudContainer",
            "<a:CustomerId>C-NONE</a:CustomerId>",
        ),
    );
    g.fault(
        "ActivateIntoCloudContainer-not-cloud",
        V12,
        "Admin",
        admin,
        &admin_op(
            "ActivateIntoCloudContainer",
            &format!("<a:Serial>{}</a:Serial><a:Ticket>{t1}</a:Ticket>", c.serial),
        ),
    );
    g.fault(
        "ReturnFromCloudContainer-unknown",
        V11,
        "Admin",
        admin,
        &admin_op(
            "ReturnFromCloudContainer",
            "<a:Serial>130-0000000002</a:Serial><a:LicenseId>1</a:LicenseId>",
        ),
    );
    g.fault(
        "IssueCloudCredential-not-cloud",
        V12,
        "Admin",
        admin,
        &admin_op(
            "IssueCloudCredential",
            &format!("<a:Serial>{}</a:Serial>", c.serial),
        ),
    );
    g.fault(
        "RevokeCloudCredentials-unknown",
        V11,
        "Admin",
        admin,
        &admin_op(
            "RevokeCloudCredentials",
            "<a:Serial>130-0000000002</a:Serial><a:Reason>lost</a:Reason>",
        ),
    );

    // The server's limits are the XSD's facets, checked before anything runs and named by
    // their path; a limit the service finds is named as the schema names it too.
    let ok_op = "<s:CreateOrder><s:Customer><s:ExternalId>C-1</s:ExternalId></s:Customer>\
        <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateOrder>";
    g.fault(
        "CreateOrder-quantity-facet",
        V11,
        "Sales",
        erp,
        &ok_op.replace("<s:Quantity>1<", "<s:Quantity>0<"),
    );
    g.fault(
        "CreateOrder-quantity-facet",
        V12,
        "Sales",
        erp,
        &ok_op.replace("<s:Quantity>1<", "<s:Quantity>10001<"),
    );
    g.fault(
        "CreateOrder-comment-facet",
        V11,
        "Sales",
        erp,
        &ok_op.replace(
            "</s:Customer>",
            &format!("</s:Customer><s:Comment>{}</s:Comment>", "ü".repeat(1025)),
        ),
    );
    g.fault(
        "CreateOrder-customer-email",
        V11,
        "Sales",
        erp,
        &ok_op.replace(
            "</s:ExternalId>",
            "</s:ExternalId><s:Email>no-at-sign.example.com</s:Email>",
        ),
    );
    g.fault(
        "PutCustomer-email-facet",
        V11,
        "Admin",
        admin,
        &admin_op(
            "PutCustomer",
            &format!(
                "<a:ExternalId>C-FACET</a:ExternalId><a:Email>{}@example.com</a:Email>",
                "x".repeat(250)
            ),
        ),
    );
    g.fault(
        "BlacklistContainer-description-facet",
        V12,
        "Admin",
        admin,
        &admin_op(
            "BlacklistContainer",
            &format!(
                "<a:Serial>130-0000000009</a:Serial><a:Description>{}</a:Description>",
                "d".repeat(257)
            ),
        ),
    );
    // 1,024 characters of two bytes each are within the limit.
    g.ok(
        "CreateOrder-comment-at-the-limit",
        V11,
        "Sales",
        erp,
        &ok_op
            .replace(
                "</s:Customer>",
                &format!("</s:Customer><s:Comment>{}</s:Comment>", "ü".repeat(1024)),
            )
            .replace(
                "<s:Customer>",
                "<s:ErpOrderId>FACET-1</s:ErpOrderId><s:Customer>",
            ),
    );

    // An empty optional element (as PHP's and node's clients send one) is absent, not too
    // short for its facet.
    g.ok(
        "CreateOrder-empty-optional",
        V11,
        "Sales",
        erp,
        &ok_op
            .replace("</s:ExternalId>", "</s:ExternalId><s:Locale/>")
            .replace(
                "<s:Customer>",
                "<s:ErpOrderId>FACET-2</s:ErpOrderId><s:Customer>",
            ),
    );

    // Support's decision about a container whose request showed a counter nothing issued.
    let gw = licentia::client::online::Gateway::new(&app.base);
    let (ticket, ids) = crate::activation::ticket_with(&app, "MANIP-1", "SNP-SINGLE", 1);
    let mut m = Container::create(ContainerType::Act, None, &traits(), 2).unwrap();
    let keep = &mut |_: &Container| Ok(());
    licentia::client::online::ensure_trust(&gw, &mut m, FIRM).unwrap();
    licentia::client::online::activate(&gw, &mut m, &ticket, &ids, keep).unwrap();
    m.firms.get_mut(&FIRM).unwrap().counter = 7;
    let e = licentia::client::online::update(&gw, &mut m, keep).unwrap_err();
    assert_eq!(e.code, "manipulation_detected", "{e}");
    let decide = |decision: &str| {
        admin_op(
            "DecideManipulation",
            &format!(
                "<a:Serial>{}</a:Serial><a:Decision>{decision}</a:Decision>\
                 <a:Reason>restored from a backup (case 7)</a:Reason>",
                m.serial
            ),
        )
    };
    g.fault(
        "DecideManipulation-forbidden",
        V11,
        "Admin",
        sam,
        &decide("resynchronise"),
    );
    g.fault(
        "DecideManipulation-unknown",
        V12,
        "Admin",
        admin,
        &decide("forgive"),
    );
    g.ok(
        "DecideManipulation",
        V11,
        "Admin",
        admin,
        &decide("resynchronise"),
    );
    g.fault(
        "DecideManipulation-again",
        V11,
        "Admin",
        sue,
        &decide("resynchronise"),
    );
    g.ok(
        "DecideManipulation",
        V12,
        "Admin",
        sue,
        &decide("blacklist"),
    );

    // Customers of a connector's scope: made, found and listed by scope; the vendor's C-X
    // and the shop's C-X are two customers.
    g.ok(
        "PutCustomer-scoped",
        V11,
        "Admin",
        admin,
        "<a:PutCustomer><a:ExternalId>C-X</a:ExternalId><a:Name>Shop Xaver</a:Name>\
         <a:Scope>shop</a:Scope></a:PutCustomer>",
    );
    g.ok(
        "GetCustomer-scoped",
        V12,
        "Admin",
        admin,
        "<a:GetCustomer><a:ExternalId>C-X</a:ExternalId><a:Scope>shop</a:Scope></a:GetCustomer>",
    );
    g.ok(
        "ListCustomers-scoped",
        V11,
        "Admin",
        admin,
        "<a:ListCustomers><a:Scope>shop</a:Scope></a:ListCustomers>",
    );
    g.fault(
        "GetCustomer-other-scope",
        V11,
        "Admin",
        admin,
        "<a:GetCustomer><a:ExternalId>C-X</a:ExternalId><a:Scope>paddle</a:Scope>\
         </a:GetCustomer>",
    );
    let report = |name: &str, params: &str| {
        format!("<r:RunReport><r:Name>{name}</r:Name>{params}</r:RunReport>")
    };
    g.fault(
        "RunReport-page-size-out-of-range",
        V12,
        "Report",
        erp,
        &report("never-activated", "<r:PageSize>0</r:PageSize>"),
    );
    g.fault(
        "RunReport-after-without-page-size",
        V11,
        "Report",
        erp,
        &report("never-activated", "<r:After>1.5</r:After>"),
    );

    // Every operation of every service was asked at least once above.
    for svc in licentia::api::soap::SERVICES {
        for op in svc.operations {
            let asked = g
                .answers
                .iter()
                .any(|(name, _)| name.split('-').nth(2) == Some(op));
            assert!(asked, "{}.{op} has no golden answer", svc.name);
        }
    }
    compare(&g.answers);
}

/// Compares the answers with the golden files (or writes them: see the module's comment).
fn compare(answers: &[(String, String)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/soap");
    if std::env::var_os("LICENTIA_WRITE_GOLDENS").is_some() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in answers {
            std::fs::write(dir.join(name), body).unwrap();
        }
        panic!(
            "wrote {} golden files to {}; run again without LICENTIA_WRITE_GOLDENS to compare",
            answers.len(),
            dir.display()
        );
    }
    let mut problems = vec![];
    for (name, body) in answers {
        match std::fs::read_to_string(dir.join(name)) {
            Err(e) => problems.push(format!("{name}: no golden file ({e})")),
            Ok(want) if want != *body => {
                let at = want
                    .bytes()
                    .zip(body.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(body.len()));
                let around = |s: &str| {
                    let mut from = at.saturating_sub(60).min(s.len());
                    while !s.is_char_boundary(from) {
                        from -= 1;
                    }
                    let mut to = (at + 60).min(s.len());
                    while !s.is_char_boundary(to) {
                        to += 1;
                    }
                    s[from..to].to_string()
                };
                problems.push(format!(
                    "{name}: differs at byte {at}\n  golden: {:?}\n  answer: {:?}",
                    around(&want),
                    around(body)
                ));
            }
            Ok(_) => {}
        }
    }
    // A golden file the script no longer makes is stale.
    let made: Vec<&str> = answers.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if !made.contains(&name.as_str()) {
            problems.push(format!("{name}: a golden file that no request made"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} SOAP answers differ from tests/fixtures/soap (LICENTIA_WRITE_GOLDENS=1 \
         rewrites them):\n{}",
        problems.len(),
        answers.len(),
        problems.join("\n")
    );
}
