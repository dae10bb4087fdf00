//! The SOAP Sales service through a real SOAP client (Python zeep reading our WSDL), over
//! both bindings, and hostile or wrong envelopes sent raw.
use licentia::domain::Role;
use serde_json::{json, Value};

use crate::harness::TestApp;

/// Calls `operation` of `service` through zeep (`user` "-" for none); `TEST_PYTHON` is the
/// test virtual environment's Python (scripts/test.sh installs zeep there).
pub(crate) fn zeep_at(
    app: &TestApp,
    service: &str,
    binding: &str,
    (user, pw): (&str, &str),
    operation: &str,
    args: Value,
) -> Value {
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap_client.py"))
        .arg(format!("{}/soap/{service}?wsdl", app.base))
        .args([user, pw, binding, operation, &args.to_string()])
        .arg(format!("{service}Service"))
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "zeep: {stdout}\n{} (scripts/test.sh installs zeep and sets TEST_PYTHON)",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The detail of the SOAP fault zeep reported (the test fails if there is none).
pub(crate) fn fault(v: &Value) -> &str {
    v["fault"]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no SOAP fault in {v}"))
}

fn zeep(app: &TestApp, user: &str, pw: &str, binding: &str, operation: &str, args: Value) -> Value {
    zeep_at(app, "Sales", binding, (user, pw), operation, args)
}

/// Posts a body to a SOAP service, with HTTP Basic `auth` if given; status and text.
fn post_to(
    app: &TestApp,
    service: &str,
    content_type: &str,
    action: Option<&str>,
    auth: Option<(&str, &str)>,
    body: &str,
) -> (u16, String) {
    use base64::Engine;
    let mut req =
        ureq::post(&format!("{}/soap/{service}", app.base)).set("Content-Type", content_type);
    if let Some((u, p)) = auth {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.set("Authorization", &format!("Basic {b}"));
    }
    if let Some(a) = action {
        req = req.set("SOAPAction", a);
    }
    match req.send_string(body) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

/// A SOAP 1.1 text/xml post to `service` as `auth`.
fn raw_to(app: &TestApp, service: &str, auth: (&str, &str), body: &str) -> (u16, String) {
    post_to(app, service, "text/xml", None, Some(auth), body)
}

/// As the test user `erp` (password `erp-password-123`) to the Sales service.
fn raw(app: &TestApp, content_type: &str, action: Option<&str>, body: &str) -> (u16, String) {
    let erp = Some(("erp", "erp-password-123"));
    post_to(app, "Sales", content_type, action, erp, body)
}

/// A SOAP 1.1 envelope around `op`, the prefix `p` bound to `ns`.
fn envelope_ns(p: &str, ns: &str, op: &str) -> String {
    format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
 xmlns:{p}=\"{ns}\"><soap:Body>{op}</soap:Body></soap:Envelope>"
    )
}

const NS: &str = "http://licentia.dev/ns/sales/v1";
const ADMIN_NS: &str = "http://licentia.dev/ns/admin/v1";

fn envelope11(op: &str) -> String {
    format!(
"<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
 xmlns:s=\"{NS}\"><soap:Body>{op}</soap:Body></soap:Envelope>"
    )
}

#[test]
fn zeep_creates_orders_and_reads_tickets_over_soap_11_and_12() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let order = json!({"Source": "sap", "ErpOrderId": "SO-1",
"Customer": {"ExternalId": "C-SOAP", "Name": "Müller & Co", "Locale": "de"},
"Line": [{"ItemId": "SNP-SINGLE", "Quantity": 2}, {"ItemId": "SNP-FLOAT-5", "Quantity": 1}]});
    let v = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap11",
        "CreateOrder",
        order.clone(),
    );
    let r = &v["ok"];
    assert_eq!(r["Created"], true, "{v}");
    let ticket = r["Ticket"].as_str().unwrap().to_string();
    assert_eq!(
        r["Line"][0]["LicenseId"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    // The ERP retries over SOAP 1.2: the same ticket.
    let again = zeep(&app, "erp", &pw, "SalesSoap12", "CreateOrder", order);
    assert_eq!(again["ok"]["Ticket"], ticket.as_str(), "{again}");
    assert_eq!(again["ok"]["Created"], false);
    assert_eq!(app.count("orders"), 1);
    let t = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap12",
        "GetTicket",
        json!({"Ticket": ticket}),
    );
    assert_eq!(t["ok"]["CustomerId"], "C-SOAP", "{t}");
    assert_eq!(t["ok"]["License"].as_array().unwrap().len(), 3);
    let (_, c) = app.admin("GET", "/api/v1/customers/C-SOAP", None);
    assert_eq!(c["name"], "Müller & Co");

    // Faults carry our code in the detail, as the WSDL declares.
    let f = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap11",
        "CreateOrder",
        json!({"Customer": {"ExternalId": "C-2"}, "Line": [{"ItemId": "NOPE", "Quantity": 1}]}),
    );
    assert_eq!(f["fault"]["code"], "env:Client", "{f}");
    assert!(fault(&f).contains("unknown_item"), "{f}");
    let f = zeep(
        &app,
        "erp",
        "wrong",
        "SalesSoap12",
        "GetTicket",
        json!({"Ticket": ticket}),
    );
    assert_eq!(f["fault"]["code"], "env:Sender", "{f}");
    assert!(fault(&f).contains("unauthenticated"), "{f}");
    assert_eq!(app.count("orders"), 1);
}

#[test]
fn wrong_or_hostile_envelopes_get_a_clear_fault_and_change_nothing() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    assert_eq!(pw, "erp-password-123");
    let ok_op = "<s:CreateOrder><s:Customer><s:ExternalId>C-1</s:ExternalId></s:Customer>\
         <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateOrder>";
    let cases: Vec<(String, &str, Option<&str>, &str)> = vec![
(
    envelope11(&ok_op.replace("<s:Quantity>1<", "<s:Quantity>two<")),
    "text/xml",
    None,
    "CreateOrder/Line[1]/Quantity",
),
(
    format!("<!DOCTYPE x [<!ENTITY e \"boom\">]>{}", envelope11(ok_op)),
    "text/xml",
    None,
    "DOCTYPE",
),
(
    envelope11(ok_op),
    "text/xml",
    Some("http://licentia.dev/ns/sales/v1/GetTicket"),
    "SOAPAction",
),
(
    envelope11(ok_op),
    "application/soap+xml",
    None,
    "Content-Type",
),
(
    envelope11("<s:DeleteEverything/>"),
    "text/xml",
    None,
    "no operation DeleteEverything",
),
(
    envelope11(
        &ok_op
            .replace("xmlns", "x")
            .replace("<s:CreateOrder>", "<o:CreateOrder xmlns:o=\"urn:other\">")
            .replace("</s:CreateOrder>", "</o:CreateOrder>"),
    ),
    "text/xml",
    None,
    "namespace",
),
("<Envelope/>".into(), "text/xml", None, "not a SOAP"),
(
    envelope11(ok_op).replace("</soap:Envelope>", ""),
    "text/xml",
    None,
    "not",
),
// Characters XML does not allow, raw or as a reference, in text or an attribute.
(
    envelope11(&ok_op.replace(">C-1<", ">C&#1;1<")),
    "text/xml",
    None,
    "U+0001",
),
(
    envelope11(&ok_op.replace(">C-1<", ">C\u{8}1<")),
    "text/xml",
    None,
    "U+0008",
),
(
    envelope11(&ok_op.replace("<s:Customer>", "<s:Customer a=\"&#xFFFF;\">")),
    "text/xml",
    None,
    "U+FFFF",
),
(
    envelope11(&ok_op.replace(">C-1<", "><![CDATA[C\u{1b}1]]><")),
    "text/xml",
    None,
    "U+001B",
),
(
    envelope11(&ok_op.replace(">C-1<", ">&unknown;<")),
    "text/xml",
    None,
    "unknown; is not accepted",
),
// One operation per request: a second one is not silently dropped.
(
    envelope11(&format!("{ok_op}{ok_op}")),
    "text/xml",
    None,
    "more than one operation",
),
(
    format!("<a>{}", "<a>".repeat(40)) + &"</a>".repeat(41),
    "text/xml",
    None,
    "nested deeper than 32",
),
// The request as the schema declares it: no unknown, misplaced, repeated or foreign
// element is passed over in silence.
(
    envelope11(&ok_op.replace("<s:Customer>", "<s:Commnet>x</s:Commnet><s:Customer>")),
    "text/xml",
    None,
    "CreateOrder/Commnet: is not an element of CreateOrder (its elements: Source, ErpOrderId",
),
(
    envelope11(&ok_op.replace(
        "</s:CreateOrder>",
        "<s:Customer><s:ExternalId>C-2</s:ExternalId></s:Customer></s:CreateOrder>",
    )),
    "text/xml",
    None,
    "CreateOrder/Customer: is out of order",
),
(
    envelope11(&ok_op.replace(
        "<s:Customer>",
        "<s:Customer><s:ExternalId>C-0</s:ExternalId></s:Customer><s:Customer>",
    )),
    "text/xml",
    None,
    "CreateOrder/Customer: may appear at most 1 time",
),
(
    envelope11(&ok_op.replace("<s:Line>", "<s:Line><s:Quantity>1</s:Quantity>")),
    "text/xml",
    None,
    "CreateOrder/Line[1]/Quantity: is out of order",
),
(
    envelope11(&ok_op.replace("<s:ExternalId>C-1</s:ExternalId>", "")),
    "text/xml",
    None,
    "CreateOrder/Customer/ExternalId: is missing",
),
(
    envelope11(&ok_op.replace(
        "<s:Quantity>1</s:Quantity>",
        "<s:Quantity><s:Value>1</s:Value></s:Quantity>",
    )),
    "text/xml",
    None,
    "CreateOrder/Line[1]/Quantity: is a value and holds no elements",
),
(
    envelope11(&ok_op.replace(
        "<s:Customer>",
        "<o:Customer xmlns:o=\"urn:other\"><o:ExternalId>C-1</o:ExternalId></o:Customer><s:Customer>",
    )),
    "text/xml",
    None,
    "CreateOrder/Customer: namespace",
),
(
    envelope11(&ok_op.replace("<s:Line>", "loose text<s:Line>")),
    "text/xml",
    None,
    "holds text beside its elements",
),
// A header block the service must understand and does not.
(
    envelope11(ok_op).replace(
        "<soap:Body>",
        "<soap:Header><x:Trace xmlns:x=\"urn:trace\" soap:mustUnderstand=\"1\"/>\
         </soap:Header><soap:Body>",
    ),
    "text/xml",
    None,
    "<faultcode>env:MustUnderstand</faultcode>",
),
    ];
    for (body, ct, action, says) in &cases {
        let (s, text) = raw(&app, ct, *action, body);
        assert_eq!(s, 500, "{says}: {text}");
        assert!(
            text.contains("Fault") && text.contains(says),
            "{says}: {text}"
        );
    }
    assert_eq!(app.count("orders"), 0);
    // A body over the configured limit is a fault too, and nothing is made.
    let limit = app.core.config().max_body_bytes;
    let big = envelope11(&ok_op.replace(
        "</s:Customer>",
        &format!("</s:Customer><s:Comment>{}</s:Comment>", "x".repeat(limit)),
    ));
    let (s, text) = raw(&app, "text/xml", None, &big);
    assert_eq!(s, 500, "{text}");
    assert!(
        text.contains(&format!("is larger than {limit} bytes")),
        "{text}"
    );
    assert_eq!(app.count("orders"), 0);
    // Before the envelope is read, the Content-Type says which SOAP the fault speaks.
    let (s, text) = raw(
        &app,
        "application/soap+xml",
        None,
        &format!("<!DOCTYPE x>{}", envelope11(ok_op)),
    );
    assert_eq!(s, 500, "{text}");
    assert!(
        text.contains("http://www.w3.org/2003/05/soap-envelope") && text.contains("env:Sender"),
        "{text}"
    );
    // A Depot Restore whose trait lacks its hash is refused before the service counts a
    // refused restore.
    let depot = "http://licentia.dev/ns/depot/v1";
    let restore = envelope_ns(
        "d",
        depot,
        "<d:Restore><d:OldSerial>130-1</d:OldSerial><d:Request>x</d:Request>\
 <d:Trait><d:Name>cpu</d:Name></d:Trait></d:Restore>",
    );
    let events = app.count("events");
    let (_, text) = post_to(&app, "Depot", "text/xml", None, None, &restore);
    assert!(text.contains("Restore/Trait[1]/Hash: is missing"), "{text}");
    assert_eq!(app.count("events"), events);
    // The same request, well-formed and named right, works; CDATA is text, and a header
    // block that need not be understood is passed over.
    let (s, text) = raw(
        &app,
        "text/xml",
        Some("\"http://licentia.dev/ns/sales/v1/CreateOrder\""),
        &envelope11(&ok_op.replace(">1<", "><![CDATA[1]]><")).replace(
            "<soap:Body>",
            "<soap:Header><x:Trace xmlns:x=\"urn:trace\">t-1</x:Trace></soap:Header><soap:Body>",
        ),
    );
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("<s:Ticket>"), "{text}");
    // The WSDL names this server; the schema it imports is served.
    let wsdl = ureq::get(&format!("{}/soap/Sales?wsdl", app.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(wsdl.contains(&format!(
        "location=\"{}/soap/Sales\"",
        app.core.config().public_url
    )));
    let xsd = ureq::get(&format!("{}/soap/xsd/licentia-sales-v1.xsd", app.base))
        .call()
        .unwrap();
    assert_eq!(xsd.status(), 200);
}

#[test]
fn every_operation_in_the_wsdl_is_implemented_and_every_implemented_one_is_in_the_wsdl() {
    for svc in licentia::api::soap::SERVICES {
        let port_type = &svc.wsdl
            [svc.wsdl.find("<wsdl:portType").unwrap()..svc.wsdl.find("</wsdl:portType>").unwrap()];
        let mut declared: Vec<&str> = port_type
            .split("<wsdl:operation name=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
            .collect();
        declared.sort();
        let mut implemented = svc.operations.to_vec();
        implemented.sort();
        assert_eq!(declared, implemented, "{}", svc.name);
        // Both bindings bind every operation.
        for binding in ["Soap11", "Soap12"] {
            let start = svc
                .wsdl
                .find(&format!("<wsdl:binding name=\"{}{binding}\"", svc.name))
                .unwrap();
            let end = start + svc.wsdl[start..].find("</wsdl:binding>").unwrap();
            let bound = svc.wsdl[start..end]
                .matches("<wsdl:operation name=")
                .count();
            assert_eq!(bound, implemented.len(), "{} {binding}", svc.name);
        }
    }
}

fn with_token(
    op: &str,
    user: &str,
    pw: &str,
    nonce: Option<&str>,
    created: &str,
    ty: &str,
) -> String {
    let wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    let wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    let nonce = nonce
        .map(|n| format!("<wsse:Nonce>{n}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"))
        .unwrap_or_default();
    format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:s=\"{NS}\">\
 <soap:Header><wsse:Security xmlns:wsse=\"{wsse}\" xmlns:wsu=\"{wsu}\"><wsse:UsernameToken>\
 <wsse:Username>{user}</wsse:Username><wsse:Password Type=\"{ty}\">{pw}</wsse:Password>\
 {nonce}</wsse:UsernameToken></wsse:Security></soap:Header><soap:Body>{op}</soap:Body>\
 </soap:Envelope>"
    )
}

#[test]
fn a_username_token_authenticates_once_per_nonce() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let text = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
    let digest = text.replace("PasswordText", "PasswordDigest");
    let op = "<s:GetTicket><s:Ticket>AAAAA-AAAAA-AAAAA-AAAAA-AAAAA</s:Ticket></s:GetTicket>";
    let post = |body: String| post_to(&app, "Sales", "text/xml", None, None, &body);
    let now = chrono::Utc::now().to_rfc3339();
    // Authenticated: the fault is about the ticket, not the caller.
    let (s, r) = post(with_token(op, "erp", &pw, Some("bm9uY2UtMQ=="), &now, text));
    assert_eq!(s, 500);
    assert!(
        r.contains("invalid_ticket") || r.contains("unknown_ticket"),
        "{r}"
    );
    let (_, r) = post(with_token(op, "erp", &pw, Some("bm9uY2UtMQ=="), &now, text));
    assert!(r.contains("used before"), "{r}");
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (_, r) = post(with_token(op, "erp", &pw, Some("bm9uY2UtMg=="), &old, text));
    assert!(r.contains("created"), "{r}");
    let (_, r) = post(with_token(op, "erp", "wrong", None, &now, text));
    assert!(r.contains("unauthenticated"), "{r}");
    // PasswordDigest: Base64(SHA-1(nonce + created + password)).
    let sha = |nonce: &[u8]| {
        use base64::Engine;
        let mut d = nonce.to_vec();
        d.extend_from_slice(now.as_bytes());
        d.extend_from_slice(pw.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha1(&d))
    };
    let digest_of =
        |secret: &str, nonce: Option<&str>| with_token(op, "erp", secret, nonce, &now, &digest);
    let (_, r) = post(digest_of(&sha(b"nonce-3"), Some("bm9uY2UtMw==")));
    assert!(
        r.contains("invalid_ticket") || r.contains("unknown_ticket"),
        "{r}"
    );
    let (_, r) = post(digest_of(&sha(b"nonce-3"), Some("bm9uY2UtMw==")));
    assert!(r.contains("used before"), "{r}");
    let (_, r) = post(digest_of(&sha(b"other"), Some("bm9uY2UtNA==")));
    assert!(r.contains("unauthenticated"), "{r}");
    let (_, r) = post(digest_of(&sha(b"nonce-5"), None));
    assert!(r.contains("needs a Nonce"), "{r}");
    let (_, r) = post(envelope11(op));
    assert!(r.contains("unauthenticated"), "{r}");
    // A nonce is remembered only for a caller whose credentials hold: a wrong password
    // neither stores it nor spends it, and a nonce is base64 of at most 64 bytes.
    let nonces = app.count("soap_nonces");
    let (_, r) = post(with_token(
        op,
        "erp",
        "wrong",
        Some("bm9uY2UtNg=="),
        &now,
        text,
    ));
    assert!(r.contains("unauthenticated"), "{r}");
    let (_, r) = post(with_token(
        op,
        "nobody",
        "x",
        Some("bm9uY2UtNw=="),
        &now,
        text,
    ));
    assert!(r.contains("unauthenticated"), "{r}");
    assert_eq!(app.count("soap_nonces"), nonces);
    let (_, r) = post(with_token(op, "erp", &pw, Some("bm9uY2UtNg=="), &now, text));
    assert!(r.contains("_ticket"), "{r}");
    assert_eq!(app.count("soap_nonces"), nonces + 1);
    let long = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 65])
    };
    for bad in [long.as_str(), "not base64!"] {
        let (_, r) = post(with_token(op, "erp", &pw, Some(bad), &now, text));
        assert!(r.contains("base64 of 1 to 64 bytes"), "{r}");
    }
    assert_eq!(app.count("soap_nonces"), nonces + 1);
}

/// Validates the element inside a response's Body (an operation's answer or a fault's
/// LicentiaFault) against our XSD with xmllint.
pub(crate) fn xmllint_valid(response: &str) {
    let inner = if let Some(i) = response.find("<l:LicentiaFault") {
        let j = response.find("</l:LicentiaFault>").unwrap() + "</l:LicentiaFault>".len();
        &response[i..j]
    } else {
        let i = response.find("<env:Body>").unwrap() + "<env:Body>".len();
        let j = response.find("</env:Body>").unwrap();
        &response[i..j]
    };
    let file = std::env::temp_dir().join(format!("licentia-soap-{}.xml", rand::random::<u32>()));
    std::fs::write(&file, inner).unwrap();
    let xsd = if inner.contains("http://licentia.dev/ns/report/v1") {
        concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/licentia-report-v1.xsd")
    } else if inner.contains("http://licentia.dev/ns/admin/v1") {
        concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/licentia-admin-v1.xsd")
    } else if inner.contains("http://licentia.dev/ns/depot/v1") {
        concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/licentia-depot-v1.xsd")
    } else {
        concat!(env!("CARGO_MANIFEST_DIR"), "/xsd/licentia-sales-v1.xsd")
    };
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
        .arg(&file)
        .output()
        .expect("xmllint (scripts/install-deps.sh --test installs libxml2-utils)");
    std::fs::remove_file(&file).unwrap();
    assert!(
        out.status.success(),
        "{}\n{inner}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn responses_and_faults_validate_against_the_xsd_and_the_wsdl_is_well_formed() {
    let app = TestApp::start();
    app.add_user("erp", Role::Erp);
    let create = "<s:CreateOrder><s:ErpOrderId>X-1</s:ErpOrderId><s:Customer><s:ExternalId>C-1</s:ExternalId></s:Customer>\
          <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>2</s:Quantity></s:Line></s:CreateOrder>";
    let (s, r) = raw(&app, "text/xml", None, &envelope11(create));
    assert_eq!(s, 200, "{r}");
    xmllint_valid(&r);
    let ticket = r
        .split("<s:Ticket>")
        .nth(1)
        .unwrap()
        .split("</s:Ticket>")
        .next()
        .unwrap();
    let get = format!("<s:GetTicket><s:Ticket>{ticket}</s:Ticket></s:GetTicket>");
    let (s, r) = raw(&app, "text/xml", None, &envelope11(&get));
    assert_eq!(s, 200, "{r}");
    xmllint_valid(&r);
    let (s, r) = raw(
        &app,
        "text/xml",
        None,
        &envelope11(&create.replace("SNP-SINGLE", "NOPE").replace("X-1", "X-2")),
    );
    assert_eq!(s, 500, "{r}");
    xmllint_valid(&r);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl/sales-v1.wsdl");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zeep_runs_reports_over_the_report_service() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order("RS-1", "C-R", &[("SNP-SINGLE", 3)])),
    );
    assert_eq!(s, 201);
    let v = zeep_at(
        &app,
        "Report",
        "ReportSoap12",
        ("erp", &pw),
        "RunReport",
        json!({"Name": "never-activated"}),
    );
    let r = &v["ok"];
    assert_eq!(r["Report"], "never-activated", "{v}");
    assert_eq!(r["Column"][0], "license_id");
    assert_eq!(r["Row"].as_array().unwrap().len(), 3, "{v}");
    let csv = r["Csv"].as_str().unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // Raw: the response validates; a Days that is not a number is a fault naming it.
    let env = |op: &str| envelope_ns("r", "http://licentia.dev/ns/report/v1", op);
    let post = |body: String| raw_to(&app, "Report", ("erp", &pw), &body);
    let (s, text) = post(env(
        "<r:RunReport><r:Name>expiring</r:Name><r:Days>30</r:Days></r:RunReport>",
    ));
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
    let (s, text) = post(env(
        "<r:RunReport><r:Name>expiring</r:Name><r:Days>soon</r:Days></r:RunReport>",
    ));
    assert_eq!(s, 500);
    assert!(text.contains("RunReport/Days"), "{text}");
    xmllint_valid(&text);
    let (_, text) = post(env(
        "<r:RunReport><r:Name>everything</r:Name></r:RunReport>",
    ));
    assert!(text.contains("unknown report"), "{text}");
}

/// A report longer than one answer carries: refused whole (naming the way), read in pages
/// through zeep with `PageSize` and each page's `Next` as `After`, every row once and in
/// order; a continuation that is not one, or one of another report, is a fault.
#[test]
fn zeep_reads_a_long_report_in_pages() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    app.rt
        .block_on(licentia::service::generate::fill(&app.core, 36_000, 3))
        .unwrap();
    let (_, whole) = app.admin("GET", "/api/v1/reports/never-activated", None);
    let expected: Vec<i64> = whole["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["license_id"].as_i64().unwrap())
        .collect();
    assert!(expected.len() > 10_000, "{}", expected.len());
    let run = |args: Value| {
        zeep_at(
            &app,
            "Report",
            "ReportSoap12",
            ("erp", &pw),
            "RunReport",
            args,
        )
    };
    let v = run(json!({"Name": "never-activated"}));
    assert!(fault(&v).contains("more than 10000 rows"), "{v}");
    let (mut ids, mut after, mut pages, mut first_next) = (vec![], None::<String>, 0, None);
    loop {
        let mut args = json!({"Name": "never-activated", "PageSize": 4000});
        if let Some(a) = &after {
            args["After"] = a.clone().into();
        }
        let v = run(args);
        let r = &v["ok"];
        let rows = r["Row"].as_array().unwrap_or_else(|| panic!("{v}"));
        assert!(rows.len() <= 4000);
        let csv = r["Csv"].as_str().unwrap();
        assert_eq!(
            csv.lines().count(),
            rows.len() + 1,
            "the page's rows as CSV"
        );
        ids.extend(
            rows.iter()
                .map(|row| row["Value"][0].as_str().unwrap().parse::<i64>().unwrap()),
        );
        pages += 1;
        match r["Next"].as_str() {
            Some(next) => {
                first_next.get_or_insert_with(|| next.to_string());
                after = Some(next.to_string())
            }
            None => break,
        }
    }
    assert_eq!(ids, expected, "every row once, in order");
    assert!(pages >= 3, "{pages} pages");
    // Continuations that are none, another report's, or old, and After without PageSize.
    let expiring = run(json!({"Name": "expiring", "Days": 365, "PageSize": 10}));
    let other = expiring["ok"]["Next"]
        .as_str()
        .expect("the expiring report goes on")
        .to_string();
    let mine = first_next.unwrap();
    let parts: Vec<&str> = mine.split('.').collect();
    let garbled = format!("{}.x.{}", parts[0], parts[2]);
    let week_ago = chrono::Utc::now().timestamp_micros() - 8 * 86_400_000_000;
    let old = format!("{week_ago}.{}.{}", parts[1], parts[2]);
    for (args, says) in [
        (
            json!({"Name": "never-activated", "PageSize": 10, "After": other}),
            "is not where a page",
        ),
        (
            json!({"Name": "never-activated", "PageSize": 10, "After": garbled}),
            "not a continuation",
        ),
        (
            json!({"Name": "never-activated", "PageSize": 10, "After": old}),
            "older than 7 days",
        ),
        (
            json!({"Name": "never-activated", "After": mine}),
            "give PageSize too",
        ),
        (
            json!({"Name": "blacklist", "PageSize": 10, "After": "1.5"}),
            "is not where a page",
        ),
    ] {
        let v = run(args.clone());
        let f = fault(&v);
        assert!(
            f.contains("RunReport/After") && f.contains(says),
            "{args}: {f}"
        );
    }
}

/// The Depot through zeep: no credentials (they are in the messages).
fn zeep_depot(app: &TestApp, operation: &str, args: Value) -> Value {
    zeep_at(app, "Depot", "DepotSoap11", ("-", "-"), operation, args)
}

#[test]
fn the_depot_activates_confirms_and_returns_through_zeep() {
    use licentia::client::online::Gateway;
    use licentia::client::unix_now;
    let app = TestApp::start();
    let (ticket, ids) = crate::activation::ticket_with(&app, "DP-1", "SNP-SINGLE", 2);
    let info = zeep_depot(&app, "TicketInfo", json!({"Ticket": ticket}));
    assert_eq!(info["ok"]["License"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(info["ok"]["License"][0]["State"], "available");

    let gw = Gateway::new(&app.base);
    let mut c = crate::activation::new_act(&gw);
    let request = c.request(crate::activation::FIRM, unix_now()).unwrap();
    let v = zeep_depot(
        &app,
        "Activate",
        json!({"Ticket": ticket, "LicenseId": [ids[0]], "Request": request}),
    );
    let update = v["ok"]["Update"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(v["ok"]["Added"], json!([ids[0]]));
    let applied = c.apply(update, unix_now()).unwrap();
    let r = zeep_depot(&app, "ConfirmReceipt", json!({"Receipt": applied.receipt}));
    assert_eq!(r["ok"]["Activated"], json!([ids[0]]), "{r}");
    assert_eq!(crate::activation::license(&app, ids[0]).0, "activated");
    // Nothing waits: PullUpdates answers no update.
    let request = c.request(crate::activation::FIRM, unix_now()).unwrap();
    let p = zeep_depot(&app, "PullUpdates", json!({"Request": request}));
    assert!(p["ok"].is_null() || p["ok"]["Update"].is_null(), "{p}");
    // Return it.
    let request = c.request(crate::activation::FIRM, unix_now()).unwrap();
    let v = zeep_depot(
        &app,
        "Return",
        json!({"LicenseId": [ids[0]], "Request": request}),
    );
    let applied = c
        .apply(v["ok"]["Update"].as_str().unwrap(), unix_now())
        .unwrap();
    let r = zeep_depot(&app, "ConfirmReceipt", json!({"Receipt": applied.receipt}));
    assert_eq!(r["ok"]["Released"], json!([ids[0]]), "{r}");
    assert_eq!(crate::activation::license(&app, ids[0]).0, "available");
    // A tampered request is a fault with our code.
    let bad = zeep_depot(
        &app,
        "Activate",
        json!({"Ticket": ticket, "LicenseId": [ids[1]], "Request": "-----BEGIN LICENTIA REQUEST-----\nAAAA\n-----END LICENTIA REQUEST-----"}),
    );
    assert!(fault(&bad).contains("invalid_message"), "{bad}");
    // Raw: the answer validates against the Depot schema.
    let body = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
 xmlns:d=\"http://licentia.dev/ns/depot/v1\"><soap:Body><d:TicketInfo><d:Ticket>{ticket}\
 </d:Ticket></d:TicketInfo></soap:Body></soap:Envelope>"
    );
    let text = ureq::post(&format!("{}/soap/Depot", app.base))
        .set("Content-Type", "text/xml")
        .send_string(&body)
        .unwrap()
        .into_string()
        .unwrap();
    xmllint_valid(&text);
}

fn zeep_admin(app: &TestApp, user: &str, pw: &str, operation: &str, args: Value) -> Value {
    zeep_at(app, "Admin", "AdminSoap12", (user, pw), operation, args)
}

#[test]
fn the_admin_service_decides_approvals_and_controls_containers_through_zeep() {
    use licentia::client::online::{self, Gateway};
    let app = TestApp::start();
    let sue = app.add_user("sue", Role::Support);
    let sam = app.add_user("sam", Role::Sales);
    let (s, _) = app.admin(
        "PUT",
        "/api/v1/settings",
        Some(json!({"self_service_count": 0})),
    );
    assert_eq!(s, 200);
    let gw = Gateway::new(&app.base);
    let (ticket, ids) = crate::activation::ticket_with(&app, "AD-1", "SNP-SINGLE", 2);
    let mut a = crate::activation::new_act(&gw);
    online::activate(&gw, &mut a, &ticket, &ids, &mut |_| Ok(())).unwrap();
    let mut b = crate::activation::new_act(&gw);
    let e = online::reactivate(&gw, &mut b, &ticket, &ids[..1], &mut |_| Ok(())).unwrap_err();
    assert_eq!(e.code, "approval_required");

    let open = zeep_admin(&app, "sue", &sue, "ListApprovals", json!({"State": "open"}));
    let approval = &open["ok"][0];
    assert_eq!(approval["LicenseId"], ids[0], "{open}");
    let id = approval["ApprovalId"].as_i64().unwrap();
    // The new container got its serial when it asked (it never saw an update).
    let b_serial = approval["Serial"].as_str().unwrap().to_string();
    let no = zeep_admin(
        &app,
        "sam",
        &sam,
        "DecideApproval",
        json!({"ApprovalId": id, "Approve": true}),
    );
    assert!(fault(&no).contains("forbidden"), "{no}");
    let yes = zeep_admin(
        &app,
        "sue",
        &sue,
        "DecideApproval",
        json!({"ApprovalId": id, "Approve": true, "Reason": "by phone"}),
    );
    assert_eq!(yes["ok"]["State"], "approved", "{yes}");
    assert_eq!(
        crate::activation::license(&app, ids[0]).1,
        Some(b_serial.clone())
    );

    // The re-activation blacklisted the old container (the default behaviour); taken off
    // by an admin, blacklisted again by support.
    let again = zeep_admin(
        &app,
        "sue",
        &sue,
        "BlacklistContainer",
        json!({"Serial": a.serial, "Description": "lost"}),
    );
    assert!(fault(&again).contains("already_exists"), "{again}");
    let r = zeep_admin(
        &app,
        "admin",
        crate::harness::ADMIN_PW,
        "RemoveFromBlacklist",
        json!({"Serial": a.serial, "Reason": "found"}),
    );
    assert_eq!(r["ok"], a.serial.as_str(), "{r}");
    let r = zeep_admin(
        &app,
        "sue",
        &sue,
        "BlacklistContainer",
        json!({"Serial": a.serial, "Description": "lost again"}),
    );
    assert_eq!(r["ok"], a.serial.as_str(), "{r}");
    let r = zeep_admin(
        &app,
        "sue",
        &sue,
        "AssignContainer",
        json!({"Serial": b_serial, "CustomerId": "C-ACT"}),
    );
    assert_eq!(r["ok"], b_serial.as_str(), "{r}");
    let (_, t2) = crate::activation::ticket_with(&app, "AD-2", "SNP-SINGLE", 1);
    let r = zeep_admin(
        &app,
        "sue",
        &sue,
        "PushLicense",
        json!({"Serial": b_serial, "LicenseId": t2[0]}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(crate::activation::license(&app, t2[0]).0, "pending");
    let r = zeep_admin(
        &app,
        "sue",
        &sue,
        "ResetContainer",
        json!({"Serial": a.serial}),
    );
    assert!(fault(&r).contains("forbidden"), "{r}");
    let r = zeep_admin(
        &app,
        "admin",
        crate::harness::ADMIN_PW,
        "ResetContainer",
        json!({"Serial": a.serial}),
    );
    assert_eq!(r["ok"], json!([ids[1]]), "{r}");

    // Raw: a value of the wrong type names its element; answers validate.
    let post = |op: &str| {
        raw_to(
            &app,
            "Admin",
            ("sue", &sue),
            &envelope_ns("a", ADMIN_NS, op),
        )
    };
    let (s, text) = post("<a:DecideApproval><a:ApprovalId>x</a:ApprovalId><a:Approve>true</a:Approve></a:DecideApproval>");
    assert_eq!(s, 500);
    assert!(text.contains("DecideApproval/ApprovalId"), "{text}");
    xmllint_valid(&text);
    let (_, text) = post("<a:ListApprovals><a:State>maybe</a:State></a:ListApprovals>");
    assert!(text.contains("ListApprovals/State"), "{text}");
    let (s, text) = post("<a:ListApprovals/>");
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
}

#[test]
fn zeep_appends_update_items_and_withdraws_replaces_and_splits_licenses() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let sam = app.add_user("sam", Role::Sales);
    let made = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap11",
        "CreateOrder",
        json!({"Source": "sap", "ErpOrderId": "SO-9", "Customer": {"ExternalId": "C-9"},
    "Line": [{"ItemId": "SNP-SINGLE", "Quantity": 2}, {"ItemId": "SNP-FLOAT-5", "Quantity": 1}]}),
    );
    let single: Vec<i64> = made["ok"]["Line"][0]["LicenseId"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let float = made["ok"]["Line"][1]["LicenseId"][0].as_i64().unwrap();
    // The Pro upgrade appended by the ERP: the single-user licenses get feature bit 2.
    let add = json!({"Source": "sap", "ErpOrderId": "SO-9", "BatchKey": "upgrade",
"Line": [{"ItemId": "SNP-UPD-PRO", "Quantity": 1}]});
    let up = zeep(&app, "erp", &pw, "SalesSoap12", "AddToOrder", add.clone());
    assert_eq!(up["ok"]["Created"], true, "{up}");
    let again = zeep(&app, "erp", &pw, "SalesSoap12", "AddToOrder", add);
    assert_eq!(again["ok"]["Created"], false, "{again}");
    let (_, l) = app.admin("GET", &format!("/api/v1/licenses/{}", single[0]), None);
    assert_eq!(l["license"]["options"]["feature_map"], 3);

    // Roles per operation: the ERP may not split, sales may.
    let no = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap11",
        "SplitLicense",
        json!({"LicenseId": float, "Quantity": [2, 3]}),
    );
    assert!(fault(&no).contains("forbidden"), "{no}");
    let split = zeep(
        &app,
        "sam",
        &sam,
        "SalesSoap11",
        "SplitLicense",
        json!({"LicenseId": float, "Quantity": [2, 3]}),
    );
    let parts = split["ok"]
        .as_array()
        .cloned()
        .or_else(|| split["ok"]["LicenseId"].as_array().cloned())
        .unwrap_or_else(|| panic!("{split}"));
    assert_eq!(parts.len(), 2, "{split}");
    let bad = zeep(
        &app,
        "sam",
        &sam,
        "SalesSoap11",
        "SplitLicense",
        json!({"LicenseId": float, "Quantity": [1, 1]}),
    );
    assert!(fault(&bad).contains("conflict"), "{bad}");
    let rep = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap11",
        "ReplaceLicense",
        json!({"LicenseId": single[0], "ItemId": "SNP-FLOAT-5"}),
    );
    assert_eq!(rep["ok"]["Old"]["State"], "deleted", "{rep}");
    assert_eq!(rep["ok"]["New"]["State"], "available", "{rep}");
    let wd = zeep(
        &app,
        "erp",
        &pw,
        "SalesSoap12",
        "WithdrawLicenses",
        json!({"LicenseId": [single[1]], "Reason": "refund"}),
    );
    assert_eq!(wd["ok"][0]["State"], "deleted", "{wd}");
    // Raw: a quantity that is not a positive number names its element; answers validate.
    let (s, text) = raw(
        &app,
        "text/xml",
        None,
        &envelope11(&format!(
            "<s:SplitLicense><s:LicenseId>{}</s:LicenseId><s:Quantity>1</s:Quantity>\
     <s:Quantity>-1</s:Quantity></s:SplitLicense>",
            parts[0]
        )),
    );
    assert_eq!(s, 500);
    assert!(text.contains("SplitLicense/Quantity[2]"), "{text}");
    xmllint_valid(&text);
    let (s, text) = raw(
        &app,
        "text/xml",
        None,
        &envelope11(&format!(
            "<s:WithdrawLicenses><s:LicenseId>{}</s:LicenseId></s:WithdrawLicenses>",
            parts[0]
        )),
    );
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
}

#[test]
fn the_depot_gives_the_license_template_and_restores_a_container() {
    use licentia::client::online::Gateway;
    use licentia::client::{hash_trait, unix_now};
    let app = TestApp::start();
    let t = zeep_depot(
        &app,
        "Template",
        json!({"FirmCode": crate::activation::FIRM}),
    );
    let current = t["ok"]["CurrentKey"]
        .as_str()
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        t["ok"]["Key"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["KeyId"] == current),
        "{t}"
    );
    let unknown = zeep_depot(&app, "Template", json!({"FirmCode": 1}));
    assert!(fault(&unknown).contains("unknown_firm"), "{unknown}");

    let gw = Gateway::new(&app.base);
    let (ticket, ids) = crate::activation::ticket_with(&app, "DR-1", "SNP-SINGLE", 1);
    let mut old = crate::activation::new_act(&gw);
    licentia::client::online::activate(&gw, &mut old, &ticket, &ids, &mut |_| Ok(())).unwrap();
    let salt = gw.salt(&old.serial).unwrap();
    let traits: Vec<Value> = crate::activation::traits()
        .iter()
        .map(|(n, v)| json!({"Name": n, "Hash": hash_trait(&salt, n, v)}))
        .collect();
    let mut fresh = crate::activation::new_act(&gw);
    let request = fresh.request(crate::activation::FIRM, unix_now()).unwrap();
    let r = zeep_depot(
        &app,
        "Restore",
        json!({"OldSerial": old.serial, "Request": request, "Trait": traits}),
    );
    let applied = fresh
        .apply(
            r["ok"]["Update"].as_str().unwrap_or_else(|| panic!("{r}")),
            unix_now(),
        )
        .unwrap();
    zeep_depot(&app, "ConfirmReceipt", json!({"Receipt": applied.receipt}));
    assert_eq!(
        crate::activation::license(&app, ids[0]),
        ("activated".into(), Some(fresh.serial.clone()))
    );
}

#[test]
fn the_admin_service_manages_customers_and_users_api_access() {
    let app = TestApp::start();
    let sue = app.add_user("sue", Role::Support);
    let admin = crate::harness::ADMIN_PW;
    let c = zeep_admin(
        &app,
        "admin",
        admin,
        "PutCustomer",
        json!({"ExternalId": "C-X", "Name": "Xaver", "Locale": "de"}),
    );
    assert_eq!(c["ok"]["Name"], "Xaver", "{c}");
    let c = zeep_admin(
        &app,
        "sue",
        &sue,
        "GetCustomer",
        json!({"ExternalId": "C-X"}),
    );
    assert_eq!(c["ok"]["Locale"], "de", "{c}");
    let no = zeep_admin(
        &app,
        "sue",
        &sue,
        "AddUser",
        json!({"Username": "bot", "Password": "bot-password-123", "Role": "erp"}),
    );
    assert!(fault(&no).contains("forbidden"), "{no}");
    let u = zeep_admin(
        &app,
        "admin",
        admin,
        "AddUser",
        json!({"Username": "bot", "Password": "bot-password-123", "Role": "erp"}),
    );
    assert_eq!(u["ok"]["Role"], "erp", "{u}");
    // The new user's API access works, and ends when it is switched off.
    let (s, _) = app.call(
        "GET",
        "/api/v1/items",
        Some(("bot", "bot-password-123")),
        None,
    );
    assert_eq!(s, 200);
    let off = zeep_admin(
        &app,
        "admin",
        admin,
        "ChangeUser",
        json!({"Username": "bot", "Active": false}),
    );
    assert_eq!(off["ok"]["Active"], false, "{off}");
    let (s, _) = app.call(
        "GET",
        "/api/v1/items",
        Some(("bot", "bot-password-123")),
        None,
    );
    assert_eq!(s, 401);
    let all = zeep_admin(&app, "admin", admin, "ListUsers", json!({}));
    assert!(
        all["ok"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["Username"] == "bot"),
        "{all}"
    );
    // Raw: an unknown role names the element; the answer validates.
    let op = "<a:ChangeUser><a:Username>bot</a:Username><a:Role>boss</a:Role></a:ChangeUser>";
    let (_, text) = raw_to(
        &app,
        "Admin",
        ("admin", admin),
        &envelope_ns("a", ADMIN_NS, op),
    );
    assert!(text.contains("ChangeUser/Role"), "{text}");
    xmllint_valid(&text);
}

#[test]
fn the_admin_service_manages_items_and_settings() {
    let app = TestApp::start();
    let admin = crate::harness::ADMIN_PW;
    let item = zeep_admin(
        &app,
        "admin",
        admin,
        "CreateItem",
        json!({"ItemId": "SNP-PRO", "Name": "SampleNotePad Pro", "ProductCode": 1010,
    "Options": {"ContainerType": ["act", "dongle"], "FeatureMap": 5,
        "ExpirationTime": "2030-01-01T00:00:00Z", "Reactivation": "approval",
        "LeaseSeconds": 60, "SeatCounting": "per_station",
        "ActivationLimit": {"Activations": 3, "Days": 7}}}),
    );
    assert_eq!(item["ok"]["Options"]["FeatureMap"], 5, "{item}");
    assert_eq!(
        item["ok"]["Options"]["SeatCounting"], "per_station",
        "{item}"
    );
    assert_eq!(
        item["ok"]["Options"]["ActivationLimit"]["Days"], 7,
        "{item}"
    );
    assert_eq!(
        item["ok"]["Options"]["ContainerType"],
        json!(["act", "dongle"])
    );
    let got = zeep_admin(
        &app,
        "admin",
        admin,
        "GetItem",
        json!({"ItemId": "SNP-PRO"}),
    );
    assert_eq!(got["ok"]["Options"]["Reactivation"], "approval", "{got}");
    let (_, j) = app.admin("GET", "/api/v1/items/SNP-PRO", None);
    assert_eq!(j["options"]["feature_map"], 5);
    assert_eq!(j["options"]["reactivation"], "approval");
    assert_eq!(
        (
            &j["options"]["lease_seconds"],
            &j["options"]["activation_limit"]
        ),
        (&json!(60), &json!({"activations": 3, "days": 7}))
    );
    let v = got["ok"]["Version"].as_i64().unwrap();
    let ch = zeep_admin(
        &app,
        "admin",
        admin,
        "ChangeItem",
        json!({"ItemId": "SNP-PRO", "Version": v, "Name": "Pro"}),
    );
    assert_eq!(ch["ok"]["Name"], "Pro", "{ch}");
    let stale = zeep_admin(
        &app,
        "admin",
        admin,
        "ChangeItem",
        json!({"ItemId": "SNP-PRO", "Version": v, "Name": "Again"}),
    );
    assert!(fault(&stale).contains("conflict"), "{stale}");
    let all = zeep_admin(&app, "admin", admin, "ListItems", json!({}));
    assert!(
        all["ok"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["ItemId"] == "SNP-PRO"),
        "{all}"
    );

    let st = zeep_admin(&app, "admin", admin, "GetSettings", json!({}));
    assert_eq!(st["ok"]["FingerprintTolerance"], 2, "{st}");
    let put = zeep_admin(
        &app,
        "admin",
        admin,
        "PutSettings",
        json!({"Settings": {"MonthlyActivationQuota": 7, "Reactivation": "approval",
    "HoneypotItem": "SNP-PRO"}}),
    );
    assert_eq!(put["ok"]["MonthlyActivationQuota"], 7, "{put}");
    assert_eq!(put["ok"]["HoneypotItem"], "SNP-PRO", "{put}");
    let (_, j) = app.admin("GET", "/api/v1/settings", None);
    assert_eq!(j["monthly_activation_quota"], 7);
    assert_eq!(j["honeypot_item"], "SNP-PRO");
    assert_eq!(j["reactivation"], "approval");

    // Raw: a wrong value or an unknown field names its element; answers validate.
    let post = |op: &str| {
        raw_to(
            &app,
            "Admin",
            ("admin", admin),
            &envelope_ns("a", ADMIN_NS, op),
        )
    };
    let (s, text) = post(
        "<a:CreateItem><a:ItemId>X</a:ItemId><a:Name>X</a:Name><a:ProductCode>1</a:ProductCode>\
                  <a:Options><a:FeatureMap>lots</a:FeatureMap></a:Options></a:CreateItem>",
    );
    assert_eq!(s, 500);
    assert!(text.contains("CreateItem/Options/FeatureMap"), "{text}");
    xmllint_valid(&text);
    let (_, text) =
        post("<a:PutSettings><a:Settings><a:Colour>red</a:Colour></a:Settings></a:PutSettings>");
    assert!(text.contains("PutSettings/Settings/Colour"), "{text}");
    let (_, text) = post(
        "<a:PutSettings><a:Settings><a:Restore>approval</a:Restore></a:Settings></a:PutSettings>",
    );
    assert!(text.contains("restore"), "{text}");
    let (s, text) = post("<a:GetItem><a:ItemId>SNP-PRO</a:ItemId></a:GetItem>");
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
    let (s, text) = post("<a:GetSettings/>");
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
}

/// The Depot names tickets as the JSON gateway does, so it guesses within the same limits:
/// unknown tickets counted per address and ticket (for every node, with the gateway and the
/// portal), then a fault `rate_limited` with `Retry-After`, also on the gateway.
#[test]
fn the_depot_holds_back_ticket_guessing_as_the_gateway_does() {
    let app = TestApp::start_with(|c| {
        c.gateway_ticket_lookups_per_minute = 30;
        c.portal_login_limit = 3;
    });
    let (ticket, _) = crate::activation::ticket_with(&app, "D-1", "SNP-SINGLE", 1);
    let depot = "http://licentia.dev/ns/depot/v1";
    let info = |code: &str| {
        let body = envelope_ns(
            "d",
            depot,
            &format!("<d:TicketInfo><d:Ticket>{code}</d:Ticket></d:TicketInfo>"),
        );
        match ureq::post(&format!("{}/soap/Depot", app.base))
            .set("Content-Type", "text/xml")
            .send_string(&body)
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => (
                r.status(),
                r.header("retry-after").map(str::to_string),
                r.into_string().unwrap(),
            ),
            Err(e) => panic!("{e}"),
        }
    };
    let (s, _, text) = info(&ticket);
    assert_eq!(s, 200, "{text}");
    let mut guesses = vec![];
    while guesses.len() < 3 {
        let g = licentia::domain::ticket::TicketCode::generate().to_string();
        if g != ticket {
            guesses.push(g);
        }
    }
    for g in &guesses {
        let (s, _, text) = info(g);
        assert_eq!(s, 500);
        assert!(text.contains("<l:Code>unknown_ticket</l:Code>"), "{text}");
    }
    let (s, retry, text) = info(&ticket);
    assert_eq!(s, 500);
    assert!(text.contains("<l:Code>rate_limited</l:Code>"), "{text}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    xmllint_valid(&text);
    // The same hold on the JSON gateway: the failures are counted in one place.
    let r = match ureq::get(&format!("{}/api/v1/gateway/tickets/{ticket}", app.base)).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(r.status(), 429);
    assert_eq!(app.count("portal_login_failures"), 6);
}

/// What integrators met (issue 23): service names in any case, `HEAD …?wsdl`, a 404 that
/// says which services exist, SOAPAction as the bare operation name, and xs:dateTime
/// without a time zone taken as UTC (fractions kept).
#[test]
fn service_names_actions_and_times_are_read_as_integrators_send_them() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let op = "<s:CreateOrder><s:ErpOrderId>LC-1</s:ErpOrderId><s:Customer><s:ExternalId>C-1\
      </s:ExternalId></s:Customer><s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>1\
      </s:Quantity></s:Line></s:CreateOrder>";
    // Lower case, with the bare operation name as SOAPAction.
    let (s, text) = post_to(
        &app,
        "sales",
        "text/xml",
        Some("\"CreateOrder\""),
        Some(("erp", &pw)),
        &envelope11(op),
    );
    assert_eq!(s, 200, "{text}");
    xmllint_valid(&text);
    assert_eq!(app.count("orders"), 1);
    // Another operation's name is still refused.
    let (s, text) = post_to(
        &app,
        "SALES",
        "text/xml",
        Some("GetTicket"),
        Some(("erp", &pw)),
        &envelope11(op),
    );
    assert_eq!(s, 500);
    assert!(text.contains("SOAPAction"), "{text}");
    // HEAD of the WSDL answers as GET does, without the body.
    let r = ureq::head(&format!("{}/soap/sales?wsdl", app.base))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.content_type().contains("xml"));
    assert!(r.into_string().unwrap().is_empty());
    // An unknown service says which ones there are.
    for path in ["/soap/Nothing?wsdl", "/soap/Nothing"] {
        let r = match ureq::request(
            if path.ends_with("wsdl") {
                "GET"
            } else {
                "POST"
            },
            &format!("{}{path}", app.base),
        )
        .call()
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(r.status(), 404, "{path}");
        let body = r.into_string().unwrap();
        assert!(
            body.contains("Sales, Depot") || body.contains("Sales"),
            "{body}"
        );
        assert!(body.contains("Admin") && body.contains("Report"), "{body}");
    }
    // xs:dateTime without a zone is UTC; a fraction is kept; a date alone is refused.
    let admin = crate::harness::ADMIN_PW;
    let create = |id: &str, at: &str| {
        raw_to(
            &app,
            "Admin",
            ("admin", admin),
            &envelope_ns(
                "a",
                ADMIN_NS,
                &format!(
                    "<a:CreateItem><a:ItemId>{id}</a:ItemId><a:Name>{id}</a:Name>\
             <a:ProductCode>1001</a:ProductCode><a:Options>\
             <a:ExpirationTime>{at}</a:ExpirationTime></a:Options></a:CreateItem>"
                ),
            ),
        )
    };
    let (s, text) = create("T-NOZONE", "2027-06-30T00:00:00");
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("2027-06-30T00:00:00Z"), "{text}");
    let (s, text) = create("T-FRACTION", "2027-06-30T12:00:00.25+02:00");
    assert_eq!(s, 200, "{text}");
    assert!(text.contains("2027-06-30T10:00:00.250Z"), "{text}");
    let (_, item) = app.admin("GET", "/api/v1/items/T-FRACTION", None);
    assert_eq!(
        item["options"]["expiration_time"],
        "2027-06-30T10:00:00.250Z"
    );
    let (s, text) = create("T-DATE", "2027-06-30");
    assert_eq!(s, 500);
    assert!(text.contains("CreateItem/Options/ExpirationTime"), "{text}");
    assert!(text.contains("with or without a time zone"), "{text}");
    assert_eq!(app.count("items WHERE item_id = 'T-DATE'"), 0);
}

/// Credentials asked for with a challenge (401, `WWW-Authenticate: Basic`, the fault as
/// body), envelopes of another shape refused before anything runs, and faults that never
/// echo unbounded input.
#[test]
fn challenges_envelope_shapes_and_bounded_faults() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let op = "<s:CreateOrder><s:Customer><s:ExternalId>C-1</s:ExternalId></s:Customer>\
      <s:Line><s:ItemId>SNP-SINGLE</s:ItemId><s:Quantity>1</s:Quantity></s:Line>\
      </s:CreateOrder>";
    let send = |auth: Option<(&str, &str)>, body: &str| {
        use base64::Engine;
        let mut r = ureq::post(&format!("{}/soap/Sales", app.base)).set("Content-Type", "text/xml");
        if let Some((u, p)) = auth {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            r = r.set("Authorization", &format!("Basic {b}"));
        }
        match r.send_string(body) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => (
                r.status(),
                r.header("www-authenticate").map(str::to_string),
                r.into_string().unwrap(),
            ),
            Err(e) => panic!("{e}"),
        }
    };
    for auth in [None, Some(("erp", "wrong"))] {
        let (s, challenge, text) = send(auth, &envelope11(op));
        assert_eq!(s, 401, "{text}");
        assert!(challenge.unwrap_or_default().starts_with("Basic realm="));
        assert!(text.contains("<l:Code>unauthenticated</l:Code>"), "{text}");
        xmllint_valid(&text);
    }
    assert_eq!(app.count("orders"), 0);
    // Shapes: two Bodies, a Body before the Header, something after the Body.
    let env = |inner: &str| {
        format!(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
     xmlns:s=\"{NS}\">{inner}</soap:Envelope>"
        )
    };
    let get = "<s:GetTicket><s:Ticket>AAAAA-AAAAA-AAAAA-AAAAA-AAAAA</s:Ticket></s:GetTicket>";
    for (inner, says) in [
        (
            format!("<soap:Body>{op}</soap:Body><soap:Body>{get}</soap:Body>"),
            "holds 2 Body elements",
        ),
        (
            format!("<soap:Body>{op}</soap:Body><soap:Header/>"),
            "&quot;Header&quot; at position 2",
        ),
        (
            format!("<soap:Header/><soap:Body>{op}</soap:Body><s:Extra/>"),
            "&quot;Extra&quot; at position 3",
        ),
    ] {
        let (s, _, text) = send(Some(("erp", &pw)), &env(&inner));
        assert_eq!(s, 500, "{text}");
        assert!(
            text.contains("an envelope holds an optional Header, then one Body"),
            "{text}"
        );
        let _ = says;
    }
    assert_eq!(app.count("orders"), 0, "the first Body did not run either");
    // A 200 KB element name comes back cut, once in the string and once in the detail.
    let long = "X".repeat(200_000);
    let (s, _, text) = send(Some(("erp", &pw)), &envelope11(&format!("<s:{long}/>")));
    assert_eq!(s, 500);
    assert!(text.len() < 5_000, "{} bytes", text.len());
    xmllint_valid(&text);
}

/// suds with its default transport for a user name and password sends Basic credentials
/// only after a 401 challenge: it reads a ticket (and a wrong password is refused).
#[test]
fn suds_sends_its_credentials_when_challenged() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let (ticket, _) = crate::activation::ticket_with(&app, "SUDS-1", "SNP-SINGLE", 2);
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let run = |password: &str| -> Value {
        let out = std::process::Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/soap_suds.py"))
            .arg(format!("{}/soap/Sales?wsdl", app.base))
            .args(["erp", password, &ticket])
            .output()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "suds: {stdout}\n{} (scripts/test.sh installs suds and sets TEST_PYTHON)",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let ok = run(&pw);
    assert_eq!(ok["transport"], "HttpAuthenticated", "{ok}");
    assert_eq!(ok["licenses"], 2, "{ok}");
    assert_eq!(
        ok["ticket"].as_str().unwrap().replace('-', ""),
        ticket.replace('-', ""),
        "{ok}"
    );
    let wrong = run("wrong");
    assert!(
        wrong["error"].as_str().unwrap_or_default().contains("401")
            || wrong["error"]
                .as_str()
                .unwrap_or_default()
                .contains("nauthori"),
        "{wrong}"
    );
}

/// Bodies in UTF-16 (with its byte order mark) or ISO-8859-1 (named by the Content-Type or
/// the XML declaration) are decoded; an encoding no one knows, or bytes that are not what
/// the encoding says, get a fault that says so.
#[test]
fn bodies_in_utf16_and_latin1_are_decoded() {
    let app = TestApp::start();
    let pw = app.add_user("erp", Role::Erp);
    let op = |erp: &str| {
        format!(
            "<s:CreateOrder><s:ErpOrderId>{erp}</s:ErpOrderId><s:Customer><s:ExternalId>C-{erp}\
             </s:ExternalId><s:Name>Müller &amp; Söhne</s:Name></s:Customer><s:Line><s:ItemId>\
             SNP-SINGLE</s:ItemId><s:Quantity>1</s:Quantity></s:Line></s:CreateOrder>"
        )
    };
    let send = |ct: &str, body: Vec<u8>| {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("erp:{pw}"));
        match ureq::post(&format!("{}/soap/Sales", app.base))
            .set("Content-Type", ct)
            .set("Authorization", &format!("Basic {b}"))
            .send_bytes(&body)
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let latin1 = |s: &str| -> Vec<u8> { s.chars().map(|c| c as u32 as u8).collect() };
    let name_of = |erp: &str| -> String {
        let (_, c) = app.admin("GET", &format!("/api/v1/customers/C-{erp}"), None);
        c["name"].as_str().unwrap_or_default().to_string()
    };
    // ISO-8859-1 named by the XML declaration.
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
        envelope11(&op("L1")).trim_start_matches("<?xml version=\"1.0\"?>")
    );
    let (s, text) = send("text/xml", latin1(&doc));
    assert_eq!(s, 200, "{text}");
    assert_eq!(name_of("L1"), "Müller & Söhne");
    // ISO-8859-1 named by the Content-Type.
    let (s, text) = send(
        "text/xml; charset=ISO-8859-1",
        latin1(&envelope11(&op("L2"))),
    );
    assert_eq!(s, 200, "{text}");
    assert_eq!(name_of("L2"), "Müller & Söhne");
    // UTF-16 with its byte order mark (little and big endian).
    let mut le = vec![0xFF, 0xFE];
    le.extend(
        envelope11(&op("U1"))
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    let (s, text) = send("text/xml", le);
    assert_eq!(s, 200, "{text}");
    assert_eq!(name_of("U1"), "Müller & Söhne");
    let mut be = vec![0xFE, 0xFF];
    be.extend(
        envelope11(&op("U2"))
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes()),
    );
    let (s, text) = send("text/xml", be);
    assert_eq!(s, 200, "{text}");
    // An encoding nobody knows, and UTF-16 that is cut in the middle of a character.
    let (s, text) = send(
        "text/xml; charset=klingon",
        envelope11(&op("X1")).into_bytes(),
    );
    assert_eq!(s, 500);
    assert!(
        text.contains("names no encoding this server reads"),
        "{text}"
    );
    let mut odd = vec![0xFF, 0xFE];
    odd.extend(
        envelope11(&op("X2"))
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    odd.push(0x3C);
    let (s, text) = send("text/xml", odd);
    assert_eq!(s, 500);
    assert!(text.contains("is not valid UTF-16LE"), "{text}");
    assert_eq!(app.count("orders"), 4);
}

/// Sales `ResendTicketMail` and `GetOrder` through zeep: the ticket mail queued again for a
/// sales user (the erp role may not); the order by the shop's id; unknown orders said so.
#[test]
fn zeep_sends_the_ticket_mail_again() {
    let app = TestApp::start();
    let erp = app.add_user("erp", Role::Erp);
    let sales = app.add_user("sam", Role::Sales);
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(json!({"source": "shop", "erp_order_id": "Z-1",
            "customer": {"external_id": "C-Z", "email": "z@example.com"},
            "lines": [{"item_id": "SNP-SINGLE", "quantity": 1}]})),
    );
    assert_eq!(s, 201, "{v}");
    let mails = app.count("outbox");
    let args = json!({"Source": "shop", "ErpOrderId": "Z-1"});
    let ok = zeep(
        &app,
        "sam",
        &sales,
        "SalesSoap12",
        "ResendTicketMail",
        args.clone(),
    );
    // zeep gives a one-element answer as its value.
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(app.count("outbox"), mails + 1);
    let refused = zeep(&app, "erp", &erp, "SalesSoap11", "ResendTicketMail", args);
    assert!(fault(&refused).contains("forbidden"), "{refused}");
    let unknown = zeep(
        &app,
        "sam",
        &sales,
        "SalesSoap11",
        "ResendTicketMail",
        json!({"Source": "shop", "ErpOrderId": "NOPE"}),
    );
    assert!(fault(&unknown).contains("unknown_order"), "{unknown}");
    assert_eq!(app.count("outbox"), mails + 1);
    // The order itself by the shop's id, as CreateOrder answered it.
    let got = zeep(
        &app,
        "erp",
        &erp,
        "SalesSoap11",
        "GetOrder",
        json!({"Source": "shop", "ErpOrderId": "Z-1"}),
    );
    assert_eq!(got["ok"]["Ticket"], v["ticket"], "{got}");
    assert_eq!(got["ok"]["Created"], false, "{got}");
    assert_eq!(got["ok"]["Line"][0]["ItemId"], "SNP-SINGLE", "{got}");
    let missing = zeep(
        &app,
        "erp",
        &erp,
        "SalesSoap11",
        "GetOrder",
        json!({"Source": "shop", "ErpOrderId": "Z-404"}),
    );
    assert!(fault(&missing).contains("unknown_order"), "{missing}");
}
