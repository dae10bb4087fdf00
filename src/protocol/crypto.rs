//! The protocol's cryptography: Ed25519 signatures through ed25519-dalek (RFC 8032: the same
//! signatures, byte for byte, as any other implementation makes, at about twice OpenSSL 3.0's
//! speed), and through openssl, for updates, X25519 key agreement, HKDF-SHA256 and
//! AES-256-GCM.
use ed25519_dalek::{Signature, Signer as _};
use openssl::derive::Deriver;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use super::{perr, PResult};

/// An Ed25519 signing key (its private half is wiped from memory when dropped).
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", key_id(&self.public()))
    }
}

impl SigningKey {
    pub fn generate() -> SigningKey {
        let mut seed = [0u8; 32];
        openssl::rand::rand_bytes(&mut seed).expect("CSPRNG");
        let key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
        seed.fill(0);
        key
    }
    /// From the 32-byte private key (RFC 8032's seed), as `raw` gives it.
    pub fn from_raw(raw: &[u8]) -> PResult<SigningKey> {
        let seed: &[u8; 32] = raw
            .try_into()
            .map_err(|_| perr("not an Ed25519 private key"))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(seed)))
    }
    pub fn raw(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }
    pub fn public(&self) -> Vec<u8> {
        self.0.verifying_key().to_bytes().to_vec()
    }
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }
}

/// Opened keys kept for the next message of the same key (a firm key on every container; a
/// container key on the server for its request and its receipt): opening one costs a point
/// decompression (Ed25519) or openssl's algorithm lookup under a lock every thread shares
/// (X25519). At most 4096 keys are kept; a full cache starts over.
struct KeyCache<K>(std::sync::Mutex<Option<std::collections::HashMap<Vec<u8>, K>>>);

impl<K: Clone> KeyCache<K> {
    const fn new() -> KeyCache<K> {
        KeyCache(std::sync::Mutex::new(None))
    }

    fn get_or_open(&self, raw: &[u8], open: impl FnOnce(&[u8]) -> Option<K>) -> Option<K> {
        if let Some(key) = self.0.lock().ok()?.as_ref().and_then(|m| m.get(raw)) {
            return Some(key.clone());
        }
        let key = open(raw)?;
        let mut keys = self.0.lock().ok()?;
        let map = keys.get_or_insert_with(std::collections::HashMap::new);
        if map.len() >= 4096 {
            map.clear();
        }
        map.insert(raw.to_vec(), key.clone());
        Some(key)
    }
}

static ED25519_KEYS: KeyCache<ed25519_dalek::VerifyingKey> = KeyCache::new();
static X25519_KEYS: KeyCache<PKey<Public>> = KeyCache::new();

/// Verifies an Ed25519 signature made over `msg` by the raw 32-byte public key. Strict: a
/// signature whose scalar is not reduced, or a public key of small order (with which more
/// than one message verifies), is refused.
pub fn verify(public: &[u8], msg: &[u8], sig: &[u8]) -> PResult<()> {
    let key = ED25519_KEYS
        .get_or_open(public, |raw| {
            ed25519_dalek::VerifyingKey::from_bytes(raw.try_into().ok()?).ok()
        })
        .ok_or_else(|| perr("not an Ed25519 public key"))?;
    let sig = Signature::from_slice(sig).map_err(|_| perr("the signature does not match"))?;
    key.verify_strict(msg, &sig)
        .map_err(|_| perr("the signature does not match"))
}

/// An X25519 key for receiving updates.
#[derive(Clone)]
pub struct AgreementKey(PKey<Private>);

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey({})", key_id(&self.public()))
    }
}

impl AgreementKey {
    pub fn generate() -> AgreementKey {
        AgreementKey(PKey::generate_x25519().expect("openssl X25519 keygen"))
    }
    pub fn from_raw(raw: &[u8]) -> PResult<AgreementKey> {
        PKey::private_key_from_raw_bytes(raw, Id::X25519)
            .map(AgreementKey)
            .map_err(|_| perr("not an X25519 private key"))
    }
    pub fn raw(&self) -> Vec<u8> {
        self.0.raw_private_key().expect("raw private key")
    }
    pub fn public(&self) -> Vec<u8> {
        self.0.raw_public_key().expect("raw public key")
    }
    /// The shared secret with `peer`; `keep` keeps the peer's opened key for the next time
    /// (a container's key, not a one-time key).
    fn agree(&self, peer: &[u8], keep: bool) -> PResult<Vec<u8>> {
        let opened = if keep {
            X25519_KEYS.get_or_open(peer, |raw| {
                PKey::public_key_from_raw_bytes(raw, Id::X25519).ok()
            })
        } else {
            PKey::public_key_from_raw_bytes(peer, Id::X25519).ok()
        };
        let peer = opened.ok_or_else(|| perr("not an X25519 public key"))?;
        let mut d = Deriver::new(&self.0).map_err(|e| perr(e.to_string()))?;
        d.set_peer(&peer)
            .map_err(|_| perr("unusable X25519 public key"))?;
        let shared = d
            .derive_to_vec()
            .map_err(|_| perr("X25519 agreement failed"))?;
        if shared.iter().all(|b| *b == 0) {
            return Err(perr("X25519 agreement gave the all-zero secret"));
        }
        Ok(shared)
    }
}

/// Checks that the raw X25519 public key `raw` can receive updates: a low-order point would
/// make every agreement with it the all-zero secret, so no update could be sealed for it.
/// Checked once per key (an agreement with a key of this process); good keys are remembered,
/// at most 4096, and a full list starts over.
pub fn check_agreement_public(raw: &[u8]) -> PResult<()> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static PROBE: OnceLock<AgreementKey> = OnceLock::new();
    static GOOD: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);
    if GOOD
        .lock()
        .is_ok_and(|g| g.as_ref().is_some_and(|good| good.contains(raw)))
    {
        return Ok(());
    }
    PROBE
        .get_or_init(AgreementKey::generate)
        .agree(raw, false)
        .map_err(|_| perr("enc_key is not a usable X25519 public key (a low-order point)"))?;
    if let Ok(mut g) = GOOD.lock() {
        let good = g.get_or_insert_with(HashSet::new);
        if good.len() >= 4096 {
            good.clear();
        }
        good.insert(raw.to_vec());
    }
    Ok(())
}

/// HMAC-SHA256 (RFC 2104) over openssl's SHA-256; keys here are at most 64 bytes.
fn hmac_sha256(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    use openssl::sha::Sha256;
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&openssl::sha::sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(&block.map(|b| b ^ 0x36));
    for d in data {
        inner.update(d);
    }
    let mut outer = Sha256::new();
    outer.update(&block.map(|b| b ^ 0x5c));
    outer.update(&inner.finish());
    outer.finish()
}

/// HKDF-SHA256 (RFC 5869) for one 32-byte output block.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hmac_sha256(salt, &[ikm]);
    hmac_sha256(&prk, &[info, &[1u8]])
}

const INFO: &[u8] = b"licentia update v1";

/// The sealed form of an update: the sender's one-time X25519 key, the GCM nonce, the
/// ciphertext with its tag appended.
pub struct Sealed {
    pub ephemeral: Vec<u8>,
    pub iv: [u8; 12],
    pub ciphertext: Vec<u8>,
}

fn content_key(shared: &[u8], ephemeral: &[u8], recipient: &[u8]) -> [u8; 32] {
    hkdf_sha256(&[ephemeral, recipient].concat(), shared, INFO)
}

/// Encrypts `plain` for the holder of the X25519 key `recipient`, authenticating `aad`.
/// `ephemeral` and `iv` are fresh for every message (given here so test vectors can fix them).
pub fn seal_with(
    plain: &[u8],
    aad: &[u8],
    recipient: &[u8],
    ephemeral: &AgreementKey,
    iv: [u8; 12],
) -> PResult<Sealed> {
    let shared = ephemeral.agree(recipient, true)?;
    let eph_pub = ephemeral.public();
    let key = content_key(&shared, &eph_pub, recipient);
    let mut tag = [0u8; 16];
    let mut ct = encrypt_aead(Cipher::aes_256_gcm(), &key, Some(&iv), aad, plain, &mut tag)
        .map_err(|e| perr(format!("encryption failed: {e}")))?;
    ct.extend_from_slice(&tag);
    Ok(Sealed {
        ephemeral: eph_pub,
        iv,
        ciphertext: ct,
    })
}

pub fn seal(plain: &[u8], aad: &[u8], recipient: &[u8]) -> PResult<Sealed> {
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut iv).expect("CSPRNG");
    seal_with(plain, aad, recipient, &AgreementKey::generate(), iv)
}

/// Decrypts a sealed message with the recipient's X25519 key; any change to the ciphertext,
/// the nonce, the sender key or `aad` makes it fail.
pub fn open(sealed: &Sealed, aad: &[u8], recipient: &AgreementKey) -> PResult<Vec<u8>> {
    if sealed.ciphertext.len() < 16 {
        return Err(perr("the encrypted part is too short"));
    }
    let shared = recipient.agree(&sealed.ephemeral, false)?;
    let key = content_key(&shared, &sealed.ephemeral, &recipient.public());
    let (ct, tag) = sealed.ciphertext.split_at(sealed.ciphertext.len() - 16);
    decrypt_aead(Cipher::aes_256_gcm(), &key, Some(&sealed.iv), aad, ct, tag).map_err(|_| {
        perr("the update cannot be decrypted by this container (made for another container, or changed)")
    })
}

/// A key id: the first 8 bytes of the SHA-256 of the raw public key, in hex.
pub fn key_id(public: &[u8]) -> String {
    hex::encode(&openssl::sha::sha256(public)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm = hkdf_sha256(&salt, &ikm, &info);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn sealed_opens_only_for_its_recipient_and_unchanged() {
        let me = AgreementKey::generate();
        let other = AgreementKey::generate();
        let s = seal(b"hello", b"aad", &me.public()).expect("seal");
        assert_eq!(open(&s, b"aad", &me).expect("open"), b"hello");
        assert!(open(&s, b"aad", &other).is_err());
        assert!(open(&s, b"other aad", &me).is_err());
        let mut t = Sealed {
            ephemeral: s.ephemeral.clone(),
            iv: s.iv,
            ciphertext: s.ciphertext.clone(),
        };
        t.ciphertext[0] ^= 1;
        assert!(open(&t, b"aad", &me).is_err());
    }

    #[test]
    fn signatures_verify_only_unchanged() {
        let k = SigningKey::generate();
        let sig = k.sign(b"msg");
        verify(&k.public(), b"msg", &sig).expect("verifies");
        assert!(verify(&k.public(), b"msh", &sig).is_err());
        assert!(verify(&SigningKey::generate().public(), b"msg", &sig).is_err());
        assert!(verify(b"short", b"msg", &sig).is_err());
    }
}
