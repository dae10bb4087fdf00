//! Generated data for measuring at scale (`licentia demo --licenses N`): customers, orders
//! and their tickets made over the past year, their licenses in the states a year of use
//! leaves (never activated, activated into a container, activated and returned),
//! subscriptions expiring over the year to come, and the history of each. Written straight
//! through the store in large transactions, since the services' one order per transaction
//! would take hours for ten million licenses.
//!
//! The containers it makes are records only: their keys are random and no client holds
//! them, so they serve lookups, lists and reports, not round trips.
use chrono::{Duration, NaiveDateTime};
use rand::{Rng, SeedableRng};

use super::Core;
use crate::domain::ticket::TicketCode;
use crate::domain::{ItemOptions, LicenseState};
use crate::error::{Error, Result};
use crate::store::history::{self, EventRow};
use crate::store::{generated, items, Conn};

/// What was made.
#[derive(Debug, Default, serde::Serialize)]
pub struct Filled {
    pub licenses: u64,
    pub orders: u64,
    pub customers: u64,
    pub containers: u64,
    pub events: u64,
    pub seconds: f64,
}

/// The demo items orders are drawn from, and how often each is ordered (of 100).
const MIX: &[(&str, u32)] = &[
    ("SNP-SINGLE", 50),
    ("SNP-SUB-1Y", 30),
    ("SNP-FLOAT-5", 10),
    ("SNP-TRIAL-30", 10),
];

/// Orders a transaction writes: large enough that a commit costs little per license, small
/// enough that other writers wait a moment only.
const ORDERS_PER_WRITE: usize = 1000;

/// An order as planned before it is written.
struct Planned {
    erp_order_id: String,
    /// A new customer's external id, or the index of an earlier order's customer in the write.
    customer: std::result::Result<String, usize>,
    code: TicketCode,
    item: usize,
    quantity: usize,
    at: NaiveDateTime,
    fate: Fate,
}

/// What became of an order's licenses.
#[derive(Clone, PartialEq)]
enum Fate {
    /// Never activated.
    Waiting,
    /// Activated into container `serial` at `at`.
    Activated { serial: String, at: NaiveDateTime },
    /// Activated into container `serial` at `at`, then returned at `back`.
    Returned {
        serial: String,
        at: NaiveDateTime,
        back: NaiveDateTime,
    },
}

/// Fills the database with `count` licenses from the demo catalog (`demo::seed` first).
/// `seed` makes the same plan again (under new names: each run's customers, orders and
/// serials carry a tag of their own, so a second run adds to the first).
pub async fn fill(core: &Core, count: u64, seed: u64) -> Result<Filled> {
    if count == 0 {
        return Err(Error::invalid("licenses", "must be at least 1"));
    }
    let started = std::time::Instant::now();
    let catalog = core
        .db
        .read(|c| {
            MIX.iter()
                .map(|(id, _)| items::by_item_id(c, id))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| match e {
            Error::NotFound { .. } => Error::invalid(
                "licenses",
                "the generator orders the demo catalog; run `licentia demo` first",
            ),
            e => e,
        })?;
    let options: Vec<ItemOptions> = catalog
        .iter()
        .map(|i| serde_json::from_str(&i.options).map_err(|e| Error::internal(e.to_string())))
        .collect::<Result<_>>()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Ticket codes are credentials even here: drawn from a generator seeded by the system.
    let mut codes = rand::rngs::StdRng::from_entropy();
    // Five digits: a serial is `130-` and this tag and seven digits of the run's count.
    let run: u32 = rand::rngs::OsRng.gen_range(10_000..100_000);
    core.db.write(|c| generated::bulk(c, true)).await?;
    let now = super::now();
    let year = Duration::days(365);
    // The writer is set back whether the fill ends well or not.
    let filled = async {
        let mut filled = Filled::default();
        let (mut made, mut n, mut containers) = (0u64, 0u64, 0u64);
        while made < count {
            let mut plan = Vec::with_capacity(ORDERS_PER_WRITE);
            while plan.len() < ORDERS_PER_WRITE && made < count {
                // Spread evenly over the past year by the licenses made before, oldest first.
                let at = now - year
                    + Duration::seconds((year.num_seconds() as u64 * made / count) as i64);
                let quantity = rng.gen_range(1..=19).min(count - made) as usize;
                let pick = rng.gen_range(0..100);
                let item = MIX
                    .iter()
                    .scan(0, |sum, (_, w)| {
                        *sum += w;
                        Some(*sum)
                    })
                    .position(|sum| pick < sum)
                    .unwrap_or(0);
                // A customer orders ten times on average; the first order in a write is a new one.
                let customer = if plan.is_empty() || rng.gen_ratio(1, 10) {
                    Ok(format!("GEN-{run}-{n}"))
                } else {
                    Err(rng.gen_range(0..plan.len()))
                };
                // Activated within two weeks of the order (not after now), returned within a month.
                let fate = match rng.gen_range(0..100) {
                    0..30 => Fate::Waiting,
                    r => {
                        containers += 1;
                        let serial = format!("130-{run}{containers:07}");
                        let at = (at + Duration::days(rng.gen_range(0..14))).min(now);
                        if r < 88 {
                            Fate::Activated { serial, at }
                        } else {
                            let back = (at + Duration::days(rng.gen_range(1..30))).min(now);
                            Fate::Returned { serial, at, back }
                        }
                    }
                };
                plan.push(Planned {
                    erp_order_id: format!("GEN-{run}-{n}"),
                    customer,
                    code: TicketCode::generate_from(&mut codes),
                    item,
                    quantity,
                    at,
                    fate,
                });
                made += quantity as u64;
                n += 1;
            }
            let plan = std::sync::Arc::new(plan);
            let (catalog, options) = (catalog.clone(), options.clone());
            let part = core
                .db
                .write(move |c| write(c, &plan, &catalog, &options))
                .await?;
            filled.licenses += part.licenses;
            filled.orders += part.orders;
            filled.customers += part.customers;
            filled.containers += part.containers;
            filled.events += part.events;
        }
        Ok::<_, Error>(filled)
    }
    .await;
    core.db.write(|c| generated::bulk(c, false)).await?;
    let mut filled = filled?;
    filled.seconds = started.elapsed().as_secs_f64();
    Ok(filled)
}

/// Writes the planned orders with their licenses, containers and events, a few multi-row
/// statements a table.
fn write(
    c: &mut Conn,
    plan: &[Planned],
    catalog: &[items::ItemRow],
    options: &[ItemOptions],
) -> Result<Filled> {
    use std::collections::HashMap;
    let mut f = Filled::default();
    let contacts: Vec<(&str, String, String)> = plan
        .iter()
        .filter_map(|o| o.customer.as_ref().ok())
        .map(|id| {
            let email = format!("{}@example.com", id.to_lowercase());
            (id.as_str(), format!("Customer {id}"), email)
        })
        .collect();
    let new: Vec<_> = plan
        .iter()
        .filter(|o| o.customer.is_ok())
        .zip(&contacts)
        .map(|(o, (external_id, name, email))| generated::Customer {
            external_id,
            name,
            email,
            at: o.at,
        })
        .collect();
    let added: HashMap<String, i64> = generated::customers(c, &new)?
        .into_iter()
        .map(|(id, external_id)| (external_id, id))
        .collect();
    f.customers = added.len() as u64;
    // Each order's customer: its key, its external id.
    let mut customer_of: Vec<(i64, &str)> = Vec::with_capacity(plan.len());
    for o in plan {
        customer_of.push(match &o.customer {
            Ok(external_id) => (id_of(&added, external_id.as_str())?, external_id),
            Err(earlier) => customer_of[*earlier],
        });
    }
    let ticket_rows: Vec<_> = plan
        .iter()
        .zip(&customer_of)
        .map(|(o, (customer_id, _))| generated::Ticket {
            code: o.code.as_stored(),
            customer_id: *customer_id,
            at: o.at,
        })
        .collect();
    let ticket_of: HashMap<String, i64> = generated::tickets(c, &ticket_rows)?
        .into_iter()
        .map(|(id, code)| (code, id))
        .collect();
    let tickets: Vec<i64> = plan
        .iter()
        .map(|o| id_of(&ticket_of, o.code.as_stored()))
        .collect::<Result<_>>()?;
    let order_rows: Vec<_> = plan
        .iter()
        .zip(&customer_of)
        .zip(&tickets)
        .map(|((o, (customer_id, _)), ticket_id)| generated::Order {
            erp_order_id: &o.erp_order_id,
            customer_id: *customer_id,
            ticket_id: *ticket_id,
            at: o.at,
        })
        .collect();
    let order_of: HashMap<String, i64> = generated::orders(c, &order_rows)?
        .into_iter()
        .map(|(id, erp_order_id)| (erp_order_id, id))
        .collect();
    let orders: Vec<i64> = plan
        .iter()
        .map(|o| id_of(&order_of, o.erp_order_id.as_str()))
        .collect::<Result<_>>()?;
    let line_rows: Vec<_> = plan
        .iter()
        .zip(&orders)
        .map(|(o, order)| (*order, catalog[o.item].pk, o.quantity as i32))
        .collect();
    let line_of: HashMap<i64, i64> = generated::lines(c, &line_rows)?
        .into_iter()
        .map(|(id, order)| (order, id))
        .collect();
    let lines: Vec<i64> = orders
        .iter()
        .map(|order| id_of(&line_of, order))
        .collect::<Result<_>>()?;
    f.orders = plan.len() as u64;
    // The containers, owned by their order's customer.
    let mut rng = rand::thread_rng();
    let keys: Vec<String> = plan
        .iter()
        .filter(|o| o.fate != Fate::Waiting)
        .map(|_| {
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                rng.gen::<[u8; 32]>(),
            )
        })
        .collect();
    let container_rows: Vec<_> = plan
        .iter()
        .zip(&customer_of)
        .filter_map(|(o, (customer_id, _))| match &o.fate {
            Fate::Activated { serial, at } | Fate::Returned { serial, at, .. } => {
                Some((serial, *customer_id, *at))
            }
            Fate::Waiting => None,
        })
        .zip(&keys)
        .map(|((serial, customer_id, at), key)| generated::Container {
            serial,
            key,
            customer_id,
            at,
        })
        .collect();
    generated::containers(c, &container_rows)?;
    f.containers = container_rows.len() as u64;
    let mut events = Vec::with_capacity(plan.len() * 12);
    for ((o, order), (_, external_id)) in plan.iter().zip(&orders).zip(&customer_of) {
        events.push(event(
            o.at,
            "order.created",
            Some(*order),
            Some(&o.code),
            None,
            None,
            serde_json::json!({"source": "demo", "erp_order_id": o.erp_order_id,
                "customer": external_id, "customer_scope": "", "lines": [{"item_id": MIX[o.item].0, "quantity": o.quantity}]}),
        ));
    }
    for r in &container_rows {
        events.push(event(
            r.at,
            "container.registered",
            None,
            None,
            None,
            Some(r.serial),
            serde_json::json!({"type": "act"}),
        ));
    }
    // Subscriptions run a year from the order, trials thirty days.
    let opts: Vec<String> = plan
        .iter()
        .map(|o| {
            let mut opts = options[o.item].clone();
            opts.expiration_time = match MIX[o.item].0 {
                "SNP-SUB-1Y" => Some((o.at + Duration::days(365)).and_utc()),
                "SNP-TRIAL-30" => Some((o.at + Duration::days(30)).and_utc()),
                _ => opts.expiration_time,
            };
            serde_json::to_string(&opts).map_err(|e| Error::internal(e.to_string()))
        })
        .collect::<Result<_>>()?;
    // Each order's time and its licenses' activation time, written out once for them all.
    let stamps: Vec<(generated::Stamp, Option<generated::Stamp>)> = plan
        .iter()
        .map(|o| {
            let activated = match &o.fate {
                Fate::Waiting => None,
                Fate::Activated { at, .. } | Fate::Returned { at, .. } => Some(*at),
            };
            (
                generated::Stamp::new(o.at),
                activated.map(generated::Stamp::new),
            )
        })
        .collect();
    let mut rows = Vec::with_capacity(plan.iter().map(|o| o.quantity).sum());
    for ((o, line), ((ticket, opts), (created, activated))) in plan
        .iter()
        .zip(&lines)
        .zip(tickets.iter().zip(&opts).zip(&stamps))
    {
        let item = &catalog[o.item];
        // A returned license left its container: available again, with its activation time.
        let (state, serial) = match &o.fate {
            Fate::Waiting => (LicenseState::Available, None),
            Fate::Activated { serial, .. } => (LicenseState::Activated, Some(serial.as_str())),
            Fate::Returned { .. } => (LicenseState::Available, None),
        };
        for _ in 0..o.quantity {
            rows.push(generated::License {
                ticket_id: *ticket,
                order_line_id: *line,
                item_pk: item.pk,
                firm_id: item.firm_id,
                product_code: item.product_code,
                options: opts,
                state,
                serial,
                created_at: created,
                activated_at: activated.as_ref(),
            });
        }
    }
    // The licenses of an order's line are alike: ids are matched to orders by line.
    let made = generated::licenses(c, &rows)?;
    let fate_of: HashMap<i64, &Fate> = plan
        .iter()
        .zip(&lines)
        .map(|(o, line)| (*line, &o.fate))
        .collect();
    for (id, line) in &made {
        let (serial, at, back) = match fate_of.get(line) {
            Some(Fate::Activated { serial, at }) => (serial, *at, None),
            Some(Fate::Returned { serial, at, back }) => (serial, *at, Some(*back)),
            _ => continue,
        };
        events.push(event(
            at,
            "license.activated",
            None,
            None,
            Some(*id),
            Some(serial),
            serde_json::json!({}),
        ));
        if let Some(back) = back {
            events.push(event(
                back,
                "license.returned",
                None,
                None,
                Some(*id),
                Some(serial),
                serde_json::json!({}),
            ));
        }
    }
    f.licenses = made.len() as u64;
    // The history in time order, as it would have been written.
    events.sort_by_key(|e| e.at);
    f.events = events.len() as u64;
    for e in events {
        history::defer(e)?;
    }
    Ok(f)
}

/// The id the database answered for the row of `key` (it answers every row inserted).
fn id_of<K, Q>(ids: &std::collections::HashMap<K, i64>, key: &Q) -> Result<i64>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + std::fmt::Debug + ?Sized,
{
    ids.get(key)
        .copied()
        .ok_or_else(|| Error::internal(format!("the database answered no id for {key:?}")))
}

fn event(
    at: NaiveDateTime,
    action: &str,
    order_id: Option<i64>,
    ticket: Option<&TicketCode>,
    license_id: Option<i64>,
    serial: Option<&str>,
    details: serde_json::Value,
) -> EventRow {
    EventRow {
        id: 0,
        at,
        actor: "generator".into(),
        interface: crate::domain::Interface::Cli.as_str().into(),
        action: action.into(),
        order_id,
        ticket: ticket.map(|t| t.as_stored().to_string()),
        license_id,
        serial: serial.map(str::to_string),
        details: details.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}
