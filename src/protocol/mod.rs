//! The container protocol: request (a container's signed context), update (signed by the
//! firm, encrypted for one container) and receipt (the signed context after applying).
//!
//! Every message is canonical JSON (keys sorted, no spaces, integers only), signed with
//! Ed25519 and armoured as text: a header line naming the kind, base64 lines, a footer line.
//! Parsing never panics on arbitrary input and refuses anything over `MAX_MESSAGE` bytes.
pub mod cloud;
mod content;
mod context;
pub mod crypto;
mod update;
pub mod wire;

pub use content::*;
pub use context::*;
pub use update::*;
pub use wire::*;

use base64::Engine;
use serde_json::Value;

/// The largest armoured message accepted, in bytes.
pub const MAX_MESSAGE: usize = 512 * 1024;
/// How deep JSON may nest inside a message.
const MAX_DEPTH: usize = 16;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a message was refused. The text says what was wrong, for the person reading it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

pub(crate) fn perr(msg: impl Into<String>) -> ProtocolError {
    ProtocolError(msg.into())
}

pub type PResult<T> = std::result::Result<T, ProtocolError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Update,
    Receipt,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Update => "update",
            Kind::Receipt => "receipt",
        }
    }
    fn header(self) -> &'static str {
        match self {
            Kind::Request => "LICENTIA REQUEST",
            Kind::Update => "LICENTIA UPDATE",
            Kind::Receipt => "LICENTIA RECEIPT",
        }
    }
    fn from_header(h: &str) -> Option<Kind> {
        [Kind::Request, Kind::Update, Kind::Receipt]
            .into_iter()
            .find(|k| k.header() == h)
    }
}

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings escaped
/// as serde_json does, numbers only as integers. The same value always gives the same bytes.
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(k).expect("string"));
                out.push(b':');
                write_canonical(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend(serde_json::to_vec(other).expect("scalar")),
    }
}

/// Checks that a parsed value is within the depth limit and holds no fractional numbers.
fn check_value(v: &Value, depth: usize) -> PResult<()> {
    if depth > MAX_DEPTH {
        return Err(perr("message nests too deep"));
    }
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            Err(perr("message holds a non-integer number"))
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_value(x, depth + 1)),
        Value::Object(m) => m.values().try_for_each(|x| check_value(x, depth + 1)),
        _ => Ok(()),
    }
}

/// Wraps canonical JSON for travel: `-----BEGIN LICENTIA UPDATE-----`, base64 in lines of 64,
/// `-----END LICENTIA UPDATE-----`.
pub fn armour(kind: Kind, json: &[u8]) -> String {
    let body = B64.encode(json);
    let mut s = format!("-----BEGIN {}-----\n", kind.header());
    for chunk in body.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {}-----\n", kind.header()));
    s
}

/// Unwraps an armoured message into its kind and its JSON value. Accepts surrounding
/// whitespace and CRLF line ends; refuses everything else.
pub fn dearmour(text: &str) -> PResult<(Kind, Value)> {
    if text.len() > MAX_MESSAGE {
        return Err(perr(format!(
            "message is {} bytes, more than the {MAX_MESSAGE} allowed",
            text.len()
        )));
    }
    let mut lines = text.trim().lines().map(str::trim);
    let first = lines.next().unwrap_or("");
    let kind = first
        .strip_prefix("-----BEGIN ")
        .and_then(|r| r.strip_suffix("-----"))
        .and_then(Kind::from_header)
        .ok_or_else(|| {
            perr("not a Licentia message: the first line must be -----BEGIN LICENTIA REQUEST|UPDATE|RECEIPT-----")
        })?;
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(perr("text after the end line"));
        }
        if line == format!("-----END {}-----", kind.header()) {
            ended = true;
        } else {
            body.push_str(line);
        }
    }
    if !ended {
        return Err(perr(format!(
            "the message has no end line (-----END {}-----)",
            kind.header()
        )));
    }
    let raw = B64
        .decode(body.as_bytes())
        .map_err(|e| perr(format!("the message body is not base64: {e}")))?;
    let value: Value =
        serde_json::from_slice(&raw).map_err(|e| perr(format!("the message is not JSON: {e}")))?;
    check_value(&value, 0)?;
    let inner = value.get("kind").and_then(Value::as_str);
    if inner != Some(kind.as_str()) {
        return Err(perr(format!(
            "the header says {} but the message says {}",
            kind.as_str(),
            inner.unwrap_or("nothing")
        )));
    }
    Ok((kind, value))
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub(crate) fn unb64(field: &str, s: &str) -> PResult<Vec<u8>> {
    B64.decode(s)
        .map_err(|_| perr(format!("{field} is not base64")))
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(data))
}

/// The salt an `act` container hashes its machine traits with, derived from its signing
/// public key (base64): the server can hand it out, so that a new container on the same
/// computer can show it is the same machine (restore) without any raw trait leaving it.
pub fn fingerprint_salt(sign_key_b64: &str) -> String {
    let h = openssl::sha::sha256(format!("licentia-salt-v1\0{sign_key_b64}").as_bytes());
    hex::encode(&h[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_and_drops_spaces() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": 1, "a": "x"}], "a": true }"#).expect("json");
        assert_eq!(
            canonical(&v),
            br#"{"a":true,"b":[1,{"a":"x","z":1}]}"#.to_vec()
        );
    }

    #[test]
    fn dearmour_refuses_what_is_not_a_message() {
        for (text, says) in [
            ("", "first line"),
            ("-----BEGIN LICENTIA REQUEST-----\nAAAA\n", "no end line"),
            (
                "-----BEGIN LICENTIA REQUEST-----\n!!!\n-----END LICENTIA REQUEST-----",
                "not base64",
            ),
            (
                "-----BEGIN LICENTIA REQUEST-----\neyJraW5kIjoidXBkYXRlIn0=\n-----END LICENTIA REQUEST-----",
                "header says request",
            ),
            (
                "-----BEGIN LICENTIA REQUEST-----\neyJraW5kIjoicmVxdWVzdCIsIngiOjEuNX0=\n-----END LICENTIA REQUEST-----",
                "non-integer",
            ),
        ] {
            let e = dearmour(text).expect_err(text);
            assert!(e.0.contains(says), "{text:?}: {e}");
        }
        let big = "A".repeat(MAX_MESSAGE + 1);
        assert!(dearmour(&big).expect_err("big").0.contains("more than"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        let deep = format!(r#"{{"kind":"request","x":{deep}}}"#);
        let e = dearmour(&armour(Kind::Request, deep.as_bytes())).expect_err("deep");
        assert!(e.0.contains("too deep"), "{e}");
    }
}
