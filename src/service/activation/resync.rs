//! Resynchronising a container that support decided about (`ContainerState::Resynchronising`,
//! set by `lifecycle::decide_manipulation`). A container restored from an old copy shows a
//! state the server made once (an update issued for it produced that counter and digest);
//! its next request is taken as what it holds: the mirror becomes that state, the updates
//! still outstanding for it are voided, and the licenses whose entries it holds but that live
//! elsewhere now are withdrawn from it. The update that answers the request then carries it
//! from there to what the server holds for it: its own licenses come back, nothing else
//! stays. A request showing a state the server never made is not taken: the container is
//! marked as manipulated again.
use crate::domain::contact::RequestVerdict;
use crate::domain::{Actor, ContainerState};
use crate::error::{Error, Result};
use crate::protocol::{Content, Context, Entry};
use crate::service::audit::{self, Event};
use crate::store::containers::{self, ContainerRow};
use crate::store::mirrors::{self, Mirror};
use crate::store::{licenses, updates, withdrawals, Conn};

/// Why a withdrawal made by a resynchronisation was made.
const WITHDRAWN: &str = "resynchronised: the license lives elsewhere now";

/// The verdict of a request from a container to be resynchronised, given the verdict its
/// context got against the mirror. `Proceed` (the request showed the confirmed state, or
/// confirmed an update) and a state the server made both end the resynchronisation: the
/// container is active again. Any other verdict is returned as it is.
pub(super) fn resynchronise(
    c: &mut Conn,
    actor: &Actor,
    cont: &mut ContainerRow,
    firm_id: i64,
    mirror: &mut Mirror,
    ctx: &Context,
    verdict: RequestVerdict,
) -> Result<RequestVerdict> {
    let from = (mirror.counter, mirror.digest.clone());
    let withdrawn = match verdict {
        RequestVerdict::Proceed => vec![],
        RequestVerdict::Manipulated { .. } => {
            let Some(content) = made_state(c, cont.id, firm_id, ctx)? else {
                return Ok(verdict);
            };
            adopt(c, cont, firm_id, mirror, ctx, content)?
        }
        other => return Ok(other),
    };
    let now = crate::service::now();
    containers::set_state(c, cont.id, ContainerState::Active, "", now)?;
    cont.state = ContainerState::Active;
    audit::record(
        actor,
        Event {
            action: "container.resynchronised",
            serial: Some(&cont.serial),
            details: serde_json::json!({"firm_code": ctx.firm_code,
                "confirmed_counter": from.0, "counter": mirror.counter,
                "taken": from != (mirror.counter, mirror.digest.clone()),
                "withdrawn": withdrawn}),
            ..Default::default()
        },
    )?;
    Ok(RequestVerdict::Proceed)
}

/// The content the request's state holds, when the server made that state (counter 0 with
/// nothing, or what an update issued for the container produced).
fn made_state(
    c: &mut Conn,
    container_id: i64,
    firm_id: i64,
    ctx: &Context,
) -> Result<Option<Content<Entry>>> {
    let empty = Content::<Entry>::default();
    if ctx.counter == 0 {
        return Ok((ctx.digest == empty.digest()).then_some(empty));
    }
    let counter = i64::try_from(ctx.counter).unwrap_or(i64::MAX);
    let Some(json) = updates::content_producing(c, container_id, firm_id, counter, &ctx.digest)?
    else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_str(&json).map_err(|e| {
        Error::internal(format!("update content: {e}"))
    })?))
}

/// Makes the shown state the mirror; the licenses withdrawn from the container (their
/// entries are in it, but they live elsewhere now).
fn adopt(
    c: &mut Conn,
    cont: &ContainerRow,
    firm_id: i64,
    mirror: &mut Mirror,
    ctx: &Context,
    content: Content<Entry>,
) -> Result<Vec<i64>> {
    let now = crate::service::now();
    let taken = Mirror {
        counter: i64::try_from(ctx.counter).unwrap_or(i64::MAX),
        digest: ctx.digest.clone(),
        content,
        confirmed_at: now,
    };
    if !mirrors::adopt(
        c,
        cont.id,
        firm_id,
        (mirror.counter, &mirror.digest),
        &taken,
    )? {
        return Err(Error::Retry);
    }
    // Nothing issued from the old mirror may be confirmed any more.
    updates::void_issued(c, cont.id, firm_id)?;
    let home = licenses::outstanding_in(c, &cont.serial, firm_id)?;
    let foreign = super::issue::living_elsewhere(&taken.content, &home);
    let already = withdrawals::pending(c, cont.id, firm_id, &foreign)?;
    let mut withdrawn = vec![];
    for id in foreign {
        if !already.contains(&id) {
            withdrawals::insert(c, cont.id, firm_id, id, WITHDRAWN, now)?;
        }
        withdrawn.push(id);
    }
    *mirror = taken;
    Ok(withdrawn)
}
