//! The license use API of cloud containers from the client's side: a credential file (the
//! certificate the vendor's server issued and its key) gets short-lived access tokens; with
//! them the vendor's software opens a seat of a license, keeps it with heartbeats and
//! releases it. `licentia cloud open|heartbeat|release|status` runs the same calls.
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::x509::X509;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::online::{http_agent, Gateway};
use super::{cerr, unix_now, CResult};
use crate::protocol::cloud::{
    token_message, BorrowRequest, Lease, OpenRequest, Status, Token, TokenRequest,
};
use crate::protocol::Issued;

/// A credential file, opened: the certificate (PEM) and its private key.
pub struct Credential {
    certificate: String,
    key: PKey<Private>,
    fingerprint: String,
}

impl Credential {
    /// Reads a credential file: PEM (certificate first, then the private key, encrypted
    /// when a passphrase is given) or PKCS#12 (passphrase required).
    pub fn read(path: &Path, passphrase: Option<&str>) -> CResult<Credential> {
        let raw = std::fs::read(path)
            .map_err(|e| cerr("io", format!("cannot read {}: {e}", path.display())))?;
        Credential::from_bytes(&raw, passphrase)
    }

    pub fn from_bytes(raw: &[u8], passphrase: Option<&str>) -> CResult<Credential> {
        let bad = |what: &str| cerr("bad_credential", format!("the credential file {what}"));
        let (cert, key) = if raw.starts_with(b"-----BEGIN") {
            let cert = X509::stack_from_pem(raw)
                .ok()
                .and_then(|s| s.into_iter().next())
                .ok_or_else(|| bad("holds no certificate"))?;
            let key = match passphrase {
                Some(p) => PKey::private_key_from_pem_passphrase(raw, p.as_bytes()),
                None => PKey::private_key_from_pem(raw),
            }
            .map_err(|_| bad("holds no private key this passphrase opens"))?;
            (cert, key)
        } else {
            let pass = passphrase.ok_or_else(|| bad("is PKCS#12 and needs its passphrase"))?;
            let p12 = openssl::pkcs12::Pkcs12::from_der(raw)
                .and_then(|p| p.parse2(pass))
                .map_err(|_| bad("is not PKCS#12, or the passphrase is wrong"))?;
            match (p12.cert, p12.pkey) {
                (Some(c), Some(k)) => (c, k),
                _ => return Err(bad("lacks the certificate or the key")),
            }
        };
        let matches = cert
            .public_key()
            .map(|p| p.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(bad("holds a key that is not the certificate's"));
        }
        let der = cert
            .to_der()
            .map_err(|_| bad("holds an unreadable certificate"))?;
        Ok(Credential {
            certificate: String::from_utf8(cert.to_pem().map_err(|_| bad("is unreadable"))?)
                .map_err(|_| bad("is unreadable"))?,
            key,
            fingerprint: hex::encode(openssl::sha::sha256(&der)),
        })
    }

    /// The SHA-256 of the certificate, in hex (how the server knows the credential).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A token request signed with the credential's key.
    pub fn token_request(&self) -> CResult<TokenRequest> {
        let mut n = [0u8; 16];
        openssl::rand::rand_bytes(&mut n).map_err(|e| cerr("crypto", e.to_string()))?;
        let nonce = hex::encode(n);
        let at = unix_now();
        let sign = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let mut s = Signer::new(MessageDigest::sha256(), &self.key)?;
            s.sign_oneshot_to_vec(&token_message(&self.fingerprint, &nonce, at))
        };
        let signature = sign().map_err(|e| cerr("crypto", e.to_string()))?;
        Ok(TokenRequest {
            certificate: self.certificate.clone(),
            nonce,
            at,
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        })
    }
}

/// A connection to a server's license use API with one credential. Tokens are fetched as
/// needed and renewed before they lapse (or when the server no longer takes one).
pub struct Cloud {
    base: String,
    agent: ureq::Agent,
    credential: Credential,
    token: Mutex<Option<(String, Instant)>>,
}

impl Cloud {
    pub fn new(server: &str, credential: Credential) -> Cloud {
        Cloud {
            base: format!("{}/cloud/v1", server.trim_end_matches('/')),
            agent: http_agent(),
            credential,
            token: Mutex::new(None),
        }
    }

    /// A fresh token from the server.
    pub fn login(&self) -> CResult<Token> {
        let t: Token = Gateway::answer(
            self.agent
                .post(&format!("{}/token", self.base))
                .send_json(self.credential.token_request()?),
        )?;
        // Renewed a minute before the server's expiry.
        let lasts = (t.expires_at - unix_now() - 60).max(0) as u64;
        *self.token.lock().expect("token") =
            Some((t.token.clone(), Instant::now() + Duration::from_secs(lasts)));
        Ok(t)
    }

    fn bearer(&self) -> CResult<String> {
        if let Some((t, until)) = self.token.lock().expect("token").clone() {
            if Instant::now() < until {
                return Ok(t);
            }
        }
        Ok(self.login()?.token)
    }

    /// One call with the token; a token the server no longer takes is renewed once.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> CResult<Option<T>> {
        for attempt in 0..4 {
            let req = self
                .agent
                .request(method, &format!("{}{path}", self.base))
                .set("Authorization", &format!("Bearer {}", self.bearer()?));
            let res = match body {
                Some(b) => req.send_json(b),
                None => req.call(),
            };
            let res = match res {
                Ok(r) if r.status() == 204 => return Ok(None),
                other => Gateway::answer::<T>(other),
            };
            match res {
                Err(e) if e.code == "unauthenticated" && attempt == 0 => {
                    *self.token.lock().expect("token") = None;
                }
                // The server asks to send again (its writers were busy): a short wait first.
                Err(e) if e.code == "busy" && attempt < 3 => {
                    std::thread::sleep(Duration::from_millis(20 << attempt));
                }
                other => return other.map(Some),
            }
        }
        unreachable!("the loop returns")
    }

    fn lease(&self, method: &str, path: &str, body: Option<&OpenRequest>) -> CResult<Lease> {
        self.call(method, path, body)?
            .ok_or_else(|| cerr("bad_answer", "the server sent no lease"))
    }

    /// Opens a seat of a license with `firm_code`, `product_code` and the feature bits.
    pub fn open(&self, req: &OpenRequest) -> CResult<Lease> {
        self.lease("POST", "/seats", Some(req))
    }

    /// Keeps a seat for another lease; `lease_lost` when it is no longer held.
    pub fn heartbeat(&self, seat: i64) -> CResult<Lease> {
        self.lease("POST", &format!("/seats/{seat}/heartbeat"), None)
    }

    pub fn release(&self, seat: i64) -> CResult<()> {
        self.call::<serde_json::Value>("DELETE", &format!("/seats/{seat}"), None::<&()>)
            .map(|_| ())
    }

    /// The update that borrows a seat into the local container whose request `req` carries
    /// (see `online::borrow` for the whole round trip).
    pub fn borrow(&self, req: &BorrowRequest) -> CResult<Issued> {
        self.call("POST", "/borrow", Some(req))?
            .ok_or_else(|| cerr("bad_answer", "the server sent no update"))
    }

    /// Activates licenses of `ticket` (none named: all that may go) into the credential's
    /// cloud container; the licenses activated.
    pub fn activate_ticket(&self, ticket: &str, licenses: &[i64]) -> CResult<Vec<i64>> {
        let body = serde_json::json!({"ticket": ticket, "licenses": licenses});
        let v: serde_json::Value = self
            .call("POST", "/activate", Some(&body))?
            .ok_or_else(|| cerr("bad_answer", "the server sent nothing"))?;
        serde_json::from_value(v["activated"].clone())
            .map_err(|_| cerr("bad_answer", "the server's answer names no licenses"))
    }

    /// The container's licenses and their seats in use.
    pub fn status(&self) -> CResult<Status> {
        self.call("GET", "/status", None::<&()>)?
            .ok_or_else(|| cerr("bad_answer", "the server sent no status"))
    }
}
