//! SAML single sign-on with Licentia as the Service Provider. Here the test is the identity
//! provider, with its own key: it answers the portal's requests with responses it signs, and
//! makes the attacks itself (unsigned, another key, SHA-1, signature wrapping XSW1-XSW8, a
//! comment in the NameID, two assertions, wrong Audience / Destination / Recipient, expired,
//! not yet valid, replayed on this node and on another, unsolicited, answering a request
//! never issued, another RelayState). Each is refused with nothing changed and no session.
use base64::Engine;
use licentia::saml::metadata::signature_template;
use licentia::saml::SpKeys;
use serde_json::json;

use crate::harness::{TestApp, TestDb};
use crate::portal::{ticket, Page, Visitor};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const IDP: &str = "https://idp.test/saml/idp";
const SSO: &str = "https://idp.test/saml/sso";
const SLO: &str = "https://idp.test/saml/slo";
const NS_P: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_A: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

/// The test's identity provider: its key, and the metadata file the server reads.
pub(crate) struct TestIdp {
    keys: SpKeys,
    pub(crate) metadata: std::path::PathBuf,
}

impl TestIdp {
    pub(crate) fn new(dir: &std::path::Path, with_signing_key: bool) -> TestIdp {
        TestIdp::valid_for(dir, with_signing_key, 365)
    }

    /// With a certificate valid `days` days from now.
    pub(crate) fn valid_for(dir: &std::path::Path, with_signing_key: bool, days: u32) -> TestIdp {
        let keys = SpKeys::generate("idp.test", days).unwrap();
        let kd = if with_signing_key {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                keys.cert_b64()
            )
        } else {
            String::new()
        };
        let xml = format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {kd}
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SLO}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SSO}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{SSO}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#
        );
        let metadata = dir.join("idp-metadata.xml");
        std::fs::write(&metadata, xml).unwrap();
        TestIdp { keys, metadata }
    }
}

fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn strip_decl(xml: &str) -> String {
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim().to_string(),
        None => xml.trim().to_string(),
    }
}

/// Signs the element `id` whose template is in `xml` with `keys` and `alg`.
fn sign(xml: &str, id: &str, keys: &SpKeys, alg: &str) -> String {
    let mut t = signature_template(id, alg, &keys.cert_b64());
    if alg == RSA_SHA1 {
        t = t.replace(
            "http://www.w3.org/2001/04/xmlenc#sha256",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        );
    }
    strip_decl(&keys.sign_xml(&xml.replace("{SIG}", &t)).unwrap())
}

/// What one answer of the identity provider says.
#[derive(Clone)]
struct Answer {
    in_response_to: Option<String>,
    response_id: String,
    assertion_id: String,
    destination: String,
    recipient: String,
    audience: String,
    name_id: String,
    customer: Option<String>,
    not_before: chrono::DateTime<chrono::Utc>,
    not_on_or_after: chrono::DateTime<chrono::Utc>,
}

impl Answer {
    fn to(sp: &Sp, request: &str) -> Answer {
        let now = chrono::Utc::now();
        Answer {
            in_response_to: Some(request.to_string()),
            response_id: licentia::saml::new_id(),
            assertion_id: licentia::saml::new_id(),
            destination: sp.acs.clone(),
            recipient: sp.acs.clone(),
            audience: sp.entity_id.clone(),
            name_id: "user@example.com".into(),
            customer: Some("C-SSO".into()),
            not_before: now - chrono::Duration::seconds(30),
            not_on_or_after: now + chrono::Duration::minutes(5),
        }
    }

    fn assertion_xml(&self) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        let customer = self
            .customer
            .as_ref()
            .map(|c| {
                format!(
                    r#"<saml:Attribute Name="customer_number"><saml:AttributeValue>{c}</saml:AttributeValue></saml:Attribute>"#
                )
            })
            .unwrap_or_default();
        format!(
            r#"<saml:Assertion xmlns:saml="{NS_A}" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{IDP}</saml:Issuer>{{SIG}}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{noa}" Recipient="{recipient}"{irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{noa}"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{now}" SessionIndex="_session_{id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{customer}<saml:Attribute Name="email"><saml:AttributeValue>{name}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="name"><saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            id = self.assertion_id,
            now = instant(chrono::Utc::now()),
            name = self.name_id,
            noa = instant(self.not_on_or_after),
            nb = instant(self.not_before),
            recipient = self.recipient,
            aud = self.audience,
        )
    }

    /// The Response around `assertions` (already signed or not), with `{SIG}` where its own
    /// signature may go.
    fn response_xml(&self, assertions: &str) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map(|i| format!(r#" InResponseTo="{i}""#))
            .unwrap_or_default();
        format!(
            r#"<samlp:Response xmlns:samlp="{NS_P}" xmlns:saml="{NS_A}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"{irt}><saml:Issuer>{IDP}</saml:Issuer>{{SIG}}<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{assertions}</samlp:Response>"#,
            id = self.response_id,
            now = instant(chrono::Utc::now()),
            dest = self.destination,
        )
    }

    /// The assertion signed by `keys`.
    fn signed_assertion(&self, keys: &SpKeys) -> String {
        sign(
            &self.assertion_xml(),
            &self.assertion_id,
            keys,
            licentia::saml::RSA_SHA256,
        )
    }

    /// A response whose assertion is signed (as SimpleSAMLphp sends by default).
    fn assertion_signed(&self, keys: &SpKeys) -> String {
        self.response_xml(&self.signed_assertion(keys))
            .replace("{SIG}", "")
    }

    /// A response signed as a whole (its assertion unsigned).
    fn response_signed(&self, keys: &SpKeys) -> String {
        let a = self.assertion_xml().replace("{SIG}", "");
        sign(
            &self.response_xml(&a),
            &self.response_id,
            keys,
            licentia::saml::RSA_SHA256,
        )
    }
}

/// The portal as a Service Provider, as its metadata names it.
struct Sp {
    entity_id: String,
    acs: String,
}

impl Sp {
    fn of(app: &TestApp) -> Sp {
        Sp {
            entity_id: format!("{}/portal/saml/metadata", app.base),
            acs: format!("{}/portal/saml/acs", app.base),
        }
    }
}

/// A server with single sign-on through the test's identity provider.
fn sso_app(
    idp: &TestIdp,
    db: TestDb,
    tweak: impl FnOnce(&mut licentia::config::Config),
) -> TestApp {
    let metadata = idp.metadata.display().to_string();
    TestApp::start_on(db, |c| {
        c.saml_idp_metadata = metadata;
        tweak(c);
    })
}

/// Our signing certificate (DER), as our metadata names it.
fn sp_cert(v: &mut Visitor) -> Vec<u8> {
    let meta = v.get("/portal/saml/metadata").body;
    let cert = meta.split("<ds:X509Certificate>").nth(1).unwrap();
    B64.decode(&cert[..cert.find('<').unwrap()]).unwrap()
}

/// A login request the portal sent (by the Redirect binding, its query signed with our
/// key): its id and RelayState.
fn begin(v: &mut Visitor) -> (String, String) {
    let cert = sp_cert(v);
    let p = v.get("/portal/saml/login?next=/portal/tickets");
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(SSO), "{}", p.location);
    let query = p.location.split_once('?').unwrap().1;
    assert!(
        query.contains(
            "&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature="
        ),
        "{query}"
    );
    let m = licentia::saml::messages::read_redirect(query, &[cert]).expect("signed by our key");
    assert_eq!(m.param, "SAMLRequest");
    let xml = String::from_utf8(m.xml).unwrap();
    let id = attr(&xml, "ID");
    assert!(id.len() == 33 && id.starts_with('_'), "a 128-bit id: {id}");
    assert!(xml.contains("AssertionConsumerServiceURL=\""), "{xml}");
    (id, m.relay_state.expect("a RelayState"))
}

/// A page's HTML with the escapes minijinja writes undone (`&#x2f;` and the like).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(xml: &str, name: &str) -> String {
    let at = xml.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    xml[at..at + xml[at..].find('"').unwrap()].to_string()
}

fn post_response(v: &mut Visitor, xml: &str, relay: &str) -> Page {
    let b64 = B64.encode(xml);
    v.send(
        "POST",
        "/portal/saml/acs",
        Some(&[("SAMLResponse", b64.as_str()), ("RelayState", relay)]),
    )
}

/// What a refusal must leave as it was.
fn state(app: &TestApp) -> [i64; 5] {
    [
        app.count("portal_sessions"),
        app.count("saml_users"),
        app.count("saml_assertions"),
        app.count("saml_requests"),
        app.count("customers"),
    ]
}

fn assert_refused(app: &TestApp, v: &mut Visitor, case: &str, xml: &str, relay: &str, why: &str) {
    let before = state(app);
    let p = post_response(v, xml, relay);
    assert_eq!(p.status, 403, "{case}: {}", p.body);
    assert!(
        p.body.contains("data-code=\"sso_refused\""),
        "{case}: {}",
        p.body
    );
    assert!(
        p.body.contains(why),
        "{case}: expected {why:?} in {}",
        p.body
    );
    assert!(
        !p.set_cookies
            .iter()
            .any(|c| c.starts_with("licentia_portal=")),
        "{case}: a session cookie was set"
    );
    assert_eq!(state(app), before, "{case}: something changed");
}

#[test]
fn a_signed_login_shows_every_ticket_of_the_customer_and_links_the_user() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |_| {});
    let (t1, l1) = ticket(&app, "SSO-1", "C-SSO", &[("SNP-FLOAT-5", 2)]);
    let (t2, l2) = ticket(&app, "SSO-2", "C-SSO", &[("SNP-SINGLE", 1)]);
    let (other, _) = ticket(&app, "SSO-3", "C-OTHER", &[("SNP-SINGLE", 1)]);
    let sp = Sp::of(&app);

    // The login page offers it; our metadata is signed with the key it names.
    let mut v = Visitor::new(&app.base);
    let login = v.get("/portal/login");
    assert!(
        unescape(&login.body).contains("href=\"/portal/saml/login?next="),
        "{}",
        login.body
    );
    let meta = v.get("/portal/saml/metadata");
    assert_eq!(meta.status, 200);
    assert!(
        meta.body
            .contains(&format!("entityID=\"{}\"", sp.entity_id)),
        "{}",
        meta.body
    );
    assert!(meta.body.contains(&format!("Location=\"{}\"", sp.acs)));
    // Signed with the key it names (checked as an identity provider checks metadata).
    let cert = sp_cert(&mut v);
    let as_idp = |xml: &str| {
        let md = licentia::saml::IdpMetadata {
            entity_id: sp.entity_id.clone(),
            sso: vec![],
            slo: vec![],
            signing_certs: vec![cert.clone()],
        };
        licentia::saml::response::signed_part(xml, &md)
    };
    let signed = as_idp(&meta.body).expect("the metadata's signature verifies");
    assert!(
        signed.contains("EntityDescriptor") && signed.contains(&sp.acs),
        "{signed}"
    );
    let tampered = meta.body.replace("/portal/saml/acs", "/portal/saml/evil");
    assert!(as_idp(&tampered).is_err());

    // The POST binding: a page whose form carries the signed request to the identity provider.
    let post = v.get("/portal/saml/login?binding=post");
    assert_eq!(post.status, 200);
    assert!(
        unescape(&post.body).contains(&format!("action=\"{SSO}\"")),
        "{}",
        post.body
    );
    assert!(post.headers["content-security-policy"].contains("form-action 'self' https://idp.test"));
    assert!(post.body.contains("name=\"SAMLRequest\""));

    // The Redirect binding, answered with a signed assertion.
    let (id, relay) = begin(&mut v);
    let a = Answer::to(&sp, &id);
    let p = post_response(&mut v, &a.assertion_signed(&idp.keys), &relay);
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/portal/tickets");
    assert!(v.cookies.contains_key("licentia_portal"));
    let mut page = v.get("/portal/tickets");
    assert_eq!(page.status, 200, "{}", page.body);
    page.body = unescape(&page.body);
    for t in [&t1, &t2] {
        assert!(
            page.body.contains(t.as_str()),
            "ticket {t} in {}",
            page.body
        );
    }
    assert!(!page.body.contains(other.as_str()));
    for l in l1.iter().chain(&l2) {
        assert!(
            page.body.contains(&format!("/portal/licenses/{l}/history")),
            "license {l}"
        );
    }
    assert_eq!(app.count("saml_users"), 1);
    // What the user does is recorded as theirs.
    let split = format!("/portal/licenses/{}/split", l1[0]);
    let p = v.post_from("/portal/tickets", &split, &[("quantities", "2, 3")]);
    assert_eq!(p.status, 303, "{}", p.body);
    let (s, h) = app.admin("GET", "/api/v1/history", None);
    assert_eq!(s, 200, "{h}");
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == json!("saml:user@example.com")
                && e["interface"] == json!("portal")),
        "{h}"
    );

    // The next login of the same user needs no customer number: the link holds. A response
    // signed as a whole is as good as one whose assertion is signed.
    let mut w = Visitor::new(&app.base);
    let (id, relay) = begin(&mut w);
    let mut a = Answer::to(&sp, &id);
    a.customer = None;
    let p = post_response(&mut w, &a.response_signed(&idp.keys), &relay);
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(w.get("/portal/tickets").body.contains(t2.as_str()));
    assert_eq!(app.count("saml_users"), 1);

    // A user of no known customer: a clear page, nothing changed.
    let mut x = Visitor::new(&app.base);
    let (id, relay) = begin(&mut x);
    let mut a = Answer::to(&sp, &id);
    a.name_id = "stranger@example.com".into();
    a.customer = Some("C-NOBODY".into());
    let before = state(&app);
    let p = post_response(&mut x, &a.assertion_signed(&idp.keys), &relay);
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(
        p.body.contains("data-code=\"sso_no_customer\""),
        "{}",
        p.body
    );
    assert_eq!(state(&app), before);
}

#[test]
fn a_first_login_may_create_its_customer_when_configured() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |c| c.saml_create_customers = true);
    let sp = Sp::of(&app);
    let mut v = Visitor::new(&app.base);
    let (id, relay) = begin(&mut v);
    let mut a = Answer::to(&sp, &id);
    a.customer = Some("C-NEW".into());
    let customers = app.count("customers");
    let p = post_response(&mut v, &a.assertion_signed(&idp.keys), &relay);
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(app.count("customers"), customers + 1);
    let (s, c) = app.admin("GET", "/api/v1/customers/C-NEW", None);
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["email"], json!("user@example.com"));
    // A customer with no ticket yet: the overview says so.
    let p = v.get("/portal/tickets");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("There are no tickets here for you yet."),
        "{}",
        p.body
    );
}

/// XSW1-XSW8 as SAMLRaider arranges them: the signed original kept (so its signature still
/// verifies) and an evil copy where a careless reader looks.
fn wrapped(case: u8, a: &Answer, keys: &SpKeys) -> String {
    let mut evil = a.clone();
    evil.assertion_id = licentia::saml::new_id();
    evil.response_id = licentia::saml::new_id();
    evil.name_id = "admin@example.com".into();
    evil.customer = Some("C-VICTIM".into());
    let evil_assertion = evil.assertion_xml().replace("{SIG}", "");
    match case {
        // The Response is signed; the evil Response carries the original inside its
        // signature (XSW1) or beside it (XSW2).
        1 | 2 => {
            let original = a.response_signed(keys);
            let sig_start = original.find("<ds:Signature").unwrap();
            let sig_end = original.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
            let sig = &original[sig_start..sig_end];
            let original_unsigned = format!("{}{}", &original[..sig_start], &original[sig_end..]);
            let holder = if case == 1 {
                sig.replace(
                    "</ds:Signature>",
                    &format!("<ds:Object>{original_unsigned}</ds:Object></ds:Signature>"),
                )
            } else {
                format!("{original_unsigned}{sig}")
            };
            evil.response_xml(&evil_assertion).replace("{SIG}", &holder)
        }
        // The Assertion is signed.
        _ => {
            let signed = a.signed_assertion(keys);
            let sig_start = signed.find("<ds:Signature").unwrap();
            let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
            let sig = &signed[sig_start..sig_end];
            let unsigned_original = format!("{}{}", &signed[..sig_start], &signed[sig_end..]);
            let evil_with_sig =
                evil_assertion.replacen("</saml:Issuer>", &format!("</saml:Issuer>{sig}"), 1);
            let body = match case {
                // The evil assertion before the signed original.
                3 => format!("{evil_assertion}{signed}"),
                // The signed original inside the evil assertion.
                4 => evil_assertion
                    .replace("</saml:Assertion>", &format!("{signed}</saml:Assertion>")),
                // The original's signature in the evil assertion, the original at the end.
                5 => format!("{evil_with_sig}{unsigned_original}"),
                // The original, its signature taken off, inside the signature that the evil
                // assertion carries.
                6 => evil_assertion.replacen(
                    "</saml:Issuer>",
                    &format!(
                        "</saml:Issuer>{}",
                        sig.replace(
                            "</ds:Signature>",
                            &format!("<ds:Object>{unsigned_original}</ds:Object></ds:Signature>")
                        )
                    ),
                    1,
                ),
                // The signed original hidden in Extensions, the evil assertion in its place.
                7 => format!("<samlp:Extensions>{signed}</samlp:Extensions>{evil_assertion}"),
                // The evil assertion carries the original's signature, whose Object holds
                // the signed original whole.
                _ => evil_assertion.replacen(
                    "</saml:Issuer>",
                    &format!(
                        "</saml:Issuer>{}",
                        sig.replace(
                            "</ds:Signature>",
                            &format!("<ds:Object>{signed}</ds:Object></ds:Signature>")
                        )
                    ),
                    1,
                ),
            };
            evil.response_xml(&body).replace("{SIG}", "")
        }
    }
}

#[test]
fn forged_altered_and_misdirected_responses_are_refused_with_nothing_changed() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |_| {});
    ticket(&app, "SSO-A", "C-SSO", &[("SNP-SINGLE", 1)]);
    ticket(&app, "SSO-V", "C-VICTIM", &[("SNP-SINGLE", 1)]);
    let sp = Sp::of(&app);
    let other = SpKeys::generate("evil.test", 30).unwrap();
    let mut v = Visitor::new(&app.base);
    let now = chrono::Utc::now();

    type Make<'k> = Box<dyn Fn(&Answer) -> String + 'k>;
    let k = &idp.keys;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "unsigned",
            Box::new(|a: &Answer| {
                a.response_xml(&a.assertion_xml().replace("{SIG}", ""))
                    .replace("{SIG}", "")
            }),
            "not signed",
        ),
        (
            "another key",
            Box::new(|a: &Answer| a.assertion_signed(&other)),
            "no valid signature",
        ),
        (
            "another key on the response",
            Box::new(|a: &Answer| a.response_signed(&other)),
            "no valid signature",
        ),
        (
            "SHA-1",
            Box::new(|a: &Answer| {
                a.response_xml(&sign(&a.assertion_xml(), &a.assertion_id, k, RSA_SHA1))
                    .replace("{SIG}", "")
            }),
            "no valid signature",
        ),
        (
            "comment in the NameID",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.name_id = "user@example.com.evil.com".into();
                b.assertion_signed(k).replace(
                    "user@example.com.evil.com</saml:NameID>",
                    "user@example.com<!---->.evil.com</saml:NameID>",
                )
            }),
            "comment",
        ),
        (
            "two assertions",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.assertion_id = licentia::saml::new_id();
                a.response_xml(&format!(
                    "{}{}",
                    a.signed_assertion(k),
                    b.signed_assertion(k)
                ))
                .replace("{SIG}", "")
            }),
            "2 assertions",
        ),
        (
            "wrong Audience",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.audience = "https://other.example/sp".into();
                b.assertion_signed(k)
            }),
            "Audience",
        ),
        (
            "wrong Destination",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.destination = "https://other.example/acs".into();
                b.response_signed(k)
            }),
            "Destination",
        ),
        (
            "wrong Recipient",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.recipient = "https://other.example/acs".into();
                b.assertion_signed(k)
            }),
            "Recipient",
        ),
        (
            "expired",
            Box::new(move |a: &Answer| {
                let mut b = a.clone();
                b.not_before = now - chrono::Duration::minutes(20);
                b.not_on_or_after = now - chrono::Duration::minutes(10);
                b.assertion_signed(k)
            }),
            "expired",
        ),
        (
            "not yet valid",
            Box::new(move |a: &Answer| {
                let mut b = a.clone();
                b.not_before = now + chrono::Duration::minutes(10);
                b.not_on_or_after = now + chrono::Duration::minutes(20);
                b.assertion_signed(k)
            }),
            "not valid before",
        ),
        (
            "a request never issued",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.in_response_to = Some(licentia::saml::new_id());
                b.assertion_signed(k)
            }),
            "answers no request of ours",
        ),
        (
            "unsolicited",
            Box::new(|a: &Answer| {
                let mut b = a.clone();
                b.in_response_to = None;
                b.assertion_signed(k)
            }),
            "IdP-initiated login is off",
        ),
    ];
    let mut cases = cases;
    for n in 1..=8u8 {
        let name: &'static str = Box::leak(format!("XSW{n}").into_boxed_str());
        // Whatever the arrangement, the copy is one Response or Assertion too many.
        let why = if n <= 2 {
            "more than one Response"
        } else {
            "2 assertions"
        };
        cases.push((name, Box::new(move |a: &Answer| wrapped(n, a, k)), why));
    }
    for (case, make, why) in &cases {
        let (id, relay) = begin(&mut v);
        let a = Answer::to(&sp, &id);
        assert_refused(&app, &mut v, case, &make(&a), &relay, why);
        // The request is still open: the same answer, as the identity provider made it,
        // is taken (the refusal changed nothing).
        if *case == "wrong Audience" {
            let p = post_response(&mut v, &a.assertion_signed(k), &relay);
            assert_eq!(p.status, 303, "{}", p.body);
            v = Visitor::new(&app.base);
        }
    }
    // The signed assertion moved out of its place (into Extensions) with nothing beside it.
    let (id, relay) = begin(&mut v);
    let a = Answer::to(&sp, &id);
    let moved = a
        .response_xml(&format!(
            "<samlp:Extensions>{}</samlp:Extensions>",
            a.signed_assertion(k)
        ))
        .replace("{SIG}", "");
    assert_refused(
        &app,
        &mut v,
        "assertion in Extensions",
        &moved,
        &relay,
        "not where a Response holds it",
    );
    // Another RelayState than the request's.
    let (id, _) = begin(&mut v);
    let (_, other_relay) = begin(&mut v);
    let a = Answer::to(&sp, &id);
    assert_refused(
        &app,
        &mut v,
        "another RelayState",
        &a.assertion_signed(k),
        &other_relay,
        "answers no request",
    );
    // No session for the comment case's user@example.com was ever made but the one above.
    assert_eq!(app.count("saml_users"), 1);
}

#[test]
fn a_replayed_assertion_is_refused_on_every_node() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |_| {});
    ticket(&app, "SSO-R", "C-SSO", &[("SNP-SINGLE", 1)]);
    let sp = Sp::of(&app);
    let mut v = Visitor::new(&app.base);
    let (id, relay) = begin(&mut v);
    let a = Answer::to(&sp, &id);
    let good = a.assertion_signed(&idp.keys);
    assert_eq!(post_response(&mut v, &good, &relay).status, 303);
    // The same message again: its request was answered.
    let mut w = Visitor::new(&app.base);
    assert_refused(
        &app,
        &mut w,
        "the same message",
        &good,
        &relay,
        "answers no request",
    );
    // The same assertion in an answer to a new request.
    let (id2, relay2) = begin(&mut w);
    let mut b = a.clone();
    b.in_response_to = Some(id2);
    b.response_id = licentia::saml::new_id();
    assert_refused(
        &app,
        &mut w,
        "replay",
        &b.assertion_signed(&idp.keys),
        &relay2,
        "replay",
    );
    // And on a second node of the same database.
    let node = app.second_node();
    let mut x = Visitor::new(&node.base);
    let (id3, relay3) = begin(&mut x);
    let sp2 = Sp::of_base(&node.base);
    let mut c = Answer::to(&sp2, &id3);
    c.assertion_id = a.assertion_id.clone();
    assert_refused(
        &app,
        &mut x,
        "replay on another node",
        &c.assertion_signed(&idp.keys),
        &relay3,
        "replay",
    );
    // A fresh assertion on the second node is taken.
    let mut d = Answer::to(&sp2, &id3);
    d.assertion_id = licentia::saml::new_id();
    assert_eq!(
        post_response(&mut x, &d.assertion_signed(&idp.keys), &relay3).status,
        303
    );

    // Housekeeping forgets what expired: remembered assertions (refused as expired anyway)
    // and requests nobody answered.
    begin(&mut w);
    assert_eq!(app.count("saml_assertions"), 2);
    assert_eq!(app.count("saml_requests"), 2);
    {
        use diesel::RunQueryDsl;
        let mut conn = app.db.connect();
        diesel::sql_query("UPDATE saml_assertions SET expires_at = '2000-01-01 00:00:00'")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query(
            "UPDATE saml_requests SET expires_at = '2000-01-01 00:00:00' WHERE id <> 'none'",
        )
        .execute(&mut conn)
        .unwrap();
    }
    let (s, v) = app.admin("POST", "/api/v1/jobs/housekeeping/run", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(app.count("saml_assertions"), 0);
    assert_eq!(app.count("saml_requests"), 0);
}

impl Sp {
    fn of_base(base: &str) -> Sp {
        Sp {
            entity_id: format!("{base}/portal/saml/metadata"),
            acs: format!("{base}/portal/saml/acs"),
        }
    }
}

#[test]
fn an_unsolicited_response_starts_our_own_login_when_idp_initiated_is_on() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |c| c.saml_idp_initiated = true);
    let sp = Sp::of(&app);
    let mut v = Visitor::new(&app.base);
    let mut a = Answer::to(&sp, "unused");
    a.in_response_to = None;
    let before = state(&app);
    let p = post_response(&mut v, &a.assertion_signed(&idp.keys), "");
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/portal/saml/login");
    assert!(!v.cookies.contains_key("licentia_portal"));
    assert_eq!(state(&app), before);
}

#[test]
fn identity_provider_metadata_without_a_signing_key_stops_the_start() {
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, false);
    let mut config = db.config();
    config.saml_idp_metadata = idp.metadata.display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = match rt.block_on(licentia::app::start(config)) {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no signing certificate"), "{e}");
}

/// Logs a visitor in through the test IdP as `name_id`; the assertion's SessionIndex.
fn sso_login(app: &TestApp, idp: &TestIdp, v: &mut Visitor, name_id: &str) -> String {
    let (id, relay) = begin(v);
    let mut a = Answer::to(&Sp::of(app), &id);
    a.name_id = name_id.into();
    let p = post_response(v, &a.assertion_signed(&idp.keys), &relay);
    assert_eq!(p.status, 303, "{}", p.body);
    format!("_session_{}", a.assertion_id)
}

/// A message of the test IdP to our logout endpoint, by the Redirect binding: its query.
fn idp_redirect(out: licentia::saml::Outgoing) -> String {
    match out {
        licentia::saml::Outgoing::Redirect(url) => url.split_once('?').unwrap().1.to_string(),
        other => panic!("a redirect: {other:?}"),
    }
}

#[test]
fn single_logout_ends_the_session_here_and_at_the_identity_provider() {
    use licentia::saml::messages::{self, Envelope};
    use licentia::saml::Binding;
    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |_| {});
    ticket(&app, "SLO-1", "C-SSO", &[("SNP-SINGLE", 1)]);
    let slo = format!("{}/portal/saml/slo", app.base);

    // The customer logs out: the session ends here, the browser takes our signed
    // LogoutRequest to the identity provider and comes back with its answer.
    let mut v = Visitor::new(&app.base);
    let index = sso_login(&app, &idp, &mut v, "user@example.com");
    let sessions = app.count("portal_sessions");
    let p = v.post_from("/portal/tickets", "/portal/logout", &[]);
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(SLO), "{}", p.location);
    assert_eq!(app.count("portal_sessions"), sessions - 1);
    let query = p.location.split_once('?').unwrap().1;
    let meta = v.get("/portal/saml/metadata").body;
    let cert = meta.split("<ds:X509Certificate>").nth(1).unwrap();
    let sp_cert = B64.decode(&cert[..cert.find('<').unwrap()]).unwrap();
    let request = messages::read_redirect(query, std::slice::from_ref(&sp_cert)).unwrap();
    let xml = String::from_utf8(request.xml).unwrap();
    assert!(xml.contains("user@example.com</saml:NameID>"), "{xml}");
    assert!(
        xml.contains(&format!("<samlp:SessionIndex>{index}</samlp:SessionIndex>")),
        "{xml}"
    );
    let relay = request.relay_state.unwrap();
    let answer = |keys: &SpKeys| {
        idp_redirect(
            messages::logout_response(
                &Envelope {
                    keys,
                    issuer: IDP,
                    destination: &slo,
                    relay_state: &relay,
                    binding: Binding::Redirect,
                },
                &attr(&xml, "ID"),
            )
            .unwrap(),
        )
    };
    // An answer signed by another key is refused; the identity provider's is taken, once.
    let other = SpKeys::generate("evil.test", 30).unwrap();
    let p = v.get(&format!("/portal/saml/slo?{}", answer(&other)));
    assert_eq!(p.status, 403, "{}", p.body);
    let good = answer(&idp.keys);
    let p = v.get(&format!("/portal/saml/slo?{good}"));
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location, "/portal/login?out=1");
    assert_eq!(v.get(&format!("/portal/saml/slo?{good}")).status, 403);

    // The identity provider ends the user's session (another application logged out):
    // both of their portal sessions end, and it gets our answer.
    let mut a = Visitor::new(&app.base);
    let mut b = Visitor::new(&app.base);
    let index_a = sso_login(&app, &idp, &mut a, "user@example.com");
    sso_login(&app, &idp, &mut b, "user@example.com");
    let mut c = Visitor::new(&app.base);
    sso_login(&app, &idp, &mut c, "colleague@example.com");
    let ask = |keys: &SpKeys, index: Option<&str>| {
        idp_redirect(
            messages::logout_request(
                &Envelope {
                    keys,
                    issuer: IDP,
                    destination: &slo,
                    relay_state: "idp-state",
                    binding: Binding::Redirect,
                },
                &licentia::saml::new_id(),
                "user@example.com",
                "",
                index.unwrap_or(""),
            )
            .unwrap(),
        )
    };
    let sessions = app.count("portal_sessions");
    // Unsigned, or signed by another key: refused, nothing ended.
    let unsigned = ask(&idp.keys, None);
    let unsigned = unsigned.split("&SigAlg").next().unwrap();
    assert_eq!(v.get(&format!("/portal/saml/slo?{unsigned}")).status, 403);
    assert_eq!(
        v.get(&format!("/portal/saml/slo?{}", ask(&other, None)))
            .status,
        403
    );
    assert_eq!(app.count("portal_sessions"), sessions);
    // One of the user's sessions by its index, then all of them.
    let p = v.get(&format!(
        "/portal/saml/slo?{}",
        ask(&idp.keys, Some(&index_a))
    ));
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(SLO), "{}", p.location);
    let back = messages::read_redirect(
        p.location.split_once('?').unwrap().1,
        std::slice::from_ref(&sp_cert),
    )
    .unwrap();
    assert_eq!(back.param, "SAMLResponse");
    assert_eq!(back.relay_state.as_deref(), Some("idp-state"));
    assert!(String::from_utf8(back.xml)
        .unwrap()
        .contains("status:Success"));
    assert_eq!(app.count("portal_sessions"), sessions - 1);
    assert_eq!(a.get("/portal/tickets").status, 303, "a's session ended");
    assert_eq!(b.get("/portal/tickets").status, 200, "b's session lives");
    // By the POST binding, the LogoutRequest signed inside: refused when signed by
    // another key, taken when signed by the identity provider.
    let posted = |keys: &SpKeys| match messages::logout_request(
        &Envelope {
            keys,
            issuer: IDP,
            destination: &slo,
            relay_state: "idp-state",
            binding: Binding::Post,
        },
        &licentia::saml::new_id(),
        "user@example.com",
        "",
        "",
    )
    .unwrap()
    {
        licentia::saml::Outgoing::Post { fields, .. } => fields,
        other => panic!("a form: {other:?}"),
    };
    let form = |f: &[(String, String)]| -> Vec<(String, String)> { f.to_vec() };
    let send = |v: &mut Visitor, f: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect();
        v.send("POST", "/portal/saml/slo", Some(&pairs))
    };
    assert_eq!(send(&mut v, form(&posted(&other))).status, 403);
    assert_eq!(b.get("/portal/tickets").status, 200, "b's session lives");
    let p = send(&mut v, form(&posted(&idp.keys)));
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with(SLO), "{}", p.location);
    assert_eq!(b.get("/portal/tickets").status, 303, "b's session ended");
    assert_eq!(
        c.get("/portal/tickets").status,
        200,
        "another user's session lives"
    );
}

#[test]
fn health_warns_of_a_certificate_that_expires_within_30_days() {
    let db = TestDb::new();
    let idp = TestIdp::valid_for(&db.dir, true, 10);
    let app = sso_app(&idp, db, |_| {});
    let (s, h) = app.call("GET", "/health", None, None);
    assert_eq!(s, 200, "{h}");
    let w = h["warnings"].as_array().expect("warnings").clone();
    assert_eq!(w.len(), 1, "{h}");
    let w = w[0].as_str().unwrap();
    assert!(
        w.contains("identity provider") && w.contains("idp.test") && w.contains("expires"),
        "{w}"
    );

    let db = TestDb::new();
    let idp = TestIdp::new(&db.dir, true);
    let app = sso_app(&idp, db, |_| {});
    let (_, h) = app.call("GET", "/health", None, None);
    assert!(h.get("warnings").is_none(), "{h}");
}

/// SimpleSAMLphp from Debian, served by PHP's built-in web server on a free loopback port,
/// with its own configuration, key and test user in `dir`; stopped when dropped.
struct SimpleSamlPhp {
    base: String,
    dir: std::path::PathBuf,
    child: std::process::Child,
}

const SSP_WWW: &str = "/usr/share/simplesamlphp/www";

impl SimpleSamlPhp {
    fn start(dir: &std::path::Path, user: &str, password: &str, customer: &str) -> SimpleSamlPhp {
        assert!(
            std::path::Path::new(SSP_WWW).is_dir(),
            "{SSP_WWW} is missing: scripts/test.sh installs Debian's simplesamlphp and php-cli"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let dir = dir.join("simplesamlphp");
        for d in ["config", "metadata", "cert", "data", "tmp", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let keys = SpKeys::generate("127.0.0.1", 365).unwrap();
        std::fs::write(dir.join("cert/idp.key"), keys.key_pem()).unwrap();
        std::fs::write(dir.join("cert/idp.crt"), keys.cert_pem()).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config/config.php"),
            format!(
                r#"<?php
$config = [
    'baseurlpath' => '{base}/',
    'certdir' => '{d}/cert/',
    'loggingdir' => '{d}/log/',
    'datadir' => '{d}/data/',
    'tempdir' => '{d}/tmp',
    'metadatadir' => '{d}/metadata/',
    'technicalcontact_name' => 'Licentia tests',
    'technicalcontact_email' => 'tests@example.com',
    'timezone' => 'UTC',
    'secretsalt' => 'licentia-test-{port}-salt',
    'auth.adminpassword' => 'not-used-{port}',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => '{d}/tmp',
    'session.cookie.secure' => false,
    'logging.level' => SimpleSAML\Logger::INFO,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'showerrors' => true,
];
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("config/authsources.php"),
            format!(
                r#"<?php
$config = [
    'example-userpass' => [
        'exampleauth:UserPass',
        '{user}:{password}' => [
            'uid' => ['{user}'],
            'email' => ['{user}@example.com'],
            'name' => ['Alice Example'],
            'customer_number' => ['{customer}'],
        ],
    ],
];
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("metadata/saml20-idp-hosted.php"),
            r#"<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'SingleSignOnServiceBinding' => [
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
    ],
];
"#,
        )
        .unwrap();
        std::fs::write(dir.join("metadata/saml20-sp-remote.php"), "<?php\n").unwrap();
        let log = std::fs::File::create(dir.join("log/php-server.log")).unwrap();
        let child = std::process::Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t", SSP_WWW])
            .env("SIMPLESAMLPHP_CONFIG_DIR", dir.join("config"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start php: {e} (scripts/test.sh installs php-cli)"));
        let ssp = SimpleSamlPhp { base, dir, child };
        let started = std::time::Instant::now();
        loop {
            match ureq::get(&ssp.metadata_url()).call() {
                Ok(r) if r.status() == 200 => break,
                _ if started.elapsed() > std::time::Duration::from_secs(15) => {
                    panic!("SimpleSAMLphp did not answer: {}", ssp.log())
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        ssp
    }

    fn metadata_url(&self) -> String {
        format!("{}/saml2/idp/metadata.php", self.base)
    }

    /// Makes our portal known to it as a Service Provider, with the certificate our signed
    /// requests are checked with (it checks the authentication and logout requests).
    fn trust(&self, sp: &Sp, slo: &str, cert_b64: &str) {
        std::fs::write(
            self.dir.join("metadata/saml20-sp-remote.php"),
            format!(
                r#"<?php
$metadata['{entity}'] = [
    'AssertionConsumerService' => '{acs}',
    'SingleLogoutService' => '{slo}',
    'certData' => '{cert_b64}',
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'email',
    'validate.authnrequest' => true,
    'validate.logout' => true,
    'redirect.sign' => true,
    'sign.logout' => true,
];
"#,
                entity = sp.entity_id,
                acs = sp.acs,
            ),
        )
        .unwrap();
    }

    fn log(&self) -> String {
        let mut s =
            std::fs::read_to_string(self.dir.join("log/php-server.log")).unwrap_or_default();
        s.push_str(
            &std::fs::read_to_string(self.dir.join("log/simplesamlphp.log")).unwrap_or_default(),
        );
        s
    }
}

impl Drop for SimpleSamlPhp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_identity_provider_in_a_browser() {
    let db = TestDb::new();
    let ssp = SimpleSamlPhp::start(&db.dir, "alice", "alice-password", "C-BROWSER");
    let metadata = ssp.metadata_url();
    // The IdP's metadata by URL, the login by the Redirect binding.
    let app = TestApp::start_on(db, |c| c.saml_idp_metadata = metadata);
    let (t1, l1) = ticket(&app, "SSO-B1", "C-BROWSER", &[("SNP-FLOAT-5", 2)]);
    let (t2, l2) = ticket(&app, "SSO-B2", "C-BROWSER", &[("SNP-SINGLE", 1)]);
    ticket(&app, "SSO-B3", "C-SOMEONE-ELSE", &[("SNP-SINGLE", 1)]);
    let sp = Sp::of(&app);
    let meta = ureq::get(&format!("{}/portal/saml/metadata", app.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let cert = meta.split("<ds:X509Certificate>").nth(1).unwrap();
    ssp.trust(
        &sp,
        &format!("{}/portal/saml/slo", app.base),
        &cert[..cert.find('<').unwrap()],
    );

    let modules = crate::portal::node_modules();
    let work = app.db.dir.join("browser");
    std::fs::create_dir_all(&work).unwrap();
    let case = json!({
        "user": "alice", "password": "alice-password", "idp": ssp.base,
        "tickets": [t1, t2],
        "licenses": l1.iter().chain(&l2).collect::<Vec<_>>(),
    });
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/sso.cjs"
        ))
        .env("NODE_PATH", &modules)
        .env("PORTAL_BASE", &app.base)
        .env("SSO_CASE", case.to_string())
        .env("SCREENSHOTS", crate::portal::screenshot_dir())
        .env("WORK", &work)
        .output()
        .unwrap_or_else(|e| panic!("cannot start node: {e} (scripts/test.sh installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "DONE"),
        "the browser script failed:\n{stdout}\n{}\nSimpleSAMLphp:\n{}",
        String::from_utf8_lossy(&out.stderr),
        ssp.log()
    );
    // Two logins of one user, linked once to the customer; the second session ended by the
    // browser's close only (it lives on, as a session does).
    assert_eq!(app.count("saml_users"), 1);
}
