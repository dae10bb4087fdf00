//! `licentia license …`, `blacklist …`, `approval …` and `serial …`: vendor control over
//! licenses and containers.
use clap::Subcommand;

use licentia::domain::Actor;
use licentia::service::{activation, lifecycle, orders, Core};

#[derive(Subcommand)]
pub enum LicenseCmd {
    /// One license and its ticket (JSON).
    Show { license: i64 },
    /// Withdraw licenses (at once if not in a container, else by automatic update).
    Withdraw {
        #[arg(required = true)]
        licenses: Vec<i64>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Replace a license by a license of another item.
    Replace {
        license: i64,
        #[arg(long)]
        item: String,
    },
    /// Split an available license into licenses whose quantities add up to its own.
    Split {
        license: i64,
        #[arg(long = "quantity", required = true)]
        quantities: Vec<u32>,
    },
}

#[derive(Subcommand)]
pub enum BlacklistCmd {
    Add {
        serial: String,
        #[arg(long)]
        description: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
    Remove {
        serial: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum ApprovalCmd {
    /// List approval requests (all, or in one state: open, approved, denied).
    List {
        #[arg(long)]
        state: Option<String>,
    },
    Approve {
        id: i64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Deny {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum SerialCmd {
    /// A container as support sees it: state, customer, counters per firm code, unconfirmed
    /// updates, licenses (JSON).
    Show { serial: String },
    /// Delete a container's licenses of the firm, take them off their tickets and unlink
    /// the customer (admins; for demo dongles and migrations).
    Reset {
        serial: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
    /// Decide about a container marked "manipulation detected": `resynchronise` (its next
    /// request is taken as its state when the server made that state; it gets its own
    /// licenses back and nothing else) or `blacklist` (the same, and it gets the lock).
    Decide {
        serial: String,
        /// resynchronise or blacklist
        decision: String,
        #[arg(long)]
        reason: String,
        /// The firm whose blacklist takes it (blacklist only; default: the configured firm).
        #[arg(long)]
        firm_code: Option<i64>,
    },
    /// Assign a container to a customer.
    Assign {
        serial: String,
        #[arg(long)]
        customer: String,
        /// The customer's scope: a connector's source (none: the vendor's customers).
        #[arg(long, default_value = "")]
        customer_scope: String,
    },
}

pub async fn license(core: &Core, actor: &Actor, cmd: LicenseCmd) -> anyhow::Result<()> {
    let out = match cmd {
        LicenseCmd::Show { license } => {
            serde_json::to_value(orders::get_license(core, actor, license).await?)?
        }
        LicenseCmd::Withdraw { licenses, reason } => serde_json::to_value(
            lifecycle::withdraw(core, actor, lifecycle::WithdrawRequest { licenses, reason })
                .await?,
        )?,
        LicenseCmd::Replace { license, item } => serde_json::to_value(
            lifecycle::replace(
                core,
                actor,
                lifecycle::ReplaceRequest {
                    license_id: license,
                    item_id: item,
                },
            )
            .await?,
        )?,
        LicenseCmd::Split {
            license,
            quantities,
        } => serde_json::json!({"licenses": lifecycle::split(
            core,
            actor,
            lifecycle::SplitRequest {
                license_id: license,
                quantities,
            },
        )
        .await?}),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub async fn blacklist(core: &Core, actor: &Actor, cmd: BlacklistCmd) -> anyhow::Result<()> {
    match cmd {
        BlacklistCmd::Add {
            serial,
            description,
            firm_code,
        } => {
            let req = lifecycle::BlacklistAdd {
                serial: serial.clone(),
                description,
                firm_code,
            };
            lifecycle::blacklist_add(core, actor, req).await?;
            println!("{serial} is blacklisted");
        }
        BlacklistCmd::Remove {
            serial,
            reason,
            firm_code,
        } => {
            lifecycle::blacklist_remove(core, actor, serial.clone(), firm_code, reason).await?;
            println!("{serial} is off the blacklist");
        }
    }
    Ok(())
}

pub async fn approval(core: &Core, actor: &Actor, cmd: ApprovalCmd) -> anyhow::Result<()> {
    let out = match cmd {
        ApprovalCmd::List { state } => {
            serde_json::to_value(lifecycle::list_approvals(core, actor, state).await?)?
        }
        ApprovalCmd::Approve { id, reason } => {
            serde_json::to_value(lifecycle::decide(core, actor, id, true, reason).await?)?
        }
        ApprovalCmd::Deny { id, reason } => {
            serde_json::to_value(lifecycle::decide(core, actor, id, false, reason).await?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub async fn serial(core: &Core, actor: &Actor, cmd: SerialCmd) -> anyhow::Result<()> {
    match cmd {
        SerialCmd::Show { serial } => {
            let v = activation::get_container(core, actor, serial).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        SerialCmd::Reset { serial, firm_code } => {
            let ids = lifecycle::reset(core, actor, serial.clone(), firm_code).await?;
            println!("{serial} reset; licenses deleted: {ids:?}");
        }
        SerialCmd::Decide {
            serial,
            decision,
            reason,
            firm_code,
        } => {
            let decision = lifecycle::Decision::parse(&decision)?;
            let req = lifecycle::ManipulationDecision {
                decision,
                reason,
                firm_code,
            };
            lifecycle::decide_manipulation(core, actor, serial.clone(), req).await?;
            println!(
                "{serial}: {} decided; its next request is taken as its state",
                decision.as_str()
            );
        }
        SerialCmd::Assign {
            serial,
            customer,
            customer_scope,
        } => {
            let scope = customer_scope.clone();
            lifecycle::assign(core, actor, serial.clone(), scope, customer.clone()).await?;
            println!("{serial} belongs to customer {customer}");
        }
    }
    Ok(())
}
