//! The customer's own operations on a ticket's licenses: activate into the requesting
//! container, return from it, and pull the automatic updates waiting for it.
use super::issue::{issue_with, required};
use super::{
    after_contact, count_activations, customer_actor, deliver, issue, named_once, read_request,
    Committed, Contact,
};
use crate::domain::ticket::TicketCode;
use crate::domain::{reactivation, ActivationMode, Actor, Interface, LicenseState, TicketState};
use crate::error::{Error, Result};
use crate::protocol::{ActivateRequest, Context, Issued, ReturnRequest};
use crate::service::audit::{self, Event};
use crate::service::Core;
use crate::store::licenses::{self, LicRow, Named};
use crate::store::{containers, tickets, Conn};

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
        move |c, actor, ctx, k| activate_in(c, actor, ctx, k, &code, &req.licenses),
    )
    .await?;
    deliver(core, out)
}

fn activate_in(
    c: &mut Conn,
    actor: &Actor,
    ctx: &Context,
    k: &Contact,
    code: &TicketCode,
    ids: &[i64],
) -> Result<Committed<super::Prepared>> {
    let serial = k.cont.serial.clone();
    let now = crate::service::now();
    // Only the named licenses are read (a ticket can hold hundreds), with the container's
    // outstanding ones for the update; the ticket's rules ask the database for what they need.
    let mut named = None;
    let (tid, rows) = if ids.is_empty() {
        let (tid, ticket) = tickets::find(c, code)?;
        for_customers(code, ticket)?;
        (
            tid,
            licenses::activatable_of_ticket(c, tid, &serial, k.firm_id)?,
        )
    } else {
        let n = Named::load(c, ids, Some(code), &serial, k.firm_id)?;
        let mut rows = vec![];
        for id in ids {
            match n.get(*id, true) {
                Ok(l) => rows.push(l.clone()),
                Err(e) => {
                    // An unknown ticket says so before its licenses do.
                    tickets::id_of(c, code)?;
                    return Err(e);
                }
            }
        }
        for_customers(code, n.ticket_state().unwrap_or(TicketState::Active))?;
        named = Some(n);
        (rows[0].ticket_id, rows)
    };
    // Before any other rule: whoever asks for the honey-pot is caught, whatever else holds.
    if let Some(trap) = k.settings.honeypot_item.as_deref() {
        if let Some(l) = rows.iter().find(|l| l.item_id == trap) {
            return super::sprung(c, actor, ctx, k, l.id, trap);
        }
    }
    if named.is_some() && k.settings.activation_mode == ActivationMode::All {
        let all = licenses::count_available_of_ticket(c, tid)?;
        let picked = rows
            .iter()
            .filter(|l| l.state == LicenseState::Available)
            .count();
        if picked as i64 != all {
            return Err(Error::NotAllowed(
                "this ticket's licenses are activated all at once; leave the license list empty"
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
        tickets::lock(c, tid)?;
        if let Some((id, other)) = licenses::first_of_ticket_elsewhere(c, tid, &serial)? {
            return Err(Error::NotAllowed(format!(
                "the licenses of this ticket must stay in one container; license {id} is in \
                 container {other}"
            )));
        }
    }
    let mut fresh: Vec<&LicRow> = vec![];
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
        match (l.state, l.serial.as_deref()) {
            (LicenseState::Available, _) => {
                super::within_limit(c, l)?;
                fresh.push(l)
            }
            // A retried activation: the update below carries it again.
            (LicenseState::Pending, Some(s)) if s == serial => {}
            (state, Some(s)) => {
                return Err(Error::Conflict(format!(
                    "license {} is already {state} in container {s}",
                    l.id
                )))
            }
            (state, None) => return Err(Error::Conflict(format!("license {} is {state}", l.id))),
        }
    }
    // Only a request that would succeed counts against the quota.
    if let Err(refused) = count_activations(c, actor, k, ctx.firm_code, fresh.len())? {
        return Ok(Err(refused));
    }
    for l in fresh {
        match named.as_mut() {
            Some(n) => n.set(c, l.id, LicenseState::Pending, &serial, now)?,
            None => licenses::set_state(c, l, LicenseState::Pending, Some(&serial), now)?,
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
        let customer = tickets::customer_of(c, tid)?;
        containers::set_customer(c, k.cont.id, Some(customer), now)?;
    }
    let outstanding = named.map(|n| n.outstanding(&serial, k.firm_id));
    let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
    required(issue_with(c, actor, k, ctx, outstanding, Some(&ids))?).map(Ok)
}

/// A production order's ticket is not activated through the customers' doors: its licenses
/// go into dongles on the production line only. A disabled ticket activates nothing.
pub(in crate::service) fn for_customers(code: &TicketCode, ticket: TicketState) -> Result<()> {
    match ticket {
        TicketState::Active => Ok(()),
        TicketState::Production => Err(Error::NotAllowed(format!(
            "ticket {code} is a production order's: its licenses are programmed into dongles \
             on the production line"
        ))),
        TicketState::Disabled => Err(Error::NotAllowed(format!(
            "ticket {code} is disabled by the vendor: its licenses are not activated until \
             the vendor enables it again"
        ))),
    }
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
            let now = crate::service::now();
            let serial = &k.cont.serial;
            let mut named = Named::load(c, &req.licenses, None, serial, k.firm_id)?;
            for id in &req.licenses {
                let l = named.get(*id, false)?;
                if !l.is_in(serial) {
                    return Err(Error::Conflict(format!(
                        "license {id} is not in container {serial}"
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
                if !reactivation::returnable(&k.settings, &l.options()?) {
                    return Err(Error::NotAllowed(format!(
                        "license {id} ({}) may not be returned",
                        l.item_id
                    )));
                }
                match l.state {
                    LicenseState::Activated => {
                        named.set(c, *id, LicenseState::Returning, serial, now)?;
                        audit::record(
                            actor,
                            Event {
                                action: "license.return_requested",
                                license_id: Some(*id),
                                serial: Some(serial),
                                ..Default::default()
                            },
                        )?;
                    }
                    LicenseState::Returning => {}
                    state => {
                        return Err(Error::Conflict(format!(
                            "license {id} is {state}; only an activated license can be returned"
                        )))
                    }
                }
            }
            let outstanding = named.outstanding(serial, k.firm_id);
            let ids = &req.licenses;
            required(issue_with(c, actor, k, ctx, Some(outstanding), Some(ids))?).map(Ok)
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
