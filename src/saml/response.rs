//! The identity provider's answer at the Assertion Consumer Service: verified, and read only
//! where a signature of the identity provider covers it.
//!
//! The order matters. The message is read strictly first (no DOCTYPE, comment or processing
//! instruction; one Response at the root holding exactly one Assertion, none encrypted).
//! samael (libxmlsec1) then verifies every signature in it against the metadata's
//! certificates with the pinned algorithms and hands back the pre-digest bytes of the signed
//! element: exactly what was hashed. That element must be the root Response or its one
//! Assertion (by ID, and IDs are unique), so a copy wrapped elsewhere (XSW) is never read;
//! everything below is read from those signed bytes.
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::metadata::IdpMetadata;
use super::xml::{self, El};
use super::{refuse, Refusal, CM_BEARER, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, STATUS_SUCCESS};

/// The largest message taken (a response with a few attributes is a few KiB).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// What a response must match.
pub struct Expect<'a> {
    pub idp: &'a IdpMetadata,
    /// Our entity id: the Audience.
    pub entity_id: &'a str,
    /// Our Assertion Consumer Service: the Destination and the Recipient.
    pub acs: &'a str,
    pub now: DateTime<Utc>,
    /// How far the identity provider's clock may be off ours.
    pub skew: Duration,
}

/// What a verified response says.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The request it answers, as signed (none: unsolicited).
    pub in_response_to: Option<String>,
    pub assertion_id: String,
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: String,
    pub session_index: String,
    /// (Name, FriendlyName, values).
    pub attributes: Vec<(String, String, Vec<String>)>,
    /// Until when the assertion could be presented (its replay must be refused until then).
    pub expires_at: NaiveDateTime,
}

impl Verified {
    /// The values of the attribute called `name` (its Name or FriendlyName).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, f, _)| n == name || (!f.is_empty() && f == name))
            .and_then(|(_, _, v)| v.first())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Decodes the form field `SAMLResponse`.
pub fn decode(b64: &str) -> Result<Vec<u8>, Refusal> {
    let compact: String = b64.split_whitespace().collect();
    if compact.len() > MAX_MESSAGE * 4 / 3 + 4 {
        return refuse("the response is too large");
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| Refusal("the response is not base64".into()))
}

/// The InResponseTo the (not yet verified) response claims: whether it says it was asked
/// for. Only to decide how to treat an unsolicited one; nothing else is taken from it.
pub fn claimed_in_response_to(raw: &[u8]) -> Result<Option<String>, Refusal> {
    let doc = xml::parse(raw).map_err(|e| Refusal(format!("the response: {e}")))?;
    if !doc.is(NS_PROTOCOL, "Response") {
        return refuse("the message is not a SAML Response");
    }
    Ok(doc
        .attr("InResponseTo")
        .map(str::to_string)
        .filter(|s| !s.is_empty()))
}

fn time(el: &El, attr: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    match el.attr(attr) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Refusal(format!("{}'s {attr} {v:?} is not a time", el.name))),
    }
}

/// Every signature in `text` verified against the identity provider's certificates with the
/// pinned algorithms (libxmlsec1, through samael); the pre-digest bytes of the one signed
/// element (of the Response, when both it and its Assertion are signed): all that may be read.
pub fn signed_part(text: &str, idp: &IdpMetadata) -> Result<String, Refusal> {
    use samael::crypto::{CertificateDer, CryptoProvider, ReduceMode, XmlSec};
    let certs: Vec<CertificateDer> = idp
        .signing_certs
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        text,
        &certs,
        ReduceMode::PreDigest,
        Some(super::pinned_algorithms()),
    )
    .map_err(|e| {
        Refusal(format!(
            "no valid signature of the identity provider with an accepted algorithm \
             (RSA or ECDSA with SHA-256 or better): {e}"
        ))
    })
}

/// Verifies a response (its XML, decoded) and reads what the identity provider signed.
pub fn verify(raw: &[u8], expect: &Expect) -> Result<Verified, Refusal> {
    if raw.len() > MAX_MESSAGE {
        return refuse("the response is too large");
    }
    let text = std::str::from_utf8(raw).map_err(|_| Refusal("the response is not UTF-8".into()))?;
    let doc = xml::parse(raw).map_err(|e| Refusal(format!("the response: {e}")))?;
    if !doc.is(NS_PROTOCOL, "Response") {
        return refuse("the message is not a SAML Response");
    }
    if doc.count(NS_PROTOCOL, "Response") != 1 {
        return refuse("the message holds more than one Response");
    }
    if doc.count(NS_ASSERTION, "EncryptedAssertion") != 0 {
        return refuse("encrypted assertions are not accepted");
    }
    match doc.count(NS_ASSERTION, "Assertion") {
        0 => return refuse("the response holds no assertion"),
        1 => {}
        n => {
            return refuse(format!(
                "the response holds {n} assertions, not exactly one"
            ))
        }
    }
    let Some(outer_assertion) = doc.only_child(NS_ASSERTION, "Assertion") else {
        return refuse("the assertion is not where a Response holds it");
    };
    if doc.count(NS_DSIG, "Signature") == 0 {
        return refuse("the response is not signed (neither the Response nor the Assertion)");
    }
    let signed = signed_part(text, expect.idp)?;
    let signed =
        xml::parse(signed.as_bytes()).map_err(|e| Refusal(format!("the signed part: {e}")))?;
    let id_of = |e: &El| e.attr("ID").unwrap_or("").to_string();
    // The signed element must be this message's Response or its one Assertion.
    let (response, assertion): (Option<&El>, &El) = if signed.is(NS_PROTOCOL, "Response") {
        if id_of(&signed).is_empty() || id_of(&signed) != id_of(&doc) {
            return refuse("the signed Response is not the message's Response");
        }
        if signed.count(NS_ASSERTION, "Assertion") != 1 {
            return refuse("the signed Response does not hold exactly one assertion");
        }
        let Some(a) = signed.only_child(NS_ASSERTION, "Assertion") else {
            return refuse("the signed Response's assertion is not where it belongs");
        };
        (Some(&signed), a)
    } else if signed.is(NS_ASSERTION, "Assertion") {
        if id_of(&signed).is_empty() || id_of(&signed) != id_of(outer_assertion) {
            return refuse("the signed Assertion is not the Response's assertion");
        }
        (None, &signed)
    } else {
        return refuse(format!(
            "the signature covers a {} rather than the Response or its Assertion",
            signed.name
        ));
    };
    // The Response's own fields: from the signed Response, or from the envelope (the
    // assertion carries the signed equivalents: Recipient and InResponseTo).
    let envelope = response.unwrap_or(&doc);
    if envelope.attr("Version") != Some("2.0") {
        return refuse("the response is not SAML 2.0");
    }
    match envelope.attr("Destination") {
        Some(d) if d == expect.acs => {}
        Some(d) => {
            return refuse(format!(
                "the response's Destination {d:?} is not our Assertion Consumer Service"
            ))
        }
        None => return refuse("the response names no Destination"),
    }
    let status = envelope
        .only_child(NS_PROTOCOL, "Status")
        .and_then(|s| s.only_child(NS_PROTOCOL, "StatusCode"))
        .and_then(|c| c.attr("Value"));
    if status != Some(STATUS_SUCCESS) {
        return refuse(format!(
            "the identity provider did not log the user in (status {})",
            status.unwrap_or("missing")
        ));
    }
    let idp = expect.idp.entity_id.as_str();
    if let Some(i) = envelope.only_child(NS_ASSERTION, "Issuer") {
        if i.text.trim() != idp {
            return refuse(format!(
                "the response's Issuer {:?} is not the identity provider",
                i.text.trim()
            ));
        }
    }
    let response_irt = response
        .and_then(|r| r.attr("InResponseTo"))
        .filter(|s| !s.is_empty());

    // The assertion.
    let a = assertion;
    if a.attr("Version") != Some("2.0") {
        return refuse("the assertion is not SAML 2.0");
    }
    let assertion_id = id_of(a);
    if assertion_id.is_empty() || assertion_id.len() > 256 {
        return refuse("the assertion has no usable ID");
    }
    match a.only_child(NS_ASSERTION, "Issuer") {
        Some(i) if i.text.trim() == idp => {}
        _ => return refuse("the assertion's Issuer is not the identity provider"),
    }
    let now = expect.now;
    let skew = expect.skew;
    if let Some(issued) = time(a, "IssueInstant")? {
        if issued > now + skew {
            return refuse("the assertion was issued in the future");
        }
    }
    let Some(subject) = a.only_child(NS_ASSERTION, "Subject") else {
        return refuse("the assertion has no (single) Subject");
    };
    let Some(name_id) = subject.only_child(NS_ASSERTION, "NameID") else {
        return refuse("the assertion's subject has no (single) NameID");
    };
    let name = name_id.text.trim().to_string();
    if name.is_empty() || name.len() > 512 {
        return refuse("the assertion's NameID is empty or too long");
    }
    // A bearer confirmation for us, now, answering what the Response answers.
    let mut confirmed: Option<(DateTime<Utc>, Option<String>)> = None;
    let mut why = "the assertion has no bearer SubjectConfirmation".to_string();
    for sc in subject.children_named(NS_ASSERTION, "SubjectConfirmation") {
        if sc.attr("Method") != Some(CM_BEARER) {
            continue;
        }
        let Some(d) = sc.only_child(NS_ASSERTION, "SubjectConfirmationData") else {
            why = "the bearer confirmation has no SubjectConfirmationData".into();
            continue;
        };
        if d.attr("Recipient") != Some(expect.acs) {
            why = format!(
                "the confirmation's Recipient {:?} is not our Assertion Consumer Service",
                d.attr("Recipient").unwrap_or("")
            );
            continue;
        }
        let Some(until) = time(d, "NotOnOrAfter")? else {
            why = "the confirmation has no NotOnOrAfter".into();
            continue;
        };
        if now - skew >= until {
            why = format!("the confirmation expired at {until}");
            continue;
        }
        if let Some(from) = time(d, "NotBefore")? {
            if now + skew < from {
                why = format!("the confirmation is not valid before {from}");
                continue;
            }
        }
        let irt = d
            .attr("InResponseTo")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let (Some(r), Some(c)) = (response_irt, irt.as_deref()) {
            if r != c {
                why = "the confirmation answers another request than the Response".into();
                continue;
            }
        }
        confirmed = Some((until, irt));
        break;
    }
    let Some((confirm_until, confirm_irt)) = confirmed else {
        return refuse(why);
    };
    let Some(conditions) = a.only_child(NS_ASSERTION, "Conditions") else {
        return refuse("the assertion has no (single) Conditions");
    };
    if let Some(from) = time(conditions, "NotBefore")? {
        if now + skew < from {
            return refuse(format!("the assertion is not valid before {from}"));
        }
    }
    let mut until = confirm_until;
    if let Some(to) = time(conditions, "NotOnOrAfter")? {
        if now - skew >= to {
            return refuse(format!("the assertion expired at {to}"));
        }
        until = until.min(to);
    }
    let restrictions: Vec<&El> = conditions
        .children_named(NS_ASSERTION, "AudienceRestriction")
        .collect();
    if restrictions.is_empty() {
        return refuse("the assertion names no Audience");
    }
    for r in restrictions {
        if !r
            .children_named(NS_ASSERTION, "Audience")
            .any(|au| au.text.trim() == expect.entity_id)
        {
            return refuse("the assertion's Audience is not this service provider");
        }
    }
    let session_index = a
        .children_named(NS_ASSERTION, "AuthnStatement")
        .find_map(|s| s.attr("SessionIndex"))
        .unwrap_or("")
        .to_string();
    if a.children_named(NS_ASSERTION, "AuthnStatement")
        .next()
        .is_none()
    {
        return refuse("the assertion has no AuthnStatement");
    }
    let mut attributes = vec![];
    for st in a.children_named(NS_ASSERTION, "AttributeStatement") {
        for at in st.children_named(NS_ASSERTION, "Attribute") {
            let values = at
                .children_named(NS_ASSERTION, "AttributeValue")
                .map(|v| v.text.clone())
                .collect();
            attributes.push((
                at.attr("Name").unwrap_or("").to_string(),
                at.attr("FriendlyName").unwrap_or("").to_string(),
                values,
            ));
        }
    }
    // What it answers, as signed: the signed Response's, else the assertion's.
    let in_response_to = response_irt.map(str::to_string).or(confirm_irt);
    Ok(Verified {
        in_response_to,
        assertion_id,
        issuer: idp.to_string(),
        name_id: name,
        name_id_format: name_id.attr("Format").unwrap_or("").to_string(),
        session_index,
        attributes,
        expires_at: (until + skew).naive_utc(),
    })
}
