//! Making an update: from what the container last confirmed to what the server wants it to
//! hold (`domain::update_plan` says which operation each license needs). The update is
//! recorded in the write; it is signed and encrypted after the commit (`Prepared::seal`), so
//! the writer does no cryptography.
use std::sync::Arc;

use base64::Engine;

use super::{Contact, FirmSigner};
use crate::domain::update_plan::{lock_step, step, Held, LockStep, Step};
use crate::domain::{Actor, ItemKind, LicenseState};
use crate::error::{Error, Result};
use crate::protocol::{self, Content, Context, Entry, Issued, Op, SignedEntry, UpdateBody};
use crate::service::audit::{self, Event};
use crate::store::licenses::{self, LicRow};
use crate::store::updates::{self, NewUpdate};
use crate::store::{withdrawals, Conn};

/// Makes the update that brings the container from its confirmed state to what the server
/// wants it to hold: pending licenses added, returning and withdrawn ones deleted, changed
/// ones changed; for a blacklisted container only the lock. `None` when nothing is to do.
pub(in crate::service) fn issue(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
) -> Result<Option<Prepared>> {
    issue_with(c, actor, k, ctx, None, None)
}

/// `issue` for a request that must produce an update (it just made licenses outstanding).
pub(in crate::service) fn issue_required(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
) -> Result<Prepared> {
    required(issue(c, actor, k, ctx)?)
}

pub(in crate::service) fn required(p: Option<Prepared>) -> Result<Prepared> {
    p.ok_or_else(|| Error::internal("the request made no update"))
}

/// `issue` with the container's outstanding licenses already read, when the request read
/// them with the licenses it names.
///
/// `named`: the licenses the operation is about (an activation's, a return's). With the
/// firm's `automatic_update_handling` on, the update carries everything outstanding besides
/// (licenses the vendor pushed, changes, withdrawals); off, only the named licenses, and the
/// rest waits until the container asks for its updates.
pub(in crate::service) fn issue_with(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
    outstanding: Option<Vec<LicRow>>,
    named: Option<&[i64]>,
) -> Result<Option<Prepared>> {
    let now = crate::service::now();
    let only = named.filter(|_| !k.settings.automatic_update_handling && !k.resynchronised);
    let serial = &k.cont.serial;
    let held = &k.mirror.content;
    let mut ops = vec![];
    let (mut added, mut changed, mut deleted) = (vec![], vec![], vec![]);
    let lock = lock_step(k.blacklisted.is_some(), held.locked);
    let locking = lock == LockStep::LockOnly;
    // An update is needed even with nothing to send when it voids one still outstanding.
    let mut settle = false;
    if locking {
        ops.push(Op::Lock {
            product_code: lock_product(c, k)?,
        });
    } else {
        if lock == LockStep::Unlock {
            ops.push(Op::Unlock);
        }
        let mut rows = match outstanding {
            Some(rows) => rows,
            None => licenses::outstanding_in(c, serial, k.firm_id)?,
        };
        let foreign = living_elsewhere(held, &rows);
        // A license that must check in, held and activated, is renewed at every contact,
        // named or not.
        if let Some(ids) = only {
            let mut kept = Vec::with_capacity(rows.len());
            for l in rows {
                let renewed = l.state == LicenseState::Activated
                    && held.entries.contains_key(&l.id)
                    && l.options()?.check_in_days.is_some();
                if ids.contains(&l.id) || renewed {
                    kept.push(l);
                }
            }
            rows = kept;
        }
        for l in &rows {
            // Only a license that belongs in the container has an entry to send or compare
            // (reading the options costs; a returning one is deleted whatever it holds).
            let entry = match l.state.in_container() {
                true => Some(l.entry(serial, ctx.firm_code, now)?),
                false => None,
            };
            let have = match (held.entries.get(&l.id), &entry) {
                (None, _) => Held::No,
                (Some(h), Some(e)) if h == e => Held::Same,
                (Some(_), _) => Held::Differs,
            };
            match (step(l.state, have), entry) {
                (Step::Add, Some(entry)) => {
                    ops.push(Op::Add { entry });
                    added.push(l.id);
                }
                (Step::Readd, Some(entry)) => {
                    ops.push(Op::Change { entry });
                    added.push(l.id);
                }
                (Step::Change, Some(entry)) => {
                    ops.push(Op::Change { entry });
                    changed.push(l.id);
                }
                (Step::Delete, _) => {
                    ops.push(Op::Delete { license_id: l.id });
                    deleted.push(l.id);
                }
                (Step::Settle, _) => settle = true,
                _ => {}
            }
        }
        // Copies are deleted where a withdrawal says so; the others are duplicates.
        if !foreign.is_empty() {
            let withdrawn = withdrawals::pending(c, k.cont.id, k.firm_id, &foreign)?;
            if only.is_none() {
                for id in &withdrawn {
                    ops.push(Op::Delete { license_id: *id });
                    deleted.push(*id);
                }
            }
            if k.settings.duplicate_check {
                let copies: Vec<i64> = foreign
                    .iter()
                    .filter(|id| !withdrawn.contains(id))
                    .copied()
                    .collect();
                note_duplicates(c, actor, serial, &copies)?;
            }
        }
    }
    if ops.is_empty() && !settle {
        return Ok(None);
    }
    let mut after = held.clone();
    after
        .apply(&ops)
        .map_err(|e| Error::internal(format!("update does not fit the mirror: {e}")))?;
    let digest_after = after.digest();
    let expires_at = now + chrono::Duration::days(i64::from(k.settings.update_validity_days));
    let counter_to = k.mirror.counter + 1;
    let changes = serde_json::json!({"added": added, "changed": changed, "deleted": deleted,
        "locked": locking});
    let update_id = updates::insert_issued(
        c,
        &NewUpdate {
            container_id: k.cont.id,
            firm_id: k.firm_id,
            counter_from: k.mirror.counter,
            counter_to,
            digest_after: &digest_after,
            content_after: &serde_json::to_string(&after).expect("content"),
            changes: &changes.to_string(),
            fulfils: &ctx.nonce,
            expires_at,
        },
        now,
    )?;
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
    let recipient = base64::engine::general_purpose::STANDARD
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

/// The automatic license duplicate check (`duplicate_check`): a container that holds a copy
/// of a license living in another container (re-activated elsewhere with the behaviour
/// `none`) is recorded once per container and license (`license.duplicate_seen`), and the
/// `duplicates` report lists every such copy; support decides what to do (withdraw,
/// blacklist). Nothing is deleted by the check itself.
fn note_duplicates(c: &mut Conn, actor: &Actor, serial: &str, copies: &[i64]) -> Result<()> {
    if copies.is_empty() {
        return Ok(());
    }
    let known = crate::store::history::licenses_with(c, serial, DUPLICATE_SEEN, copies)?;
    for id in copies.iter().filter(|id| !known.contains(id)) {
        let home = licenses::find(c, *id)?;
        tracing::warn!(
            license = id,
            serial,
            home = home.serial.as_deref().unwrap_or(""),
            "a container holds a copy of a license that lives elsewhere"
        );
        audit::record(
            actor,
            Event {
                action: DUPLICATE_SEEN,
                license_id: Some(*id),
                serial: Some(serial),
                details: serde_json::json!({"lives_in": home.serial, "state": home.state.as_str()}),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

/// The licenses whose entries `held` holds that do not live in the container (not among its
/// outstanding licenses `home`): copies, of licenses that live elsewhere now or nowhere.
pub(super) fn living_elsewhere(held: &Content<Entry>, home: &[LicRow]) -> Vec<i64> {
    held.entries
        .keys()
        .filter(|id| !home.iter().any(|l| l.id == **id))
        .copied()
        .collect()
}

/// The product code of the firm's lock item (setting `lock_item`), which the lock carries so
/// that the vendor's software can test for it.
fn lock_product(c: &mut Conn, k: &Contact) -> Result<Option<i64>> {
    let Some(item_id) = k.settings.lock_item.as_deref() else {
        return Ok(None);
    };
    // Checked when the setting is saved; one saved before that check (or an item changed
    // since) is left out rather than stopping the lock.
    match crate::store::items::by_item_id(c, item_id) {
        Ok(item) if item.firm_id == k.firm_id && item.kind == ItemKind::Lock => {
            Ok(Some(item.product_code))
        }
        Ok(_) | Err(Error::NotFound { .. }) => {
            tracing::warn!(
                lock_item = item_id,
                "the lock item setting names no lock item"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The history's action of a duplicate found.
pub const DUPLICATE_SEEN: &str = "license.duplicate_seen";

/// An update written to the database, still to be signed and encrypted.
pub(in crate::service) struct Prepared {
    issued: Issued,
    body: UpdateBody,
    ops: Vec<Op<Entry>>,
    signer: Arc<FirmSigner>,
    recipient: Vec<u8>,
}

impl Prepared {
    pub(super) fn update_id(&self) -> i64 {
        self.issued.update_id
    }

    pub(super) fn seal(self) -> Result<Issued> {
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
                Op::Lock { product_code } => Op::Lock { product_code },
                Op::Unlock => Op::Unlock,
            })
            .collect();
        let mut issued = self.issued;
        issued.update = protocol::write_update(&body, key, &self.recipient)?;
        Ok(issued)
    }
}
