//! The license use API: access tokens got with a credential, and seats opened, kept by
//! heartbeats, released, or reclaimed when their lease runs out.
//!
//! The quantity is the database's to enforce: a license of n seats has slots 0..n-1 and a
//! seat row per slot under a unique constraint, so two nodes that both counted a free slot
//! cannot both take it (the second insert fails and its write runs again). A seat's id is
//! its lease's fencing token, never given again: a heartbeat that comes after the seat was
//! reclaimed finds nothing to renew.
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::X509;
use serde_json::json;

use super::authority;
use crate::domain::cloud::{check_station, free_slot, lease_seconds, seats, serves, SeatCounting};
use crate::domain::{Actor, ContainerState, ContainerType, Interface, ItemOptions, Role};
use crate::error::{Error, Result};
use crate::protocol::cloud::{
    token_message, Lease, LicenseUse, OpenRequest, Status, Token, TokenRequest, TOKEN_SECONDS,
    TOKEN_SKEW_SECONDS,
};
use crate::service::audit::{self, Event};
use crate::service::{now, Core};
use crate::store::cloud::{self as store, Holder, NewSeat, SeatLicense, SeatRow};
use crate::store::{containers, firms, Conn};

fn token_hash(token: &str) -> String {
    hex::encode(openssl::sha::sha256(token.as_bytes()))
}

fn unix(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

/// Who acts through a credential (the history names its fingerprint).
pub(super) fn credential_actor(fingerprint_or_id: impl std::fmt::Display) -> Actor {
    Actor {
        name: format!("credential:{fingerprint_or_id}"),
        role: Role::Customer,
        interface: Interface::Cloud,
    }
}

/// Gives an access token for a signed token request: the certificate must be a credential
/// this server issued and has not revoked, from the firm's authority, for its container;
/// the signature must be the credential key's over this request; the request's time within
/// `TOKEN_SKEW_SECONDS` of the server's; its nonce never seen before.
pub async fn token(core: &Core, req: TokenRequest) -> Result<Token> {
    if req.certificate.len() > 16 * 1024 {
        return Err(Error::invalid("certificate", "at most 16 KiB"));
    }
    if req.nonce.len() != 32 || !req.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid("nonce", "32 hex digits"));
    }
    let cert = X509::from_pem(req.certificate.as_bytes())
        .map_err(|_| Error::invalid("certificate", "not a PEM certificate"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(req.signature.as_bytes())
        .ok()
        .filter(|s| s.len() <= 256)
        .ok_or_else(|| Error::invalid("signature", "base64 of a DER ECDSA signature"))?;
    let fingerprint = authority::fingerprint(&cert)?;
    let at = chrono::Utc::now().timestamp();
    let fp = fingerprint.clone();
    let (cred, serial, firm_code, ca_pem) = core
        .db
        .read(move |c| {
            let cred = store::credential_by_fingerprint(c, &fp)?.ok_or_else(|| {
                Error::NotAllowed("the credential is refused: this server did not issue it".into())
            })?;
            let serial = containers::serial_of(c, cred.container_id)?;
            let firm_code = firms::code_of(c, cred.firm_id)?;
            let (ca_pem, _) = store::authority(c, cred.firm_id)?
                .ok_or_else(|| Error::internal("a credential without its authority"))?;
            Ok((cred, serial, firm_code, ca_pem))
        })
        .await?;
    if let Some(when) = cred.revoked_at {
        return Err(Error::NotAllowed(format!(
            "the credential was revoked on {} ({}); ask for a new credential file",
            when.format("%Y-%m-%d %H:%M UTC"),
            cred.revoked_reason.as_deref().unwrap_or("no reason given")
        )));
    }
    let ca = X509::from_pem(ca_pem.as_bytes())
        .map_err(|e| Error::internal(format!("authority certificate: {e}")))?;
    authority::check(&ca, &cert, firm_code, &serial, at)?;
    let key = cert
        .public_key()
        .map_err(|_| Error::invalid("certificate", "its public key cannot be read"))?;
    let good = Verifier::new(MessageDigest::sha256(), &key)
        .and_then(|mut v| {
            v.verify_oneshot(&signature, &token_message(&fingerprint, &req.nonce, req.at))
        })
        .unwrap_or(false);
    if !good {
        return Err(Error::InvalidMessage(
            "the token request's signature is not the credential key's".into(),
        ));
    }
    if (req.at - at).abs() > TOKEN_SKEW_SECONDS {
        return Err(Error::InvalidMessage(format!(
            "the token request's time is {} s off the server's clock (at most {TOKEN_SKEW_SECONDS} s)",
            req.at - at
        )));
    }
    let mut raw = [0u8; 32];
    openssl::rand::rand_bytes(&mut raw).expect("CSPRNG");
    let token = hex::encode(raw);
    let hash = token_hash(&token);
    let expires = now() + Duration::seconds(TOKEN_SECONDS);
    let nonce = req.nonce.to_ascii_lowercase();
    core.db
        .write(move |c| {
            // Revoked meanwhile (on any node): refused now.
            let cred = store::credential_by_fingerprint(c, &fingerprint)?
                .filter(|r| r.revoked_at.is_none())
                .ok_or_else(|| Error::NotAllowed("the credential was revoked".into()))?;
            store::insert_token(c, &hash, cred.id, &nonce, expires)
        })
        .await?;
    Ok(Token {
        token,
        serial,
        firm_code,
        expires_at: unix(expires),
    })
}

/// The holder of `token` (a credential in force), in the write that uses it.
pub(super) fn holder(c: &mut Conn, token: &str, at: NaiveDateTime) -> Result<Holder> {
    store::holder(c, &token_hash(token), at)?.ok_or(Error::Unauthenticated)
}

fn lease(seat: &SeatRow, secs: u32) -> Lease {
    Lease {
        seat: seat.id,
        license_id: seat.license_id,
        slot: seat.slot,
        expires_at: unix(seat.expires_at),
        lease_seconds: secs,
        heartbeat_seconds: (secs / 3).max(1),
    }
}

/// Reclaims the lapsed seats of license `license_id` (events: one per seat, by whichever
/// node's delete returned it).
fn reclaim(
    c: &mut Conn,
    actor: &Actor,
    license_id: i64,
    serial: &str,
    at: NaiveDateTime,
) -> Result<()> {
    for s in store::reclaim(c, license_id, at)? {
        reclaimed_event(actor, &s, serial)?;
    }
    Ok(())
}

fn reclaimed_event(actor: &Actor, s: &SeatRow, serial: &str) -> Result<()> {
    audit::record(
        actor,
        Event {
            action: "cloud.seat_reclaimed",
            license_id: Some(s.license_id),
            serial: Some(serial),
            details: json!({"seat": s.id, "slot": s.slot, "station": s.station,
                "lease_ended": s.expires_at}),
            ..Default::default()
        },
    )
}

fn day(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Whether a license's options serve `features` at `at` (not expired, not before its
/// activation time).
fn usable(o: &ItemOptions, features: u32, at: NaiveDateTime) -> bool {
    let t = at.and_utc();
    serves(o.feature_map, features)
        && o.expiration_time.is_none_or(|e| e > t)
        && o.activation_time.is_none_or(|a| a <= t)
}

/// What the licenses that would serve a request offer.
pub(super) enum Pick {
    /// The station's seat (counted per station), renewed with one more holder.
    Joined(SeatRow, u32),
    /// A free slot of a license.
    Free {
        license: SeatLicense,
        options: Box<ItemOptions>,
        slot: i32,
        /// Seats in use once this one is taken.
        in_use: i32,
    },
    /// Every seat is in use.
    Full { first: i64, seats: u32 },
}

/// The licenses of the holder's container that serve `product_code` and `features` now
/// and may go into `into` (none: used in the cloud), oldest first; none is an error.
pub(super) fn candidates(
    c: &mut Conn,
    h: &Holder,
    req: &OpenRequest,
    into: Option<ContainerType>,
    at: NaiveDateTime,
) -> Result<Vec<(SeatLicense, ItemOptions)>> {
    let (firm_id, _) = firms::by_code(c, req.firm_code)?;
    if firm_id != h.firm_id {
        return Err(Error::NotAllowed(format!(
            "this credential is for cloud container {}, which holds no licenses of firm code {}",
            h.serial, req.firm_code
        )));
    }
    let cont = containers::get(c, &h.serial)?;
    if cont.state != ContainerState::Active {
        return Err(Error::NotAllowed(format!(
            "cloud container {} is {}",
            h.serial,
            cont.state.as_str()
        )));
    }
    let mut found = vec![];
    for l in store::licenses_for(c, &h.serial, firm_id, Some(req.product_code))? {
        let o: ItemOptions = serde_json::from_str(&l.options)
            .map_err(|e| Error::internal(format!("license {} options: {e}", l.id)))?;
        if usable(&o, req.features, at) && into.is_none_or(|t| o.container_types.contains(&t)) {
            found.push((l, o));
        }
    }
    if found.is_empty() {
        return Err(Error::not_found(
            "license",
            format!(
                "firm code {}, product code {}, features {:#x} in cloud container {}{}",
                req.firm_code,
                req.product_code,
                req.features,
                h.serial,
                into.map_or(String::new(), |t| format!(
                    " that may go into a {} container",
                    t.as_str()
                ))
            ),
        ));
    }
    Ok(found)
}

/// Finds a seat for `station` among `candidates` (lapsed seats reclaimed first): the
/// station's own when seats are counted per station (`join`), else a free slot.
pub(super) fn pick(
    c: &mut Conn,
    actor: &Actor,
    h: &Holder,
    candidates: Vec<(SeatLicense, ItemOptions)>,
    station: &str,
    join: bool,
    at: NaiveDateTime,
) -> Result<Pick> {
    let first = candidates[0].0.id;
    let mut total = 0;
    for (l, o) in candidates {
        // The count below is the database's to keep: two writers that both saw a slot free
        // would have the second insert refused by the unique slot; the row lock makes them
        // count one after the other instead (and keeps the counters' row from being taken
        // in the opposite order by two writers).
        if !store::lock_license(c, l.id, &h.serial)? {
            // Taken out of the container by a write that committed meanwhile.
            continue;
        }
        reclaim(c, actor, l.id, &h.serial, at)?;
        let held = store::seats_of(c, l.id)?;
        if join && o.seat_counting == SeatCounting::PerStation {
            let own = held
                .iter()
                .find(|s| s.station == station && s.borrowed_license_id.is_none());
            if let Some(s) = own {
                let secs = lease_seconds(o.lease_seconds);
                let until = at + Duration::seconds(secs.into());
                if let Some(s) = store::renew(c, s.id, s.credential_id, 1, at, until)? {
                    return Ok(Pick::Joined(s, secs));
                }
            }
        }
        let n = seats(o.license_quantity);
        total += n;
        let taken: Vec<i32> = held.iter().map(|s| s.slot).collect();
        if let Some(slot) = free_slot(&taken, n) {
            return Ok(Pick::Free {
                in_use: i32::try_from(held.len() + 1).unwrap_or(i32::MAX),
                license: l,
                options: Box::new(o),
                slot,
            });
        }
    }
    Ok(Pick::Full {
        first,
        seats: total,
    })
}

/// Takes the free slot `pick` found and records it; `borrowed`: for that license.
#[allow(clippy::too_many_arguments)]
pub(super) fn take(
    c: &mut Conn,
    actor: &Actor,
    h: &Holder,
    license: &SeatLicense,
    slot: i32,
    in_use: i32,
    station: &str,
    until: NaiveDateTime,
    borrowed: Option<i64>,
    at: NaiveDateTime,
) -> Result<SeatRow> {
    let seat = store::take(
        c,
        &NewSeat {
            license_id: license.id,
            slot,
            credential_id: h.credential_id,
            station,
            expires_at: until,
            borrowed,
        },
        at,
    )?;
    store::count_use(c, license.id, &day(at), Some(in_use))?;
    audit::record(
        actor,
        Event {
            action: "cloud.seat_taken",
            license_id: Some(license.id),
            serial: Some(&h.serial),
            details: json!({"seat": seat.id, "slot": slot, "station": station,
                "in_use": in_use, "borrowed_license": borrowed}),
            ..Default::default()
        },
    )?;
    Ok(seat)
}

/// Counts and records a denial (every seat in use); the error to answer with.
pub(super) fn deny(
    c: &mut Conn,
    actor: &Actor,
    h: &Holder,
    req: &OpenRequest,
    first: i64,
    seats: u32,
    at: NaiveDateTime,
) -> Result<Error> {
    store::count_use(c, first, &day(at), None)?;
    audit::record(
        actor,
        Event {
            action: "cloud.seat_denied",
            license_id: Some(first),
            serial: Some(&h.serial),
            details: json!({"station": req.station, "seats": seats,
                "product_code": req.product_code, "features": req.features}),
            ..Default::default()
        },
    )?;
    Ok(Error::NoSeat(format!(
        "all {seats} seats of product code {} in cloud container {} are in use",
        req.product_code, h.serial
    )))
}

/// Opens a seat of a license of the credential's container with the firm code, product
/// code and feature bits asked for. Counted per access, every open takes a seat; per
/// station, the station's opens share one. No seat free: refused, and the denial counted.
pub async fn open(core: &Core, token: String, req: OpenRequest) -> Result<Lease> {
    check_station(&req.station)?;
    core.db
        .write(move |c| {
            let at = now();
            let h = holder(c, &token, at)?;
            let actor = credential_actor(h.credential_id);
            let found = candidates(c, &h, &req, None, at)?;
            match pick(c, &actor, &h, found, &req.station, true, at)? {
                Pick::Joined(s, secs) => Ok(Ok(lease(&s, secs))),
                Pick::Free {
                    license,
                    options,
                    slot,
                    in_use,
                } => {
                    let secs = lease_seconds(options.lease_seconds);
                    let until = at + Duration::seconds(secs.into());
                    let seat = take(
                        c,
                        &actor,
                        &h,
                        &license,
                        slot,
                        in_use,
                        &req.station,
                        until,
                        None,
                        at,
                    )?;
                    Ok(Ok(lease(&seat, secs)))
                }
                // The denial is committed with the refusal.
                Pick::Full { first, seats } => {
                    Ok(Err(deny(c, &actor, &h, &req, first, seats, at)?))
                }
            }
        })
        .await?
}

/// The holder of `token` and its seat `seat`, still held at `at`; a seat no longer held
/// is `LeaseLost`.
fn held(c: &mut Conn, token: &str, seat: i64, at: NaiveDateTime) -> Result<(Holder, SeatRow)> {
    let h = holder(c, token, at)?;
    match store::seat(c, seat, h.credential_id, &h.serial, at)? {
        Some(s) => Ok((h, s)),
        None => Err(Error::LeaseLost(seat)),
    }
}

/// Keeps seat `seat` for another lease. A seat no longer held (released, reclaimed, its
/// credential revoked) stays gone: `LeaseLost`.
pub async fn heartbeat(core: &Core, token: String, seat: i64) -> Result<Lease> {
    core.db
        .write(move |c| {
            let at = now();
            let (h, s) = held(c, &token, seat, at)?;
            let secs = lease_seconds(store::lease_of(c, s.license_id)?);
            let until = at + Duration::seconds(secs.into());
            match store::renew(c, s.id, h.credential_id, 0, at, until)? {
                Some(s) => Ok(lease(&s, secs)),
                None => Err(Error::LeaseLost(seat)),
            }
        })
        .await
}

/// Releases seat `seat` (per station: one of the station's opens; the seat ends with the
/// last). A seat no longer held: `LeaseLost`.
pub async fn release(core: &Core, token: String, seat: i64) -> Result<()> {
    core.db
        .write(move |c| {
            let at = now();
            let (h, s) = held(c, &token, seat, at)?;
            // One of a station's opens: the seat stays for the others (one statement, so two
            // releases at once count down twice, and the last one deletes it).
            if store::drop_holder(c, s.id, h.credential_id)?.is_some() {
                return Ok(());
            }
            if store::release(c, seat, h.credential_id)?.is_none() {
                return Err(Error::LeaseLost(seat));
            }
            audit::record(
                &credential_actor(h.credential_id),
                Event {
                    action: "cloud.seat_released",
                    license_id: Some(s.license_id),
                    serial: Some(&h.serial),
                    details: json!({"seat": s.id, "slot": s.slot, "station": s.station}),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
}

/// Activates a ticket's licenses into the credential's own cloud container (the activation
/// wizard's way in): the same rules as any activation; the ticket must be the container's
/// customer's.
pub async fn activate_ticket(
    core: &Core,
    token: String,
    req: super::CloudActivation,
) -> Result<Vec<i64>> {
    let h = core.db.read(move |c| holder(c, &token, now())).await?;
    let owner = core
        .db
        .read({
            let serial = h.serial.clone();
            move |c| Ok(containers::get(c, &serial)?.customer_id)
        })
        .await?;
    let actor = credential_actor(h.credential_id);
    super::activate_for(core, &actor, h.serial, req, owner).await
}

/// The licenses of the credential's container and their seats in use.
pub async fn status(core: &Core, token: String) -> Result<Status> {
    core.db
        .read(move |c| {
            let h = holder(c, &token, now())?;
            let firm_code = firms::code_of(c, h.firm_id)?;
            Ok(Status {
                licenses: uses(c, &h.serial, h.firm_id, firm_code)?,
                serial: h.serial,
            })
        })
        .await
}

/// The licenses activated in cloud container `serial` and their seats in use now.
pub(super) fn uses(
    c: &mut Conn,
    serial: &str,
    firm_id: i64,
    firm_code: i64,
) -> Result<Vec<LicenseUse>> {
    let at = now();
    let mut out = vec![];
    for l in store::licenses_for(c, serial, firm_id, None)? {
        let o: ItemOptions = serde_json::from_str(&l.options)
            .map_err(|e| Error::internal(format!("license {} options: {e}", l.id)))?;
        out.push(LicenseUse {
            license_id: l.id,
            item_id: l.item_id,
            firm_code,
            product_code: l.product_code,
            feature_map: o.feature_map,
            seats: seats(o.license_quantity),
            in_use: u32::try_from(store::in_use(c, l.id, at)?).unwrap_or(0),
            seat_counting: match o.seat_counting {
                SeatCounting::PerAccess => "per_access".into(),
                SeatCounting::PerStation => "per_station".into(),
            },
            lease_seconds: lease_seconds(o.lease_seconds),
        });
    }
    Ok(out)
}

/// Reclaims every lapsed seat and deletes lapsed tokens (housekeeping, any node; each seat
/// once). Returns the seats reclaimed.
pub async fn reclaim_lapsed(core: &Core) -> Result<usize> {
    core.db
        .write(|c| {
            let at = now();
            let actor = Actor::system(Interface::System);
            let seats = store::reclaim_all(c, at, 1000)?;
            for s in &seats {
                let serial = store::serial_of_license(c, s.license_id)?.unwrap_or_default();
                reclaimed_event(&actor, s, &serial)?;
            }
            store::purge_tokens(c, at)?;
            Ok(seats.len())
        })
        .await
}
