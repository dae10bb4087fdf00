//! SAML 2.0 for the portal's single sign-on, Licentia being the Service Provider: pure
//! functions from bytes to checked facts and from facts to messages (no database, no HTTP).
//! XML signatures are made and checked by samael (libxmlsec1); around it, this module fails
//! closed where samael would not:
//! - IdP metadata without a signing certificate is refused (samael would check nothing);
//! - only RSA and ECDSA with SHA-256 or better are accepted, for signatures and digests;
//! - only the XML a verified signature covers is read (its pre-digest bytes), and the signed
//!   element must be the message itself or its one assertion, so no wrapped copy is read;
//! - a message with a DOCTYPE, a comment or a processing instruction is refused before it
//!   reaches libxml2 (no entities; no comment to split a NameID);
//! - exactly one assertion, no encrypted one; Issuer, Destination, Recipient, Audience and
//!   the validity window (with a bounded skew) are checked here; the request id and the
//!   assertion id are checked against the database by the service (any node).
pub mod messages;
pub mod metadata;
pub mod response;
pub mod xml;

pub use messages::{Binding, Outgoing};
pub use metadata::{CertInfo, IdpMetadata, SpKeys};
pub use response::{Expect, Verified};

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// The signature algorithms accepted (and the one used): RSA or ECDSA with SHA-256 or better.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ACCEPTED_SIG_ALGS: &[&str] = &[
    RSA_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];

/// The same set as samael names it (the digests follow: SHA-256, SHA-384, SHA-512).
pub fn pinned_algorithms() -> &'static [samael::crypto::AllowedSignatureAlgorithm] {
    use samael::crypto::AllowedSignatureAlgorithm as A;
    &[
        A::RsaSha256,
        A::RsaSha384,
        A::RsaSha512,
        A::EcdsaSha256,
        A::EcdsaSha384,
        A::EcdsaSha512,
    ]
}

/// A random one-time id of 128 bits, as an XML ID (it must not start with a digit).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    format!("_{}", hex::encode(b))
}

/// Why a message was refused: said to the log and (in general words) on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn refuse<T>(why: impl Into<String>) -> std::result::Result<T, Refusal> {
    Err(Refusal(why.into()))
}
