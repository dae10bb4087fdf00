//! `licentia production …`: production orders of dongles, and recycling a dongle that came
//! back.
use clap::Subcommand;

use licentia::domain::Actor;
use licentia::service::catalog::CustomerData;
use licentia::service::production::{self, NewProductionOrder, ProductionOrderView};
use licentia::service::Core;

use super::orders::order_lines;

#[derive(Subcommand)]
pub enum ProductionCmd {
    /// Create a production order of N dongles, each holding the items given; prints its id
    /// and ticket.
    Create {
        #[arg(long)]
        dongles: i64,
        /// SKU=QTY per dongle, repeatable.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        #[arg(long)]
        erp_order_id: Option<String>,
        #[arg(long, default_value = "cli")]
        source: String,
        /// Default: the vendor's own production customer.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// A production order's progress and its slots.
    Show {
        id: i64,
        /// The whole order as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop assigning new dongles to a production order.
    Cancel { id: i64 },
    /// Take a dongle that came back out of service before it is wiped: its licenses of the
    /// firm are deleted and its registration is kept under another serial.
    Recycle {
        serial: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
    /// Write off a dongle that took its slot's update and will not come back: it is
    /// blacklisted and its slot is free for the next dongle.
    Lost {
        serial: String,
        #[arg(long)]
        reason: String,
    },
}

fn print(v: &ProductionOrderView) {
    println!(
        "production order {}  ticket {}  firm code {}  dongles {}{}",
        v.production_order_id,
        v.ticket,
        v.firm_code,
        v.dongles,
        if v.cancelled_at.is_some() {
            "  cancelled"
        } else {
            ""
        }
    );
    println!(
        "  programmed {}  assigned {}  withdrawn {}  remaining {}  failed {}{}",
        v.programmed,
        v.assigned,
        v.withdrawn,
        v.remaining,
        v.failed,
        if v.complete { "  complete" } else { "" }
    );
    for (station, n) in &v.stations {
        println!("  station {station}: {n} programmed");
    }
    for s in &v.slots {
        println!(
            "  slot {}\t{}\t{}\t{}\tfailures {}\t{}",
            s.slot,
            s.state.as_str(),
            s.serial.as_deref().unwrap_or("-"),
            s.station.as_deref().unwrap_or("-"),
            s.failures,
            s.last_failure.as_deref().unwrap_or("")
        );
    }
}

pub async fn run(core: &Core, actor: &Actor, cmd: ProductionCmd) -> anyhow::Result<()> {
    match cmd {
        ProductionCmd::Create {
            dongles,
            items,
            erp_order_id,
            source,
            customer,
            comment,
        } => {
            let req = NewProductionOrder {
                source,
                erp_order_id,
                customer: customer.map(|external_id| CustomerData {
                    scope: String::new(),
                    external_id,
                    name: None,
                    email: None,
                    locale: None,
                }),
                dongles,
                lines: order_lines(items)?,
                comment,
            };
            let v = production::create(core, actor, req).await?;
            println!("{} {}", v.production_order_id, v.ticket);
        }
        ProductionCmd::Show { id, json } => {
            let v = production::get(core, actor, id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print(&v);
            }
        }
        ProductionCmd::Cancel { id } => print(&production::cancel(core, actor, id).await?),
        ProductionCmd::Recycle {
            serial,
            reason,
            firm_code,
        } => {
            let r = production::recycle(
                core,
                actor,
                serial,
                production::RecycleRequest { reason, firm_code },
            )
            .await?;
            println!(
                "dongle {} recycled: kept as {}, {} license(s) deleted",
                r.serial,
                r.kept_as,
                r.deleted.len()
            );
        }
        ProductionCmd::Lost { serial, reason } => {
            let r = production::write_off(core, actor, serial, production::LostRequest { reason })
                .await?;
            println!(
                "dongle {} written off and blacklisted: slot {} of production order {} is free \
                 again, {} license(s) freed",
                r.serial,
                r.slot,
                r.production_order_id,
                r.freed.len()
            );
        }
    }
    Ok(())
}
