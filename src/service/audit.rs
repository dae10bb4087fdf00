//! The history: every change writes an event in the same transaction, chained by hash.
//!
//! The chain alone is SHA-256 without a key: whoever can write the database can rewrite an
//! event and recompute every hash after it. So the server signs checkpoints of the chain
//! (its head's event id and hash, and when) with an audit key (Ed25519) whose private half
//! is sealed under the master key, which the database does not hold. `verify` checks the
//! chain against the checkpoints with the public key alone: a rewritten and recomputed
//! chain no longer has the hash a checkpoint signed, and a forged checkpoint does not verify.
//! Checkpoints are exported (`licentia audit checkpoints`) and logged, so that a copy lives
//! outside the database.
use serde::Serialize;

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{Actor, Role};
use crate::error::{Error, Result};
use crate::protocol::crypto::{self, SigningKey};
use crate::store::checkpoints;
pub use crate::store::checkpoints::Checkpoint;
pub use crate::store::history::EventRow;
use crate::store::history::{self, chain_hash};
use crate::store::{audit_head as read_head, Conn};

#[derive(Default)]
pub struct Event<'a> {
    pub action: &'a str,
    pub order_id: Option<i64>,
    pub ticket: Option<&'a str>,
    pub license_id: Option<i64>,
    pub serial: Option<&'a str>,
    pub details: serde_json::Value,
}

/// Records one event of the change being written; it is appended to the chain in the same
/// transaction. Call inside `Db::write` (elsewhere it is an error).
pub fn record(actor: &Actor, ev: Event) -> Result<()> {
    history::defer(EventRow {
        id: 0,
        at: super::now(),
        actor: actor.name.clone(),
        interface: actor.interface.as_str().to_string(),
        action: ev.action.to_string(),
        order_id: ev.order_id,
        ticket: ev.ticket.map(str::to_string),
        license_id: ev.license_id,
        serial: ev.serial.map(str::to_string),
        details: ev.details.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    })
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    /// Checkpoints whose signature and event hash were checked.
    pub checkpoints: u64,
    /// Events after the newest checkpoint: the chain alone vouches for them.
    pub after_last_checkpoint: u64,
    pub problems: Vec<String>,
}

/// What a checkpoint signs.
pub fn checkpoint_message(event_id: i64, hash: &str, at: chrono::NaiveDateTime) -> Vec<u8> {
    format!(
        "licentia-audit-checkpoint/v1\n{event_id}\n{hash}\n{}",
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
    )
    .into_bytes()
}

/// The audit key, made (and stored sealed) on first use.
async fn audit_key(core: &Core) -> Result<SigningKey> {
    let stored = core.db.read(checkpoints::key).await?;
    let sealed = match stored {
        Some((_, sealed)) => sealed,
        None => {
            let key = SigningKey::generate();
            let public = hex::encode(key.public());
            let sealed = core.master.seal(&key.raw(), AUDIT_KEY_AAD)?;
            core.db
                .write(move |c| {
                    // Another node may have made one first: that one is the key.
                    if let Some((_, theirs)) = checkpoints::key(c)? {
                        return Ok(theirs);
                    }
                    checkpoints::insert_key(c, &public, &sealed, super::now())?;
                    Ok(sealed.clone())
                })
                .await?
        }
    };
    let raw = core.master.open(&sealed, AUDIT_KEY_AAD)?;
    SigningKey::from_raw(&raw).map_err(|e| Error::internal(format!("the audit key: {e}")))
}

const AUDIT_KEY_AAD: &[u8] = b"licentia audit key";

/// The audit key's public half (hex), made on first use: keep a copy outside the database;
/// `licentia audit verify --public-key` checks with it.
pub async fn public_key(core: &Core, actor: &Actor) -> Result<String> {
    actor.require(&[Role::Admin, Role::Support], "read the audit key")?;
    Ok(hex::encode(audit_key(core).await?.public()))
}

/// Signs a checkpoint of the chain's head, unless the newest checkpoint already names it;
/// the checkpoint made (also logged, so that a copy lives outside the database).
pub async fn checkpoint(core: &Core, actor: &Actor) -> Result<Option<Checkpoint>> {
    actor.require(&[Role::Admin], "sign checkpoints of the history")?;
    let key = audit_key(core).await?;
    let made = core
        .db
        .write(move |c| {
            let (head, hash) = read_head(c)?;
            let last = checkpoints::last(c)?;
            if head == 0 || last.is_some_and(|l| l.event_id >= head) {
                return Ok(None);
            }
            let signed_at = super::now();
            let k = Checkpoint {
                event_id: head,
                signature: hex::encode(key.sign(&checkpoint_message(head, &hash, signed_at))),
                event_hash: hash,
                signed_at,
            };
            checkpoints::insert(c, &k)?;
            Ok(Some(k))
        })
        .await?;
    if let Some(k) = &made {
        tracing::info!(
            checkpoint = %serde_json::to_string(k).unwrap_or_default(),
            "history checkpoint signed"
        );
    }
    Ok(made)
}

/// Every checkpoint, oldest first (the export `licentia audit verify --checkpoints` reads).
pub async fn checkpoints(core: &Core, actor: &Actor) -> Result<Vec<Checkpoint>> {
    actor.require(
        &[Role::Admin, Role::Support],
        "read the history's checkpoints",
    )?;
    core.db.read(checkpoints::all).await
}

/// What `verify` checks the checkpoints with.
#[derive(Default)]
pub struct Trust {
    /// The audit key's public half; `None`: the one in the database (which whoever can
    /// write the database can replace: give the key kept elsewhere).
    pub public_key: Option<Vec<u8>>,
    /// Checkpoints kept elsewhere (an export); `None`: those in the database.
    pub checkpoints: Option<Vec<Checkpoint>>,
    /// The events' hashes as exported earlier (`hashes_after`), kept elsewhere, by id: they
    /// name the first event that differs. Checked against the checkpoints they cover.
    pub hashes: Option<Vec<(i64, String)>>,
}

/// Up to `limit` events' (id, hash) after event `after`, in order: the export that lets
/// `verify` name the first changed event.
pub async fn hashes_after(
    core: &Core,
    actor: &Actor,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>> {
    actor.require(&[Role::Admin, Role::Support], "read the history")?;
    core.db
        .read(move |c| {
            let (head, _) = read_head(c)?;
            Ok(history::page(c, after, head, limit)?
                .into_iter()
                .map(|e| (e.id, e.hash))
                .collect())
        })
        .await
}

/// Checks the whole history chain (`licentia audit verify`): a changed event, a deleted one
/// or a cut-off tail is a problem.
pub async fn verify_chain(core: &Core, actor: &Actor) -> Result<VerifyReport> {
    verify_chain_with(core, actor, Trust::default()).await
}

/// As `verify_chain`, with the public key and checkpoints kept outside the database.
pub async fn verify_chain_with(core: &Core, actor: &Actor, trust: Trust) -> Result<VerifyReport> {
    actor.require(&[Role::Admin, Role::Support], "verify the history")?;
    core.db.read(move |c| verify(c, &trust)).await
}

/// Walks the whole chain on a connection (also where no server runs, e.g. after a crash),
/// and checks it against the signed checkpoints.
pub fn verify(conn: &mut Conn, trust: &Trust) -> Result<VerifyReport> {
    let (head_id, head_hash) = read_head(conn)?;
    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        after_last_checkpoint: 0,
        problems: vec![],
    };
    let mut prev = history::GENESIS.to_string();
    let mut after = 0i64;
    let mut kept = trust
        .hashes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .peekable();
    let mut differs = false;
    loop {
        let page = history::page(conn, after, head_id, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            report.events += 1;
            if !differs {
                if let Some((id, _)) = kept.next_if(|(id, _)| *id < e.id) {
                    report.problems.push(format!(
                        "event {id} of the kept hashes is not in the chain: it was deleted"
                    ));
                    differs = true;
                } else if let Some((_, h)) = kept.next_if(|(id, _)| *id == e.id) {
                    if *h != e.hash {
                        report.problems.push(format!(
                            "event {}: its hash is not the kept one: it is the first event that \
                             was changed (the chain after it was recomputed)",
                            e.id
                        ));
                        differs = true;
                    }
                }
            }
            if e.prev_hash != prev {
                report.problems.push(format!(
                    "event {}: the event before it was changed or deleted",
                    e.id
                ));
            }
            if chain_hash(&e.prev_hash, e) != e.hash {
                report
                    .problems
                    .push(format!("event {}: its content was changed", e.id));
            }
            prev = e.hash.clone();
        }
    }
    if let Some((id, _)) = kept.next().filter(|_| !differs) {
        report.problems.push(format!(
            "the kept hashes go on to event {id}, but the chain ends at event {after}: events \
             were deleted"
        ));
    }
    // Events are appended under the head's lock, so ids up to the head are all committed.
    if after != head_id || prev != head_hash {
        report.problems.push(format!(
            "the chain ends at event {after}, but the head names event {head_id}: events were deleted"
        ));
    }
    check_checkpoints(conn, trust, after, &mut report)?;
    Ok(report)
}

/// Checks each checkpoint's signature, and that the event it names still has the hash it
/// signed; `last` is the chain's last event.
fn check_checkpoints(
    conn: &mut Conn,
    trust: &Trust,
    last: i64,
    report: &mut VerifyReport,
) -> Result<()> {
    let list = match &trust.checkpoints {
        Some(l) => l.clone(),
        None => checkpoints::all(conn)?,
    };
    let public = match &trust.public_key {
        Some(k) => Some(k.clone()),
        None => checkpoints::key(conn)?.and_then(|(p, _)| hex::decode(p).ok()),
    };
    let Some(public) = public else {
        if !list.is_empty() {
            report
                .problems
                .push("there are checkpoints but no audit key to check them with".into());
        }
        report.after_last_checkpoint = report.events;
        return Ok(());
    };
    // The newest checkpoint that held, before the one being checked.
    let mut held = 0i64;
    let mut newest = 0i64;
    for k in &list {
        report.checkpoints += 1;
        let when = k.signed_at.format("%Y-%m-%d %H:%M:%S UTC");
        let signed = hex::decode(&k.signature).ok().is_some_and(|sig| {
            crypto::verify(
                &public,
                &checkpoint_message(k.event_id, &k.event_hash, k.signed_at),
                &sig,
            )
            .is_ok()
        });
        if !signed {
            report.problems.push(format!(
                "the checkpoint of event {} signed {when} does not verify with the audit key: \
                 it was forged or changed",
                k.event_id
            ));
            continue;
        }
        newest = newest.max(k.event_id);
        let kept = trust.hashes.as_deref().unwrap_or_default();
        if let Ok(i) = kept.binary_search_by_key(&k.event_id, |(id, _)| *id) {
            if kept[i].1 != k.event_hash {
                report.problems.push(format!(
                    "the kept hashes give event {} another hash than the checkpoint signed \
                     {when}: the kept copy is not genuine",
                    k.event_id
                ));
            }
        }
        match checkpoints::hash_of(conn, k.event_id)? {
            _ if k.event_id > last => report.problems.push(format!(
                "the checkpoint signed {when} names event {}, but the chain ends at event \
                 {last}: events were deleted",
                k.event_id
            )),
            Some(h) if h == k.event_hash => held = held.max(k.event_id),
            _ => report.problems.push(format!(
                "event {} does not have the hash the checkpoint signed {when} gives it: an \
                 event from {} to {} was changed and the chain recomputed",
                k.event_id,
                held + 1,
                k.event_id
            )),
        }
    }
    report.after_last_checkpoint = checkpoints::count_after(conn, newest, last)?;
    Ok(())
}

/// The events of a ticket, an order, a container serial or a license (or the first 1,000
/// of all), oldest first.
pub async fn history(
    core: &Core,
    actor: &Actor,
    ticket: Option<String>,
    order_id: Option<i64>,
    serial: Option<String>,
    license_id: Option<i64>,
) -> Result<Vec<EventRow>> {
    actor.require(&[Role::Admin, Role::Support], "read the history")?;
    let ticket = ticket.map(|t| TicketCode::parse(&t)).transpose()?;
    core.db
        .read(move |c| {
            let ticket = ticket.as_ref().map(TicketCode::as_stored);
            history::matching(c, order_id, ticket, serial.as_deref(), license_id, 1000)
        })
        .await
}
