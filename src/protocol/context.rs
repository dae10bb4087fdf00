//! Requests and receipts: a container's signed context for one firm code, and the machine
//! traits an `act` container is bound to.
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::crypto::{self, SigningKey};
use super::{armour, b64, canonical, dearmour, perr, unb64, Kind, PResult};
use crate::domain::ContainerType;

pub const VERSION: u32 = 1;
/// The serial of a container that has not been given one yet.
pub const NEW_SERIAL: &str = "new";
const MAX_TRAITS: usize = 16;
/// A container trusts every key its firm has had (each rotation adds one): room for many.
const MAX_KNOWN_KEYS: usize = 256;
/// At most this many licenses' unit counts in one context.
const MAX_UNITS_USED: usize = 1000;

/// One machine trait of an `act` container's fingerprint, as a salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Trait {
    pub name: String,
    pub hash: String,
}

/// How many units of a pay-per-use license (an entry with a `unit_counter`) the container
/// has used so far, as its context reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsUsed {
    pub license_id: i64,
    pub used: u64,
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
    /// The units used of each pay-per-use license held, by license id ascending (absent, not
    /// empty, when there are none). The server keeps the highest count each reported: a
    /// lower one later means a copy of the container was restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units_used: Vec<UnitsUsed>,
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
        if self.units_used.len() > MAX_UNITS_USED {
            return Err(perr("too many unit counts"));
        }
        if !self
            .units_used
            .windows(2)
            .all(|w| w[0].license_id < w[1].license_id)
        {
            return Err(perr(
                "unit counts must be by license id, ascending, each once",
            ));
        }
        Ok(())
    }
}

/// Whether `s` is a container serial: 1 to 4 digits, a dash, 1 to 12 digits
/// (`130-1234567890`). Every interface that takes a serial holds it to this rule.
pub fn is_serial(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        (1..=4).contains(&a.len())
            && (1..=12).contains(&b.len())
            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    })
}

fn check_serial(s: &str) -> PResult<()> {
    if s == NEW_SERIAL || is_serial(s) {
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

pub(super) fn from_value<T: DeserializeOwned>(what: &str, v: Value) -> PResult<T> {
    serde_json::from_value(v).map_err(|e| perr(format!("malformed {what}: {e}")))
}

pub(super) fn to_value<T: Serialize>(v: &T) -> Value {
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

/// A new random nonce (16 bytes, hex).
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    hex::encode(b)
}
