//! Activation: a container's request comes in, an update goes out, a receipt confirms it.
//!
//! The server believes receipts, not requests: a license is `pending` from the update until
//! a receipt (or a later context of the same container) proves the content the update
//! produced, and `returning` until a receipt proves it gone. For every container and firm the
//! server keeps a mirror of what the container last confirmed (`container_firms`); every
//! update is made from that mirror and carries everything still outstanding for the
//! container (licenses pending or returning, changed entries), so a lost receipt is made good
//! by the next contact and nothing waits behind it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use super::catalog::{load_settings, parse_settings};
use super::firms::{load_signer, FirmSigner, MasterKey};
use super::{Core, Stats};
use crate::domain::ticket::TicketCode;
use crate::domain::{
    container_state, license_state as ls, ActivationMode, Actor, ContainerType, Interface,
    ItemOptions, Role, Settings,
};
use crate::error::{Error, Result};
use crate::on_backend;
use crate::protocol::{
    self, Content, Context, Entry, Kind, Op, SignedEntry, UpdateBody, NEW_SERIAL,
};
use crate::store::schema::{
    activation_counts, blacklist, container_firms, containers, firm_keys, firms, items, licenses,
    request_uses, settings, tickets, updates, withdrawals,
};
use crate::store::{is_unique_violation, Conn, Reused};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Opened firm signing keys by firm id.
pub type SignerCache = Arc<Mutex<HashMap<i64, Arc<FirmSigner>>>>;

pub(super) mod update_state {
    pub const ISSUED: &str = "issued";
    pub const CONFIRMED: &str = "confirmed";
    /// Another update made from the same counter was confirmed instead.
    pub const VOID: &str = "void";
}

#[derive(Debug, Clone, Queryable)]
pub(super) struct ContainerRow {
    pub(super) id: i64,
    pub(super) serial: String,
    pub(super) kind: String,
    pub(super) customer_id: Option<i64>,
    pub(super) public_key: String,
    pub(super) state: String,
    pub(super) created_at: chrono::NaiveDateTime,
    _updated_at: chrono::NaiveDateTime,
    enc_key: String,
    pub(super) fingerprint: String,
    pub(super) state_reason: String,
}

pub(super) struct Mirror {
    counter: i64,
    digest: String,
    /// Plain entries: what the container holds, without the firm signatures.
    pub(super) content: Content<Entry>,
    confirmed_at: chrono::NaiveDateTime,
}

#[derive(Queryable)]
struct UpdateRow {
    id: i64,
    counter_from: i64,
    counter_to: i64,
    digest_after: String,
    content_after: String,
}

/// A license as the activation needs it.
#[derive(Debug, Clone, Queryable)]
pub(super) struct LicRow {
    pub(super) id: i64,
    pub(super) state: String,
    pub(super) version: i32,
    pub(super) serial: Option<String>,
    pub(super) generation: i32,
    pub(super) product_code: i64,
    pub(super) options: String,
    pub(super) firm_id: i64,
    pub(super) item_id: String,
    pub(super) ticket_id: i64,
    pub(super) activated_at: Option<chrono::NaiveDateTime>,
    pub(super) self_service_used: i32,
}

type LicSelect = (
    licenses::id,
    licenses::state,
    licenses::version,
    licenses::serial,
    licenses::generation,
    licenses::product_code,
    licenses::options,
    licenses::firm_id,
    items::item_id,
    licenses::ticket_id,
    licenses::activated_at,
    licenses::self_service_used,
);
pub(super) const LIC_SELECT: LicSelect = (
    licenses::id,
    licenses::state,
    licenses::version,
    licenses::serial,
    licenses::generation,
    licenses::product_code,
    licenses::options,
    licenses::firm_id,
    items::item_id,
    licenses::ticket_id,
    licenses::activated_at,
    licenses::self_service_used,
);

impl LicRow {
    pub(super) fn options(&self) -> Result<ItemOptions> {
        serde_json::from_str(&self.options)
            .map_err(|e| Error::internal(format!("license {} options: {e}", self.id)))
    }
    fn entry(&self, serial: &str, firm_code: i64) -> Result<Entry> {
        let o = self.options()?;
        Ok(Entry {
            license_id: self.id,
            generation: self.generation,
            serial: serial.to_string(),
            firm_code,
            product_code: self.product_code,
            feature_map: o.feature_map,
            quantity: o.license_quantity,
            activation_time: o.activation_time.map(|t| t.timestamp()),
            expiration_time: o.expiration_time.map(|t| t.timestamp()),
            usage_period_days: o.usage_period_days,
            unit_counter: o.unit_counter,
            maintenance_period_days: o.maintenance_period_days,
            text: o.text,
            user_data: o.user_data,
            protected_data: o.protected_data,
        })
    }
}

/// What an update did, as the gateway answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issued {
    pub serial: String,
    pub firm_code: i64,
    pub update_id: i64,
    pub counter_from: i64,
    pub counter_to: i64,
    pub expires_at: chrono::NaiveDateTime,
    pub added: Vec<i64>,
    pub changed: Vec<i64>,
    pub deleted: Vec<i64>,
    /// The update locks every entry of the firm (the container is blacklisted).
    #[serde(default)]
    pub locked: bool,
    /// The armoured update, to apply in the container.
    pub update: String,
}

/// What a receipt proved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmed {
    pub serial: String,
    pub firm_code: i64,
    pub counter: i64,
    /// The update was confirmed before (a receipt sent twice changes nothing).
    pub already_confirmed: bool,
    pub activated: Vec<i64>,
    pub released: Vec<i64>,
}

pub(super) fn customer_actor(name: String, interface: Interface) -> Actor {
    Actor {
        name,
        role: Role::Customer,
        interface,
    }
}

fn ts(secs: i64) -> chrono::NaiveDateTime {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc()
}

pub(super) fn firm_of(c: &mut Conn, code: i64) -> Result<(i64, String)> {
    on_backend!(c, x => firms::table
        .filter(firms::firm_code.eq(code))
        .select((firms::id, firms::key_id))
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("firm", code))
}

/// What a contact needs to know of the firm its context names.
struct FirmFacts {
    id: i64,
    key_id: String,
    settings: Settings,
    /// Whether the context's serial is on the firm's blacklist.
    blacklisted: bool,
}

/// A registered container and its mirror for the firm (none before its first contact), with
/// the issued update that leads from the mirror's state to the context's digest.
type Found = (ContainerRow, Option<(MirrorRow, Option<UpdateRow>)>);

/// A mirror the contact's query found, with the update that query looked for.
type Joined = (Mirror, Option<UpdateRow>);

/// The firm a context names (id, current key id, settings, whether the serial is on its
/// blacklist), the container of that serial with its mirror for the firm, and the update
/// issued from the mirror's state that leads to `digest` (what a receipt confirms), in one
/// query.
fn firm_and_container(
    c: &mut Conn,
    code: i64,
    serial: &str,
    digest: &str,
) -> Result<(FirmFacts, Option<Found>)> {
    let listed = blacklist::table
        .filter(blacklist::firm_id.eq(firms::id))
        .filter(blacklist::serial.eq(serial))
        .filter(blacklist::removed_at.is_null());
    type Row = (
        i64,
        String,
        Option<String>,
        bool,
        Option<ContainerRow>,
        Option<MirrorRow>,
        Option<UpdateRow>,
    );
    let found: Option<Row> = on_backend!(c, x => firms::table
        .left_join(settings::table.on(settings::firm_id.eq(firms::id)))
        .left_join(containers::table.on(containers::serial.eq(serial.to_string())))
        .left_join(
            container_firms::table.on(container_firms::container_id
                .eq(containers::id)
                .and(container_firms::firm_id.eq(firms::id))),
        )
        .left_join(
            // On the mirror's columns, so that the index finds the rows by all three
            // (PostgreSQL otherwise reads every update of the container).
            updates::table.on(updates::container_id
                .eq(container_firms::container_id)
                .and(updates::firm_id.eq(container_firms::firm_id))
                .and(updates::counter_from.eq(container_firms::counter))
                .and(updates::digest_after.eq(digest.to_string()))
                .and(updates::state.eq(update_state::ISSUED))),
        )
        .filter(firms::firm_code.eq(code))
        .select((
            firms::id,
            firms::key_id,
            settings::body.nullable(),
            diesel::dsl::exists(listed),
            containers::all_columns.nullable(),
            (
                container_firms::counter,
                container_firms::digest,
                container_firms::content,
                container_firms::confirmed_at,
            )
                .nullable(),
            (
                updates::id,
                updates::counter_from,
                updates::counter_to,
                updates::digest_after,
                updates::content_after,
            )
                .nullable(),
        ))
        .order(updates::id.desc())
        .first(x)
        .optional())?;
    let (id, key_id, body, blacklisted, cont, mirror, issued) =
        found.ok_or_else(|| Error::not_found("firm", code))?;
    let firm = FirmFacts {
        id,
        key_id,
        settings: parse_settings(body)?,
        blacklisted,
    };
    Ok((firm, cont.map(|row| (row, mirror.map(|m| (m, issued))))))
}

/// The firm's current signer, opened once per key id.
fn signer(
    c: &mut Conn,
    master: &MasterKey,
    cache: &SignerCache,
    firm_id: i64,
    key_id: &str,
) -> Result<Arc<FirmSigner>> {
    if let Some(s) = cache.lock().expect("signer cache").get(&firm_id) {
        if s.key_id == key_id {
            return Ok(s.clone());
        }
    }
    let s = Arc::new(load_signer(c, master, firm_id)?);
    cache
        .lock()
        .expect("signer cache")
        .insert(firm_id, s.clone());
    Ok(s)
}

/// A new serial for an `act` container: `130-` and ten digits.
fn new_act_serial() -> String {
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    let n = u64::from_le_bytes(b) % 9_000_000_000 + 1_000_000_000;
    format!("130-{n}")
}

/// The mirror columns of `container_firms`.
type MirrorRow = (i64, String, String, chrono::NaiveDateTime);

/// Checks that the container a context speaks for (`found`, by its serial) signed with the
/// key registered for it and returns it with its mirror and the issued update `found` came
/// with, when it has a mirror (every contact after its first). A retried first activation
/// (serial `new`) is found by its key. With `register`, a new `act` container (serial `new`)
/// or a dongle seen for the first time is registered; the flag says so.
fn find_container(
    c: &mut Conn,
    actor: &Actor,
    ctx: &Context,
    register: bool,
    found: Option<Found>,
) -> Result<(ContainerRow, Option<Joined>, bool)> {
    let (existing, joined) = if ctx.serial == NEW_SERIAL {
        // A retried first activation: the same key is the same container.
        let by_key = on_backend!(c, x => containers::table
            .filter(containers::public_key.eq(&ctx.sign_key))
            .first(x)
            .optional())?;
        (by_key, None)
    } else {
        found.map_or((None, None), |(row, joined)| (Some(row), joined))
    };
    if let Some(row) = existing {
        if row.public_key != ctx.sign_key {
            return Err(Error::NotAllowed(format!(
                "the message is not signed by the key registered for container {}",
                row.serial
            )));
        }
        if row.enc_key != ctx.enc_key {
            return Err(Error::NotAllowed(format!(
                "the encryption key does not match the one registered for container {}",
                row.serial
            )));
        }
        if row.kind != ctx.container_type.as_str() {
            return Err(Error::NotAllowed(format!(
                "container {} is a {} container, the message says {}",
                row.serial,
                row.kind,
                ctx.container_type.as_str()
            )));
        }
        let joined = joined
            .map(|(m, issued)| Ok::<_, Error>((mirror_from(m)?, issued)))
            .transpose()?;
        return Ok((row, joined, false));
    }
    if !register {
        return Err(Error::not_found("container", &ctx.serial));
    }
    let serial = match (ctx.container_type, ctx.serial.as_str()) {
        (ContainerType::Act, NEW_SERIAL) => new_act_serial(),
        (ContainerType::Act, s) => {
            return Err(Error::not_found("container", s));
        }
        (ContainerType::Dongle, NEW_SERIAL) => {
            return Err(Error::InvalidMessage(
                "a dongle brings its serial from production; `new` is for act containers".into(),
            ))
        }
        (ContainerType::Dongle, s) => s.to_string(),
        (ContainerType::Cloud, _) => {
            return Err(Error::NotAllowed(
                "cloud containers are kept on the server and are not activated by request".into(),
            ))
        }
    };
    if ctx.container_type == ContainerType::Act && ctx.fingerprint.len() < 3 {
        return Err(Error::InvalidMessage(
            "an act container's request must carry at least 3 fingerprint traits".into(),
        ));
    }
    let now = super::now();
    let res = diesel::insert_into(containers::table)
        .values((
            containers::serial.eq(&serial),
            containers::kind.eq(ctx.container_type.as_str()),
            containers::public_key.eq(&ctx.sign_key),
            containers::enc_key.eq(&ctx.enc_key),
            containers::fingerprint
                .eq(serde_json::to_string(&ctx.fingerprint).expect("fingerprint")),
            containers::state.eq(container_state::ACTIVE),
            containers::state_reason.eq(""),
            containers::created_at.eq(now),
            containers::updated_at.eq(now),
        ))
        .execute(c);
    match res {
        // Another request registered the same key or drew the same serial: look again.
        Err(e) if is_unique_violation(&e) => return Err(Error::Retry),
        r => r?,
    };
    audit::record(
        actor,
        Event {
            action: "container.registered",
            serial: Some(&serial),
            details: serde_json::json!({"type": ctx.container_type.as_str(),
                "key_id": ctx.container_key_id()}),
            ..Default::default()
        },
    )?;
    let row = containers::table
        .filter(containers::serial.eq(&serial))
        .first(c)?;
    Ok((row, None, true))
}

fn mirror_from((counter, digest, content, confirmed_at): MirrorRow) -> Result<Mirror> {
    Ok(Mirror {
        counter,
        digest,
        content: serde_json::from_str(&content)
            .map_err(|e| Error::internal(format!("mirror content: {e}")))?,
        confirmed_at,
    })
}

pub(super) fn load_mirror(c: &mut Conn, container_id: i64, firm_id: i64) -> Result<Mirror> {
    let row: Option<MirrorRow> = on_backend!(c, x => container_firms::table
            .filter(container_firms::container_id.eq(container_id))
            .filter(container_firms::firm_id.eq(firm_id))
            .select((
                container_firms::counter,
                container_firms::digest,
                container_firms::content,
                container_firms::confirmed_at,
            ))
            .first(x)
            .optional())?;
    match row {
        Some(row) => mirror_from(row),
        None => {
            let content = Content::<Entry>::default();
            let m = Mirror {
                counter: 0,
                digest: content.digest(),
                content,
                confirmed_at: super::now(),
            };
            let res = diesel::insert_into(container_firms::table)
                .values((
                    container_firms::container_id.eq(container_id),
                    container_firms::firm_id.eq(firm_id),
                    container_firms::counter.eq(0),
                    container_firms::digest.eq(&m.digest),
                    container_firms::content.eq("{\"entries\":{},\"locked\":false}"),
                    container_firms::confirmed_at.eq(m.confirmed_at),
                ))
                .execute(c);
            match res {
                Err(e) if is_unique_violation(&e) => return Err(Error::Retry),
                r => r?,
            };
            Ok(m)
        }
    }
}

/// A contact's mirror: the one its query found, with the update that query looked for
/// (`reconcile`'s `issued`), else the one read or made now.
fn mirror_or_load(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    joined: Option<Joined>,
) -> Result<(Mirror, Option<Option<UpdateRow>>)> {
    Ok(match joined {
        Some((mirror, issued)) => (mirror, Some(issued)),
        None => (load_mirror(c, container_id, firm_id)?, None),
    })
}

/// How a container's context relates to what the server knows.
enum Seen {
    /// It shows what the container last confirmed.
    Same,
    /// It shows the result of an update issued from the confirmed state: now confirmed.
    Confirmed(Confirmed),
    /// It is older than the confirmed state; `after_confirm` if the container made it after
    /// the server saw the newer state (the container was rolled back).
    Stale { after_confirm: bool },
    /// Nothing the server issued leads there.
    Unknown,
}

/// `issued` is the update issued from the mirror's state that leads to the context's digest
/// when the contact's query already looked for it (`Some`), else it is looked for here.
#[allow(clippy::too_many_arguments)]
fn reconcile(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    firm_id: i64,
    firm_code: i64,
    mirror: &mut Mirror,
    ctx: &Context,
    issued: Option<Option<UpdateRow>>,
) -> Result<Seen> {
    let counter = i64::try_from(ctx.counter).unwrap_or(i64::MAX);
    if counter == mirror.counter && ctx.digest == mirror.digest {
        return Ok(Seen::Same);
    }
    if counter < mirror.counter {
        return Ok(Seen::Stale {
            after_confirm: ts(ctx.created_at) > mirror.confirmed_at,
        });
    }
    if counter == mirror.counter + 1 {
        let found: Option<UpdateRow> = match issued {
            Some(known) => known,
            None => on_backend!(c, x => updates::table
                .filter(updates::container_id.eq(cont.id))
                .filter(updates::firm_id.eq(firm_id))
                .filter(updates::counter_from.eq(mirror.counter))
                .filter(updates::digest_after.eq(&ctx.digest))
                .filter(updates::state.eq(update_state::ISSUED))
                .select((
                    updates::id,
                    updates::counter_from,
                    updates::counter_to,
                    updates::digest_after,
                    updates::content_after,
                ))
                .order(updates::id.desc())
                .first(x)
                .optional())?,
        };
        if let Some(u) = found {
            return Ok(Seen::Confirmed(confirm(
                c, actor, cont, firm_id, firm_code, mirror, u,
            )?));
        }
    }
    Ok(Seen::Unknown)
}

/// Makes `u` the confirmed state and moves the licenses it proves.
#[allow(clippy::too_many_arguments)]
fn confirm(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    firm_id: i64,
    firm_code: i64,
    mirror: &mut Mirror,
    u: UpdateRow,
) -> Result<Confirmed> {
    let now = super::now();
    let content: Content<Entry> = serde_json::from_str(&u.content_after)
        .map_err(|e| Error::internal(format!("update content: {e}")))?;
    let held: Vec<i64> = content.entries.keys().copied().collect();
    let Some(moved) = settle(c, cont, firm_id, &u, &held, now)? else {
        // Another node confirmed first; run again and see its result.
        return Err(Error::Retry);
    };
    let before = std::mem::replace(
        mirror,
        Mirror {
            counter: u.counter_to,
            digest: u.digest_after,
            content,
            confirmed_at: now,
        },
    );
    let (mut activated, mut released) = (vec![], vec![]);
    for (id, to) in moved {
        let action = match to {
            ls::ACTIVATED => "license.activated",
            ls::AVAILABLE => "license.returned",
            _ => "license.deleted",
        };
        if to == ls::ACTIVATED {
            activated.push(id);
        } else {
            released.push(id);
        }
        audit::record(
            actor,
            Event {
                action,
                license_id: Some(id),
                serial: Some(&cont.serial),
                details: serde_json::json!({"update_id": u.id, "counter": u.counter_to}),
                ..Default::default()
            },
        )?;
    }
    // Entries this update deleted that belonged to licenses living elsewhere now (not the
    // container's own returned or withdrawn ones).
    let gone: Vec<i64> = before
        .content
        .entries
        .keys()
        .filter(|id| !mirror.content.entries.contains_key(id))
        .filter(|id| !released.contains(id))
        .copied()
        .collect();
    if !gone.is_empty() {
        diesel::update(
            withdrawals::table
                .filter(withdrawals::container_id.eq(cont.id))
                .filter(withdrawals::firm_id.eq(firm_id))
                .filter(withdrawals::license_id.eq_any(&gone))
                .filter(withdrawals::done_at.is_null()),
        )
        .set(withdrawals::done_at.eq(Some(now)))
        .execute(c)?;
    }
    if mirror.content.locked && !before.content.locked {
        let n = diesel::update(
            blacklist::table
                .filter(blacklist::firm_id.eq(firm_id))
                .filter(blacklist::serial.eq(&cont.serial))
                .filter(blacklist::removed_at.is_null())
                .filter(blacklist::lock_validated_at.is_null()),
        )
        .set(blacklist::lock_validated_at.eq(Some(now)))
        .execute(c)?;
        if n > 0 {
            audit::record(
                actor,
                Event {
                    action: "blacklist.lock_validated",
                    serial: Some(&cont.serial),
                    details: serde_json::json!({"update_id": u.id, "firm_code": firm_code}),
                    ..Default::default()
                },
            )?;
        }
    }
    audit::record(
        actor,
        Event {
            action: "update.confirmed",
            serial: Some(&cont.serial),
            details: serde_json::json!({"update_id": u.id, "firm_code": firm_code,
                "counter": u.counter_to, "activated": activated, "released": released}),
            ..Default::default()
        },
    )?;
    Ok(Confirmed {
        serial: cont.serial.clone(),
        firm_code,
        counter: mirror.counter,
        already_confirmed: false,
        activated,
        released,
    })
}

/// Makes the result of `u` the container's confirmed state (its mirror, if still at the
/// counter `u` was issued from), confirms `u`, voids the other updates issued from that
/// state and moves the container's outstanding licenses as its confirmed content (`held`,
/// license ids) proves: pending and held -> activated, returning or withdrawing and not
/// held -> available or deleted. Answers each moved license with its new state, by id;
/// `None` when the mirror had moved on (another writer confirmed first). One statement (one
/// round trip) on PostgreSQL.
fn settle(
    c: &mut Conn,
    cont: &ContainerRow,
    firm_id: i64,
    u: &UpdateRow,
    held: &[i64],
    now: chrono::NaiveDateTime,
) -> Result<Option<Vec<(i64, &'static str)>>> {
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    let lite = match c {
        Conn::Pg(pg) => {
            #[derive(QueryableByName)]
            struct Settled {
                #[diesel(sql_type = BigInt)]
                n: i64,
                #[diesel(sql_type = Nullable<BigInt>)]
                id: Option<i64>,
                #[diesel(sql_type = Nullable<Text>)]
                state: Option<String>,
            }
            // Every data-modifying WITH runs, referenced or not. In SET, a license's `state`
            // is the state before; RETURNING gives the state after.
            let q = diesel::sql_query(
                "WITH moved AS (UPDATE container_firms \
                   SET counter = $1, digest = $2, content = $3, confirmed_at = $4 \
                   WHERE container_id = $5 AND firm_id = $6 AND counter = $7 RETURNING counter), \
                 settled AS (UPDATE updates \
                   SET state = CASE WHEN id = $8 THEN $9 ELSE $10 END, \
                     confirmed_at = CASE WHEN id = $8 THEN $4 END \
                   WHERE container_id = $5 AND firm_id = $6 AND counter_from = $7 AND state = $11 \
                     AND EXISTS (SELECT 1 FROM moved) RETURNING id), \
                 lic AS (UPDATE licenses \
                   SET state = CASE WHEN state = $12 THEN $13 WHEN state = $14 THEN $15 ELSE $16 END, \
                     serial = CASE WHEN state = $12 THEN serial END, \
                     version = version + 1, updated_at = $4, \
                     activated_at = CASE WHEN state = $12 THEN $4 ELSE activated_at END \
                   WHERE serial = $17 AND firm_id = $6 AND EXISTS (SELECT 1 FROM moved) \
                     AND ((state = $12 AND id = ANY($18)) \
                       OR ((state = $14 OR state = $19) AND NOT (id = ANY($18)))) \
                   RETURNING id, state) \
                 SELECT (SELECT count(*) FROM moved) AS n, lic.id, lic.state \
                 FROM (SELECT 1) AS one LEFT JOIN lic ON true",
            )
            .bind::<BigInt, _>(u.counter_to)
            .bind::<Text, _>(&u.digest_after)
            .bind::<Text, _>(&u.content_after)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(cont.id)
            .bind::<BigInt, _>(firm_id)
            .bind::<BigInt, _>(u.counter_from)
            .bind::<BigInt, _>(u.id)
            .bind::<Text, _>(update_state::CONFIRMED)
            .bind::<Text, _>(update_state::VOID)
            .bind::<Text, _>(update_state::ISSUED)
            .bind::<Text, _>(ls::PENDING)
            .bind::<Text, _>(ls::ACTIVATED)
            .bind::<Text, _>(ls::RETURNING)
            .bind::<Text, _>(ls::AVAILABLE)
            .bind::<Text, _>(ls::DELETED)
            .bind::<Text, _>(&cont.serial)
            .bind::<Array<BigInt>, _>(held)
            .bind::<Text, _>(ls::WITHDRAWING);
            let rows: Vec<Settled> = Reused(q).load(pg)?;
            if !rows.first().is_some_and(|r| r.n > 0) {
                return Ok(None);
            }
            let mut moved = vec![];
            for r in rows {
                let (Some(id), Some(state)) = (r.id, r.state) else {
                    continue;
                };
                let to = [ls::ACTIVATED, ls::AVAILABLE, ls::DELETED]
                    .into_iter()
                    .find(|s| *s == state)
                    .ok_or_else(|| Error::internal(format!("license {id} moved to {state}")))?;
                moved.push((id, to));
            }
            moved.sort_unstable_by_key(|m| m.0);
            return Ok(Some(moved));
        }
        Conn::Sqlite(lite) => lite,
    };
    let moved = Reused(
        diesel::update(
            container_firms::table
                .filter(container_firms::container_id.eq(cont.id))
                .filter(container_firms::firm_id.eq(firm_id))
                .filter(container_firms::counter.eq(u.counter_from)),
        )
        .set((
            container_firms::counter.eq(u.counter_to),
            container_firms::digest.eq(&u.digest_after),
            container_firms::content.eq(&u.content_after),
            container_firms::confirmed_at.eq(now),
        ))
        .returning(container_firms::counter),
    )
    .load::<i64>(lite)?;
    if moved.is_empty() {
        return Ok(None);
    }
    Reused(
        diesel::update(
            updates::table
                .filter(updates::container_id.eq(cont.id))
                .filter(updates::firm_id.eq(firm_id))
                .filter(updates::counter_from.eq(u.counter_from))
                .filter(updates::state.eq(update_state::ISSUED)),
        )
        .set((
            updates::state.eq(diesel::dsl::case_when(
                updates::id.eq(u.id),
                update_state::CONFIRMED.into_sql::<Text>(),
            )
            .otherwise(update_state::VOID.into_sql::<Text>())),
            updates::confirmed_at.eq(diesel::dsl::case_when(
                updates::id.eq(u.id),
                now.into_sql::<Timestamp>(),
            )),
        ))
        .returning(updates::id),
    )
    .load::<i64>(lite)?;
    let outstanding: Vec<LicRow> = licenses::table
        .inner_join(items::table)
        .filter(licenses::serial.eq(&cont.serial))
        .filter(licenses::firm_id.eq(firm_id))
        // `or`, not `eq_any`: diesel keeps the statement prepared only without IN lists.
        .filter(
            licenses::state
                .eq(ls::PENDING)
                .or(licenses::state.eq(ls::RETURNING))
                .or(licenses::state.eq(ls::WITHDRAWING)),
        )
        .select(LIC_SELECT)
        .order(licenses::id.asc())
        .load(lite)?;
    let mut moved = vec![];
    for l in outstanding {
        let to = match (l.state.as_str(), held.contains(&l.id)) {
            (ls::PENDING, true) => ls::ACTIVATED,
            (ls::RETURNING, false) => ls::AVAILABLE,
            (ls::WITHDRAWING, false) => ls::DELETED,
            _ => continue,
        };
        let keep = (to == ls::ACTIVATED).then(|| cont.serial.clone());
        set_state(c, &l, to, keep)?;
        moved.push((l.id, to));
    }
    Ok(Some(moved))
}

/// One conditional state change: zero rows means someone else changed the license first.
/// Becoming `activated` also records when (the blocking period counts from it).
pub(super) fn set_state(c: &mut Conn, l: &LicRow, to: &str, serial: Option<String>) -> Result<()> {
    let now = super::now();
    let row = licenses::table
        .filter(licenses::id.eq(l.id))
        .filter(licenses::state.eq(&l.state))
        .filter(licenses::version.eq(l.version));
    let changes = (
        licenses::state.eq(to),
        licenses::serial.eq(serial),
        licenses::version.eq(l.version + 1),
        licenses::updated_at.eq(now),
    );
    let n = if to == ls::ACTIVATED {
        on_backend!(c, x => Reused(
            diesel::update(row)
                .set((changes, licenses::activated_at.eq(Some(now))))
                .returning(licenses::id),
        )
        .load::<i64>(x))?
    } else {
        on_backend!(c, x => Reused(diesel::update(row).set(changes).returning(licenses::id))
            .load::<i64>(x))?
    }
    .len();
    if n == 0 {
        return Err(Error::Conflict(format!(
            "license {} was changed by another request at the same time",
            l.id
        )));
    }
    Ok(())
}

/// Marks the container as manipulated (committed even though the caller gets an error).
fn mark_manipulated(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    why: String,
) -> Result<Error> {
    diesel::update(containers::table.filter(containers::id.eq(cont.id)))
        .set((
            containers::state.eq(container_state::MANIPULATED),
            containers::state_reason.eq(&why),
            containers::updated_at.eq(super::now()),
        ))
        .execute(c)?;
    audit::record(
        actor,
        Event {
            action: "container.manipulation_detected",
            serial: Some(&cont.serial),
            details: serde_json::json!({"reason": why}),
            ..Default::default()
        },
    )?;
    Ok(Error::Manipulation(cont.serial.clone()))
}

/// A refusal a write commits (what it found or sent must be kept), returned as the error.
pub(super) enum Refusal {
    Error(Error),
    /// The container is blacklisted and gets the lock update (recorded as sent).
    Locked {
        lock: Box<Prepared>,
        serial: String,
        description: String,
    },
}

/// The outcome of a write that may have to commit a refusal.
pub(super) type Committed<T> = std::result::Result<T, Refusal>;

/// Everything a contact (request) starts with: find the container, check its state, and
/// reconcile its context with the mirror.
pub(super) struct Contact {
    pub(super) cont: ContainerRow,
    pub(super) mirror: Mirror,
    pub(super) firm_id: i64,
    signer: Arc<FirmSigner>,
    pub(super) settings: Settings,
    /// The open blacklist entry's description, when the container is on the blacklist.
    blacklisted: Option<String>,
}

fn contact(
    c: &mut Conn,
    env: &WriteEnv,
    actor: &Actor,
    ctx: &Context,
    register: bool,
) -> Result<Committed<Contact>> {
    let (firm, found) = firm_and_container(c, ctx.firm_code, &ctx.serial, &ctx.digest)?;
    let FirmFacts {
        id: firm_id,
        key_id,
        settings,
        blacklisted: listed,
    } = firm;
    let (cont, joined, registered) = find_container(c, actor, ctx, register, found)?;
    if cont.state == container_state::MANIPULATED {
        return Ok(Err(Refusal::Error(Error::Manipulation(cont.serial))));
    }
    let (mut mirror, issued) = mirror_or_load(c, cont.id, firm_id, joined)?;
    match reconcile(
        c,
        actor,
        &cont,
        firm_id,
        ctx.firm_code,
        &mut mirror,
        ctx,
        issued,
    )? {
        Seen::Same | Seen::Confirmed(_) => {}
        // A container registered by this very request has been issued nothing: a context
        // that shows licenses or updates is refused, and the registration is not kept (else
        // anyone could take a dongle's serial, or fill the tables, with made-up requests).
        _ if registered => {
            return Err(Error::InvalidMessage(format!(
                "container {} is new to this server, so its request must show firm update \
                 counter 0 and no licenses; it shows counter {}",
                ctx.serial, ctx.counter
            )))
        }
        Seen::Stale {
            after_confirm: false,
        } => {
            return Err(Error::Mismatch(format!(
                "the request shows firm update counter {} but container {} has already \
                 confirmed counter {}; make a new request",
                ctx.counter, cont.serial, mirror.counter
            )))
        }
        Seen::Stale {
            after_confirm: true,
        } => {
            let why = format!(
                "a request made after counter {} was confirmed shows the older counter {} \
                 (the container was restored from a copy)",
                mirror.counter, ctx.counter
            );
            return Ok(Err(Refusal::Error(mark_manipulated(c, actor, &cont, why)?)));
        }
        Seen::Unknown => {
            let why = format!(
                "the request shows counter {} with digest {} which no update issued for this \
                 container produces (confirmed: counter {})",
                ctx.counter,
                &ctx.digest[..16],
                mirror.counter
            );
            return Ok(Err(Refusal::Error(mark_manipulated(c, actor, &cont, why)?)));
        }
    }
    // Asked with the firm when the request names its serial; a retried first activation
    // (serial `new`) of a container registered meanwhile is asked here.
    let blacklisted = if listed || ctx.serial != cont.serial {
        open_blacklist_entry(c, firm_id, &cont.serial)?
    } else {
        None
    };
    let signer = signer(c, &env.master, &env.signers, firm_id, &key_id)?;
    let k = Contact {
        cont,
        mirror,
        firm_id,
        signer,
        settings,
        blacklisted,
    };
    if let Some(description) = &k.blacklisted {
        // Before anything else: the lock, until a receipt shows it applied.
        let serial = k.cont.serial.clone();
        let description = description.clone();
        if k.mirror.content.locked {
            return Ok(Err(Refusal::Error(Error::Blacklisted {
                serial,
                description,
                lock: None,
            })));
        }
        let lock = issue_required(c, actor, &k, ctx)?;
        let now = super::now();
        diesel::update(
            blacklist::table
                .filter(blacklist::firm_id.eq(firm_id))
                .filter(blacklist::serial.eq(&serial))
                .filter(blacklist::removed_at.is_null()),
        )
        .set((
            blacklist::lock_update_id.eq(Some(lock.issued.update_id)),
            blacklist::lock_sent_at.eq(Some(now)),
        ))
        .execute(c)?;
        audit::record(
            actor,
            Event {
                action: "blacklist.lock_sent",
                serial: Some(&serial),
                details: serde_json::json!({"update_id": lock.issued.update_id,
                    "firm_code": ctx.firm_code, "lock_item": k.settings.lock_item}),
                ..Default::default()
            },
        )?;
        return Ok(Err(Refusal::Locked {
            lock: Box::new(lock),
            serial,
            description,
        }));
    }
    Ok(Ok(k))
}

/// The description of the container's open blacklist entry for the firm, if it has one.
pub(super) fn open_blacklist_entry(
    c: &mut Conn,
    firm_id: i64,
    serial: &str,
) -> Result<Option<String>> {
    Ok(blacklist::table
        .filter(blacklist::firm_id.eq(firm_id))
        .filter(blacklist::serial.eq(serial))
        .filter(blacklist::removed_at.is_null())
        .select(blacklist::description)
        .first(c)
        .optional()?)
}

/// What a write closure needs from the core (it runs on the writer thread).
#[derive(Clone)]
struct WriteEnv {
    master: Arc<MasterKey>,
    signers: SignerCache,
}

impl WriteEnv {
    fn of(core: &Core) -> WriteEnv {
        WriteEnv {
            master: core.master.clone(),
            signers: core.signers.clone(),
        }
    }
}

/// Runs `act` in one write after the contact every request starts with. A refusal (found
/// by the contact or by `act`) is committed, then returned as the error; a lock update for
/// a blacklisted container travels with its refusal.
/// `operation` names what the request is used for: the same request may come again for the
/// same operation (a retry), not for another one.
pub(super) async fn after_contact<T: Send + 'static>(
    core: &Core,
    actor: Actor,
    ctx: Context,
    operation: &'static str,
    register: bool,
    mut act: impl FnMut(&mut Conn, &Actor, &Context, &Contact) -> Result<Committed<T>> + Send + 'static,
) -> Result<T> {
    let env = WriteEnv::of(core);
    let out = core
        .db
        .write(move |c| match contact(c, &env, &actor, &ctx, register)? {
            Ok(k) => {
                use_request(c, &k, &ctx, operation)?;
                act(c, &actor, &ctx, &k)
            }
            Err(refusal) => Ok(Err(refusal)),
        })
        .await?;
    match out {
        Ok(t) => Ok(t),
        Err(Refusal::Error(e)) => Err(e),
        Err(Refusal::Locked {
            lock,
            serial,
            description,
        }) => Err(Error::Blacklisted {
            serial,
            description,
            lock: Some(Box::new(deliver(core, *lock)?)),
        }),
    }
}

/// Records that the request (by its nonce) is used for `operation`; a request already used
/// for another operation is refused. A request is signed but says nothing of what it is for,
/// so without this a request file seen by someone else could be sent to return the licenses.
fn use_request(c: &mut Conn, k: &Contact, ctx: &Context, operation: &'static str) -> Result<()> {
    let first = on_backend!(c, x => diesel::insert_into(request_uses::table)
        .values((
            request_uses::container_id.eq(k.cont.id),
            request_uses::nonce.eq(&ctx.nonce),
            request_uses::operation.eq(operation),
            request_uses::created_at.eq(super::now()),
        ))
        .on_conflict_do_nothing()
        .execute(x))?
        == 1;
    if first {
        return Ok(());
    }
    let used: String = on_backend!(c, x => request_uses::table
        .find((k.cont.id, &ctx.nonce))
        .select(request_uses::operation)
        .first(x))?;
    if used == operation {
        Ok(())
    } else {
        Err(Error::Mismatch(format!(
            "this request of container {} was already used for {used}; make a new request \
             for {operation}",
            k.cont.serial
        )))
    }
}

/// `issue` for a request that must produce an update (it just made licenses outstanding).
pub(super) fn issue_required(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
) -> Result<Prepared> {
    required(issue(c, actor, k, ctx)?)
}

fn required(p: Option<Prepared>) -> Result<Prepared> {
    p.ok_or_else(|| Error::internal("the request made no update"))
}

/// Signs and seals a committed update for delivery.
pub(super) fn deliver(core: &Core, p: Prepared) -> Result<Issued> {
    Stats::add(&core.stats.updates_issued, 1);
    p.seal()
}

/// Makes the update that brings the container from its confirmed state to what the server
/// wants it to hold: pending licenses added, returning and withdrawn ones deleted, changed
/// ones changed; for a blacklisted container only the lock.
/// The update is recorded in the transaction; it is signed and encrypted after the commit
/// (`Prepared::seal`), so the writer does no cryptography.
pub(super) fn issue(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
) -> Result<Option<Prepared>> {
    issue_with(c, actor, k, ctx, None)
}

/// `issue` with the container's outstanding licenses already read (`Outstanding`), when
/// the request read them with the licenses it names.
fn issue_with(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
    outstanding: Option<Outstanding>,
) -> Result<Option<Prepared>> {
    let serial = &k.cont.serial;
    let mut ops = vec![];
    let (mut added, mut changed, mut deleted) = (vec![], vec![], vec![]);
    let locking = k.blacklisted.is_some() && !k.mirror.content.locked;
    // A license withdrawn while its adding update was still unconfirmed: an update (even
    // with nothing to do) voids that one, and its receipt deletes the license.
    let mut settle = false;
    if locking {
        ops.push(Op::Lock);
    } else {
        if k.mirror.content.locked {
            // Taken off the blacklist: the lock goes first.
            ops.push(Op::Unlock);
        }
        let rows: Vec<LicRow> = match outstanding {
            Some(o) => o.0,
            None => on_backend!(c, x => licenses::table
                .inner_join(items::table)
                .filter(licenses::serial.eq(serial))
                .filter(licenses::firm_id.eq(k.firm_id))
                .filter(licenses::state.ne(ls::AVAILABLE))
                .select(LIC_SELECT)
                .order(licenses::id.asc())
                .load(x))?,
        };
        for l in &rows {
            let held = k.mirror.content.entries.get(&l.id);
            match (l.state.as_str(), held) {
                (ls::PENDING, None) => {
                    ops.push(Op::Add {
                        entry: l.entry(serial, ctx.firm_code)?,
                    });
                    added.push(l.id);
                }
                // Back in a container that kept an older generation of it.
                (ls::PENDING, Some(h)) => {
                    let entry = l.entry(serial, ctx.firm_code)?;
                    if *h != entry {
                        ops.push(Op::Change { entry });
                        added.push(l.id);
                    } else {
                        settle = true;
                    }
                }
                (ls::RETURNING | ls::WITHDRAWING, Some(_)) => {
                    ops.push(Op::Delete { license_id: l.id });
                    deleted.push(l.id);
                }
                (ls::WITHDRAWING, None) => settle = true,
                (ls::ACTIVATED, Some(h)) => {
                    let entry = l.entry(serial, ctx.firm_code)?;
                    if *h != entry {
                        ops.push(Op::Change { entry });
                        changed.push(l.id);
                    }
                }
                _ => {}
            }
        }
        // Entries of licenses that live elsewhere now: deleted where a withdrawal says so.
        let foreign: Vec<i64> = k
            .mirror
            .content
            .entries
            .keys()
            .filter(|id| !rows.iter().any(|l| l.id == **id))
            .copied()
            .collect();
        if !foreign.is_empty() {
            let withdrawn: Vec<i64> = withdrawals::table
                .filter(withdrawals::container_id.eq(k.cont.id))
                .filter(withdrawals::firm_id.eq(k.firm_id))
                .filter(withdrawals::license_id.eq_any(&foreign))
                .filter(withdrawals::done_at.is_null())
                .select(withdrawals::license_id)
                .distinct()
                .load(c)?;
            for id in withdrawn {
                ops.push(Op::Delete { license_id: id });
                deleted.push(id);
            }
        }
    }
    if ops.is_empty() && !settle {
        return Ok(None);
    }
    let mut after = k.mirror.content.clone();
    after
        .apply(&ops)
        .map_err(|e| Error::internal(format!("update does not fit the mirror: {e}")))?;
    let digest_after = after.digest();
    let now = super::now();
    let expires_at = now + chrono::Duration::days(i64::from(k.settings.update_validity_days));
    let counter_to = k.mirror.counter + 1;
    let changes = serde_json::json!({"added": added, "changed": changed, "deleted": deleted,
        "locked": locking});
    let update_id: i64 = on_backend!(c, x => Reused(diesel::insert_into(updates::table)
        .values((
            updates::container_id.eq(k.cont.id),
            updates::firm_id.eq(k.firm_id),
            updates::counter_from.eq(k.mirror.counter),
            updates::counter_to.eq(counter_to),
            updates::digest_after.eq(&digest_after),
            updates::content_after.eq(serde_json::to_string(&after).expect("content")),
            updates::changes.eq(changes.to_string()),
            updates::state.eq(update_state::ISSUED),
            updates::fulfils.eq(&ctx.nonce),
            updates::created_at.eq(now),
            updates::expires_at.eq(expires_at),
        ))
        .returning(updates::id))
        .get_result(x))?;
    let body = UpdateBody {
        kind: "update".into(),
        v: protocol::VERSION,
        update_id,
        serial: serial.clone(),
        firm_code: ctx.firm_code,
        counter_from: k.mirror.counter as u64,
        counter_to: counter_to as u64,
        container_key: ctx.container_key_id(),
        issued_at: now.and_utc().timestamp(),
        expires_at: expires_at.and_utc().timestamp(),
        fulfils: ctx.nonce.clone(),
        keys: k.signer.endorsements_for(&ctx.known_keys),
        ops: vec![],
    };
    let recipient = B64
        .decode(&k.cont.enc_key)
        .map_err(|e| Error::internal(format!("container key: {e}")))?;
    audit::record(
        actor,
        Event {
            action: "update.issued",
            serial: Some(serial),
            details: serde_json::json!({"update_id": update_id, "firm_code": ctx.firm_code,
                "counter_from": k.mirror.counter, "counter_to": counter_to,
                "added": added, "changed": changed, "deleted": deleted, "locked": locking}),
            ..Default::default()
        },
    )?;
    Ok(Some(Prepared {
        issued: Issued {
            serial: serial.clone(),
            firm_code: ctx.firm_code,
            update_id,
            counter_from: k.mirror.counter,
            counter_to,
            expires_at,
            added,
            changed,
            deleted,
            locked: locking,
            update: String::new(),
        },
        body,
        ops,
        signer: k.signer.clone(),
        recipient,
    }))
}

/// An update written to the database, still to be signed and encrypted.
pub(super) struct Prepared {
    issued: Issued,
    body: UpdateBody,
    ops: Vec<Op<Entry>>,
    signer: Arc<FirmSigner>,
    recipient: Vec<u8>,
}

impl Prepared {
    fn seal(self) -> Result<Issued> {
        let key = &self.signer.key;
        let sign = |e: Entry| SignedEntry::sign(e, key);
        let mut body = self.body;
        body.ops = self
            .ops
            .into_iter()
            .map(|op| match op {
                Op::Add { entry } => Op::Add { entry: sign(entry) },
                Op::Change { entry } => Op::Change { entry: sign(entry) },
                Op::Delete { license_id } => Op::Delete { license_id },
                Op::Lock => Op::Lock,
                Op::Unlock => Op::Unlock,
            })
            .collect();
        let mut issued = self.issued;
        issued.update = protocol::write_update(&body, key, &self.recipient)?;
        Ok(issued)
    }
}

pub(super) fn read_request(text: &str) -> Result<Context> {
    Ok(protocol::read_context(text, Kind::Request)?)
}

/// Which licenses of a ticket, and which may still be returned.
#[derive(Debug, Serialize)]
pub struct TicketInfo {
    pub ticket: String,
    pub activation_mode: ActivationMode,
    pub single_container: bool,
    pub licenses: Vec<TicketLicense>,
}

#[derive(Debug, Serialize)]
pub struct TicketLicense {
    pub license_id: i64,
    pub item_id: String,
    pub firm_code: i64,
    pub product_code: i64,
    pub state: String,
    pub serial: Option<String>,
    pub returnable: bool,
    pub container_types: Vec<ContainerType>,
}

pub(super) fn returnable(settings: &Settings, o: &ItemOptions) -> bool {
    o.deactivation_allowed
        .unwrap_or(settings.deactivation_allowed)
}

/// Ticket info for the activation wizard: the ticket itself is the credential.
pub async fn ticket_info(core: &Core, code: &str) -> Result<TicketInfo> {
    let code = TicketCode::parse(code)?;
    core.db
        .read(move |c| {
            let tid = ticket_id(c, &code)?;
            let rows: Vec<LicRow> = licenses::table
                .inner_join(items::table)
                .filter(licenses::ticket_id.eq(tid))
                .filter(licenses::state.ne(ls::DELETED))
                .select(LIC_SELECT)
                .order(licenses::id.asc())
                .load(c)?;
            let mut settings_by_firm: HashMap<i64, (Settings, i64)> = HashMap::new();
            let mut out = vec![];
            for l in rows {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    settings_by_firm.entry(l.firm_id)
                {
                    let code: i64 = firms::table
                        .filter(firms::id.eq(l.firm_id))
                        .select(firms::firm_code)
                        .first(c)?;
                    slot.insert((load_settings(c, l.firm_id)?, code));
                }
                let (s, firm_code) = &settings_by_firm[&l.firm_id];
                let o = l.options()?;
                out.push(TicketLicense {
                    license_id: l.id,
                    item_id: l.item_id.clone(),
                    firm_code: *firm_code,
                    product_code: l.product_code,
                    returnable: returnable(s, &o),
                    container_types: o.container_types.clone(),
                    state: l.state,
                    serial: l.serial,
                });
            }
            // The ticket rules are the first firm's (one firm per ticket is the usual case).
            let s = settings_by_firm
                .values()
                .next()
                .map(|(s, _)| s.clone())
                .unwrap_or_default();
            Ok(TicketInfo {
                ticket: code.to_string(),
                activation_mode: s.activation_mode,
                single_container: s.single_container,
                licenses: out,
            })
        })
        .await
}

pub(super) fn ticket_id(c: &mut Conn, code: &TicketCode) -> Result<i64> {
    on_backend!(c, x => tickets::table
        .filter(tickets::code.eq(code.as_stored()))
        .select(tickets::id)
        .first(x)
        .optional())?
    .ok_or_else(|| Error::not_found("ticket", code))
}

/// The license template for a new container: the firm's keys to trust and the fingerprint
/// policy an `act` container is created with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub firm_code: i64,
    pub firm_name: String,
    /// Key id → base64 Ed25519 public key, every key the firm has had.
    pub keys: std::collections::BTreeMap<String, String>,
    pub current_key: String,
    /// How many fingerprint traits may change.
    pub fingerprint_tolerance: u32,
}

pub async fn template(core: &Core, firm_code: i64) -> Result<Template> {
    core.db
        .read(move |c| {
            let (firm_id, name, key_id): (i64, String, String) = firms::table
                .filter(firms::firm_code.eq(firm_code))
                .select((firms::id, firms::name, firms::key_id))
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("firm", firm_code))?;
            let keys: Vec<(String, String)> = firm_keys::table
                .filter(firm_keys::firm_id.eq(firm_id))
                .select((firm_keys::key_id, firm_keys::public_key))
                .load(c)?;
            let settings = load_settings(c, firm_id)?;
            Ok(Template {
                firm_code,
                firm_name: name,
                keys: keys.into_iter().collect(),
                current_key: key_id,
                fingerprint_tolerance: settings.fingerprint_tolerance,
            })
        })
        .await
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub ticket: String,
    /// The licenses to activate; none means every available license of the ticket.
    #[serde(default)]
    pub licenses: Vec<i64>,
    /// The container's armoured request.
    pub request: String,
}

/// Activates licenses of a ticket into the container that made the request.
pub async fn activate(core: &Core, interface: Interface, req: ActivateRequest) -> Result<Issued> {
    let code = TicketCode::parse(&req.ticket)?;
    let ctx = read_request(&req.request)?;
    if req.licenses.len() > 1000 {
        return Err(Error::invalid("licenses", "at most 1000 at once"));
    }
    named_once(&req.licenses)?;
    let actor = customer_actor(format!("ticket:{}", code.as_stored()), interface);
    let out = after_contact(
        core,
        actor,
        ctx,
        "activate",
        true,
        move |c, actor, ctx, k| {
            let serial = k.cont.serial.clone();
            // Only the named licenses are read (a ticket can hold hundreds), with the container's
            // outstanding ones for `issue`; the ticket's rules ask the database for what they need.
            let mut named = None;
            let (tid, rows) = if req.licenses.is_empty() {
                let tid = ticket_id(c, &code)?;
                // With those this container already asked for: a retry whose answer was lost
                // gets the update again.
                let rows: Vec<LicRow> = on_backend!(c, x => licenses::table
                .inner_join(items::table)
                .filter(licenses::ticket_id.eq(tid))
                .filter(licenses::state.eq(ls::AVAILABLE).or(licenses::state
                    .eq(ls::PENDING)
                    .and(licenses::serial.eq(&serial))))
                .filter(licenses::firm_id.eq(k.firm_id))
                .select(LIC_SELECT)
                .order(licenses::id.asc())
                .load(x))?;
                (tid, rows)
            } else {
                let n = Named::load(c, &req.licenses, Some(&code), &serial, k.firm_id)?;
                let mut rows = vec![];
                for id in &req.licenses {
                    match n.get(*id, true) {
                        Ok(l) => rows.push(l.clone()),
                        Err(e) => {
                            // An unknown ticket says so before its licenses do.
                            ticket_id(c, &code)?;
                            return Err(e);
                        }
                    }
                }
                named = Some(n);
                (rows[0].ticket_id, rows)
            };
            if named.is_some() && k.settings.activation_mode == ActivationMode::All {
                let all: i64 = on_backend!(c, x => licenses::table
                .filter(licenses::ticket_id.eq(tid))
                .filter(licenses::state.eq(ls::AVAILABLE))
                .count()
                .get_result(x))?;
                let picked = rows.iter().filter(|l| l.state == ls::AVAILABLE).count();
                if picked as i64 != all {
                    return Err(Error::NotAllowed(
                        "this ticket's licenses are activated all at once; \
                         leave the license list empty"
                            .into(),
                    ));
                }
            }
            if rows.is_empty() {
                return Err(Error::Conflict(format!(
                    "ticket {code} has no available license of firm code {}",
                    ctx.firm_code
                )));
            }
            if k.settings.single_container {
                // Two writers (or nodes) activating two licenses of one ticket into two containers
                // would each see the other's license still free: the ticket's row lock makes the
                // second wait for the first's commit, and its check then sees where that went.
                // SQLite has one writer.
                if let Conn::Pg(pg) = c {
                    tickets::table
                        .find(tid)
                        .select(tickets::id)
                        .for_update()
                        .first::<i64>(pg)?;
                }
                let elsewhere: Option<(i64, Option<String>)> = on_backend!(c, x => licenses::table
                .filter(licenses::ticket_id.eq(tid))
                .filter(licenses::serial.is_not_null())
                .filter(licenses::serial.ne(&serial))
                .select((licenses::id, licenses::serial))
                .order(licenses::id.asc())
                .first(x)
                .optional())?;
                if let Some((id, other)) = elsewhere {
                    return Err(Error::NotAllowed(format!(
                        "the licenses of this ticket must stay in one container; license {id} \
                         is in container {}",
                        other.unwrap_or_default()
                    )));
                }
            }
            let mut fresh = vec![];
            for l in &rows {
                if l.firm_id != k.firm_id {
                    return Err(Error::invalid(
                        "licenses",
                        format!(
                            "license {} belongs to another firm code than the request ({})",
                            l.id, ctx.firm_code
                        ),
                    ));
                }
                if !l.options()?.container_types.contains(&ctx.container_type) {
                    return Err(Error::NotAllowed(format!(
                        "license {} ({}) cannot go into a {} container",
                        l.id,
                        l.item_id,
                        ctx.container_type.as_str()
                    )));
                }
                match (l.state.as_str(), l.serial.as_deref()) {
                    (ls::AVAILABLE, _) => fresh.push(l),
                    // A retried activation: the update below carries it again.
                    (ls::PENDING, Some(s)) if s == serial => {}
                    (state, Some(s)) => {
                        return Err(Error::Conflict(format!(
                            "license {} is already {state} in container {s}",
                            l.id
                        )))
                    }
                    (state, None) => {
                        return Err(Error::Conflict(format!("license {} is {state}", l.id)))
                    }
                }
            }
            // Only a request that would succeed counts against the quota.
            if let Err(refused) = count_activations(c, actor, k, ctx.firm_code, fresh.len())? {
                return Ok(Err(refused));
            }
            for l in fresh {
                match named.as_mut() {
                    Some(n) => n.set(c, l.id, ls::PENDING, Some(serial.clone()))?,
                    None => set_state(c, l, ls::PENDING, Some(serial.clone()))?,
                }
                audit::record(
                    actor,
                    Event {
                        action: "license.activation_requested",
                        ticket: Some(code.as_stored()),
                        license_id: Some(l.id),
                        serial: Some(&serial),
                        ..Default::default()
                    },
                )?;
            }
            if k.cont.customer_id.is_none() {
                let customer: i64 = tickets::table
                    .filter(tickets::id.eq(tid))
                    .select(tickets::customer_id)
                    .first(c)?;
                diesel::update(containers::table.filter(containers::id.eq(k.cont.id)))
                    .set(containers::customer_id.eq(Some(customer)))
                    .execute(c)?;
            }
            let outstanding = named.map(|n| n.outstanding(&serial, k.firm_id));
            required(issue_with(c, actor, k, ctx, outstanding)?).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// A request names each license at most once.
pub(super) fn named_once(ids: &[i64]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    match ids.iter().find(|id| !seen.insert(**id)) {
        Some(id) => Err(Error::invalid(
            "licenses",
            format!("license {id} is named twice"),
        )),
        None => Ok(()),
    }
}

/// The licenses a request names, read together with the container's outstanding ones
/// (its firm's licenses in it that are not available), so `issue` needs no read of its own.
/// A change another writer commits to the container's other licenses in between is not
/// seen (as it would not be a moment earlier): the next update of the container brings it.
struct Named {
    /// Every license read, kept up to date with the request's changes (`set`), each with
    /// whether it belongs to the ticket the request named.
    rows: Vec<(LicRow, bool)>,
}

/// The container's outstanding licenses, by id.
struct Outstanding(Vec<LicRow>);

impl Named {
    /// Reads the licenses `ids` (those of the ticket `code`, when given, are marked) and the
    /// outstanding licenses of container `serial` for `firm_id`, in one query.
    fn load(
        c: &mut Conn,
        ids: &[i64],
        code: Option<&TicketCode>,
        serial: &str,
        firm_id: i64,
    ) -> Result<Named> {
        let code = code.map(|c| c.as_stored()).unwrap_or_default();
        macro_rules! load {
            ($named:expr, $prepared:expr) => {{
                let q = licenses::table
                    .inner_join(items::table)
                    .left_join(
                        tickets::table.on(tickets::id
                            .eq(licenses::ticket_id)
                            .and(tickets::code.eq(code))),
                    )
                    .filter(
                        $named.or(licenses::serial
                            .eq(serial)
                            .and(licenses::firm_id.eq(firm_id))
                            .and(licenses::state.ne(ls::AVAILABLE))),
                    )
                    .select((LIC_SELECT, tickets::id.nullable()))
                    .order(licenses::id.asc());
                if $prepared {
                    on_backend!(c, x => Reused(q).load(x))
                } else {
                    on_backend!(c, x => q.load(x))
                }
            }};
        }
        // One license (the usual request) is named with `=`: PostgreSQL plans `= ANY($1)`
        // anew on every run (its generic plan never looks cheap enough), `= $1` once. A short
        // IN list keeps its statement prepared (on SQLite one per length; diesel prepares a
        // statement with an IN list anew on every run).
        let found: Vec<(LicRow, Option<i64>)> = match ids {
            [id] => load!(licenses::id.eq(*id), true)?,
            _ => load!(licenses::id.eq_any(ids), ids.len() <= 8)?,
        };
        let rows = found.into_iter().map(|(l, t)| (l, t.is_some())).collect();
        Ok(Named { rows })
    }

    /// License `id` as named by the request: of the ticket, when the request named one.
    fn get(&self, id: i64, ticket: bool) -> Result<&LicRow> {
        self.rows
            .iter()
            .find(|(l, of_ticket)| l.id == id && (*of_ticket || !ticket))
            .map(|(l, _)| l)
            .ok_or_else(|| Error::not_found("license", id))
    }

    /// `set_state` for license `id` (to pending or returning), remembered here.
    fn set(&mut self, c: &mut Conn, id: i64, to: &str, serial: Option<String>) -> Result<()> {
        debug_assert_ne!(to, ls::ACTIVATED, "activated_at is not kept here");
        let (l, _) = self
            .rows
            .iter_mut()
            .find(|(l, _)| l.id == id)
            .ok_or_else(|| Error::not_found("license", id))?;
        set_state(c, l, to, serial.clone())?;
        l.state = to.to_string();
        l.serial = serial;
        l.version += 1;
        Ok(())
    }

    /// What `issue` needs: the container's outstanding licenses after the changes made here.
    fn outstanding(self, serial: &str, firm_id: i64) -> Outstanding {
        Outstanding(
            self.rows
                .into_iter()
                .map(|(l, _)| l)
                .filter(|l| l.serial.as_deref() == Some(serial))
                .filter(|l| l.firm_id == firm_id && l.state != ls::AVAILABLE)
                .collect(),
        )
    }
}

/// Counts activations no quota refuses (support approved them) in this month.
pub(super) fn add_activations(c: &mut Conn, firm_id: i64, n: i64) -> Result<()> {
    let month = super::now().format("%Y-%m").to_string();
    add_to_shard(c, firm_id, &month, 1 + crate::store::writer_tag(), n, 0)
}

/// Adds to one shard of a month's activation count (creating it).
fn add_to_shard(
    c: &mut Conn,
    firm_id: i64,
    month: &str,
    shard: i64,
    n: i64,
    refused: i64,
) -> Result<()> {
    let changed = on_backend!(c, x => Reused(
        diesel::update(
            activation_counts::table
                .filter(activation_counts::firm_id.eq(firm_id))
                .filter(activation_counts::month.eq(month))
                .filter(activation_counts::shard.eq(shard)),
        )
        .set((
            activation_counts::activations.eq(activation_counts::activations + n),
            activation_counts::refused.eq(activation_counts::refused + refused),
        ))
        .returning(activation_counts::shard),
    )
    .load::<i64>(x))?
    .len();
    if changed == 1 {
        return Ok(());
    }
    let res = diesel::insert_into(activation_counts::table)
        .values((
            activation_counts::firm_id.eq(firm_id),
            activation_counts::month.eq(month),
            activation_counts::shard.eq(shard),
            activation_counts::activations.eq(n),
            activation_counts::refused.eq(refused),
        ))
        .execute(c);
    match res {
        // Another writer made the row first: run again and add to it.
        Err(e) if is_unique_violation(&e) => Err(Error::Retry),
        r => r.map(|_| ()).map_err(Error::from),
    }
}

/// Counts `n` activations of the firm in this month against the monthly quota. Past the
/// quota the refusal is counted and committed, and nothing else of the request is.
pub(super) fn count_activations(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    firm_code: i64,
    n: usize,
) -> Result<Committed<()>> {
    if n == 0 {
        return Ok(Ok(()));
    }
    let n = n as i64;
    let month = super::now().format("%Y-%m").to_string();
    let quota = k.settings.monthly_activation_quota;
    // Without a quota nothing is refused: the count goes to this writer's own shard, so
    // parallel writers never wait for each other. With one, shard 0's row lock puts the
    // firm's activations in a line for an exact check.
    let shard = if quota == 0 {
        1 + crate::store::writer_tag()
    } else {
        0
    };
    add_to_shard(c, k.firm_id, &month, shard, n, 0)?;
    if quota == 0 {
        return Ok(Ok(()));
    }
    let total: i64 = activation_counts::table
        .filter(activation_counts::firm_id.eq(k.firm_id))
        .filter(activation_counts::month.eq(&month))
        .select(activation_counts::activations)
        .load::<i64>(c)?
        .iter()
        .sum();
    if total <= i64::from(quota) {
        return Ok(Ok(()));
    }
    add_to_shard(c, k.firm_id, &month, 0, -n, 1)?;
    audit::record(
        actor,
        Event {
            action: "activation.quota_refused",
            serial: Some(&k.cont.serial),
            details: serde_json::json!({"firm_code": firm_code, "month": month,
                "quota": quota, "requested": n}),
            ..Default::default()
        },
    )?;
    Ok(Err(Refusal::Error(Error::QuotaExceeded {
        firm_code,
        quota,
    })))
}

/// Confirms an update with the container's receipt. A receipt that fits no update issued
/// for the container is refused and changes nothing.
pub async fn confirm_receipt(
    core: &Core,
    interface: Interface,
    receipt: &str,
) -> Result<Confirmed> {
    let ctx = protocol::read_context(receipt, Kind::Receipt)?;
    let out = core
        .db
        .write(move |c| {
            let actor = customer_actor(format!("container:{}", ctx.serial), interface);
            let (firm, found) = firm_and_container(c, ctx.firm_code, &ctx.serial, &ctx.digest)?;
            let firm_id = firm.id;
            let (cont, joined, _) = find_container(c, &actor, &ctx, false, found)?;
            let (mut mirror, issued) = mirror_or_load(c, cont.id, firm_id, joined)?;
            match reconcile(
                c,
                &actor,
                &cont,
                firm_id,
                ctx.firm_code,
                &mut mirror,
                &ctx,
                issued,
            )? {
                Seen::Confirmed(done) => return Ok(done),
                Seen::Same => {
                    return Ok(Confirmed {
                        serial: cont.serial.clone(),
                        firm_code: ctx.firm_code,
                        counter: mirror.counter,
                        already_confirmed: true,
                        activated: vec![],
                        released: vec![],
                    })
                }
                Seen::Stale { .. } | Seen::Unknown => {}
            }
            // Refused, and nothing changed; say as exactly as possible why.
            let update_id = ctx.update_id.unwrap_or_default();
            let issued_for_it: Option<i64> = updates::table
                .filter(updates::id.eq(update_id))
                .filter(updates::container_id.eq(cont.id))
                .select(updates::counter_to)
                .first(c)
                .optional()?;
            Err(Error::Mismatch(match issued_for_it {
                None => format!(
                    "update {update_id} was not issued for container {}",
                    cont.serial
                ),
                Some(to) if to != ctx.counter as i64 => format!(
                    "the receipt shows counter {} but update {update_id} makes it {to}",
                    ctx.counter
                ),
                Some(_) => format!(
                    "the receipt (counter {}, digest {}…) matches no update issued for \
                     container {} (confirmed: counter {})",
                    ctx.counter,
                    &ctx.digest[..16],
                    cont.serial,
                    mirror.counter
                ),
            }))
        })
        .await?;
    if !out.already_confirmed {
        Stats::add(&core.stats.receipts_confirmed, 1);
    }
    Ok(out)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub licenses: Vec<i64>,
    /// The armoured request of the container that holds them.
    pub request: String,
}

/// Returns licenses from the container that asks (deactivation): they are available
/// again only when the receipt proves them gone.
pub async fn deactivate(core: &Core, interface: Interface, req: ReturnRequest) -> Result<Issued> {
    let ctx = read_request(&req.request)?;
    if req.licenses.is_empty() || req.licenses.len() > 1000 {
        return Err(Error::invalid(
            "licenses",
            "name 1 to 1000 licenses to return",
        ));
    }
    named_once(&req.licenses)?;
    let actor = customer_actor(format!("container:{}", ctx.serial), interface);
    let out = after_contact(
        core,
        actor,
        ctx,
        "return",
        false,
        move |c, actor, ctx, k| {
            let mut named = Named::load(c, &req.licenses, None, &k.cont.serial, k.firm_id)?;
            for id in &req.licenses {
                let l = named.get(*id, false)?;
                if l.serial.as_deref() != Some(k.cont.serial.as_str()) {
                    return Err(Error::Conflict(format!(
                        "license {id} is not in container {}",
                        k.cont.serial
                    )));
                }
                if l.firm_id != k.firm_id {
                    return Err(Error::invalid(
                        "licenses",
                        format!(
                            "license {id} belongs to another firm code than the request ({})",
                            ctx.firm_code
                        ),
                    ));
                }
                if !returnable(&k.settings, &l.options()?) {
                    return Err(Error::NotAllowed(format!(
                        "license {id} ({}) may not be returned",
                        l.item_id
                    )));
                }
                match l.state.as_str() {
                    ls::ACTIVATED => {
                        named.set(c, *id, ls::RETURNING, Some(k.cont.serial.clone()))?;
                        audit::record(
                            actor,
                            Event {
                                action: "license.return_requested",
                                license_id: Some(*id),
                                serial: Some(&k.cont.serial),
                                ..Default::default()
                            },
                        )?;
                    }
                    ls::RETURNING => {}
                    state => {
                        return Err(Error::Conflict(format!(
                            "license {id} is {state}; only an activated license can be returned"
                        )))
                    }
                }
            }
            let outstanding = named.outstanding(&k.cont.serial, k.firm_id);
            required(issue_with(c, actor, k, ctx, Some(outstanding))?).map(Ok)
        },
    )
    .await?;
    deliver(core, out)
}

/// The automatic updates waiting for a container (licenses pushed to it, changed or
/// withdrawn), as one update; `None` when nothing waits.
pub async fn pull_updates(
    core: &Core,
    interface: Interface,
    request: &str,
) -> Result<Option<Issued>> {
    let ctx = read_request(request)?;
    let actor = customer_actor(format!("container:{}", ctx.serial), interface);
    let out = after_contact(core, actor, ctx, "updates", false, |c, actor, ctx, k| {
        issue(c, actor, k, ctx).map(Ok)
    })
    .await;
    match out {
        // For a blacklisted container the lock is the update it pulls.
        Err(Error::Blacklisted { lock: Some(u), .. }) => Ok(Some(*u)),
        Err(e) => Err(e),
        Ok(p) => p.map(|p| deliver(core, p)).transpose(),
    }
}

/// Pushes an available license to a container as an automatic update: it is added by the
/// container's next update, before anything else that contact asks for.
pub async fn push_license(
    core: &Core,
    actor: &Actor,
    serial: String,
    license_id: i64,
) -> Result<()> {
    actor.require(&[Role::Admin, Role::Support], "push licenses to containers")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let cont: ContainerRow = containers::table
                .filter(containers::serial.eq(&serial))
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("container", &serial))?;
            let l: LicRow = licenses::table
                .inner_join(items::table)
                .filter(licenses::id.eq(license_id))
                .select(LIC_SELECT)
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("license", license_id))?;
            if l.state != ls::AVAILABLE {
                return Err(Error::Conflict(format!(
                    "license {license_id} is {} and cannot be pushed",
                    l.state
                )));
            }
            let kind = ContainerType::parse(&cont.kind)?;
            if !l.options()?.container_types.contains(&kind) {
                return Err(Error::NotAllowed(format!(
                    "license {license_id} cannot go into a {} container",
                    cont.kind
                )));
            }
            set_state(c, &l, ls::PENDING, Some(serial.clone()))?;
            audit::record(
                &actor,
                Event {
                    action: "license.pushed",
                    license_id: Some(license_id),
                    serial: Some(&serial),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
}

/// A container as support sees it.
#[derive(Debug, Serialize)]
pub struct ContainerView {
    pub serial: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub state_reason: String,
    pub customer_id: Option<String>,
    pub firms: Vec<ContainerFirmView>,
    pub licenses: Vec<ContainerLicense>,
}

#[derive(Debug, Serialize)]
pub struct ContainerFirmView {
    pub firm_code: i64,
    pub counter: i64,
    pub digest: String,
    pub confirmed_at: chrono::NaiveDateTime,
    /// Updates issued from the confirmed counter and not yet confirmed.
    pub unconfirmed_updates: Vec<i64>,
}

#[derive(Debug, Serialize)]
pub struct ContainerLicense {
    pub license_id: i64,
    pub item_id: String,
    pub state: String,
}

pub async fn get_container(core: &Core, actor: &Actor, serial: String) -> Result<ContainerView> {
    actor.require(
        &[Role::Admin, Role::Support, Role::Sales],
        "read containers",
    )?;
    core.db
        .read(move |c| {
            let cont: ContainerRow = containers::table
                .filter(containers::serial.eq(&serial))
                .first(c)
                .optional()?
                .ok_or_else(|| Error::not_found("container", &serial))?;
            let customer_id = match cont.customer_id {
                Some(id) => crate::store::schema::customers::table
                    .filter(crate::store::schema::customers::id.eq(id))
                    .select(crate::store::schema::customers::external_id)
                    .first(c)
                    .optional()?,
                None => None,
            };
            let rows: Vec<(i64, i64, String, chrono::NaiveDateTime, i64)> = container_firms::table
                .inner_join(firms::table.on(firms::id.eq(container_firms::firm_id)))
                .filter(container_firms::container_id.eq(cont.id))
                .select((
                    firms::firm_code,
                    container_firms::counter,
                    container_firms::digest,
                    container_firms::confirmed_at,
                    firms::id,
                ))
                .load(c)?;
            let mut fv = vec![];
            for (firm_code, counter, digest, confirmed_at, firm_id) in rows {
                let unconfirmed = updates::table
                    .filter(updates::container_id.eq(cont.id))
                    .filter(updates::firm_id.eq(firm_id))
                    .filter(updates::counter_from.eq(counter))
                    .filter(updates::state.eq(update_state::ISSUED))
                    .select(updates::id)
                    .load(c)?;
                fv.push(ContainerFirmView {
                    firm_code,
                    counter,
                    digest,
                    confirmed_at,
                    unconfirmed_updates: unconfirmed,
                });
            }
            let lics: Vec<(i64, String, String)> = licenses::table
                .inner_join(items::table)
                .filter(licenses::serial.eq(&cont.serial))
                .select((licenses::id, items::item_id, licenses::state))
                .order(licenses::id.asc())
                .load(c)?;
            Ok(ContainerView {
                serial: cont.serial,
                kind: cont.kind,
                state: cont.state,
                state_reason: cont.state_reason,
                customer_id,
                firms: fv,
                licenses: lics
                    .into_iter()
                    .map(|(license_id, item_id, state)| ContainerLicense {
                        license_id,
                        item_id,
                        state,
                    })
                    .collect(),
            })
        })
        .await
}

/// Housekeeping: pending activations whose every unconfirmed update has expired. They are
/// reported, not released: a container may have applied an update just before it expired
/// and not made contact since, so only its next contact (which re-issues what is still
/// outstanding) or a person (withdraw, push) can settle them. Returns (license, serial).
pub fn stale_pending(c: &mut Conn) -> Result<Vec<(i64, String)>> {
    let now = super::now();
    let rows: Vec<(i64, String, i64, i64)> = licenses::table
        .inner_join(containers::table.on(containers::serial.nullable().eq(licenses::serial)))
        .filter(licenses::state.eq(ls::PENDING))
        .select((
            licenses::id,
            containers::serial,
            containers::id,
            licenses::firm_id,
        ))
        .load(c)?;
    let mut out = vec![];
    for (license, serial, container, firm) in rows {
        let live: i64 = updates::table
            .filter(updates::container_id.eq(container))
            .filter(updates::firm_id.eq(firm))
            .filter(updates::state.eq(update_state::ISSUED))
            .filter(updates::expires_at.ge(now))
            .count()
            .get_result(c)?;
        if live == 0 {
            out.push((license, serial));
        }
    }
    Ok(out)
}
