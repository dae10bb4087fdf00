//! Each firm's certificate authority for cloud credentials (ECDSA P-256, made on first use,
//! its key sealed under the master key like the firms' signing keys), the credential files
//! it issues, and how a certificate shown with a token request is checked.
use chrono::{DateTime, NaiveDateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509};

use crate::error::{Error, Result};
use crate::service::firms::MasterKey;

/// How long a credential file is valid: five years (a lost one is replaced, not waited out).
pub const CREDENTIAL_DAYS: u32 = 1826;
/// How long the authority's own certificate is valid: twenty years.
const AUTHORITY_DAYS: u32 = 7305;

fn internal(what: &str) -> impl FnOnce(openssl::error::ErrorStack) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

/// What the master key seals an authority's key with (binds it to its firm).
fn aad(firm_code: i64) -> Vec<u8> {
    format!("cloud-authority:{firm_code}").into_bytes()
}

/// A firm's opened authority.
pub struct Authority {
    pub cert: X509,
    key: PKey<Private>,
}

fn p256() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(internal("curve"))?;
    let ec = EcKey::generate(&group).map_err(internal("keygen"))?;
    PKey::from_ec_key(ec).map_err(internal("keygen"))
}

fn serial_number() -> Result<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new().map_err(internal("serial"))?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(internal("serial"))?;
    bn.to_asn1_integer().map_err(internal("serial"))
}

fn name(entries: &[(Nid, &str)]) -> Result<X509Name> {
    let mut b = X509Name::builder().map_err(internal("name"))?;
    for (nid, v) in entries {
        b.append_entry_by_nid(*nid, v).map_err(internal("name"))?;
    }
    Ok(b.build())
}

fn asn1_time(t: DateTime<Utc>) -> Result<Asn1Time> {
    Asn1Time::from_unix(t.timestamp()).map_err(internal("time"))
}

impl Authority {
    /// A new authority for `firm_code`: its certificate (PEM) and its key sealed.
    pub fn make(master: &MasterKey, firm_code: i64) -> Result<(String, String)> {
        let key = p256()?;
        let subject = name(&[
            (Nid::ORGANIZATIONALUNITNAME, &firm_code.to_string()),
            (
                Nid::COMMONNAME,
                &format!("Licentia cloud credentials, firm code {firm_code}"),
            ),
        ])?;
        let now = Utc::now();
        let mut b = X509::builder().map_err(internal("certificate"))?;
        b.set_version(2).map_err(internal("certificate"))?;
        b.set_serial_number(&*serial_number()?)
            .map_err(internal("certificate"))?;
        b.set_subject_name(&subject)
            .map_err(internal("certificate"))?;
        b.set_issuer_name(&subject)
            .map_err(internal("certificate"))?;
        b.set_pubkey(&key).map_err(internal("certificate"))?;
        b.set_not_before(&*asn1_time(now - chrono::Duration::hours(1))?)
            .map_err(internal("certificate"))?;
        b.set_not_after(&*asn1_time(
            now + chrono::Duration::days(AUTHORITY_DAYS.into()),
        )?)
        .map_err(internal("certificate"))?;
        let bc = BasicConstraints::new()
            .critical()
            .ca()
            .pathlen(0)
            .build()
            .map_err(internal("extension"))?;
        let ku = KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .map_err(internal("extension"))?;
        b.append_extension(bc).map_err(internal("extension"))?;
        b.append_extension(ku).map_err(internal("extension"))?;
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .map_err(internal("extension"))?;
        b.append_extension(ski).map_err(internal("extension"))?;
        b.sign(&key, MessageDigest::sha256())
            .map_err(internal("certificate"))?;
        let pem = b.build().to_pem().map_err(internal("certificate"))?;
        let der = key.private_key_to_der().map_err(internal("key"))?;
        let sealed = master.seal(&der, &aad(firm_code))?;
        Ok((String::from_utf8(pem).expect("PEM is ASCII"), sealed))
    }

    /// Opens a stored authority.
    pub fn open(master: &MasterKey, firm_code: i64, cert_pem: &str, sealed: &str) -> Result<Self> {
        let der = master.open(sealed, &aad(firm_code))?;
        Ok(Authority {
            cert: X509::from_pem(cert_pem.as_bytes()).map_err(internal("authority"))?,
            key: PKey::private_key_from_der(&der).map_err(internal("authority key"))?,
        })
    }

    /// A client certificate and a fresh key for cloud container `serial`, valid from now
    /// for `CREDENTIAL_DAYS`: subject CN = the serial, OU = the firm code.
    pub fn issue(&self, firm_code: i64, serial: &str) -> Result<(X509, PKey<Private>)> {
        let key = p256()?;
        let now = Utc::now();
        let mut b = X509::builder().map_err(internal("certificate"))?;
        b.set_version(2).map_err(internal("certificate"))?;
        b.set_serial_number(&*serial_number()?)
            .map_err(internal("certificate"))?;
        b.set_subject_name(&*name(&[
            (Nid::ORGANIZATIONALUNITNAME, &firm_code.to_string()),
            (Nid::COMMONNAME, serial),
        ])?)
        .map_err(internal("certificate"))?;
        b.set_issuer_name(self.cert.subject_name())
            .map_err(internal("certificate"))?;
        b.set_pubkey(&key).map_err(internal("certificate"))?;
        b.set_not_before(&*asn1_time(now - chrono::Duration::minutes(5))?)
            .map_err(internal("certificate"))?;
        b.set_not_after(&*asn1_time(
            now + chrono::Duration::days(CREDENTIAL_DAYS.into()),
        )?)
        .map_err(internal("certificate"))?;
        let bc = BasicConstraints::new()
            .critical()
            .build()
            .map_err(internal("extension"))?;
        let ku = KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .map_err(internal("extension"))?;
        let eku = ExtendedKeyUsage::new()
            .client_auth()
            .build()
            .map_err(internal("extension"))?;
        b.append_extension(bc).map_err(internal("extension"))?;
        b.append_extension(ku).map_err(internal("extension"))?;
        b.append_extension(eku).map_err(internal("extension"))?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .map_err(internal("extension"))?;
        b.append_extension(aki).map_err(internal("extension"))?;
        b.sign(&self.key, MessageDigest::sha256())
            .map_err(internal("certificate"))?;
        Ok((b.build(), key))
    }
}

/// Checks a certificate a client shows: issued by the firm's authority `authority` (its
/// signature), for container `serial` of `firm_code` (subject read with x509-parser), and
/// valid at `now` (unix time).
pub fn check(authority: &X509, cert: &X509, firm_code: i64, serial: &str, now: i64) -> Result<()> {
    let refused = |why: &str| Error::NotAllowed(format!("the credential is refused: {why}"));
    let authority_key = authority.public_key().map_err(internal("authority"))?;
    if !cert.verify(&authority_key).unwrap_or(false) {
        return Err(refused(
            "its certificate is not signed by this firm's authority",
        ));
    }
    let der = cert.to_der().map_err(internal("certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| refused("its certificate cannot be read"))?;
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err(refused("its certificate is not valid at this time"));
    }
    let subject = parsed.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let cn = first(&mut subject.iter_common_name());
    let ou = first(&mut subject.iter_organizational_unit());
    if cn.as_deref() != Some(serial) || ou != Some(firm_code.to_string()) {
        return Err(refused(
            "its certificate names another container or firm code",
        ));
    }
    Ok(())
}

/// The SHA-256 of a certificate (DER), in hex: how a credential is known.
pub fn fingerprint(cert: &X509) -> Result<String> {
    let der = cert.to_der().map_err(internal("certificate"))?;
    Ok(hex::encode(openssl::sha::sha256(&der)))
}

/// When a certificate stops being valid.
pub fn not_after(cert: &X509) -> Result<NaiveDateTime> {
    let epoch = Asn1Time::from_unix(0).map_err(internal("time"))?;
    let d = epoch.diff(cert.not_after()).map_err(internal("time"))?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.naive_utc())
        .ok_or_else(|| Error::internal("certificate time out of range"))
}

/// How a credential file is delivered.
#[derive(
    schemars::JsonSchema,
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One PEM file: the certificate, the authority's certificate and the private key
    /// (PKCS#8, encrypted with the passphrase when one is given).
    #[default]
    Pem,
    /// PKCS#12 (`.p12`), protected by the passphrase (required).
    Pkcs12,
}

/// The credential file of `cert` and `key` in `format` (PEM text, or PKCS#12 bytes).
pub fn file(
    authority: &Authority,
    serial: &str,
    cert: &X509,
    key: &PKey<Private>,
    format: Format,
    passphrase: Option<&str>,
) -> Result<Vec<u8>> {
    match format {
        Format::Pem => {
            let mut out = cert.to_pem().map_err(internal("certificate"))?;
            out.extend(authority.cert.to_pem().map_err(internal("certificate"))?);
            out.extend(match passphrase {
                Some(p) => key
                    .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), p.as_bytes())
                    .map_err(internal("key"))?,
                None => key.private_key_to_pem_pkcs8().map_err(internal("key"))?,
            });
            Ok(out)
        }
        Format::Pkcs12 => {
            let pass = passphrase.ok_or_else(|| {
                Error::invalid("passphrase", "a PKCS#12 credential file needs a passphrase")
            })?;
            let mut chain = Stack::new().map_err(internal("pkcs12"))?;
            chain
                .push(authority.cert.clone())
                .map_err(internal("pkcs12"))?;
            let p12 = openssl::pkcs12::Pkcs12::builder()
                .name(serial)
                .pkey(key)
                .cert(cert)
                .ca(chain)
                .build2(pass)
                .map_err(internal("pkcs12"))?;
            p12.to_der().map_err(internal("pkcs12"))
        }
    }
}
