//! Firm codes and their Ed25519 signing keys. A private key is kept sealed (AES-256-GCM) under
//! the master key and is opened only when something must be signed.
use std::io::Write;

use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use super::audit::{self, Event};
use crate::config::Config;
use crate::domain::{Actor, Interface, Role};
use crate::error::{Error, Result};
use crate::protocol::crypto::SigningKey;
use crate::protocol::Endorsement;
use crate::store::firms::{self as store, NewKey};
use crate::store::{Conn, Db};

pub use crate::store::firms::Firm;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The key that seals the firms' private keys. From `master_key` in the configuration, or
/// else from `<data_dir>/master.key`, made on first start with mode 0600.
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn load(config: &Config) -> Result<MasterKey> {
        let hex_key = if !config.master_key.0.is_empty() {
            config.master_key.0.clone()
        } else {
            let path = config.data_dir.join("master.key");
            match std::fs::read_to_string(&path) {
                Ok(s) => s.trim().to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = hex::encode(random::<32>());
                    std::fs::create_dir_all(&config.data_dir)
                        .map_err(|e| Error::internal(format!("cannot create data_dir: {e}")))?;
                    write_private(&path, &key)?;
                    key
                }
                Err(e) => {
                    return Err(Error::internal(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        let bytes = hex::decode(&hex_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| Error::invalid("master_key", "must be 64 hex characters"))?;
        Ok(MasterKey(bytes))
    }

    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<String> {
        let iv = random::<12>();
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(&iv),
            aad,
            plain,
            &mut tag,
        )
        .map_err(|e| Error::internal(format!("seal: {e}")))?;
        Ok(format!("v1:{}", B64.encode([&iv[..], &ct, &tag].concat())))
    }

    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|b| B64.decode(b).ok())
            .filter(|r| r.len() > 28)
            .ok_or_else(|| Error::internal("sealed key is malformed"))?;
        let (iv, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(Cipher::aes_256_gcm(), &self.0, Some(iv), aad, ct, tag)
            .map_err(|_| Error::internal("cannot open a firm key: wrong master key?"))
    }
}

pub(crate) fn write_private(path: &std::path::Path, content: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(content.as_bytes())
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).expect("openssl CSPRNG");
    b
}

/// The firm with code `code`, made with a new signing key if there is none (a second vendor
/// on the same server); admins only.
pub async fn ensure(core: &super::Core, actor: &Actor, code: i64, name: &str) -> Result<Firm> {
    actor.require(&[Role::Admin], "add firm codes")?;
    ensure_firm(&core.db, &core.master, code, name).await
}

/// Finds the firm with `code`, or makes it with a fresh key pair (at start, for the
/// configured firm).
pub(super) async fn ensure_firm(
    db: &Db,
    master: &MasterKey,
    code: i64,
    name: &str,
) -> Result<Firm> {
    if let Some(f) = db.read(move |c| store::find(c, code)).await? {
        return Ok(f);
    }
    let key = SigningKey::generate();
    let (public, private) = (key.public(), key.raw());
    let key_id = hex::encode(&openssl::sha::sha256(&public)[..8]);
    let sealed = master.seal(&private, format!("firm:{code}").as_bytes())?;
    let public_b64 = B64.encode(&public);
    let name = name.to_string();
    db.write(move |c| {
        if let Some(f) = store::find(c, code)? {
            return Ok(f);
        }
        let key = NewKey {
            key_id: &key_id,
            public_key: &public_b64,
            private_key_sealed: &sealed,
        };
        store::insert(c, code, &name, &key, super::now())?;
        audit::record(
            &Actor::system(Interface::System),
            Event {
                action: "firm.created",
                details: serde_json::json!({"firm_code": code, "key_id": key_id}),
                ..Default::default()
            },
        )?;
        store::find(c, code)?.ok_or_else(|| Error::internal("firm vanished"))
    })
    .await
}

pub async fn find_by_code(db: &Db, code: i64) -> Result<Firm> {
    db.read(move |c| store::find(c, code)?.ok_or_else(|| Error::not_found("firm", code)))
        .await
}

/// A firm's current signing key, opened, with the endorsements that lead to it from every
/// older key (oldest first), so containers that trust an older key can follow.
pub struct FirmSigner {
    pub firm_id: i64,
    pub firm_code: i64,
    pub key_id: String,
    pub key: SigningKey,
    pub chain: Vec<Endorsement>,
    /// Every key id of the firm with its raw public key, oldest first.
    pub public_keys: Vec<(String, Vec<u8>)>,
}

impl FirmSigner {
    /// The endorsements a container that trusts `known` key ids needs to trust the current key.
    pub fn endorsements_for(&self, known: &[String]) -> Vec<Endorsement> {
        let mut start = 0;
        for (i, e) in self.chain.iter().enumerate() {
            if known.contains(&e.key_id) {
                start = i + 1;
            }
        }
        self.chain[start..].to_vec()
    }
}

/// Opens the firm's current key; the result is cached per key id by the caller.
pub fn load_signer(c: &mut Conn, master: &MasterKey, firm_id: i64) -> Result<FirmSigner> {
    let firm_code = store::code_of(c, firm_id)?;
    let rows = store::keys_oldest_first(c, firm_id)?;
    let current = rows
        .last()
        .ok_or_else(|| Error::internal(format!("firm {firm_code} has no key")))?;
    let key_id = current.key_id.clone();
    let raw = master.open(
        &current.private_key_sealed,
        format!("firm:{firm_code}").as_bytes(),
    )?;
    let key = SigningKey::from_raw(&raw).map_err(|e| Error::internal(e.0))?;
    let mut chain = vec![];
    let mut public_keys = vec![];
    for store::KeyRow {
        key_id: id,
        public_key: public,
        endorsement,
        ..
    } in rows
    {
        if !endorsement.is_empty() {
            chain.push(
                serde_json::from_str(&endorsement)
                    .map_err(|e| Error::internal(format!("endorsement of {id}: {e}")))?,
            );
        }
        let raw = B64
            .decode(&public)
            .map_err(|e| Error::internal(format!("public key {id}: {e}")))?;
        public_keys.push((id, raw));
    }
    Ok(FirmSigner {
        firm_id,
        firm_code,
        key_id,
        key,
        chain,
        public_keys,
    })
}

/// Gives a firm a new signing key, endorsed by the current one. Containers in the field
/// learn it from the endorsement in their next update; licenses signed with the old key
/// stay valid (containers keep every key they trusted).
pub async fn rotate_key(core: &super::Core, actor: &Actor, code: i64) -> Result<String> {
    actor.require(&[crate::domain::Role::Admin], "rotate firm keys")?;
    let firm = find_by_code(&core.db, code).await?;
    let (master, actor) = (core.master.clone(), actor.clone());
    core.db
        .write(move |c| {
            let current = load_signer(c, &master, firm.id)?;
            let new = SigningKey::generate();
            let public = new.public();
            let endorsement = Endorsement::make(code, &public, &current.key);
            let sealed = master.seal(&new.raw(), format!("firm:{code}").as_bytes())?;
            let public_b64 = B64.encode(&public);
            let key = NewKey {
                key_id: &endorsement.key_id,
                public_key: &public_b64,
                private_key_sealed: &sealed,
            };
            let signed = serde_json::to_string(&endorsement).expect("endorsement");
            store::add_key(c, firm.id, &key, &signed, super::now())?;
            store::set_current_key(c, firm.id, &key)?;
            audit::record(
                &actor,
                Event {
                    action: "firm.key_rotated",
                    details: serde_json::json!({"firm_code": code, "old_key_id": current.key_id,
                        "new_key_id": endorsement.key_id}),
                    ..Default::default()
                },
            )?;
            Ok(endorsement.key_id.clone())
        })
        .await
}
