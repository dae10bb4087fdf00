//! Updates: made by the server for one container, firm and counter, signed by the firm's
//! key and sealed for that container; and the endorsements that carry a rotated firm key.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::content::Op;
use super::context::{from_value, to_value, VERSION};
use super::crypto::{self, AgreementKey, Sealed, SigningKey};
use super::{armour, b64, canonical, dearmour, perr, unb64, Kind, PResult};

const MAX_OPS: usize = 1000;

/// A firm key, endorsed by the key before it (key rotation: a container that trusts an
/// older key learns the newer one from the chain of endorsements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endorsement {
    pub firm_code: i64,
    pub key_id: String,
    pub public_key: String,
    pub endorsed_by: String,
    pub sig: String,
}

impl Endorsement {
    fn signed_part(firm_code: i64, key_id: &str, public_key: &str) -> Vec<u8> {
        canonical(&json!({"firm_code": firm_code, "key_id": key_id, "public_key": public_key}))
    }
    pub fn make(firm_code: i64, new_public: &[u8], by: &SigningKey) -> Endorsement {
        let key_id = crypto::key_id(new_public);
        let public_key = b64(new_public);
        let sig = by.sign(&Self::signed_part(firm_code, &key_id, &public_key));
        Endorsement {
            firm_code,
            key_id,
            public_key,
            endorsed_by: crypto::key_id(&by.public()),
            sig: b64(&sig),
        }
    }
    pub fn verify(&self, by_public: &[u8]) -> PResult<Vec<u8>> {
        let public = unb64("endorsed key", &self.public_key)?;
        if crypto::key_id(&public) != self.key_id {
            return Err(perr("an endorsed key does not match its key id"));
        }
        crypto::verify(
            by_public,
            &Self::signed_part(self.firm_code, &self.key_id, &self.public_key),
            &unb64("endorsement sig", &self.sig)?,
        )
        .map_err(|_| {
            perr(format!(
                "the endorsement of key {} does not verify",
                self.key_id
            ))
        })?;
        Ok(public)
    }
}

/// What an update says, signed by the firm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub kind: String,
    pub v: u32,
    pub update_id: i64,
    pub serial: String,
    pub firm_code: i64,
    /// The counter the container must be at; applying makes it `counter_to`.
    pub counter_from: u64,
    pub counter_to: u64,
    /// The key id of the container's signing key: an update for a new container names it.
    pub container_key: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The nonce of the request this update answers (a pushed license goes with the update
    /// that answers the container's next request).
    pub fulfils: String,
    /// Firm keys newer than the container knows, each endorsed by the one before.
    pub keys: Vec<Endorsement>,
    pub ops: Vec<Op>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedUpdate {
    kind: String,
    v: u32,
    serial: String,
    firm_code: i64,
    counter: u64,
    eph: String,
    iv: String,
    ct: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedUpdate {
    body: Value,
    key_id: String,
    sig: String,
}

fn update_aad(serial: &str, firm_code: i64, counter: u64, eph: &str, iv: &str) -> Vec<u8> {
    canonical(&json!({
        "kind": "update", "v": VERSION, "serial": serial, "firm_code": firm_code,
        "counter": counter, "eph": eph, "iv": iv,
    }))
}

/// Signs an update with the firm key and encrypts it for the container's X25519 key.
pub fn write_update(body: &UpdateBody, firm_key: &SigningKey, recipient: &[u8]) -> PResult<String> {
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut iv).expect("CSPRNG");
    write_update_with(body, firm_key, recipient, &AgreementKey::generate(), iv)
}

/// `write_update` with a given one-time key and nonce (for test vectors only).
pub fn write_update_with(
    body: &UpdateBody,
    firm_key: &SigningKey,
    recipient: &[u8],
    ephemeral: &AgreementKey,
    iv: [u8; 12],
) -> PResult<String> {
    let body_v = to_value(body);
    let sig = firm_key.sign(&canonical(&body_v));
    let inner = canonical(&to_value(&SignedUpdate {
        body: body_v,
        key_id: crypto::key_id(&firm_key.public()),
        sig: b64(&sig),
    }));
    let (eph, iv_s) = (b64(&ephemeral.public()), b64(&iv));
    let aad = update_aad(&body.serial, body.firm_code, body.counter_from, &eph, &iv_s);
    let sealed = crypto::seal_with(&inner, &aad, recipient, ephemeral, iv)?;
    let outer = SealedUpdate {
        kind: "update".into(),
        v: VERSION,
        serial: body.serial.clone(),
        firm_code: body.firm_code,
        counter: body.counter_from,
        eph,
        iv: iv_s,
        ct: b64(&sealed.ciphertext),
    };
    Ok(armour(Kind::Update, &canonical(&to_value(&outer))))
}

/// The visible part of an update: whom it is for, before anything is decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateHeader {
    pub serial: String,
    pub firm_code: i64,
    pub counter: u64,
}

fn read_sealed(text: &str) -> PResult<SealedUpdate> {
    let (kind, v) = dearmour(text)?;
    if kind != Kind::Update {
        return Err(perr(format!(
            "expected an update but got a {}",
            kind.as_str()
        )));
    }
    from_value("update", v)
}

pub fn read_update_header(text: &str) -> PResult<UpdateHeader> {
    let o = read_sealed(text)?;
    Ok(UpdateHeader {
        serial: o.serial,
        firm_code: o.firm_code,
        counter: o.counter,
    })
}

/// Decrypts an update with the container's key and checks the firm signature with
/// `firm_key(key_id)` (after learning keys from the update's endorsements, which must chain
/// from a key the container already trusts). Checks that the signed body repeats the
/// visible header. Whether it fits the container (serial, counter, expiry) is the caller's.
pub fn read_update(
    text: &str,
    recipient: &AgreementKey,
    trusted: &BTreeMap<String, Vec<u8>>,
) -> PResult<(UpdateBody, BTreeMap<String, Vec<u8>>)> {
    let o = read_sealed(text)?;
    if o.v != VERSION {
        return Err(perr(format!("unsupported message version {}", o.v)));
    }
    let iv: [u8; 12] = unb64("iv", &o.iv)?
        .try_into()
        .map_err(|_| perr("iv must be 12 bytes"))?;
    let sealed = Sealed {
        ephemeral: unb64("eph", &o.eph)?,
        iv,
        ciphertext: unb64("ct", &o.ct)?,
    };
    let aad = update_aad(&o.serial, o.firm_code, o.counter, &o.eph, &o.iv);
    let inner = crypto::open(&sealed, &aad, recipient)?;
    let inner: Value = serde_json::from_slice(&inner)
        .map_err(|e| perr(format!("the decrypted update is not JSON: {e}")))?;
    let signed: SignedUpdate = from_value("update", inner)?;
    let signed_bytes = canonical(&signed.body);
    let body: UpdateBody = from_value("update body", signed.body)?;
    if body.kind != "update" || body.v != VERSION {
        return Err(perr("the signed body is not an update of this version"));
    }
    if body.ops.len() > MAX_OPS {
        return Err(perr("the update has too many operations"));
    }
    let mut keys = trusted.clone();
    for e in &body.keys {
        if e.firm_code != body.firm_code {
            return Err(perr("an endorsed key is for another firm code"));
        }
        let by = keys.get(&e.endorsed_by).ok_or_else(|| {
            perr(format!(
                "key {} is endorsed by {}, which this container does not trust",
                e.key_id, e.endorsed_by
            ))
        })?;
        let public = e.verify(by)?;
        keys.insert(e.key_id.clone(), public);
    }
    let firm_public = keys.get(&signed.key_id).ok_or_else(|| {
        perr(format!(
            "the update is signed by firm key {}, which this container does not trust",
            signed.key_id
        ))
    })?;
    crypto::verify(firm_public, &signed_bytes, &unb64("sig", &signed.sig)?)
        .map_err(|_| perr("the firm signature of the update does not match its content"))?;
    if body.serial != o.serial || body.firm_code != o.firm_code || body.counter_from != o.counter {
        return Err(perr("the signed update does not match its visible header"));
    }
    if body.counter_from.checked_add(1) != Some(body.counter_to) {
        return Err(perr("the update must advance the counter by one"));
    }
    // Each entry's own signature is not checked again here: the firm signature just checked
    // covers every entry with its signature, and `check` verifies an entry's signature each
    // time the license is used offline.
    for op in &body.ops {
        if let Op::Add { entry } | Op::Change { entry } = op {
            if !keys.contains_key(&entry.key_id) {
                return Err(perr(format!(
                    "license {} is signed by an unknown firm key",
                    entry.entry.license_id
                )));
            }
            if entry.entry.serial != body.serial || entry.entry.firm_code != body.firm_code {
                return Err(perr(format!(
                    "license {} is bound to another container or firm",
                    entry.entry.license_id
                )));
            }
        }
    }
    Ok((body, keys))
}
