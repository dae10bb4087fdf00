//! The messages Licentia sends (an authentication request, a logout request, a logout
//! response) and how they travel: the HTTP-Redirect binding (deflated in the query,
//! signed over the query) or the HTTP-POST binding (a form, the XML signed inside). And the
//! other way: a message that came by Redirect, its query signature checked.
use std::io::{Read, Write};

use base64::Engine;

use super::metadata::{signature_template, IdpMetadata, SpKeys};
use super::xml::esc;
use super::{
    refuse, Refusal, ACCEPTED_SIG_ALGS, BINDING_POST, BINDING_REDIRECT, NS_ASSERTION, NS_PROTOCOL,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How a message travels to the identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Redirect,
    Post,
}

impl Binding {
    pub fn uri(self) -> &'static str {
        match self {
            Binding::Redirect => BINDING_REDIRECT,
            Binding::Post => BINDING_POST,
        }
    }
    pub fn from_uri(uri: &str) -> Option<Binding> {
        match uri {
            BINDING_REDIRECT => Some(Binding::Redirect),
            BINDING_POST => Some(Binding::Post),
            _ => None,
        }
    }
}

/// A message on its way: a URL to send the browser to, or a form for it to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Redirect(String),
    Post {
        url: String,
        /// (field, value): `SAMLRequest` or `SAMLResponse`, and `RelayState`.
        fields: Vec<(String, String)>,
    },
}

fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What a message to the identity provider needs.
pub struct Envelope<'a> {
    pub keys: &'a SpKeys,
    pub issuer: &'a str,
    pub destination: &'a str,
    pub relay_state: &'a str,
    pub binding: Binding,
}

impl Envelope<'_> {
    /// `xml` names `{SIG}` where the embedded signature goes (after the Issuer); `id` is its
    /// ID. `param` is `SAMLRequest` or `SAMLResponse`.
    fn send(&self, id: &str, xml: &str, param: &str) -> Result<Outgoing, String> {
        match self.binding {
            Binding::Redirect => {
                let xml = xml.replace("{SIG}", "");
                let mut z =
                    flate2::write::DeflateEncoder::new(vec![], flate2::Compression::default());
                z.write_all(xml.as_bytes()).map_err(|e| e.to_string())?;
                let deflated = z.finish().map_err(|e| e.to_string())?;
                let encoded = B64.encode(deflated);
                let mut pairs = vec![(param, encoded.as_str())];
                if !self.relay_state.is_empty() {
                    pairs.push(("RelayState", self.relay_state));
                }
                pairs.push(("SigAlg", self.keys.sig_alg()));
                let query = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
                let sig = self.keys.sign_query(&query)?;
                let sig = serde_urlencoded::to_string([("Signature", B64.encode(sig))])
                    .map_err(|e| e.to_string())?;
                let sep = if self.destination.contains('?') {
                    '&'
                } else {
                    '?'
                };
                Ok(Outgoing::Redirect(format!(
                    "{}{sep}{query}&{sig}",
                    self.destination
                )))
            }
            Binding::Post => {
                let sig = signature_template(id, self.keys.sig_alg(), &self.keys.cert_b64());
                let signed = self.keys.sign_xml(&xml.replace("{SIG}", &sig))?;
                let mut fields = vec![(param.to_string(), B64.encode(signed))];
                if !self.relay_state.is_empty() {
                    fields.push(("RelayState".into(), self.relay_state.to_string()));
                }
                Ok(Outgoing::Post {
                    url: self.destination.to_string(),
                    fields,
                })
            }
        }
    }
}

/// An AuthnRequest with the id `id`, asking for the answer at `acs` by HTTP-POST.
pub fn authn_request(env: &Envelope, id: &str, acs: &str) -> Result<Outgoing, String> {
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{BINDING_POST}"><saml:Issuer>{issuer}</saml:Issuer>{{SIG}}<samlp:NameIDPolicy AllowCreate="true"/></samlp:AuthnRequest>"#,
        now = instant(chrono::Utc::now()),
        dest = esc(env.destination),
        acs = esc(acs),
        issuer = esc(env.issuer),
    );
    env.send(id, &xml, "SAMLRequest")
}

/// A LogoutRequest for the user the identity provider calls `name_id` in its session
/// `session_index`.
pub fn logout_request(
    env: &Envelope,
    id: &str,
    name_id: &str,
    name_id_format: &str,
    session_index: &str,
) -> Result<Outgoing, String> {
    let format = if name_id_format.is_empty() {
        String::new()
    } else {
        format!(r#" Format="{}""#, esc(name_id_format))
    };
    let index = if session_index.is_empty() {
        String::new()
    } else {
        format!(
            "<samlp:SessionIndex>{}</samlp:SessionIndex>",
            esc(session_index)
        )
    };
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer>{{SIG}}<saml:NameID{format}>{name}</saml:NameID>{index}</samlp:LogoutRequest>"#,
        now = instant(chrono::Utc::now()),
        dest = esc(env.destination),
        issuer = esc(env.issuer),
        name = esc(name_id),
    );
    env.send(id, &xml, "SAMLRequest")
}

/// The LogoutResponse to the identity provider's LogoutRequest `in_response_to`.
pub fn logout_response(env: &Envelope, in_response_to: &str) -> Result<Outgoing, String> {
    let id = super::new_id();
    let xml = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="{NS_PROTOCOL}" xmlns:saml="{NS_ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer>{{SIG}}<samlp:Status><samlp:StatusCode Value="{ok}"/></samlp:Status></samlp:LogoutResponse>"#,
        now = instant(chrono::Utc::now()),
        dest = esc(env.destination),
        irt = esc(in_response_to),
        issuer = esc(env.issuer),
        ok = super::STATUS_SUCCESS,
    );
    env.send(&id, &xml, "SAMLResponse")
}

/// A message that came by the Redirect binding: the raw query string is read as it was
/// signed (the values as encoded in the URL), the signature checked against one of `certs`
/// (RSA or ECDSA with SHA-256 or better), and the message inflated.
pub struct RedirectMessage {
    pub xml: Vec<u8>,
    pub relay_state: Option<String>,
    /// `SAMLRequest` or `SAMLResponse`.
    pub param: &'static str,
}

pub fn read_redirect(raw_query: &str, certs: &[Vec<u8>]) -> Result<RedirectMessage, Refusal> {
    let mut msg: Option<(&'static str, &str)> = None;
    let (mut relay, mut sig_alg, mut sig) = (None, None, None);
    for part in raw_query.split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let slot = match k {
            "SAMLRequest" | "SAMLResponse" => {
                if msg.is_some() {
                    return refuse("two SAML messages in one query");
                }
                msg = Some((
                    if k == "SAMLRequest" {
                        "SAMLRequest"
                    } else {
                        "SAMLResponse"
                    },
                    v,
                ));
                continue;
            }
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut sig,
            _ => continue,
        };
        if slot.is_some() {
            return refuse(format!("{k} twice in the query"));
        }
        *slot = Some(v);
    }
    let Some((param, value)) = msg else {
        return refuse("no SAMLRequest or SAMLResponse in the query");
    };
    let (Some(alg_raw), Some(sig_raw)) = (sig_alg, sig) else {
        return refuse("the message is not signed (no SigAlg and Signature)");
    };
    let decode = |s: &str| -> Result<String, Refusal> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
            .ok_or_else(|| Refusal("a query value is not URL-encoded".into()))
    };
    let alg = decode(alg_raw)?;
    if !ACCEPTED_SIG_ALGS.contains(&alg.as_str()) {
        return refuse(format!("the signature algorithm {alg} is not accepted"));
    }
    let digest = match alg.rsplit('-').next() {
        Some("sha256") => openssl::hash::MessageDigest::sha256(),
        Some("sha384") => openssl::hash::MessageDigest::sha384(),
        _ => openssl::hash::MessageDigest::sha512(),
    };
    let mut signed = format!("{param}={value}");
    if let Some(r) = relay {
        signed.push_str(&format!("&RelayState={r}"));
    }
    signed.push_str(&format!("&SigAlg={alg_raw}"));
    let signature = B64
        .decode(decode(sig_raw)?)
        .map_err(|_| Refusal("the signature is not base64".into()))?;
    let good = certs.iter().any(|der| {
        let Ok(cert) = openssl::x509::X509::from_der(der) else {
            return false;
        };
        let Ok(key) = cert.public_key() else {
            return false;
        };
        let Ok(mut v) = openssl::sign::Verifier::new(digest, &key) else {
            return false;
        };
        v.update(signed.as_bytes()).is_ok() && v.verify(&signature).unwrap_or(false)
    });
    if !good {
        return refuse("the query's signature is not the identity provider's");
    }
    let deflated = B64
        .decode(decode(value)?)
        .map_err(|_| Refusal("the message is not base64".into()))?;
    let mut xml = vec![];
    flate2::read::DeflateDecoder::new(&deflated[..])
        .take(super::response::MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut xml)
        .map_err(|_| Refusal("the message is not deflated".into()))?;
    if xml.len() > super::response::MAX_MESSAGE {
        return refuse("the message is too large");
    }
    Ok(RedirectMessage {
        xml,
        relay_state: relay.map(decode).transpose()?,
        param,
    })
}

/// A logout message of the identity provider, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logout {
    /// Its answer to our LogoutRequest.
    Response { in_response_to: String },
    /// It asks us to end a user's sessions (those of one SessionIndex, if named).
    Request {
        id: String,
        name_id: String,
        session_index: Option<String>,
        not_on_or_after: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// A logout message and the RelayState that came with it.
pub struct IncomingLogout {
    pub message: Logout,
    pub relay_state: String,
}

/// A logout message by the Redirect binding: its query signature checked (`read_redirect`).
pub fn read_logout_redirect(
    raw_query: &str,
    idp: &IdpMetadata,
    slo: &str,
) -> Result<IncomingLogout, Refusal> {
    let m = read_redirect(raw_query, &idp.signing_certs)?;
    let xml = super::xml::parse(&m.xml).map_err(Refusal)?;
    Ok(IncomingLogout {
        message: logout_of(&xml, m.param, idp, slo)?,
        relay_state: m.relay_state.unwrap_or_default(),
    })
}

/// A logout message by the POST binding (`param` is `SAMLRequest` or `SAMLResponse`): read
/// only where the identity provider's signature covers it, with the pinned algorithms.
pub fn read_logout_post(
    param: &str,
    value: &str,
    relay_state: Option<&str>,
    idp: &IdpMetadata,
    slo: &str,
) -> Result<IncomingLogout, Refusal> {
    let raw = super::response::decode(value)?;
    let text = std::str::from_utf8(&raw).map_err(|_| Refusal("the message is not UTF-8".into()))?;
    // Strictly read first (no DOCTYPE, comment or instruction reaches libxml2).
    super::xml::parse(&raw).map_err(Refusal)?;
    let signed = super::response::signed_part(text, idp)?;
    let xml = super::xml::parse(signed.as_bytes()).map_err(Refusal)?;
    let param = if param == "SAMLRequest" {
        "SAMLRequest"
    } else {
        "SAMLResponse"
    };
    Ok(IncomingLogout {
        message: logout_of(&xml, param, idp, slo)?,
        relay_state: relay_state.unwrap_or("").to_string(),
    })
}

fn logout_of(
    msg: &super::xml::El,
    param: &str,
    idp: &IdpMetadata,
    slo: &str,
) -> Result<Logout, Refusal> {
    match msg.only_child(NS_ASSERTION, "Issuer") {
        Some(i) if i.text.trim() == idp.entity_id => {}
        _ => return refuse("the message's Issuer is not the identity provider"),
    }
    if let Some(d) = msg.attr("Destination") {
        if d != slo {
            return refuse("the message's Destination is not our logout endpoint");
        }
    }
    if param == "SAMLResponse" && msg.is(NS_PROTOCOL, "LogoutResponse") {
        return Ok(Logout::Response {
            in_response_to: msg.attr("InResponseTo").unwrap_or("").to_string(),
        });
    }
    if param == "SAMLRequest" && msg.is(NS_PROTOCOL, "LogoutRequest") {
        let not_on_or_after = match msg.attr("NotOnOrAfter") {
            None => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|_| Refusal("NotOnOrAfter is not a time".into()))?
                    .with_timezone(&chrono::Utc),
            ),
        };
        let Some(name_id) = msg.only_child(NS_ASSERTION, "NameID") else {
            return refuse("the logout request names no (single) user");
        };
        return Ok(Logout::Request {
            id: msg.attr("ID").unwrap_or("").to_string(),
            name_id: name_id.text.trim().to_string(),
            session_index: msg
                .only_child(NS_PROTOCOL, "SessionIndex")
                .map(|i| i.text.trim().to_string()),
            not_on_or_after,
        });
    }
    refuse(format!("a {} is not taken here", msg.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_message_is_taken_only_with_its_signature() {
        let keys = SpKeys::generate("sp.example", 30).unwrap();
        let env = Envelope {
            keys: &keys,
            issuer: "https://sp.example/metadata",
            destination: "https://idp.example/slo?x=1",
            relay_state: "abc def",
            binding: Binding::Redirect,
        };
        let Outgoing::Redirect(url) =
            logout_request(&env, "_1", "user@example.com", "", "s1").unwrap()
        else {
            panic!("a redirect");
        };
        let query = url.split_once("?x=1&").unwrap().1;
        let m = read_redirect(query, &[keys.cert_der()]).unwrap();
        assert_eq!(m.param, "SAMLRequest");
        assert_eq!(m.relay_state.as_deref(), Some("abc def"));
        assert!(String::from_utf8(m.xml)
            .unwrap()
            .contains("user@example.com"));
        let other = SpKeys::generate("other", 30).unwrap();
        assert!(read_redirect(query, &[other.cert_der()]).is_err());
        let tampered = query.replace("RelayState=abc", "RelayState=abd");
        assert!(read_redirect(&tampered, &[keys.cert_der()]).is_err());
        let unsigned = query.split("&SigAlg").next().unwrap();
        assert!(read_redirect(unsigned, &[keys.cert_der()]).is_err());
    }
}
