//! The container runtime: what a vendor builds into its software. It creates containers,
//! writes requests, verifies and applies updates, writes receipts and checks licenses with
//! no server. `online` drives the round trips against a server's JSON gateway.
#[cfg(feature = "server")]
pub mod cli;
pub mod cloud;
pub mod local;
pub mod online;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::ContainerType;
use crate::protocol::crypto::{self, AgreementKey, SigningKey};
use crate::protocol::{self, Context, FirmContent, Trait, NEW_SERIAL};

/// How far the clock may stand behind the last time the container saw before a check
/// refuses (clocks drift; a set-back clock is refused).
pub const CLOCK_SLACK_SECS: i64 = 600;
const FILE: &str = "container.json";

/// An error of the runtime or of the server, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ClientError {
    pub code: String,
    pub message: String,
    /// An update the server sent with its refusal (the lock for a blacklisted container):
    /// the container applies it before anything else.
    pub update: Option<String>,
}

pub type CResult<T> = std::result::Result<T, ClientError>;

pub fn cerr(code: &str, message: impl Into<String>) -> ClientError {
    ClientError {
        code: code.into(),
        message: message.into(),
        update: None,
    }
}

impl From<protocol::ProtocolError> for ClientError {
    fn from(e: protocol::ProtocolError) -> Self {
        cerr("invalid_message", e.0)
    }
}

/// What a container holds of one firm code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmState {
    pub firm_name: String,
    pub counter: u64,
    /// Trusted firm keys: key id → base64 Ed25519 public key.
    pub keys: BTreeMap<String, String>,
    pub content: FirmContent,
    /// The last update applied (a receipt names it).
    pub last_update: Option<i64>,
    /// When each license was first used (for usage periods), seconds since the epoch.
    #[serde(default)]
    pub first_use: BTreeMap<i64, i64>,
    /// Units used of each pay-per-use license (`use_units`); every context reports them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units_used: BTreeMap<i64, u64>,
}

/// A container, as kept in `<dir>/container.json` (mode 0600: it holds private keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub v: u32,
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: ContainerType,
    sign_key: String,
    enc_key: String,
    /// Salted hashes of the machine traits an `act` container is bound to.
    pub fingerprint: Vec<Trait>,
    fingerprint_salt: String,
    /// How many traits may change before the container is no longer valid here.
    pub tolerance: u32,
    pub firms: BTreeMap<i64, FirmState>,
    /// The latest time the container has seen (requests, updates, checks).
    pub last_seen: i64,
    /// The keys above, opened once (opening derives the public key: not free).
    #[serde(skip)]
    opened: std::sync::OnceLock<OpenedKeys>,
}

#[derive(Debug, Clone)]
struct OpenedKeys {
    sign: SigningKey,
    sign_public: Vec<u8>,
    enc: AgreementKey,
    enc_public: Vec<u8>,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> CResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| {
            cerr(
                "corrupt_container",
                "a key in the container file is not base64",
            )
        })
}

pub fn hash_trait(salt: &str, name: &str, value: &str) -> String {
    hex::encode(openssl::sha::sha256(
        format!("licentia-trait-v1\0{salt}\0{name}\0{value}").as_bytes(),
    ))
}

/// A computer's traits hashed with a container's salt: what a restore shows the server
/// (`GET /containers/{serial}/salt` gives the old container's salt), never the values.
pub fn hashed_traits(salt: &str, traits: &[(String, String)]) -> Vec<Trait> {
    traits
        .iter()
        .map(|(n, v)| Trait {
            name: n.clone(),
            hash: hash_trait(salt, n, v),
        })
        .collect()
}

/// The traits of this machine an `act` container binds to: machine id, host name, MAC
/// addresses, CPU model and the root file system's device. A missing trait is empty.
pub fn machine_traits() -> Vec<(String, String)> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let mut macs: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name() != "lo")
                .map(|e| read(&format!("{}/address", e.path().display())))
                .filter(|m| !m.is_empty() && m != "00:00:00:00:00:00")
                .collect()
        })
        .unwrap_or_default();
    macs.sort();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let disk = read("/proc/self/mounts")
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mnt) = (f.next()?, f.next()?);
            (mnt == "/").then(|| dev.to_string())
        })
        .unwrap_or_default();
    let machine_id = match read("/etc/machine-id") {
        s if s.is_empty() => read("/var/lib/dbus/machine-id"),
        s => s,
    };
    vec![
        ("machine_id".into(), machine_id),
        ("hostname".into(), read("/proc/sys/kernel/hostname")),
        ("mac".into(), macs.join(",")),
        ("cpu".into(), cpu),
        ("disk".into(), disk),
    ]
}

/// The outcome of a license check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOk {
    pub serial: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub license_ids: Vec<i64>,
    pub feature_map: u32,
    /// 0 = local single user, otherwise the sum of floating users.
    pub quantity: u32,
    /// When the licenses found end (unix seconds): the latest end among them; none when one
    /// of them does not end.
    pub expires_at: Option<i64>,
    /// The latest end of maintenance among the licenses found (unix seconds); none when one
    /// of them has no maintenance period.
    pub maintenance_ends: Option<i64>,
    /// By when the container must contact the license server (unix seconds): the latest
    /// check-in deadline among the licenses found; none when one of them need not check in.
    pub check_in_by: Option<i64>,
    /// Units left of the pay-per-use licenses found (their `unit_counter` less what
    /// `use_units` counted); none when one of them is not counted.
    pub units_left: Option<u64>,
    /// What was found is the firm's lock item: the vendor blacklisted this container and
    /// its licenses of the firm are locked (no license is found while the lock holds).
    pub lock: bool,
}

/// What applying an update did.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub serial: String,
    pub firm_code: i64,
    pub update_id: i64,
    pub counter: u64,
    /// The receipt to send back to the server.
    pub receipt: String,
}

impl Container {
    /// A new container with fresh keys. An `act` container binds to `traits`; a dongle
    /// brings its serial (made here if not given).
    pub fn create(
        kind: ContainerType,
        serial: Option<String>,
        traits: &[(String, String)],
        tolerance: u32,
    ) -> CResult<Container> {
        let serial = match (kind, serial) {
            (ContainerType::Act, None) => NEW_SERIAL.to_string(),
            (ContainerType::Act, Some(_)) => {
                return Err(cerr(
                    "invalid_input",
                    "an act container gets its serial from the server",
                ))
            }
            (ContainerType::Dongle, Some(s)) => s,
            (ContainerType::Dongle, None) => {
                let mut b = [0u8; 4];
                openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
                format!("3-{}", u32::from_le_bytes(b) % 9_000_000 + 1_000_000)
            }
            (ContainerType::Cloud, _) => {
                return Err(cerr(
                    "invalid_input",
                    "cloud containers are kept on the server; create act or dongle containers",
                ))
            }
        };
        let signing = SigningKey::generate();
        let sign_key = b64(&signing.raw());
        // From the public key the server knows, so a restore can be checked against it.
        let salt = protocol::fingerprint_salt(&b64(&signing.public()));
        let fingerprint = if kind == ContainerType::Act {
            traits
                .iter()
                .map(|(n, v)| Trait {
                    name: n.clone(),
                    hash: hash_trait(&salt, n, v),
                })
                .collect()
        } else {
            vec![]
        };
        let c = Container {
            v: 1,
            serial,
            kind,
            sign_key,
            enc_key: b64(&AgreementKey::generate().raw()),
            fingerprint,
            fingerprint_salt: salt,
            tolerance,
            firms: BTreeMap::new(),
            last_seen: 0,
            opened: Default::default(),
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> CResult<()> {
        self.keys()?;
        if self.kind == ContainerType::Act && self.fingerprint.len() < 3 {
            return Err(cerr(
                "invalid_input",
                "an act container needs at least 3 machine traits",
            ));
        }
        Ok(())
    }

    fn keys(&self) -> CResult<&OpenedKeys> {
        if let Some(k) = self.opened.get() {
            return Ok(k);
        }
        let sign = SigningKey::from_raw(&unb64(&self.sign_key)?)
            .map_err(|_| cerr("corrupt_container", "the signing key is damaged"))?;
        let enc = AgreementKey::from_raw(&unb64(&self.enc_key)?)
            .map_err(|_| cerr("corrupt_container", "the encryption key is damaged"))?;
        Ok(self.opened.get_or_init(|| OpenedKeys {
            sign_public: sign.public(),
            enc_public: enc.public(),
            sign,
            enc,
        }))
    }

    /// The key id of the container's signing key.
    pub fn key_id(&self) -> String {
        self.keys()
            .map(|k| crypto::key_id(&k.sign_public))
            .unwrap_or_default()
    }

    /// Trusts a firm by its license template: its keys, and for an `act` container the firm's
    /// fingerprint tolerance when it is stricter than the container's own.
    pub fn trust_template(&mut self, t: &protocol::Template) {
        self.trust(t.firm_code, &t.firm_name, &t.keys);
        if self.kind == ContainerType::Act {
            self.tolerance = self.tolerance.min(t.fingerprint_tolerance);
        }
    }

    /// Trusts a firm's keys (from its license template).
    pub fn trust(&mut self, firm_code: i64, firm_name: &str, keys: &BTreeMap<String, String>) {
        let f = self.firms.entry(firm_code).or_default();
        f.firm_name = firm_name.to_string();
        for (id, k) in keys {
            f.keys.insert(id.clone(), k.clone());
        }
    }

    fn seen(&mut self, now: i64) {
        self.last_seen = self.last_seen.max(now);
    }

    fn context(
        &self,
        kind: &str,
        firm_code: i64,
        update_id: Option<i64>,
        now: i64,
    ) -> CResult<String> {
        let empty = FirmState::default();
        let f = self.firms.get(&firm_code).unwrap_or(&empty);
        let keys = self.keys()?;
        let ctx = Context {
            kind: kind.into(),
            v: protocol::VERSION,
            serial: self.serial.clone(),
            container_type: self.kind,
            firm_code,
            counter: f.counter,
            digest: f.content.digest(),
            sign_key: b64(&keys.sign_public),
            enc_key: b64(&keys.enc_public),
            fingerprint: self.fingerprint.clone(),
            known_keys: f.keys.keys().cloned().collect(),
            nonce: protocol::nonce(),
            created_at: now,
            update_id,
            // Of the licenses still held (a returned one's count goes with it).
            units_used: f
                .units_used
                .iter()
                .filter(|(id, _)| f.content.entries.contains_key(id))
                .map(|(id, used)| protocol::UnitsUsed {
                    license_id: *id,
                    used: *used,
                })
                .collect(),
        };
        Ok(protocol::write_context(&ctx, &keys.sign))
    }

    /// The signed request (context) for one firm code.
    pub fn request(&mut self, firm_code: i64, now: i64) -> CResult<String> {
        self.seen(now);
        self.context("request", firm_code, None, now)
    }

    /// The receipt for the last update applied for a firm code.
    pub fn receipt(&self, firm_code: i64, now: i64) -> CResult<String> {
        let f = self.firms.get(&firm_code).ok_or_else(|| {
            cerr(
                "not_found",
                format!("no update of firm {firm_code} was applied"),
            )
        })?;
        let id = f.last_update.ok_or_else(|| {
            cerr(
                "not_found",
                format!("no update of firm {firm_code} was applied"),
            )
        })?;
        self.context("receipt", firm_code, Some(id), now)
    }

    /// Verifies and applies an update; returns the receipt. Refuses an update for another
    /// container, one already applied or made for another counter, an expired one, and any
    /// that was changed or not signed by a firm key the container trusts.
    pub fn apply(&mut self, update: &str, now: i64) -> CResult<Applied> {
        let header = protocol::read_update_header(update)?;
        if self.serial != NEW_SERIAL && header.serial != self.serial {
            return Err(cerr(
                "wrong_container",
                format!(
                    "the update is for container {}, this is {}",
                    header.serial, self.serial
                ),
            ));
        }
        let firm = self.firms.get(&header.firm_code).cloned().ok_or_else(|| {
            cerr(
                "untrusted_firm",
                format!(
                    "this container does not trust firm code {}; import its license template first",
                    header.firm_code
                ),
            )
        })?;
        if header.counter != firm.counter {
            return Err(cerr(
                "wrong_counter",
                format!(
                    "the update was made for firm update counter {} but the container is at {}: {}",
                    header.counter,
                    firm.counter,
                    if header.counter < firm.counter {
                        "it was applied already (or another update was)"
                    } else {
                        "an earlier update is missing"
                    }
                ),
            ));
        }
        let mut trusted = BTreeMap::new();
        for (id, k) in &firm.keys {
            trusted.insert(id.clone(), unb64(k)?);
        }
        let (body, keys) = protocol::read_update(update, &self.keys()?.enc, &trusted)
            .map_err(|e| cerr("invalid_update", e.0))?;
        if body.container_key != self.key_id() {
            return Err(cerr(
                "wrong_container",
                "the update was made for another container's key",
            ));
        }
        if body.expires_at < now {
            return Err(cerr(
                "update_expired",
                format!("the update expired at {}", body.expires_at),
            ));
        }
        let mut content = firm.content.clone();
        content
            .apply(&body.ops)
            .map_err(|e| cerr("invalid_update", e.0))?;
        if self.serial == NEW_SERIAL {
            self.serial = body.serial.clone();
        }
        let f = self.firms.get_mut(&header.firm_code).expect("present");
        f.counter = body.counter_to;
        f.content = content;
        f.last_update = Some(body.update_id);
        for (id, k) in keys {
            f.keys.entry(id).or_insert_with(|| b64(&k));
        }
        f.first_use
            .retain(|id, _| f.content.entries.contains_key(id));
        self.seen(now.max(body.issued_at));
        let receipt = self.receipt(header.firm_code, now)?;
        Ok(Applied {
            serial: self.serial.clone(),
            firm_code: header.firm_code,
            update_id: body.update_id,
            counter: body.counter_to,
            receipt,
        })
    }

    /// How many of the bound traits differ from `current`.
    pub fn traits_changed(&self, current: &[(String, String)]) -> usize {
        self.fingerprint
            .iter()
            .filter(|t| {
                !current.iter().any(|(n, v)| {
                    *n == t.name && hash_trait(&self.fingerprint_salt, n, v) == t.hash
                })
            })
            .count()
    }

    /// Checks a product as the vendor's software does, with no server: container bound to
    /// this machine, clock not set back, firm signatures, not locked, activation and
    /// expiration time, usage period (counted from first use), and the feature bits asked.
    pub fn check(
        &mut self,
        firm_code: i64,
        product_code: i64,
        features: u32,
        current_traits: &[(String, String)],
        now: i64,
    ) -> CResult<CheckOk> {
        self.check_release(firm_code, product_code, features, current_traits, now, None)
    }

    /// As `check`, for a version of the vendor's software released at `released` (unix
    /// seconds): a license with a maintenance period covers only versions released before
    /// its maintenance ended (`maintenance_period_days` after the license's first use here,
    /// extended by update items); a later version is refused with that reason.
    pub fn check_release(
        &mut self,
        firm_code: i64,
        product_code: i64,
        features: u32,
        current_traits: &[(String, String)],
        now: i64,
        released: Option<i64>,
    ) -> CResult<CheckOk> {
        if now + CLOCK_SLACK_SECS < self.last_seen {
            return Err(cerr(
                "clock_set_back",
                format!(
                    "the clock ({now}) is before a time this container has already seen ({})",
                    self.last_seen
                ),
            ));
        }
        if self.kind == ContainerType::Act {
            let changed = self.traits_changed(current_traits);
            if changed > self.tolerance as usize {
                return Err(cerr(
                    "fingerprint_mismatch",
                    format!(
                        "{changed} of the machine traits this container is bound to changed \
                         (at most {} may): it belongs to another computer",
                        self.tolerance
                    ),
                ));
            }
        }
        self.seen(now);
        let serial = self.serial.clone();
        let f = self.firms.get_mut(&firm_code).ok_or_else(|| {
            cerr(
                "not_licensed",
                format!("no license of firm code {firm_code}"),
            )
        })?;
        if f.content.locked {
            if f.content.lock_product == Some(product_code) {
                return Ok(CheckOk {
                    serial,
                    firm_code,
                    product_code,
                    license_ids: vec![],
                    feature_map: 0,
                    quantity: 0,
                    expires_at: None,
                    maintenance_ends: None,
                    check_in_by: None,
                    units_left: None,
                    lock: true,
                });
            }
            return Err(cerr(
                "locked",
                format!("the licenses of firm code {firm_code} are locked"),
            ));
        }
        let mut found = vec![];
        let mut last_reason = format!("no license for product {product_code}");
        for se in f.content.entries.values() {
            let e = &se.entry;
            if e.product_code != product_code {
                continue;
            }
            let key = f.keys.get(&se.key_id).map(|k| unb64(k)).transpose()?;
            let valid_sig = key.is_some_and(|k| se.verify(&k).is_ok());
            if !valid_sig || e.serial != serial || e.firm_code != firm_code {
                last_reason = format!("license {} is not signed for this container", e.license_id);
                continue;
            }
            if e.activation_time.is_some_and(|t| now < t) {
                last_reason = format!(
                    "license {} is not valid before {}",
                    e.license_id,
                    e.activation_time.unwrap_or_default()
                );
                continue;
            }
            let first = *f.first_use.get(&e.license_id).unwrap_or(&now);
            let usage_end = e.usage_period_days.map(|d| first + i64::from(d) * 86_400);
            let end = match (e.expiration_time, usage_end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if end.is_some_and(|t| now >= t) {
                last_reason = format!("license {} expired", e.license_id);
                continue;
            }
            if let Some(until) = e.check_in_until.filter(|t| now >= *t) {
                last_reason = format!(
                    "license {} had to check in with the license server before {}: connect \
                     this computer (or exchange a request and an update file) to renew it",
                    e.license_id,
                    day(until)
                );
                continue;
            }
            let maintenance_ends = e
                .maintenance_period_days
                .map(|d| first + i64::from(d) * 86_400);
            if let (Some(ends), Some(released)) = (maintenance_ends, released) {
                if released > ends {
                    last_reason = format!(
                        "license {}'s maintenance ended {}; this version was released {} (it \
                         needs a maintenance extension)",
                        e.license_id,
                        day(ends),
                        day(released)
                    );
                    continue;
                }
            }
            if e.feature_map & features != features {
                last_reason = format!(
                    "license {} lacks feature bits {:#x}",
                    e.license_id,
                    features & !e.feature_map
                );
                continue;
            }
            let used = f.units_used.get(&e.license_id).copied().unwrap_or(0);
            let units_left = e.unit_counter.map(|n| u64::from(n).saturating_sub(used));
            if units_left == Some(0) {
                last_reason = format!(
                    "license {} has used all its {} units (an update item adds more)",
                    e.license_id,
                    e.unit_counter.unwrap_or(0)
                );
                continue;
            }
            found.push((
                e.license_id,
                e.feature_map,
                e.quantity,
                end,
                maintenance_ends,
                e.check_in_until,
                units_left,
            ));
        }
        if found.is_empty() {
            return Err(cerr("not_licensed", last_reason));
        }
        for (id, ..) in &found {
            f.first_use.entry(*id).or_insert(now);
        }
        Ok(CheckOk {
            serial,
            firm_code,
            product_code,
            license_ids: found.iter().map(|f| f.0).collect(),
            feature_map: found.iter().fold(0, |a, f| a | f.1),
            quantity: found.iter().map(|f| f.2).sum(),
            expires_at: latest(found.iter().map(|f| f.3)),
            maintenance_ends: latest(found.iter().map(|f| f.4)),
            check_in_by: latest(found.iter().map(|f| f.5)),
            units_left: found
                .iter()
                .map(|f| f.6)
                .collect::<Option<Vec<u64>>>()
                .map(|v| v.iter().sum()),
            lock: false,
        })
    }

    /// Counts `units` of a pay-per-use product used (the vendor's software calls it as it
    /// uses them): the product is checked as `check` does, and the units are taken from its
    /// licenses with a unit counter, in license id order. Refused, counting nothing, when
    /// fewer are left. Save the container afterwards: the count lives in its file, and every
    /// request and receipt reports it, so the server sees a copy restored with fewer units
    /// used (and marks the container as manipulated). With a license of the product that is
    /// not counted, nothing is counted and `units_left` is none.
    pub fn use_units(
        &mut self,
        firm_code: i64,
        product_code: i64,
        units: u64,
        current_traits: &[(String, String)],
        now: i64,
    ) -> CResult<CheckOk> {
        if units == 0 {
            return Err(cerr("invalid_input", "use at least one unit"));
        }
        let mut ok = self.check(firm_code, product_code, 0, current_traits, now)?;
        let Some(left) = ok.units_left else {
            return Ok(ok);
        };
        if left < units {
            return Err(cerr(
                "units_exhausted",
                format!("{units} units of product {product_code} asked, {left} left"),
            ));
        }
        let f = self.firms.get_mut(&firm_code).expect("checked");
        let mut rest = units;
        for id in &ok.license_ids {
            let counter = f.content.entries[id].entry.unit_counter.map(u64::from);
            let used = f.units_used.entry(*id).or_insert(0);
            let take = counter.unwrap_or(0).saturating_sub(*used).min(rest);
            *used += take;
            rest -= take;
        }
        ok.units_left = Some(left - units);
        Ok(ok)
    }

    pub fn load(dir: &Path) -> CResult<Container> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| cerr("not_found", format!("cannot read {}: {e}", path.display())))?;
        let c: Container = serde_json::from_str(&text)
            .map_err(|e| cerr("corrupt_container", format!("{}: {e}", path.display())))?;
        c.validate()?;
        Ok(c)
    }

    /// Writes the container atomically (a new file, synced, renamed over the old one).
    pub fn save(&self, dir: &Path) -> CResult<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |e: std::io::Error| {
            cerr(
                "io",
                format!("cannot write the container in {}: {e}", dir.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("container"))
            .and_then(|_| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, dir.join(FILE)).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    pub fn exists(dir: &Path) -> bool {
        dir.join(FILE).exists()
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The latest of some ends, none when one of them is none (it does not end).
fn latest(ends: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    ends.collect::<Option<Vec<i64>>>()?.into_iter().max()
}

/// A unix time's day (UTC), as messages show it.
fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| t.to_string())
}
