//! The production line's calls for one dongle: it asks for its slot's update (`program`),
//! its receipt comes back (`receipt`), or its station reports that writing it failed
//! (`failed`). Each state change is one write; a refusal changes nothing and is recorded.
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    check_reason, check_station, slot_now, state_now, SlotView, ASSIGNED, FAILED, PROGRAMMED,
    PROGRAM_ROLES, REFUSED,
};
use crate::domain::production::{
    self as rules, DongleFacts, FailStep, FailedSlot, Program, SlotState,
};
use crate::domain::{check_serial, Actor, LicenseState};
use crate::error::{Error, Result};
use crate::protocol::{self, Confirmed, Context, Issued, Kind};
use crate::service::activation::{
    self, after_contact, deliver, issue, read_request, Committed, Contact, Prepared,
};
use crate::service::audit::{self, Event};
use crate::service::{now, Core};
use crate::store::production::{self as store, SlotRow};
use crate::store::{
    blacklist, containers, firms, licenses, mirrors, orders as order_store, tickets, updates, Conn,
};

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramRequest {
    pub station: String,
    /// The dongle's armoured request.
    pub request: String,
}

/// The dongle's update (the gateway's answer) and the slot it programs.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct Programmed {
    #[serde(flatten)]
    pub issued: Issued,
    pub production_order_id: i64,
    pub slot: i32,
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub station: String,
    /// The dongle's armoured receipt.
    pub receipt: String,
}

/// What the receipt proved (the gateway's answer), and whether the slot is programmed now.
#[derive(schemars::JsonSchema, Debug, Serialize)]
pub struct ProductionReceipt {
    #[serde(flatten)]
    pub confirmed: Confirmed,
    pub production_order_id: i64,
    pub slot: i32,
    pub programmed: bool,
}

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedRequest {
    pub station: String,
    pub serial: String,
    /// Whether the update may have been committed to the dongle (false only when it surely
    /// was not: refused, removed or failed before the commit).
    pub written: bool,
    pub reason: String,
}

/// What a dongle's contact needs of its production order.
#[derive(Debug, Clone)]
struct OrderFacts {
    id: i64,
    order_id: i64,
    firm_id: i64,
    firm_code: i64,
    cancelled: bool,
    /// The ticket's code as stored, and its customer's id.
    ticket: String,
    customer: i64,
}

fn order_facts(c: &mut Conn, id: i64) -> Result<OrderFacts> {
    let po = store::get(c, id)?;
    let ticket_id = order_store::ticket_of(c, po.order_id)?;
    Ok(OrderFacts {
        id,
        order_id: po.order_id,
        firm_id: po.firm_id,
        firm_code: firms::code_of(c, po.firm_id)?,
        cancelled: po.cancelled_at.is_some(),
        ticket: order_store::get(c, po.order_id)?.ticket,
        customer: tickets::customer_of(c, ticket_id)?,
    })
}

/// What the server knows of the dongle that made `ctx`, and the description of its open
/// blacklist entry, if it has one.
fn dongle_facts(
    c: &mut Conn,
    o: &OrderFacts,
    ctx: &Context,
) -> Result<(DongleFacts, Option<String>)> {
    let serial = &ctx.serial;
    let mut f = DongleFacts {
        serial: serial.clone(),
        production_order_id: o.id,
        firm_code: o.firm_code,
        cancelled: o.cancelled,
        ..Default::default()
    };
    if let Some(s) = store::slot_of_serial(c, serial)? {
        if s.production_order_id == o.id {
            f.own_slot = Some((s.slot, state_now(c, &s)?));
        } else {
            let other = store::get(c, s.production_order_id)?;
            f.other_order = Some(firms::code_of(c, other.firm_id)?);
        }
    }
    match containers::by_serial(c, serial)? {
        Some(cont) => {
            f.other_keys = cont.public_key != ctx.sign_key
                || cont.enc_key != ctx.enc_key
                || cont.kind != ctx.container_type;
            for m in mirrors::of_container(c, cont.id)? {
                if m.firm_id == o.firm_id {
                    f.counter = m.counter;
                } else if m.counter > 0 {
                    f.other_firms.push(m.firm_code);
                }
            }
        }
        None => f.keys_of = containers::by_key(c, &ctx.sign_key)?.map(|k| k.serial),
    }
    f.bound = licenses::outstanding_in(c, serial, o.firm_id)?.len();
    Ok((f, blacklist::open_entry(c, o.firm_id, serial)?))
}

/// Records a refusal of dongle `serial` (in the write that runs).
fn record_refusal(
    actor: &Actor,
    o: &OrderFacts,
    serial: &str,
    station: &str,
    (code, message): (&str, &str),
) -> Result<()> {
    audit::record(
        actor,
        Event {
            action: REFUSED,
            order_id: Some(o.order_id),
            serial: Some(serial),
            details: json!({"production_order_id": o.id, "station": station,
                "reason": code, "message": message}),
            ..Default::default()
        },
    )
}

/// How a dongle's contact ended.
enum Outcome {
    Issued(Box<Prepared>, i32),
    /// Refused, with the contact (a receipt it brought) and the refusal's event committed.
    Refused(Error),
}

/// A dongle asks to be programmed: it gets its own slot's update again (a retry), or the
/// lowest free slot's licenses pending in it and their update, or a refusal with its reason
/// (recorded, and nothing else changed).
pub async fn program(
    core: &Core,
    actor: &Actor,
    production_order_id: i64,
    req: ProgramRequest,
) -> Result<Programmed> {
    actor.require(PROGRAM_ROLES, "program dongles")?;
    check_station(&req.station)?;
    let ctx = read_request(&req.request)?;
    let o = core
        .db
        .read(move |c| order_facts(c, production_order_id))
        .await?;
    let serial = ctx.serial.clone();
    let station = req.station;
    match attempt(core, actor, &o, ctx, &station).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(recorded)) => Err(recorded),
        Err(e @ (Error::Busy | Error::Retry | Error::Internal(_))) => Err(e),
        Err(e) => {
            let (code, message) = (e.code(), e.public_message());
            let actor = actor.clone();
            let noted = core
                .db
                .write(move |_| record_refusal(&actor, &o, &serial, &station, (code, &message)))
                .await;
            if let Err(w) = noted {
                tracing::warn!(error = %w, "the refusal of a dongle could not be recorded");
            }
            Err(e)
        }
    }
}

/// `program` up to the refusal's record: `Ok(Err(_))` is a refusal recorded already.
async fn attempt(
    core: &Core,
    actor: &Actor,
    o: &OrderFacts,
    ctx: Context,
    station: &str,
) -> Result<std::result::Result<Programmed, Error>> {
    rules::dongle_request(ctx.container_type, &ctx.serial, ctx.firm_code, o.firm_code)?;
    // Refusals the dongle's facts show are given before anything is written. A blacklisted
    // dongle goes on to the contact, which sends the lock with the refusal, unless its
    // request is not signed by the keys registered for it (no lock can be made for it).
    let (asked, seen) = (o.clone(), ctx.clone());
    let (facts, blacklisted) = core
        .db
        .read(move |c| crate::store::snapshot(c, |c| dongle_facts(c, &asked, &seen)))
        .await?;
    match blacklisted {
        Some(description) if facts.other_keys || facts.keys_of.is_some() => {
            return Err(Error::Blacklisted {
                serial: ctx.serial,
                description,
                lock: None,
            })
        }
        Some(_) => {}
        None => {
            rules::program(&facts)?;
        }
    }
    let id = o.id;
    let (o, station) = (o.clone(), station.to_string());
    let out = after_contact(
        core,
        actor.clone(),
        ctx,
        "program",
        true,
        move |c, actor, ctx, k| program_in(c, actor, ctx, k, &o, &station),
    )
    .await?;
    Ok(match out {
        Outcome::Issued(p, slot) => Ok(Programmed {
            issued: deliver(core, *p)?,
            production_order_id: id,
            slot,
        }),
        Outcome::Refused(e) => Err(e),
    })
}

/// In the contact's write: the dongle's slot, its licenses pending in it, and the update.
fn program_in(
    c: &mut Conn,
    actor: &Actor,
    ctx: &Context,
    k: &Contact,
    o: &OrderFacts,
    station: &str,
) -> Result<Committed<Outcome>> {
    let serial = &k.cont.serial;
    // The same dongle asking twice at once (a bridge retrying while its first request is
    // under way): the second waits here for the first's slot, and finds it.
    containers::lock(c, k.cont.id)?;
    let (f, _) = dongle_facts(c, o, ctx)?;
    let step = match rules::program(&f) {
        Ok(step) => step,
        // The receipt this contact brought programmed it just now: that stays, and the
        // refusal is recorded with it.
        Err(e) if matches!(f.own_slot, Some((_, SlotState::Programmed))) => {
            record_refusal(actor, o, serial, station, (e.code(), &e.public_message()))?;
            return Ok(Ok(Outcome::Refused(e)));
        }
        Err(e) => return Err(e),
    };
    let (slot, again) = match step {
        Program::Again(_) => {
            let s = store::slot_of_serial(c, serial)?
                .ok_or_else(|| Error::internal("the dongle's slot is gone"))?;
            store::again(c, &s, station)?;
            (s.slot, true)
        }
        Program::Assign => {
            let now = now();
            let s = store::claim(c, o.id, serial, station, now)?
                .ok_or_else(|| rules::no_slot_left(o.id))?;
            for l in store::licenses_of_slot(c, s.id)? {
                licenses::set_state(c, &l, LicenseState::Pending, Some(serial), now)?;
                audit::record(
                    actor,
                    Event {
                        action: "license.activation_requested",
                        ticket: Some(&o.ticket),
                        license_id: Some(l.id),
                        serial: Some(serial),
                        details: json!({"production_order_id": o.id, "slot": s.slot}),
                        ..Default::default()
                    },
                )?;
            }
            if k.cont.customer_id.is_none() {
                containers::set_customer(c, k.cont.id, Some(o.customer), now)?;
            }
            (s.slot, false)
        }
    };
    let Some(p) = issue(c, actor, k, ctx)? else {
        return Err(Error::Conflict(format!(
            "slot {slot} of production order {} has nothing left to program into dongle \
             {serial}",
            o.id
        )));
    };
    audit::record(
        actor,
        Event {
            action: ASSIGNED,
            order_id: Some(o.order_id),
            serial: Some(serial),
            details: json!({"production_order_id": o.id, "slot": slot, "station": station,
                "again": again}),
            ..Default::default()
        },
    )?;
    Ok(Ok(Outcome::Issued(Box::new(p), slot)))
}

/// The slot of production order `id` assigned to dongle `serial`.
fn own_slot(c: &mut Conn, id: i64, serial: &str) -> Result<SlotRow> {
    store::slot_of_serial(c, serial)?
        .filter(|s| s.production_order_id == id)
        .ok_or_else(|| Error::not_found("dongle", format!("{serial} in production order {id}")))
}

/// A dongle's receipt: confirmed as any receipt is (the gateway's rules), then the slot's
/// programming is recorded once (`production.dongle_programmed`) when the receipt proved
/// every license of the slot. Sent again, it answers the same and records nothing more.
pub async fn receipt(
    core: &Core,
    actor: &Actor,
    production_order_id: i64,
    req: ReceiptRequest,
) -> Result<ProductionReceipt> {
    actor.require(PROGRAM_ROLES, "program dongles")?;
    check_station(&req.station)?;
    let ctx = protocol::read_context(&req.receipt, Kind::Receipt)?;
    let serial = ctx.serial.clone();
    // Only this order's dongles (nothing is confirmed otherwise).
    let s = serial.clone();
    core.db
        .read(move |c| own_slot(c, production_order_id, &s))
        .await?;
    let confirmed = activation::confirm_receipt(core, actor.interface, &req.receipt).await?;
    let (actor, station) = (actor.clone(), req.station);
    let counter = confirmed.counter;
    let (slot, programmed) = core
        .db
        .write(move |c| {
            let po = store::get(c, production_order_id)?;
            let s = own_slot(c, production_order_id, &serial)?;
            let programmed = state_now(c, &s)? == SlotState::Programmed;
            if programmed && store::receipt_recorded(c, &s, now())? {
                audit::record(
                    &actor,
                    Event {
                        action: PROGRAMMED,
                        order_id: Some(po.order_id),
                        serial: Some(&serial),
                        details: json!({"production_order_id": po.id, "slot": s.slot,
                            "station": station, "counter": counter}),
                        ..Default::default()
                    },
                )?;
            }
            Ok((s.slot, programmed))
        })
        .await?;
    Ok(ProductionReceipt {
        confirmed,
        production_order_id,
        slot,
        programmed,
    })
}

/// A station reports that writing a dongle failed. `written: false` (the update never
/// reached the dongle) frees the slot: its licenses are available again and the updates
/// issued for the dongle are void (a receipt or context showing one is a mismatch from
/// now on). `written: true` keeps the slot assigned: the dongle must come back to a station
/// (its receipt read) or support decides. Either is counted once; the same report sent
/// again answers the slot as it is.
pub async fn failed(
    core: &Core,
    actor: &Actor,
    production_order_id: i64,
    req: FailedRequest,
) -> Result<SlotView> {
    actor.require(PROGRAM_ROLES, "report failed dongles")?;
    check_station(&req.station)?;
    check_serial("serial", &req.serial)?;
    check_reason(&req.reason)?;
    let actor = actor.clone();
    let id = production_order_id;
    core.db
        .write(move |c| {
            let po = store::get(c, id)?;
            let serial = req.serial.as_str();
            let (found, holds) = match store::slot_of_serial(c, serial)? {
                Some(s) if s.production_order_id == id => (Some(s), true),
                _ => (store::slot_failed_by(c, id, serial)?, false),
            };
            let facts = match &found {
                Some(s) => Some(FailedSlot {
                    slot: s.slot,
                    state: state_now(c, s)?,
                    holds,
                    same_as_last: s.last_failure_serial.as_deref() == Some(serial)
                        && s.last_failure.as_deref() == Some(req.reason.as_str()),
                }),
                None => None,
            };
            let step = rules::failure(serial, id, facts, req.written)?;
            let s = found.ok_or_else(|| Error::internal("a failure without its slot"))?;
            let mut voided = vec![];
            match step {
                FailStep::Repeat => return slot_now(c, &s),
                FailStep::Keep => store::fail(c, &s, serial, &req.reason, false)?,
                FailStep::Free => {
                    let now = now();
                    for l in store::licenses_of_slot(c, s.id)? {
                        if let Some(to) = rules::freed(l.id, l.state)? {
                            licenses::set_state(c, &l, to, None, now)?;
                            audit::record(
                                &actor,
                                Event {
                                    action: "license.production_freed",
                                    license_id: Some(l.id),
                                    serial: Some(serial),
                                    details: json!({"production_order_id": id,
                                        "slot": s.slot, "state": to}),
                                    ..Default::default()
                                },
                            )?;
                        }
                    }
                    if let Some(cont) = containers::by_serial(c, serial)? {
                        voided = updates::void_issued(c, cont.id, po.firm_id)?;
                    }
                    store::fail(c, &s, serial, &req.reason, true)?;
                }
            }
            audit::record(
                &actor,
                Event {
                    action: FAILED,
                    order_id: Some(po.order_id),
                    serial: Some(serial),
                    details: json!({"production_order_id": id, "slot": s.slot,
                        "station": req.station, "written": req.written,
                        "reason": req.reason, "freed": step == FailStep::Free,
                        "voided_updates": voided}),
                    ..Default::default()
                },
            )?;
            let after = store::slot(c, s.id)?;
            slot_now(c, &after)
        })
        .await
}
