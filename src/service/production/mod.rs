//! Production orders: an order for N dongles, each programmed on the production line with
//! the same licenses (the order's lines, per dongle). The order is a normal order (its
//! ticket holds N × the lines' licenses) with N slots, each owning the licenses of one
//! dongle. A dongle is a container like any other: the bridge asks for its slot's update
//! (`program`), the station writes it, and only the receipt makes the slot programmed
//! (`receipt`, or any door a receipt comes through). The rules are `domain::production`;
//! the activation core (contact, update, receipt) does the container's part.
mod lost;
mod program;
mod recycle;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::audit::{self, Event};
use super::catalog::CustomerData;
use super::orders::{self, NewOrder, OrderLine};
use super::Core;
use crate::domain::production::{self as rules, ItemFacts, SlotLicense, SlotState};
use crate::domain::{
    check_id, check_len, Actor, ItemOptions, Role, TicketState, MAX_LINES, MAX_TEXT,
};
use crate::error::{Error, Result};
use crate::store::production::{self as store, ProductionOrderRow, SlotLicenseRow, SlotRow};
use crate::store::{firms, items, orders as order_store, Conn};

pub use lost::{write_off, Lost, LostRequest};
pub use program::{
    failed, program, receipt, FailedRequest, ProductionReceipt, ProgramRequest, Programmed,
    ReceiptRequest,
};
pub use recycle::{recycle, RecycleRequest, Recycled};

const CREATE_ROLES: &[Role] = &[Role::Admin, Role::Sales, Role::Erp];
const READ_ROLES: &[Role] = &[
    Role::Admin,
    Role::Sales,
    Role::Support,
    Role::Erp,
    Role::Production,
];
const PROGRAM_ROLES: &[Role] = &[Role::Admin, Role::Production];

/// The events of production (and the report's failures are counted from `FAILED`).
const CREATED: &str = "production.order_created";
const CANCELLED: &str = "production.order_cancelled";
const ASSIGNED: &str = "production.dongle_assigned";
const REFUSED: &str = "production.dongle_refused";
const PROGRAMMED: &str = "production.dongle_programmed";
const FAILED: &str = "production.dongle_failed";
const RECYCLED: &str = "production.dongle_recycled";
const LOST: &str = "production.dongle_lost";

/// The customer a production order's ticket belongs to when none is named: the vendor's own.
const PRODUCTION_CUSTOMER: &str = "production";

#[derive(schemars::JsonSchema, Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProductionOrder {
    #[serde(default = "json_source")]
    pub source: String,
    /// Makes the request idempotent, as for orders (`source` scopes it).
    pub erp_order_id: Option<String>,
    /// Default: the vendor's own production customer (`production`).
    pub customer: Option<CustomerData>,
    pub dongles: i64,
    /// What each dongle holds.
    pub lines: Vec<OrderLine>,
    #[serde(default)]
    pub comment: String,
}

fn json_source() -> String {
    "json".into()
}

/// A production order and where its dongles are.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize)]
pub struct ProductionOrderView {
    pub production_order_id: i64,
    pub order_id: i64,
    pub source: String,
    pub erp_order_id: String,
    pub customer_id: String,
    pub ticket: String,
    pub firm_code: i64,
    pub dongles: i32,
    /// What each dongle holds.
    pub lines: Vec<OrderLine>,
    pub programmed: i64,
    pub assigned: i64,
    /// Slots whose licenses were taken away again (recycled or withdrawn).
    pub withdrawn: i64,
    /// Failures the stations reported, counted.
    pub failed: i64,
    /// Free slots.
    pub remaining: i64,
    /// Nothing is left to program: every slot is programmed (or withdrawn).
    pub complete: bool,
    /// Programmed dongles per station.
    pub stations: BTreeMap<String, i64>,
    pub slots: Vec<SlotView>,
    pub created_by: String,
    pub created_at: chrono::NaiveDateTime,
    pub cancelled_at: Option<chrono::NaiveDateTime>,
    /// False when this answer repeats an earlier identical request.
    pub created: bool,
}

#[derive(schemars::JsonSchema, Debug, Clone, Serialize)]
pub struct SlotView {
    pub slot: i32,
    pub serial: Option<String>,
    pub station: Option<String>,
    pub state: SlotState,
    pub failures: i32,
    pub last_failure: Option<String>,
    /// When its last license was activated, once programmed.
    pub programmed_at: Option<chrono::NaiveDateTime>,
}

/// A slot's state and, once programmed, when (its last license activated).
fn state_of(
    serial: Option<&str>,
    licenses: &[&SlotLicenseRow],
) -> (SlotState, Option<chrono::NaiveDateTime>) {
    let facts: Vec<SlotLicense> = licenses
        .iter()
        .map(|l| SlotLicense {
            state: l.state,
            serial: l.serial.as_deref(),
        })
        .collect();
    let state = rules::slot_state(serial, &facts);
    let at = (state == SlotState::Programmed)
        .then(|| licenses.iter().filter_map(|l| l.activated_at).max())
        .flatten();
    (state, at)
}

fn slot_view(s: &SlotRow, licenses: &[&SlotLicenseRow]) -> SlotView {
    let (state, programmed_at) = state_of(s.serial.as_deref(), licenses);
    SlotView {
        slot: s.slot,
        serial: s.serial.clone(),
        station: s.station.clone(),
        state,
        failures: s.failures,
        last_failure: s.last_failure.clone(),
        programmed_at,
    }
}

/// Slot `s` as it is now.
fn slot_now(c: &mut Conn, s: &SlotRow) -> Result<SlotView> {
    let rows: Vec<SlotLicenseRow> = store::licenses_of_slot(c, s.id)?
        .into_iter()
        .map(|l| SlotLicenseRow {
            slot_id: s.id,
            license_id: l.id,
            state: l.state,
            serial: l.serial,
            activated_at: l.activated_at,
        })
        .collect();
    Ok(slot_view(s, &rows.iter().collect::<Vec<_>>()))
}

/// The state of slot `s` now.
fn state_now(c: &mut Conn, s: &SlotRow) -> Result<SlotState> {
    Ok(slot_now(c, s)?.state)
}

/// The production order with everything the view shows.
fn view(c: &mut Conn, po: ProductionOrderRow, created: bool) -> Result<ProductionOrderView> {
    let order = order_store::get(c, po.order_id)?;
    let mut lines = order_store::lines(c, po.order_id)?;
    // The production order's lines are the order's first batch (a replacement adds more).
    if let Some(first) = lines.first().map(|l| l.batch_key.clone()) {
        lines.retain(|l| l.batch_key == first);
    }
    let dongles = po.dongles.max(1);
    let licenses = store::licenses_of_order(c, po.id)?;
    let mut by_slot: HashMap<i64, Vec<&SlotLicenseRow>> = HashMap::new();
    for l in &licenses {
        by_slot.entry(l.slot_id).or_default().push(l);
    }
    let slots: Vec<SlotView> = store::slots(c, po.id)?
        .iter()
        .map(|s| slot_view(s, by_slot.get(&s.id).map_or(&[][..], Vec::as_slice)))
        .collect();
    let count = |st: SlotState| slots.iter().filter(|s| s.state == st).count() as i64;
    let mut stations = BTreeMap::new();
    for s in slots.iter().filter(|s| s.state == SlotState::Programmed) {
        *stations
            .entry(s.station.clone().unwrap_or_default())
            .or_insert(0) += 1;
    }
    let (free, assigned) = (count(SlotState::Free), count(SlotState::Assigned));
    Ok(ProductionOrderView {
        production_order_id: po.id,
        order_id: po.order_id,
        source: order.source,
        erp_order_id: order.erp_order_id,
        customer_id: order.customer_id,
        ticket: crate::domain::ticket::TicketCode::parse(&order.ticket)?.to_string(),
        firm_code: firms::code_of(c, po.firm_id)?,
        dongles: po.dongles,
        lines: lines
            .iter()
            .map(|l| OrderLine {
                item_id: l.item_id.clone(),
                quantity: i64::from(l.quantity / dongles),
            })
            .collect(),
        programmed: count(SlotState::Programmed),
        assigned,
        withdrawn: count(SlotState::Withdrawn),
        failed: slots.iter().map(|s| i64::from(s.failures)).sum(),
        remaining: free,
        complete: free == 0 && assigned == 0,
        stations,
        slots,
        created_by: po.created_by,
        created_at: po.created_at,
        cancelled_at: po.cancelled_at,
        created,
    })
}

/// The items the lines name, as the rules look at them: the firm they all belong to.
fn items_firm(c: &mut Conn, lines: &[OrderLine]) -> Result<i64> {
    let mut rows = vec![];
    for l in lines {
        let row = items::by_item_id(c, &l.item_id)?;
        let o: ItemOptions = serde_json::from_str(&row.options)
            .map_err(|e| Error::internal(format!("item {} options: {e}", l.item_id)))?;
        rows.push((row, o));
    }
    let facts: Vec<ItemFacts> = lines
        .iter()
        .zip(&rows)
        .map(|(l, (row, o))| ItemFacts {
            item_id: &l.item_id,
            kind: row.kind,
            firm_id: row.firm_id,
            container_types: &o.container_types,
        })
        .collect();
    rules::check_items(&facts)
}

/// Creates a production order: the order (idempotent by `source` and `erp_order_id`, as
/// orders are) and, in the same write, its slots.
pub async fn create(
    core: &Core,
    actor: &Actor,
    req: NewProductionOrder,
) -> Result<ProductionOrderView> {
    actor.require(CREATE_ROLES, "create production orders")?;
    if req.lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "lines",
            format!("at most {MAX_LINES} lines"),
        ));
    }
    for (i, l) in req.lines.iter().enumerate() {
        check_id(&format!("lines[{i}].item_id"), &l.item_id)?;
    }
    let per: Vec<i64> = req.lines.iter().map(|l| l.quantity).collect();
    rules::check_size(req.dongles, &per)?;
    let lines = req.lines.clone();
    // Said before anything is written (the write checks again, in its transaction).
    core.db.read(move |c| items_firm(c, &lines)).await?;
    let dongles = req.dongles;
    let order = NewOrder {
        source: req.source,
        erp_order_id: req.erp_order_id,
        customer: req.customer.unwrap_or_else(|| CustomerData {
            scope: String::new(),
            external_id: PRODUCTION_CUSTOMER.into(),
            name: None,
            email: None,
            locale: None,
        }),
        comment: req.comment,
        lines: req
            .lines
            .iter()
            .map(|l| OrderLine {
                item_id: l.item_id.clone(),
                quantity: l.quantity * dongles,
            })
            .collect(),
    };
    let lines = req.lines;
    let who = actor.clone();
    let made = orders::create_order_then(core, actor, order, move |c, view| {
        let firm_id = items_firm(c, &lines)?;
        let licenses: Vec<Vec<i64>> = view.lines.iter().map(|l| l.licenses.clone()).collect();
        let slots = rules::deal(&licenses, &per, dongles as usize)?;
        let now = super::now();
        let id = store::insert_order(
            c,
            &store::NewProductionOrder {
                order_id: view.order_id,
                firm_id,
                dongles: dongles as i32,
                created_by: &who.name,
            },
            now,
        )?;
        store::insert_slots(c, id, &slots)?;
        // Its licenses go into dongles only, never through the customers' doors.
        let ticket = crate::store::orders::ticket_of(c, view.order_id)?;
        crate::store::tickets::set_state(c, ticket, TicketState::Production)?;
        audit::record(
            &who,
            Event {
                action: CREATED,
                order_id: Some(view.order_id),
                details: json!({"production_order_id": id, "dongles": dongles,
                    "lines": lines}),
                ..Default::default()
            },
        )
    })
    .await?;
    let (order_id, created) = (made.order_id, made.created);
    let (source, erp) = (made.source, made.erp_order_id);
    core.db
        .read(move |c| {
            let po = store::of_order(c, order_id)?.ok_or_else(|| {
                Error::OrderConflict(format!(
                    "order {erp} from {source} exists and is not a production order"
                ))
            })?;
            if i64::from(po.dongles) != dongles {
                return Err(Error::OrderConflict(format!(
                    "order {erp} from {source} is production order {} of {} dongles",
                    po.id, po.dongles
                )));
            }
            view(c, po, created)
        })
        .await
}

/// A production order with its progress.
pub async fn get(core: &Core, actor: &Actor, id: i64) -> Result<ProductionOrderView> {
    actor.require(READ_ROLES, "read production orders")?;
    core.db
        .read(move |c| {
            let po = store::get(c, id)?;
            view(c, po, false)
        })
        .await
}

/// Cancels a production order: no new dongle gets a slot; dongles already assigned may
/// still be finished, and the free slots' licenses stay on the ticket (withdraw them if
/// they must go).
pub async fn cancel(core: &Core, actor: &Actor, id: i64) -> Result<ProductionOrderView> {
    actor.require(CREATE_ROLES, "cancel production orders")?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let po = store::get(c, id)?;
            if store::cancel(c, id, super::now())? {
                audit::record(
                    &actor,
                    Event {
                        action: CANCELLED,
                        order_id: Some(po.order_id),
                        details: json!({"production_order_id": id}),
                        ..Default::default()
                    },
                )?;
            }
            let po = store::get(c, id)?;
            view(c, po, false)
        })
        .await
}

/// The `production` report's rows: per day and production order, the dongles programmed
/// that day (by when their last license was activated) and the failures counted that day.
pub fn report_rows(c: &mut Conn) -> Result<Vec<Vec<Value>>> {
    let mut days: BTreeMap<(chrono::NaiveDate, i64), (i64, i64)> = BTreeMap::new();
    let rows = store::assigned_licenses(c)?;
    let mut slots: BTreeMap<i64, (i64, &str, Vec<&SlotLicenseRow>)> = BTreeMap::new();
    for (po, serial, l) in &rows {
        slots
            .entry(l.slot_id)
            .or_insert_with(|| (*po, serial.as_str(), vec![]))
            .2
            .push(l);
    }
    for (po, serial, licenses) in slots.values() {
        if let (SlotState::Programmed, Some(at)) = state_of(Some(serial), licenses) {
            days.entry((at.date(), *po)).or_default().0 += 1;
        }
    }
    for (po, at) in store::failures_counted(c, FAILED)? {
        days.entry((at.date(), po)).or_default().1 += 1;
    }
    Ok(days
        .into_iter()
        .map(|((day, po), (programmed, failed))| {
            vec![
                json!(day.format("%Y-%m-%d").to_string()),
                json!(po),
                json!(programmed),
                json!(failed),
            ]
        })
        .collect())
}

/// The text a station names itself or a failure by: printable and bounded.
fn check_station(station: &str) -> Result<()> {
    check_id("station", station)
}

fn check_reason(reason: &str) -> Result<()> {
    check_len("reason", reason, MAX_TEXT)?;
    if reason.trim().is_empty() {
        return Err(Error::invalid("reason", "say what happened"));
    }
    Ok(())
}
