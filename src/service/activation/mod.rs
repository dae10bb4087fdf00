//! Activation: a container's request comes in, an update goes out, a receipt confirms it.
//!
//! The server believes receipts, not requests: a license is `pending` from the update until
//! a receipt (or a later context of the same container) proves the content the update
//! produced, and `returning` until a receipt proves it gone. For every container and firm the
//! server keeps a mirror of what the container last confirmed; every update is made from that
//! mirror and carries everything still outstanding for the container (licenses pending or
//! returning, changed entries), so a lost receipt is made good by the next contact and
//! nothing waits behind it.
//!
//! Every request starts with the same contact (`after_contact`): find or register the
//! container, judge its context (`domain::contact`), settle what it proves, deal with the
//! blacklist, then run the operation in the same write.
mod activate;
mod info;
mod issue;
mod quota;
mod receipt;
mod resync;
mod support;
mod units;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(super) use activate::for_customers;
pub use activate::{activate, deactivate, pull_updates};
pub use info::{template, ticket_info};
pub(super) use issue::{issue, issue_required, issue_with, required, Prepared};
pub(super) use quota::{add_activations, count_activations, count_against, Quota};
pub use receipt::confirm_receipt;
pub use support::{get_container, push_license, stale_pending, ContainerView};

use super::audit::{self, Event};
use super::firms::{load_signer, FirmSigner, MasterKey};
use super::{Core, Stats};
use crate::domain::contact::{request_verdict, RequestVerdict};
use crate::domain::{Actor, ContainerState, ContainerType, Interface, Role, Settings};
use crate::error::{Error, Result};
use crate::protocol::{self, Context, Issued, Kind, NEW_SERIAL};
use crate::store::contact::{firm_and_container, Found};
use crate::store::containers::{self, ContainerRow, NewContainer};
use crate::store::mirrors::{self, Mirror};
use crate::store::updates::UpdateRow;
use crate::store::{blacklist, requests, Conn};

/// Opened firm signing keys by firm id.
pub type SignerCache = Arc<Mutex<HashMap<i64, Arc<FirmSigner>>>>;

pub(super) fn customer_actor(name: String, interface: Interface) -> Actor {
    Actor {
        name,
        role: Role::Customer,
        interface,
    }
}

pub(super) fn read_request(text: &str) -> Result<Context> {
    Ok(protocol::read_context(text, Kind::Request)?)
}

/// A customer's activation or re-activation of license `l` within its item's activation
/// limit: the activations confirmed within the period so far must be fewer.
pub(in crate::service) fn within_limit(
    c: &mut Conn,
    l: &crate::store::licenses::LicRow,
) -> Result<()> {
    let Some(limit) = l.options()?.activation_limit else {
        return Ok(());
    };
    let since = super::now() - chrono::Duration::days(limit.days.into());
    let (n, first) =
        crate::store::history::license_count_since(c, l.id, "license.activated", since)?;
    if n < i64::from(limit.activations) {
        return Ok(());
    }
    let again = first.map(|t| t + chrono::Duration::days(limit.days.into()));
    Err(Error::NotAllowed(format!(
        "license {} was activated {n} times in the last {} days, as often as its item allows; \
         it can be activated again after {}",
        l.id,
        limit.days,
        again.map_or("the period".into(), |t| t
            .format("%Y-%m-%d %H:%M UTC")
            .to_string())
    )))
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

/// A mirror the contact's query found, with the update that query looked for.
type Joined = (Mirror, Option<UpdateRow>);

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
        (containers::by_key(c, &ctx.sign_key)?, None)
    } else {
        found.map_or((None, None), |f| (Some(f.container), f.mirror))
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
        if row.kind != ctx.container_type {
            return Err(Error::NotAllowed(format!(
                "container {} is a {} container, the message says {}",
                row.serial,
                row.kind.as_str(),
                ctx.container_type.as_str()
            )));
        }
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
    let fingerprint = serde_json::to_string(&ctx.fingerprint).expect("fingerprint");
    let row = containers::register(
        c,
        &NewContainer {
            serial: &serial,
            kind: ctx.container_type,
            public_key: &ctx.sign_key,
            enc_key: &ctx.enc_key,
            fingerprint: &fingerprint,
        },
        super::now(),
    )?;
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
    Ok((row, None, true))
}

/// A contact's mirror: the one its query found, with the update that query looked for
/// (`receipt::reconcile`'s `issued`), else the one read or made now.
fn mirror_or_load(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    joined: Option<Joined>,
) -> Result<(Mirror, Option<Option<UpdateRow>>)> {
    Ok(match joined {
        Some((mirror, issued)) => (mirror, Some(issued)),
        None => (
            mirrors::load_or_create(c, container_id, firm_id, super::now())?,
            None,
        ),
    })
}

/// Marks the container as manipulated (committed even though the caller gets an error).
fn mark_manipulated(
    c: &mut Conn,
    actor: &Actor,
    cont: &ContainerRow,
    firm_id: i64,
    why: String,
) -> Result<Error> {
    containers::set_manipulated(c, cont.id, firm_id, &why, super::now())?;
    audit::record(
        actor,
        Event {
            action: "container.manipulation_detected",
            serial: Some(&cont.serial),
            details: serde_json::json!({"reason": why, "firm_id": firm_id}),
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

/// Everything a contact (request) starts with: the container, its confirmed state, the
/// firm's settings and signer.
#[derive(Clone)]
pub(super) struct Contact {
    pub(super) cont: ContainerRow,
    pub(super) mirror: Mirror,
    pub(super) firm_id: i64,
    signer: Arc<FirmSigner>,
    pub(super) settings: Settings,
    /// The open blacklist entry's description, when the container is on the blacklist.
    blacklisted: Option<String>,
    /// This contact took the state the container showed (support decided to resynchronise
    /// it): its update carries everything outstanding, whatever the request names.
    pub(super) resynchronised: bool,
}

fn contact(
    c: &mut Conn,
    env: &WriteEnv,
    actor: &Actor,
    ctx: &Context,
    register: bool,
) -> Result<Committed<Contact>> {
    let (firm, found) = firm_and_container(c, ctx.firm_code, &ctx.serial, &ctx.digest)?;
    let (mut cont, mut joined, registered) = find_container(c, actor, ctx, register, found)?;
    if cont.state != ContainerState::Active {
        // Its state changes only under this lock (a decision, a resynchronisation, another
        // mark), so two nodes do not act on one they both read before.
        containers::lock(c, cont.id)?;
        cont = containers::get(c, &cont.serial)?;
        joined = None;
    }
    if cont.state == ContainerState::Manipulated {
        return Ok(Err(Refusal::Error(Error::Manipulation(cont.serial))));
    }
    let (mut mirror, issued) = mirror_or_load(c, cont.id, firm.id, joined)?;
    let (seen, _) = receipt::reconcile(c, actor, &cont, firm.id, &mut mirror, ctx, issued)?;
    let mut verdict = request_verdict(seen, registered);
    // The decision is carried out by a request of the firm whose contact showed the
    // manipulation (any firm's, for a mark made before the firm was kept).
    let resynchronising = cont.state == ContainerState::Resynchronising
        && cont.state_firm_id.is_none_or(|f| f == firm.id);
    let shown_before = (mirror.counter, mirror.digest.clone());
    if resynchronising {
        let m = &mut mirror;
        verdict = resync::resynchronise(c, actor, &mut cont, firm.id, m, ctx, verdict)?;
    }
    let resynchronised = shown_before != (mirror.counter, mirror.digest.clone());
    match verdict {
        RequestVerdict::Proceed => {}
        // The registration is not kept (else anyone could take a dongle's serial, or fill
        // the tables, with made-up requests).
        RequestVerdict::RefuseNewContainer => {
            return Err(Error::InvalidMessage(format!(
                "container {} is new to this server, so its request must show firm update \
                 counter 0 and no licenses; it shows counter {}",
                ctx.serial, ctx.counter
            )))
        }
        RequestVerdict::RefuseStale => {
            return Err(Error::Mismatch(format!(
                "the request shows firm update counter {} but container {} has already \
                 confirmed counter {}; make a new request",
                ctx.counter, cont.serial, mirror.counter
            )))
        }
        RequestVerdict::Manipulated { rolled_back } => {
            let why = if resynchronising {
                format!(
                    "it was to be resynchronised, but its request shows counter {} with digest \
                     {} which no update issued for it produces (confirmed: counter {})",
                    ctx.counter,
                    &ctx.digest[..16],
                    mirror.counter
                )
            } else if rolled_back {
                format!(
                    "a request made after counter {} was confirmed shows the older counter {} \
                     (the container was restored from a copy)",
                    mirror.counter, ctx.counter
                )
            } else {
                format!(
                    "the request shows counter {} with digest {} which no update issued for \
                     this container produces (confirmed: counter {})",
                    ctx.counter,
                    &ctx.digest[..16],
                    mirror.counter
                )
            };
            return Ok(Err(Refusal::Error(mark_manipulated(
                c, actor, &cont, firm.id, why,
            )?)));
        }
    }
    match units::reconcile(c, &cont, &mirror, ctx)? {
        units::Units::Kept => {}
        units::Units::Stale(why) => return Err(Error::Mismatch(why)),
        units::Units::Restored(why) => {
            let marked = mark_manipulated(c, actor, &cont, firm.id, why)?;
            return Ok(Err(Refusal::Error(marked)));
        }
    }
    // Asked with the firm when the request names its serial; a retried first activation
    // (serial `new`) of a container registered meanwhile is asked here.
    let blacklisted = if firm.blacklisted || ctx.serial != cont.serial {
        blacklist::open_entry(c, firm.id, &cont.serial)?
    } else {
        None
    };
    let signer = signer(c, &env.master, &env.signers, firm.id, &firm.key_id)?;
    let k = Contact {
        cont,
        mirror,
        firm_id: firm.id,
        signer,
        settings: firm.settings,
        blacklisted,
        resynchronised,
    };
    let Some(description) = k.blacklisted.clone() else {
        return Ok(Ok(k));
    };
    // Before anything else: the lock, until a receipt shows it applied.
    Ok(Err(send_lock(c, actor, &k, ctx, description)?))
}

/// The refusal of a blacklisted container: its lock update (recorded as sent), or, when it
/// holds the lock already, the refusal alone.
fn send_lock(
    c: &mut Conn,
    actor: &Actor,
    k: &Contact,
    ctx: &Context,
    description: String,
) -> Result<Refusal> {
    let serial = k.cont.serial.clone();
    if k.mirror.content.locked {
        return Ok(Refusal::Error(Error::Blacklisted {
            serial,
            description,
            lock: None,
        }));
    }
    let lock = issue_required(c, actor, k, ctx)?;
    blacklist::lock_sent(c, k.firm_id, &serial, lock.update_id(), super::now())?;
    audit::record(
        actor,
        Event {
            action: "blacklist.lock_sent",
            serial: Some(&serial),
            details: serde_json::json!({"update_id": lock.update_id(),
                "firm_code": ctx.firm_code, "lock_item": k.settings.lock_item}),
            ..Default::default()
        },
    )?;
    Ok(Refusal::Locked {
        lock: Box::new(lock),
        serial,
        description,
    })
}

/// A container that asked for a license of the honey-pot item: blacklisted at once (as the
/// system, naming the license), and the lock goes with this very answer. The license is not
/// touched.
pub(super) fn sprung<T>(
    c: &mut Conn,
    actor: &Actor,
    ctx: &Context,
    k: &Contact,
    license_id: i64,
    item: &str,
) -> Result<Committed<T>> {
    let description = format!(
        "activated license {license_id} of the honey-pot item {item}, which no customer was sold"
    );
    let system = Actor::system(actor.interface);
    crate::service::lifecycle::place_on_blacklist(
        c,
        &system,
        k.firm_id,
        &k.cont.serial,
        &description,
    )?;
    audit::record(
        actor,
        Event {
            action: "container.honeypot_activated",
            license_id: Some(license_id),
            serial: Some(&k.cont.serial),
            details: serde_json::json!({"item_id": item}),
            ..Default::default()
        },
    )?;
    let mut trapped = k.clone();
    trapped.blacklisted = Some(description.clone());
    Ok(Err(send_lock(c, actor, &trapped, ctx, description)?))
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
    match requests::use_for(c, k.cont.id, &ctx.nonce, operation, super::now())? {
        None => Ok(()),
        Some(used) if used == operation => Ok(()),
        Some(used) => Err(Error::Mismatch(format!(
            "this request of container {} was already used for {used}; make a new request \
             for {operation}",
            k.cont.serial
        ))),
    }
}

/// Signs and seals a committed update for delivery.
pub(super) fn deliver(core: &Core, p: Prepared) -> Result<Issued> {
    Stats::add(&core.stats.updates_issued, 1);
    p.seal()
}
