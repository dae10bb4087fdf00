//! Vendor users (admin, sales, support, erp) and their credentials.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use super::Core;
use crate::domain::{check_id, check_len, Actor, Interface, Role};
use crate::error::{Error, Result};
use crate::store::nonces;
use crate::store::users::{self as store, UserRow};

/// Verified credentials, remembered for a while so that argon2 runs once per user and
/// password, not once per request. Keys are SHA-256 over a per-process random salt, the user
/// name and the password: the cache never holds a password. Any change to a user clears it.
pub struct CredentialCache {
    ttl: Duration,
    salt: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], (Instant, String, Role)>>,
    /// Argon2 takes 19 MiB and tens of milliseconds per verification: at most two run at
    /// once, so a burst of first requests (or of wrong passwords) cannot exhaust memory.
    verifying: tokio::sync::Semaphore,
}

impl CredentialCache {
    pub fn new(ttl_secs: u64) -> CredentialCache {
        let mut salt = [0u8; 32];
        openssl::rand::rand_bytes(&mut salt).expect("openssl CSPRNG");
        CredentialCache {
            ttl: Duration::from_secs(ttl_secs),
            salt,
            entries: Mutex::new(HashMap::new()),
            verifying: tokio::sync::Semaphore::new(2),
        }
    }

    fn key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = openssl::sha::Sha256::new();
        h.update(&self.salt);
        h.update(username.as_bytes());
        h.update(&[0]);
        h.update(password.as_bytes());
        h.finish()
    }

    fn get(&self, key: &[u8; 32]) -> Option<(String, Role)> {
        let map = self.entries.lock().expect("credential cache");
        map.get(key)
            .filter(|(t, _, _)| t.elapsed() < self.ttl)
            .map(|(_, u, r)| (u.clone(), *r))
    }

    fn put(&self, key: [u8; 32], username: String, role: Role) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.entries.lock().expect("credential cache");
        if map.len() >= 10_000 {
            map.retain(|_, (t, _, _)| t.elapsed() < self.ttl);
        }
        map.insert(key, (Instant::now(), username, role));
    }

    pub fn clear(&self) {
        self.entries.lock().expect("credential cache").clear();
    }
}

/// A user as the JSON and SOAP services show it (never its password hash or sealed
/// password).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub active: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            username: r.username,
            role: r.role,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn seal_password(core: &Core, username: &str, password: &str) -> Result<String> {
    core.master
        .seal(password.as_bytes(), format!("user:{username}").as_bytes())
}

/// The password of `username` for checking a WS-Security PasswordDigest; `None` if the user
/// is unknown or its password was set before the server kept it sealed.
async fn digest_password(core: &Core, username: &str) -> Result<Option<String>> {
    let name = username.to_string();
    let sealed: Option<String> = core
        .db
        .read(move |c| store::digest_secret_of_active(c, &name))
        .await?;
    match sealed.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let raw = core
                .master
                .open(&s, format!("user:{username}").as_bytes())?;
            Ok(Some(
                String::from_utf8(raw).map_err(|e| Error::internal(e.to_string()))?,
            ))
        }
    }
}

/// Checks a user name and password; returns the actor they stand for.
pub async fn authenticate(
    core: &Core,
    username: &str,
    password: &str,
    interface: Interface,
) -> Result<Actor> {
    let key = core.credentials.key(username, password);
    if let Some((name, role)) = core.credentials.get(&key) {
        return Ok(Actor {
            name,
            role,
            interface,
        });
    }
    if username.chars().count() > 64 || password.len() > 1024 {
        return Err(Error::Unauthenticated);
    }
    let _permit = core
        .credentials
        .verifying
        .acquire()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    // Requests that waited for the permit find the verification of the first in the cache.
    if let Some((name, role)) = core.credentials.get(&key) {
        return Ok(Actor {
            name,
            role,
            interface,
        });
    }
    let actor = verify_stored(core, username, password, interface).await?;
    core.credentials.put(key, actor.name.clone(), actor.role);
    Ok(actor)
}

/// Checks a user name and password against the database, never against the cache of
/// verified credentials: for a login that opens a session (a password changed on another
/// node must not open one there while that node still remembers the old one).
pub async fn authenticate_uncached(
    core: &Core,
    username: &str,
    password: &str,
    interface: Interface,
) -> Result<Actor> {
    if username.chars().count() > 64 || password.len() > 1024 {
        return Err(Error::Unauthenticated);
    }
    let _permit = core
        .credentials
        .verifying
        .acquire()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    verify_stored(core, username, password, interface).await
}

/// The user's stored hash checked with argon2 (the caller holds a permit).
async fn verify_stored(
    core: &Core,
    username: &str,
    password: &str,
    interface: Interface,
) -> Result<Actor> {
    let name = username.to_string();
    let user = core.db.read(move |c| store::by_name(c, &name)).await?;
    let Some(user) = user.filter(|u| u.active) else {
        return Err(Error::Unauthenticated);
    };
    let pw = password.to_string();
    let stored = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .is_ok_and(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))?;
    if !ok {
        return Err(Error::Unauthenticated);
    }
    Ok(Actor {
        name: user.username,
        role: user.role,
        interface,
    })
}

/// Checks a WS-Security UsernameToken's PasswordDigest, Base64(SHA-1(nonce + created +
/// password)), with the password kept sealed under the master key for this purpose, and
/// returns the actor the user stands for. `nonce` is the token's nonce decoded from base64,
/// `created` its Created as sent. Whether the nonce is fresh and Created recent is the
/// caller's to check (they are the token's, not the user's).
pub async fn authenticate_digest(
    core: &Core,
    username: &str,
    digest: &str,
    nonce: &[u8],
    created: &str,
    interface: Interface,
) -> Result<Actor> {
    let Some(password) = digest_password(core, username).await? else {
        return Err(Error::Unauthenticated);
    };
    let mut data = nonce.to_vec();
    data.extend_from_slice(created.as_bytes());
    data.extend_from_slice(password.as_bytes());
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha1(&data));
    let given = digest.as_bytes();
    if given.len() == want.len() && openssl::memcmp::eq(given, want.as_bytes()) {
        // The same check as a password then: an inactive user or a changed role counts.
        authenticate(core, username, &password, interface).await
    } else {
        Err(Error::Unauthenticated)
    }
}

pub fn hash_password(password: &str) -> Result<String> {
    if password.len() < 12 || password.len() > 1024 {
        return Err(Error::invalid("password", "between 12 and 1024 bytes"));
    }
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// A random password of 20 characters for users made by the CLI or the demo.
pub fn generate_password() -> String {
    crate::domain::ticket::TicketCode::generate().as_stored()[..20].to_lowercase()
}

#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// Customers are never vendor users: they are known by a ticket or a container.
fn vendor_role(role: Role) -> Result<Role> {
    match role {
        Role::Customer => Err(Error::invalid(
            "role",
            "customer is not a vendor user's role: use admin, sales, support, erp or production",
        )),
        role => Ok(role),
    }
}

pub async fn add_user(core: &Core, actor: &Actor, req: NewUser) -> Result<User> {
    actor.require(&[Role::Admin], "manage users")?;
    check_id("username", &req.username)?;
    vendor_role(req.role)?;
    let hash = {
        let pw = req.password.clone();
        tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(|e| Error::internal(e.to_string()))??
    };
    let sealed = seal_password(core, &req.username, &req.password)?;
    let actor = actor.clone();
    let user = core
        .db
        .write(move |c| {
            let new = store::NewUser {
                username: &req.username,
                password_hash: &hash,
                role: req.role,
                digest_secret: &sealed,
            };
            let Some(user) = store::insert(c, &new, super::now())? else {
                return Err(Error::AlreadyExists {
                    kind: "user",
                    id: req.username.clone(),
                });
            };
            audit::record(
                &actor,
                Event {
                    action: "user.created",
                    details: serde_json::json!({"username": user.username, "role": user.role}),
                    ..Default::default()
                },
            )?;
            Ok(User::from(user))
        })
        .await?;
    core.credentials.clear();
    Ok(user)
}

#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub password: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

pub async fn change_user(
    core: &Core,
    actor: &Actor,
    username: String,
    req: UserChange,
) -> Result<User> {
    actor.require(&[Role::Admin], "manage users")?;
    req.role.map(vendor_role).transpose()?;
    let hash = match req.password.clone() {
        Some(pw) => Some(
            tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| Error::internal(e.to_string()))??,
        ),
        None => None,
    };
    let sealed = match &req.password {
        Some(pw) => Some(seal_password(core, &username, pw)?),
        None => None,
    };
    let actor = actor.clone();
    let user = core
        .db
        .write(move |c| {
            let user = store::by_name(c, &username)?
                .ok_or_else(|| Error::not_found("user", &username))?;
            let set = store::Change {
                password: hash.as_deref().zip(sealed.as_deref()),
                role: req.role,
                active: req.active,
            };
            store::change(c, user.id, &set, super::now())?;
            // A new password or a deactivation ends the user's back office sessions (a
            // changed role holds at their next request anyway).
            if hash.is_some() || req.active == Some(false) {
                crate::store::admin::delete_sessions_of(c, user.id)?;
            }
            audit::record(&actor, Event {
                action: "user.changed",
                details: serde_json::json!({"username": username, "password_changed": hash.is_some(),
                    "role": req.role, "active": req.active}),
                ..Default::default()
            })?;
            Ok(User::from(store::get(c, user.id)?))
        })
        .await?;
    core.credentials.clear();
    Ok(user)
}

pub async fn list_users(core: &Core, actor: &Actor) -> Result<Vec<User>> {
    actor.require(&[Role::Admin], "manage users")?;
    core.db
        .read(|c| Ok(store::all(c)?.into_iter().map(User::from).collect()))
        .await
}

pub async fn user_exists(core: &Core, username: &str) -> Result<bool> {
    check_len("username", username, 64)?;
    let name = username.to_string();
    core.db.read(move |c| store::exists(c, &name)).await
}

/// Remembers a WS-Security nonce; one seen before is a replayed request.
pub async fn remember_nonce(core: &Core, nonce: String) -> Result<()> {
    core.db
        .write(move |c| {
            if nonces::remember(c, &nonce, super::now())? {
                Ok(())
            } else {
                Err(Error::NotAllowed(
                    "the token's nonce was used before (a replayed request)".into(),
                ))
            }
        })
        .await
}
