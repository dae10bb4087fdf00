//! `licentia order …`, `licentia ticket …` and `licentia customer …`.
use clap::Subcommand;

use licentia::domain::Actor;
use licentia::error::Error;
use licentia::service::{catalog, orders, Core};

#[derive(Subcommand)]
pub enum OrderCmd {
    /// Create an order; prints the ticket.
    Create {
        #[arg(long)]
        customer: String,
        /// SKU=QTY, repeatable.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        #[arg(long)]
        erp_order_id: Option<String>,
        #[arg(long, default_value = "cli")]
        source: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Send an order's ticket mail again, to the customer's address as it is now.
    ResendMail {
        #[arg(long)]
        erp_order_id: String,
        #[arg(long, default_value = "cli")]
        source: String,
    },
}

#[derive(Subcommand)]
pub enum TicketCmd {
    /// A ticket with its licenses.
    Show { code: String },
    /// Disable a customer's ticket: it activates, re-activates and restores nothing until
    /// enabled again; what is in containers stays.
    Disable {
        code: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Enable a disabled ticket again.
    Enable {
        code: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum CustomerCmd {
    /// Customers in the order they were made (JSON), a page at a time.
    List {
        /// Only the customers of this scope: a connector's source, or "" for the vendor's
        /// own (none: every scope's).
        #[arg(long)]
        scope: Option<String>,
        /// The external id of the last customer of the page before.
        #[arg(long)]
        after: Option<String>,
        /// The scope of --after (none: --scope's, or the vendor's).
        #[arg(long)]
        after_scope: Option<String>,
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Delete a customer who owns nothing yet (refused while they have a ticket).
    Delete {
        external_id: String,
        /// The customer's scope: a connector's source (none: the vendor's customers).
        #[arg(long, default_value = "")]
        scope: String,
    },
}

pub async fn customer(core: &Core, actor: &Actor, cmd: CustomerCmd) -> anyhow::Result<()> {
    match cmd {
        CustomerCmd::List {
            scope,
            after,
            after_scope,
            limit,
        } => {
            let page = catalog::CustomerPage {
                scope,
                after,
                after_scope,
                limit,
            };
            let list = catalog::list_customers(core, actor, page).await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        CustomerCmd::Delete { external_id, scope } => {
            let serials =
                catalog::delete_customer(core, actor, scope.clone(), external_id.clone()).await?;
            let shown = match scope.as_str() {
                "" => external_id,
                s => format!("{external_id} (of {s})"),
            };
            println!("customer {shown} deleted");
            for s in serials {
                println!("  container {s} belongs to nobody now");
            }
        }
    }
    Ok(())
}

pub async fn order(core: &Core, actor: &Actor, cmd: OrderCmd) -> anyhow::Result<()> {
    let (customer, items, erp_order_id, source, email, comment) = match cmd {
        OrderCmd::ResendMail {
            erp_order_id,
            source,
        } => {
            orders::resend_ticket_mail_of(core, actor, source, erp_order_id).await?;
            println!("queued");
            return Ok(());
        }
        OrderCmd::Create {
            customer,
            items,
            erp_order_id,
            source,
            email,
            comment,
        } => (customer, items, erp_order_id, source, email, comment),
    };
    let lines = order_lines(items)?;
    let req = orders::NewOrder {
        source,
        erp_order_id,
        customer: catalog::CustomerData {
            scope: String::new(),
            external_id: customer,
            name: None,
            email,
            locale: None,
        },
        comment,
        lines,
    };
    let view = orders::create_order(core, actor, req).await?;
    println!("{}", view.ticket);
    Ok(())
}

/// `SKU=QTY` (or `SKU` for one) as order lines.
pub(super) fn order_lines(items: Vec<String>) -> Result<Vec<orders::OrderLine>, Error> {
    let mut lines = vec![];
    for spec in items {
        let (sku, qty) = spec.split_once('=').unwrap_or((&spec, "1"));
        let quantity = qty
            .parse()
            .map_err(|_| Error::invalid("item", format!("'{spec}': quantity must be a number")))?;
        lines.push(orders::OrderLine {
            item_id: sku.to_string(),
            quantity,
        });
    }
    Ok(lines)
}

pub async fn ticket(core: &Core, actor: &Actor, cmd: TicketCmd) -> anyhow::Result<()> {
    let t = match cmd {
        TicketCmd::Show { code } => orders::get_ticket(core, actor, &code).await?,
        TicketCmd::Disable { code, reason } => {
            orders::set_ticket_enabled(core, actor, &code, false, reason).await?
        }
        TicketCmd::Enable { code, reason } => {
            orders::set_ticket_enabled(core, actor, &code, true, reason).await?
        }
    };
    println!(
        "ticket {}  customer {}  state {}",
        t.ticket, t.customer_id, t.state
    );
    for l in t.licenses {
        println!(
            "  license {}\t{}\t{}/{}\t{}\t{}",
            l.license_id,
            l.item_id,
            l.firm_code,
            l.product_code,
            l.state,
            l.serial.unwrap_or_default()
        );
    }
    Ok(())
}
