//! License entries and what an update does to them: the content a container holds of one
//! firm, which the server mirrors and both digest the same way.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::context::to_value;
use super::crypto::{self, SigningKey};
use super::{b64, canonical, perr, sha256_hex, unb64, PResult};

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
    /// A license that must check in: refused offline from this time on, until a contact
    /// with the server renews it. Absent (not null) for a license that need not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_in_until: Option<i64>,
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
    /// Locks every entry of the firm (sent to blacklisted containers). `product_code`: the
    /// firm's lock item, which the vendor's software finds while the lock holds (absent, not
    /// null, when the firm has none).
    Lock {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_code: Option<i64>,
    },
    /// Lifts the lock (the container was taken off the blacklist).
    Unlock,
}

impl<E: AsEntry> Op<E> {
    pub fn license_id(&self) -> Option<i64> {
        match self {
            Op::Add { entry } | Op::Change { entry } => Some(entry.entry().license_id),
            Op::Delete { license_id } => Some(*license_id),
            Op::Lock { .. } | Op::Unlock => None,
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
    /// The product code of the lock item the lock came with (absent when none; not part of
    /// the digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_product: Option<i64>,
}

pub type FirmContent = Content<SignedEntry>;

impl<E> Default for Content<E> {
    fn default() -> Self {
        Content {
            entries: BTreeMap::new(),
            locked: false,
            lock_product: None,
        }
    }
}

impl<E: AsEntry> Content<E> {
    /// SHA-256 over the canonical JSON of the entries (in license id order) and the lock.
    pub fn digest(&self) -> String {
        let entries: Vec<Value> = self.entries.values().map(|e| to_value(e.entry())).collect();
        // Not the lock item: a container of an older version ignores it and must show the
        // same digest (the firm's signature over the update covers it).
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
                Op::Lock { product_code } => {
                    next.locked = true;
                    next.lock_product = *product_code;
                }
                Op::Unlock => {
                    next.locked = false;
                    next.lock_product = None;
                }
            }
        }
        *self = next;
        Ok(())
    }
}
