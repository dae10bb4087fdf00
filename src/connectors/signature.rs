//! Shops' signatures: HMACs of the body in a header (hex or base64), Paddle's timestamped
//! one, 2Checkout's HASH field; and 2Checkout's signed read receipt.
use super::definition::{AuthScheme, Shop};
use crate::error::{Error, Result};

pub(crate) fn hmac(md: openssl::hash::MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key).map_err(|e| Error::internal(e.to_string()))?;
    let mut s = openssl::sign::Signer::new(md, &key).map_err(|e| Error::internal(e.to_string()))?;
    s.update(data).map_err(|e| Error::internal(e.to_string()))?;
    s.sign_to_vec().map_err(|e| Error::internal(e.to_string()))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// A form body's fields, in order.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| Error::invalid("body", format!("not a form: {e}")))
}

/// 2Checkout's HMAC source: each value prefixed by its length in bytes, an empty one as 0.
fn length_prefixed<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .map(|v| {
            if v.is_empty() {
                "0".to_string()
            } else {
                format!("{}{v}", v.len())
            }
        })
        .collect()
}

/// Checks that the shop signed the body.
pub fn verify_shop(
    shop: &Shop,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<()> {
    use openssl::hash::MessageDigest;
    let key = shop.auth.secret.as_bytes();
    let wrong = || Error::Unauthenticated;
    match shop.auth.scheme {
        AuthScheme::HmacSha256Base64 => {
            use base64::Engine;
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let want = base64::engine::general_purpose::STANDARD.encode(hmac(
                MessageDigest::sha256(),
                key,
                body,
            )?);
            same(given.trim().as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or_else(wrong)
        }
        AuthScheme::HmacSha256Hex => {
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let want = hex::encode(hmac(MessageDigest::sha256(), key, body)?);
            same(
                given.trim().to_ascii_lowercase().as_bytes(),
                want.as_bytes(),
            )
            .then_some(())
            .ok_or_else(wrong)
        }
        AuthScheme::Paddle => {
            let given = header(&shop.auth.header).ok_or_else(wrong)?;
            let mut ts = None;
            let mut h1 = vec![];
            for part in given.split(';') {
                match part.trim().split_once('=') {
                    Some(("ts", v)) => ts = Some(v.to_string()),
                    Some(("h1", v)) => h1.push(v.to_ascii_lowercase()),
                    _ => {}
                }
            }
            let ts = ts.ok_or_else(wrong)?;
            let at: i64 = ts.parse().map_err(|_| wrong())?;
            let fresh = matches!(now.checked_sub(at), Some(d) if d.abs() <= shop.auth.max_age_secs);
            if !fresh {
                return Err(Error::NotAllowed(format!(
                    "the signature's timestamp {at} is more than {} seconds away from now \
                     (a replayed or delayed notification)",
                    shop.auth.max_age_secs
                )));
            }
            let mut signed = ts.into_bytes();
            signed.push(b':');
            signed.extend_from_slice(body);
            let want = hex::encode(hmac(MessageDigest::sha256(), key, &signed)?);
            h1.iter()
                .any(|h| same(h.as_bytes(), want.as_bytes()))
                .then_some(())
                .ok_or_else(wrong)
        }
        AuthScheme::TwoCheckout => {
            let fields = form_fields(body)?;
            let given = fields
                .iter()
                .find(|(k, _)| k == "HASH")
                .map(|(_, v)| v.to_ascii_lowercase())
                .ok_or_else(wrong)?;
            let source = length_prefixed(
                fields
                    .iter()
                    .filter(|(k, _)| k != "HASH" && !k.starts_with("SIGNATURE_"))
                    .map(|(_, v)| v.as_str()),
            );
            let want = hex::encode(hmac(MessageDigest::md5(), key, source.as_bytes())?);
            same(given.as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or_else(wrong)
        }
    }
}

/// 2Checkout's IPN read receipt: `<EPAYMENT>DATE|HASH</EPAYMENT>`, HASH the HMAC-MD5 of the
/// length-prefixed IPN_PID[0], IPN_PNAME[0], IPN_DATE and DATE.
pub fn twocheckout_receipt(shop: &Shop, body: &[u8], date: &str) -> Result<String> {
    let fields = form_fields(body)?;
    let first = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let source = length_prefixed(
        [
            first("IPN_PID[]"),
            first("IPN_PNAME[]"),
            first("IPN_DATE"),
            date,
        ]
        .into_iter(),
    );
    let hash = hex::encode(hmac(
        openssl::hash::MessageDigest::md5(),
        shop.auth.secret.as_bytes(),
        source.as_bytes(),
    )?);
    Ok(format!("<EPAYMENT>{date}|{hash}</EPAYMENT>"))
}
