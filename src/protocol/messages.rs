//! The three messages and the license entries they carry.
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::crypto::{self, AgreementKey, Sealed, SigningKey};
use super::{armour, b64, canonical, dearmour, perr, sha256_hex, unb64, Kind, PResult};
use crate::domain::ContainerType;

pub const VERSION: u32 = 1;
/// The serial of a container that has not been given one yet.
pub const NEW_SERIAL: &str = "new";
const MAX_TRAITS: usize = 16;
const MAX_KNOWN_KEYS: usize = 16;
const MAX_OPS: usize = 1000;

/// One machine trait of an `act` container's fingerprint, as a salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trait {
    pub name: String,
    pub hash: String,
}

/// A container's signed context for one firm code: a request (before a change) or a
/// receipt (after applying an update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub kind: String,
    pub v: u32,
    /// `new` for a container that has no serial yet.
    pub serial: String,
    pub container_type: ContainerType,
    pub firm_code: i64,
    /// The firm update counter: how many updates of this firm the container has applied.
    pub counter: u64,
    /// The digest of the container's license entries of this firm (see `FirmContent`).
    pub digest: String,
    /// The container's Ed25519 public key (base64), which signs this context.
    pub sign_key: String,
    /// The container's X25519 public key (base64), to which updates are encrypted.
    pub enc_key: String,
    #[serde(default)]
    pub fingerprint: Vec<Trait>,
    /// Ids of the firm keys the container trusts.
    #[serde(default)]
    pub known_keys: Vec<String>,
    pub nonce: String,
    /// Seconds since the Unix epoch, by the container's clock.
    pub created_at: i64,
    /// For a receipt: the update it confirms.
    #[serde(default)]
    pub update_id: Option<i64>,
}

impl Context {
    /// The key id of the container's signing key; updates name it.
    pub fn container_key_id(&self) -> String {
        unb64("sign_key", &self.sign_key)
            .map(|k| crypto::key_id(&k))
            .unwrap_or_default()
    }

    fn validate(&self) -> PResult<()> {
        if self.v != VERSION {
            return Err(perr(format!("unsupported message version {}", self.v)));
        }
        check_serial(&self.serial)?;
        if self.firm_code <= 0 || self.firm_code > 4_294_967_295 {
            return Err(perr("firm_code out of range"));
        }
        check_hex("digest", &self.digest, 64)?;
        check_hex("nonce", &self.nonce, 32)?;
        for (f, k) in [("sign_key", &self.sign_key), ("enc_key", &self.enc_key)] {
            if unb64(f, k)?.len() != 32 {
                return Err(perr(format!("{f} must be 32 bytes")));
            }
        }
        crypto::check_agreement_public(&unb64("enc_key", &self.enc_key)?)?;
        if self.fingerprint.len() > MAX_TRAITS {
            return Err(perr("too many fingerprint traits"));
        }
        for t in &self.fingerprint {
            if t.name.is_empty() || t.name.len() > 32 {
                return Err(perr("a fingerprint trait name must be 1 to 32 bytes"));
            }
            check_hex("fingerprint hash", &t.hash, 64)?;
        }
        if self.known_keys.len() > MAX_KNOWN_KEYS {
            return Err(perr("too many known keys"));
        }
        for k in &self.known_keys {
            check_hex("known key id", k, 16)?;
        }
        Ok(())
    }
}

fn check_serial(s: &str) -> PResult<()> {
    let ok = s == NEW_SERIAL
        || s.split_once('-').is_some_and(|(a, b)| {
            (1..=4).contains(&a.len())
                && (1..=12).contains(&b.len())
                && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(perr(format!(
            "serial {:?} is not of the form 130-1234567890",
            s.chars().take(40).collect::<String>()
        )))
    }
}

fn check_hex(field: &str, s: &str, len: usize) -> PResult<()> {
    if s.len() == len
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        Ok(())
    } else {
        Err(perr(format!("{field} must be {len} lowercase hex digits")))
    }
}

fn from_value<T: DeserializeOwned>(what: &str, v: Value) -> PResult<T> {
    serde_json::from_value(v).map_err(|e| perr(format!("malformed {what}: {e}")))
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("protocol types serialize")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedEnvelope {
    kind: String,
    body: Value,
    sig: String,
}

/// Signs a context with the container's key and armours it as a request or receipt.
pub fn write_context(ctx: &Context, key: &SigningKey) -> String {
    let kind = if ctx.kind == "receipt" {
        Kind::Receipt
    } else {
        Kind::Request
    };
    let body = to_value(ctx);
    let sig = key.sign(&canonical(&body));
    let env = json!({"kind": kind.as_str(), "body": body, "sig": b64(&sig)});
    armour(kind, &canonical(&env))
}

/// Reads a request or receipt and checks its signature against the key it names.
/// The caller must still check that this key is the one registered for the serial.
pub fn read_context(text: &str, expect: Kind) -> PResult<Context> {
    let (kind, v) = dearmour(text)?;
    if kind != expect {
        return Err(perr(format!(
            "expected a {} but got a {}",
            expect.as_str(),
            kind.as_str()
        )));
    }
    let env: SignedEnvelope = from_value(kind.as_str(), v)?;
    let signed = canonical(&env.body);
    let ctx: Context = from_value(kind.as_str(), env.body)?;
    if ctx.kind != kind.as_str() {
        return Err(perr("the signed body is of another kind than its envelope"));
    }
    ctx.validate()?;
    if kind == Kind::Request && ctx.update_id.is_some() {
        return Err(perr("a request names no update"));
    }
    if kind == Kind::Receipt && ctx.update_id.is_none() {
        return Err(perr("a receipt must name the update it confirms"));
    }
    let sig = unb64("sig", &env.sig)?;
    crypto::verify(&unb64("sign_key", &ctx.sign_key)?, &signed, &sig).map_err(|_| {
        perr(format!(
            "the {} signature does not match its content",
            kind.as_str()
        ))
    })?;
    Ok(ctx)
}

/// What a license is inside a container: the product item options as they were sold,
/// bound to one serial. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub license_id: i64,
    pub generation: i32,
    pub serial: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub feature_map: u32,
    /// 0 = local single user, n = n floating users.
    pub quantity: u32,
    pub activation_time: Option<i64>,
    pub expiration_time: Option<i64>,
    pub usage_period_days: Option<u32>,
    pub unit_counter: Option<u32>,
    pub maintenance_period_days: Option<u32>,
    pub text: String,
    pub user_data: String,
    pub protected_data: String,
}

/// An entry signed by a firm key, so a container can prove it offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    pub entry: Entry,
    pub key_id: String,
    pub sig: String,
}

impl SignedEntry {
    pub fn sign(entry: Entry, key: &SigningKey) -> SignedEntry {
        let sig = key.sign(&canonical(&to_value(&entry)));
        SignedEntry {
            entry,
            key_id: crypto::key_id(&key.public()),
            sig: b64(&sig),
        }
    }
    pub fn verify(&self, public: &[u8]) -> PResult<()> {
        crypto::verify(
            public,
            &canonical(&to_value(&self.entry)),
            &unb64("entry sig", &self.sig)?,
        )
        .map_err(|_| {
            perr(format!(
                "license {}: the firm signature does not match",
                self.entry.license_id
            ))
        })
    }
}

/// Anything that is or carries a license entry: the server's mirror holds plain entries,
/// a container holds them with their firm signatures. Both digest the same.
pub trait AsEntry: Clone {
    fn entry(&self) -> &Entry;
}

impl AsEntry for Entry {
    fn entry(&self) -> &Entry {
        self
    }
}

impl AsEntry for SignedEntry {
    fn entry(&self) -> &Entry {
        &self.entry
    }
}

/// One change an update makes (on the wire: `Op<SignedEntry>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Op<E = SignedEntry> {
    Add {
        entry: E,
    },
    Change {
        entry: E,
    },
    Delete {
        license_id: i64,
    },
    /// Locks every entry of the firm (sent to blacklisted containers).
    Lock,
    /// Lifts the lock (the container was taken off the blacklist).
    Unlock,
}

impl<E: AsEntry> Op<E> {
    pub fn license_id(&self) -> Option<i64> {
        match self {
            Op::Add { entry } | Op::Change { entry } => Some(entry.entry().license_id),
            Op::Delete { license_id } => Some(*license_id),
            Op::Lock | Op::Unlock => None,
        }
    }
}

/// What a container holds of one firm. The server keeps the same structure, with plain
/// entries, as its mirror of what each container has confirmed; both compute one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content<E> {
    pub entries: BTreeMap<i64, E>,
    pub locked: bool,
}

pub type FirmContent = Content<SignedEntry>;

impl<E> Default for Content<E> {
    fn default() -> Self {
        Content {
            entries: BTreeMap::new(),
            locked: false,
        }
    }
}

impl<E: AsEntry> Content<E> {
    /// SHA-256 over the canonical JSON of the entries (in license id order) and the lock.
    pub fn digest(&self) -> String {
        let entries: Vec<Value> = self.entries.values().map(|e| to_value(e.entry())).collect();
        sha256_hex(&canonical(
            &json!({"entries": entries, "locked": self.locked}),
        ))
    }

    /// Applies the operations in order; an operation that does not fit (adding what is
    /// there, changing or deleting what is not) refuses the whole update.
    pub fn apply(&mut self, ops: &[Op<E>]) -> PResult<()> {
        let mut next = self.clone();
        for op in ops {
            match op {
                Op::Add { entry } => {
                    let id = entry.entry().license_id;
                    if next.entries.insert(id, entry.clone()).is_some() {
                        return Err(perr(format!(
                            "the update adds license {id} which the container already holds"
                        )));
                    }
                }
                Op::Change { entry } => {
                    let id = entry.entry().license_id;
                    let slot = next.entries.get_mut(&id).ok_or_else(|| {
                        perr(format!(
                            "the update changes license {id} which the container does not hold"
                        ))
                    })?;
                    *slot = entry.clone();
                }
                Op::Delete { license_id } => {
                    if next.entries.remove(license_id).is_none() {
                        return Err(perr(format!(
                            "the update deletes license {license_id} which the container does not hold"
                        )));
                    }
                }
                Op::Lock => next.locked = true,
                Op::Unlock => next.locked = false,
            }
        }
        *self = next;
        Ok(())
    }
}

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
    /// The nonce of the request this update answers (empty for a pushed update).
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

/// A new random nonce (16 bytes, hex).
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    hex::encode(b)
}
