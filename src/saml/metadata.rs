//! Metadata: the identity provider's (read, refused without a signing certificate) and
//! ours (written and signed), the Service Provider's key and certificate, and what a
//! certificate says about its expiry (read with x509-parser).
use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::xml::{self, esc, El};
use super::{BINDING_POST, BINDING_REDIRECT, NS_DSIG, NS_METADATA};

/// What Licentia uses of the identity provider's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Single sign-on endpoints: (binding, location).
    pub sso: Vec<(String, String)>,
    /// Single logout endpoints: (binding, location, response location).
    pub slo: Vec<(String, String, String)>,
    /// The certificates whose keys sign its messages (DER), at least one.
    pub signing_certs: Vec<Vec<u8>>,
}

impl IdpMetadata {
    /// Reads an EntityDescriptor (or the first one with an IDPSSODescriptor in an
    /// EntitiesDescriptor). No signing certificate: refused, as nothing could be verified.
    pub fn parse(text: &[u8]) -> Result<IdpMetadata, String> {
        let root = xml::parse(text)?;
        let entity = if root.is(NS_METADATA, "EntityDescriptor") {
            root
        } else if root.is(NS_METADATA, "EntitiesDescriptor") {
            root.children
                .into_iter()
                .find(|e| {
                    e.is(NS_METADATA, "EntityDescriptor")
                        && e.children_named(NS_METADATA, "IDPSSODescriptor")
                            .next()
                            .is_some()
                })
                .ok_or("the metadata describes no identity provider (IDPSSODescriptor)")?
        } else {
            return Err(format!(
                "{{{}}}{} is not SAML metadata (an EntityDescriptor)",
                root.ns, root.name
            ));
        };
        let entity_id = entity
            .attr("entityID")
            .filter(|s| !s.is_empty())
            .ok_or("the metadata has no entityID")?
            .to_string();
        let idp = entity
            .only_child(NS_METADATA, "IDPSSODescriptor")
            .ok_or("the metadata describes no identity provider (one IDPSSODescriptor)")?;
        let mut signing_certs = vec![];
        for kd in idp.children_named(NS_METADATA, "KeyDescriptor") {
            // "signing", or no use (then it serves both).
            if !matches!(kd.attr("use"), None | Some("") | Some("signing")) {
                continue;
            }
            for c in certificates_in(kd) {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(c.split_whitespace().collect::<String>())
                    .map_err(|e| format!("a signing certificate is not base64: {e}"))?;
                CertInfo::read(&der)?;
                signing_certs.push(der);
            }
        }
        if signing_certs.is_empty() {
            return Err(format!(
                "the identity provider's metadata ({entity_id}) has no signing certificate: \
                 without one no response could be verified, so single sign-on is not started"
            ));
        }
        let endpoints = |name: &str| {
            idp.children_named(NS_METADATA, name)
                .filter_map(|e| {
                    Some((
                        e.attr("Binding")?.to_string(),
                        e.attr("Location")?.to_string(),
                        e.attr("ResponseLocation").unwrap_or("").to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        };
        let sso: Vec<(String, String)> = endpoints("SingleSignOnService")
            .into_iter()
            .filter(|(b, _, _)| b == BINDING_REDIRECT || b == BINDING_POST)
            .map(|(b, l, _)| (b, l))
            .collect();
        if sso.is_empty() {
            return Err(format!(
                "the identity provider's metadata ({entity_id}) has no SingleSignOnService with \
                 the HTTP-Redirect or HTTP-POST binding"
            ));
        }
        let slo = endpoints("SingleLogoutService")
            .into_iter()
            .filter(|(b, _, _)| b == BINDING_REDIRECT || b == BINDING_POST)
            .collect();
        Ok(IdpMetadata {
            entity_id,
            sso,
            slo,
            signing_certs,
        })
    }

    /// The single sign-on endpoint of a binding.
    pub fn sso_location(&self, binding: &str) -> Option<&str> {
        self.sso
            .iter()
            .find(|(b, _)| b == binding)
            .map(|(_, l)| l.as_str())
    }

    /// The single logout endpoint, preferring the Redirect binding: (binding, location,
    /// response location).
    pub fn slo_endpoint(&self) -> Option<&(String, String, String)> {
        self.slo
            .iter()
            .find(|(b, _, _)| b == BINDING_REDIRECT)
            .or_else(|| self.slo.first())
    }
}

fn certificates_in(kd: &El) -> Vec<String> {
    let mut out = vec![];
    for ki in kd.children_named(NS_DSIG, "KeyInfo") {
        for xd in ki.children_named(NS_DSIG, "X509Data") {
            for c in xd.children_named(NS_DSIG, "X509Certificate") {
                out.push(c.text.clone());
            }
        }
    }
    out
}

/// A certificate's subject and validity, for the expiry warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub not_before: chrono::NaiveDateTime,
    pub not_after: chrono::NaiveDateTime,
}

impl CertInfo {
    pub fn read(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("a certificate cannot be read: {e}"))?;
        let t = |ts: i64| {
            chrono::DateTime::from_timestamp(ts, 0)
                .map(|d| d.naive_utc())
                .ok_or_else(|| "a certificate's date is out of range".to_string())
        };
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            not_before: t(cert.validity().not_before.timestamp())?,
            not_after: t(cert.validity().not_after.timestamp())?,
        })
    }

    /// Whole days left at `now` (negative once expired).
    pub fn days_left(&self, now: chrono::NaiveDateTime) -> i64 {
        (self.not_after - now).num_days()
    }
}

/// The Service Provider's signing key and its certificate.
pub struct SpKeys {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl SpKeys {
    /// From PEM text; the certificate must be the key's.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<SpKeys, String> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| format!("the SP key is not a PEM private key: {e}"))?;
        let cert =
            X509::from_pem(cert_pem).map_err(|e| format!("the SP certificate is not PEM: {e}"))?;
        let public = cert
            .public_key()
            .map_err(|e| format!("the SP certificate's key: {e}"))?;
        if !key.public_eq(&public) {
            return Err("the SP certificate is not the SP key's".into());
        }
        if key.rsa().is_err() && key.ec_key().is_err() {
            return Err("the SP key must be an RSA or EC key".into());
        }
        Ok(SpKeys { key, cert })
    }

    /// A new RSA-3072 key and a self-signed certificate for `subject` valid `days` days.
    pub fn generate(subject: &str, days: u32) -> Result<SpKeys, String> {
        let e = |e: openssl::error::ErrorStack| format!("making the SP key: {e}");
        let rsa = openssl::rsa::Rsa::generate(3072).map_err(e)?;
        let key = PKey::from_rsa(rsa).map_err(e)?;
        let mut name = openssl::x509::X509NameBuilder::new().map_err(e)?;
        let cn: String = subject.chars().take(64).collect();
        name.append_entry_by_text("CN", &cn).map_err(e)?;
        let name = name.build();
        let mut b = X509::builder().map_err(e)?;
        b.set_version(2).map_err(e)?;
        let mut serial = openssl::bn::BigNum::new().map_err(e)?;
        serial
            .rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)
            .map_err(e)?;
        let serial = serial.to_asn1_integer().map_err(e)?;
        b.set_serial_number(&serial).map_err(e)?;
        b.set_subject_name(&name).map_err(e)?;
        b.set_issuer_name(&name).map_err(e)?;
        b.set_pubkey(&key).map_err(e)?;
        let from = openssl::asn1::Asn1Time::days_from_now(0).map_err(e)?;
        let until = openssl::asn1::Asn1Time::days_from_now(days).map_err(e)?;
        b.set_not_before(&from).map_err(e)?;
        b.set_not_after(&until).map_err(e)?;
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .map_err(e)?;
        Ok(SpKeys {
            key,
            cert: b.build(),
        })
    }

    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().expect("a private key")
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("a certificate")
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.to_der().expect("a certificate")
    }

    /// The certificate as metadata and KeyInfo carry it.
    pub fn cert_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.cert_der())
    }

    /// Signs the element carrying `ID` whose template `signature_template` put in `xml`.
    pub fn sign_xml(&self, xml: &str) -> Result<String, String> {
        use samael::crypto::{CryptoProvider, XmlSec};
        let der = self
            .key
            .private_key_to_der()
            .map_err(|e| format!("the SP key: {e}"))?;
        XmlSec::sign_xml(xml, &der).map_err(|e| format!("signing: {e}"))
    }

    /// The signature of the Redirect binding's query (`SAMLRequest=…&RelayState=…&SigAlg=…`).
    pub fn sign_query(&self, query: &str) -> Result<Vec<u8>, String> {
        let e = |e: openssl::error::ErrorStack| format!("signing the query: {e}");
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.key)
            .map_err(e)?;
        s.update(query.as_bytes()).map_err(e)?;
        s.sign_to_vec().map_err(e)
    }

    /// The signature algorithm of this key (with SHA-256).
    pub fn sig_alg(&self) -> &'static str {
        if self.key.ec_key().is_ok() {
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        } else {
            super::RSA_SHA256
        }
    }
}

/// An enveloped signature to be filled by `SpKeys::sign_xml` (or a test IdP's key): exclusive
/// canonicalisation, SHA-256, the certificate in KeyInfo.
pub fn signature_template(ref_id: &str, sig_alg: &str, cert_b64: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig_alg}"/><ds:Reference URI="#{ref_id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

/// Our endpoints, as the metadata and the messages name them.
#[derive(Debug, Clone)]
pub struct SpUrls {
    pub entity_id: String,
    pub acs: String,
    pub slo: String,
}

/// The Service Provider's metadata, signed with its key, valid for `valid_days`.
pub fn sp_metadata(urls: &SpUrls, keys: &SpKeys, valid_days: i64) -> Result<String, String> {
    let id = super::new_id();
    let until = (chrono::Utc::now() + chrono::Duration::days(valid_days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cert = keys.cert_b64();
    let sig = signature_template(&id, keys.sig_alg(), &cert);
    let key = format!(
        r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{NS_DSIG}"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
    );
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{NS_METADATA}" ID="{id}" entityID="{entity}" validUntil="{until}">{sig}<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key}<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{slo}"/><md:SingleLogoutService Binding="{BINDING_POST}" Location="{slo}"/><md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat><md:AssertionConsumerService Binding="{BINDING_POST}" Location="{acs}" index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>
"#,
        entity = esc(&urls.entity_id),
        slo = esc(&urls.slo),
        acs = esc(&urls.acs),
    );
    keys.sign_xml(&xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(keys: &str) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="{NS_METADATA}" xmlns:ds="{NS_DSIG}" entityID="https://idp.example/">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}
<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="https://idp.example/slo"/>
<md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="https://idp.example/sso"/>
</md:IDPSSODescriptor></md:EntityDescriptor>"#
        )
    }

    #[test]
    fn idp_metadata_without_a_signing_certificate_is_refused() {
        let keys = SpKeys::generate("idp.example", 30).unwrap();
        let cert = keys.cert_b64();
        let kd = |u: &str| {
            format!(
                r#"<md:KeyDescriptor{u}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        };
        let ok = IdpMetadata::parse(metadata(&kd(r#" use="signing""#)).as_bytes()).unwrap();
        assert_eq!(ok.entity_id, "https://idp.example/");
        assert_eq!(ok.signing_certs, vec![keys.cert_der()]);
        assert_eq!(
            ok.sso_location(BINDING_REDIRECT),
            Some("https://idp.example/sso")
        );
        assert!(IdpMetadata::parse(metadata(&kd("")).as_bytes()).is_ok());
        for bad in [String::new(), kd(r#" use="encryption""#)] {
            let e = IdpMetadata::parse(metadata(&bad).as_bytes()).unwrap_err();
            assert!(e.contains("no signing certificate"), "{e}");
        }
        let info = CertInfo::read(&keys.cert_der()).unwrap();
        assert!(info.subject.contains("idp.example"), "{}", info.subject);
        assert!((29..=30).contains(&info.days_left(chrono::Utc::now().naive_utc())));
    }
}
