//! The command line: the argument tree, and one module per command group. The client
//! commands (`container`, the online round trips, `bench`) need no configuration; every
//! other command but `serve` opens the core once, here, and hands it to its group.
mod bench;
mod cloud;
mod items;
mod licenses;
mod local;
mod operations;
mod orders;
mod production;
mod server;
mod users;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use licentia::client::cli::{ContainerCmd, OnlineCmd};
use licentia::config::Config;
use licentia::domain::{Actor, Interface, Role};
use licentia::error::Error;
use licentia::service::{demo, Core};

use bench::BenchCmd;
use cloud::CloudCmd;
use items::ItemCmd;
use licenses::{ApprovalCmd, BlacklistCmd, LicenseCmd, SerialCmd};
use operations::{AuditCmd, JobCmd, MailCmd, WebhookCmd};
use orders::{CustomerCmd, OrderCmd, TicketCmd};
use production::ProductionCmd;
use users::{FirmCmd, UserCmd};

#[derive(Parser)]
#[command(name = "licentia", version, about = "An open-source license central")]
pub struct Cli {
    /// A TOML configuration file; LICENTIA_* environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Seed the demo catalog and admin user first (if not there yet).
        #[arg(long)]
        demo: bool,
    },
    /// Run the database migrations and exit.
    Migrate,
    /// Seed a demo catalog and an admin user whose password is printed once; with
    /// --licenses, also generate that many licenses (orders over the past year, activations,
    /// returns, subscriptions expiring over the next) to measure at scale.
    Demo {
        /// Licenses to generate (none: the catalog and admin user only).
        #[arg(long)]
        licenses: Option<u64>,
        /// The generator's random seed: the same seed makes the same plan.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Vendor users.
    #[command(subcommand)]
    User(UserCmd),
    /// Items (the catalog).
    #[command(subcommand)]
    Item(ItemCmd),
    /// Orders.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Tickets: show, disable, enable.
    #[command(subcommand)]
    Ticket(TicketCmd),
    /// Customers: list, delete.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Production orders of dongles; recycling a dongle that came back.
    #[command(subcommand)]
    Production(ProductionCmd),
    /// The audit history.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Licenses: show, withdraw, replace, split.
    #[command(subcommand)]
    License(LicenseCmd),
    /// The blacklist of container serials.
    #[command(subcommand)]
    Blacklist(BlacklistCmd),
    /// Approval requests for re-activations and restores.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// Containers as the server knows them, by serial: show, reset, decide (about a
    /// manipulated one), assign.
    #[command(subcommand)]
    Serial(SerialCmd),
    /// The outbox: mails queued, sent and failed.
    #[command(subcommand)]
    Mail(MailCmd),
    /// Outbound events: subscriptions and their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// Scheduled jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Connector notifications and ERP write-backs, newest first.
    ConnectorLog {
        #[arg(long)]
        connector: Option<String>,
    },
    /// Reports as CSV (default) or JSON.
    Report(operations::ReportArgs),
    /// Benchmarks against a running server.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Firm codes and their signing keys.
    #[command(subcommand)]
    Firm(FirmCmd),
    /// The container runtime: create, request, apply, receipt, list, check, serve-local.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Cloud containers: create, show, activate, return, credential, revoke; and with a
    /// credential file the license use API: open, heartbeat, release, status.
    #[command(subcommand)]
    Cloud(CloudCmd),
    #[command(flatten)]
    Online(OnlineCmd),
}

#[derive(Subcommand)]
pub enum ContainerCommand {
    #[command(flatten)]
    Runtime(ContainerCmd),
    /// Serve the container to the portal's pages in this computer's browser (online
    /// transfer): on 127.0.0.1 only, to pages of the portal's origin only.
    ServeLocal(local::ServeLocalArgs),
}

/// The exit code of a failed command: 2 bad input, 3 not found, 4 refused by a rule,
/// 5 not allowed, 1 anything else (the container runtime has its own table).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(c) = e.downcast_ref::<licentia::client::ClientError>() {
        return licentia::client::cli::exit_code(c);
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Invalid { .. } | Error::InvalidTicket(_) | Error::InvalidMessage(_)) => 2,
        Some(Error::NotFound { .. }) => 3,
        Some(
            Error::AlreadyExists { .. }
            | Error::OrderConflict(_)
            | Error::Conflict(_)
            | Error::Mismatch(_)
            | Error::Manipulation(_)
            | Error::NotAllowed(_)
            | Error::Blacklisted { .. }
            | Error::ApprovalRequired { .. }
            | Error::QuotaExceeded { .. }
            | Error::NoSeat(_)
            | Error::LeaseLost(_),
        ) => 4,
        Some(Error::Unauthenticated | Error::Forbidden { .. }) => 5,
        _ => 1,
    }
}

/// Runs blocking client work (HTTP through ureq, files) off the async executor.
async fn blocking<T: Send + 'static, E: Into<anyhow::Error> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // The container runtime and the benchmarks are clients: no server configuration.
    let command = match cli.command {
        Command::Container(ContainerCommand::Runtime(cmd)) => {
            return blocking(move || licentia::client::cli::run_container(cmd)).await
        }
        Command::Container(ContainerCommand::ServeLocal(args)) => return local::serve(args).await,
        Command::Online(cmd) => {
            return blocking(move || licentia::client::cli::run_online(cmd)).await
        }
        Command::Bench(cmd) => return bench::run(cmd).await,
        Command::Cloud(CloudCmd::Use(u)) => {
            return blocking(move || licentia::client::cli::run_cloud(u)).await
        }
        other => other,
    };
    // LICENTIA_LOG and LICENTIA_BENCH_PASSWORD are read by the CLI itself, not the config.
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "LICENTIA_LOG" && k != "LICENTIA_BENCH_PASSWORD")
        .collect();
    let config = Config::from_parts(cli.config.as_deref(), &env).context("configuration")?;
    let report = match &command {
        // The server opens its own core, beside its HTTP server and workers.
        Command::Serve { demo } => return server::serve(config, *demo).await,
        // A report's name and parameters are checked before the database is opened.
        Command::Report(args) => Some(operations::parse_report(args)?),
        _ => None,
    };
    let core = Core::open(config).await?;
    let actor = Actor {
        name: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        role: Role::Admin,
        interface: Interface::Cli,
    };
    match command {
        Command::Migrate => println!("migrations are up to date"),
        Command::Demo { licenses, seed } => {
            server::print_demo(demo::seed(&core).await?);
            if let Some(n) = licenses {
                let f = licentia::service::generate::fill(&core, n, seed).await?;
                println!(
                    "generated {} licenses, {} orders, {} customers, {} containers, {} events \
                     in {:.1} s ({:.0} licenses/s)",
                    f.licenses,
                    f.orders,
                    f.customers,
                    f.containers,
                    f.events,
                    f.seconds,
                    f.licenses as f64 / f.seconds.max(1e-9)
                );
            }
        }
        Command::User(cmd) => users::user(&core, &actor, cmd).await?,
        Command::Firm(cmd) => users::firm(&core, &actor, cmd).await?,
        Command::Item(cmd) => items::run(&core, &actor, cmd).await?,
        Command::Order(cmd) => orders::order(&core, &actor, cmd).await?,
        Command::Ticket(cmd) => orders::ticket(&core, &actor, cmd).await?,
        Command::Customer(cmd) => orders::customer(&core, &actor, cmd).await?,
        Command::Production(cmd) => production::run(&core, &actor, cmd).await?,
        Command::Cloud(cmd) => cloud::run(&core, &actor, cmd).await?,
        Command::License(cmd) => licenses::license(&core, &actor, cmd).await?,
        Command::Blacklist(cmd) => licenses::blacklist(&core, &actor, cmd).await?,
        Command::Approval(cmd) => licenses::approval(&core, &actor, cmd).await?,
        Command::Serial(cmd) => licenses::serial(&core, &actor, cmd).await?,
        Command::Mail(cmd) => operations::mail(&core, &actor, cmd).await?,
        Command::Webhook(cmd) => operations::webhook(&core, &actor, cmd).await?,
        Command::Job(cmd) => operations::job(&core, &actor, cmd).await?,
        Command::ConnectorLog { connector } => {
            operations::connector_log(&core, &actor, connector).await?
        }
        Command::Audit(cmd) => operations::audit(&core, &actor, cmd).await?,
        Command::Report(args) => {
            let report = report.expect("parsed above");
            operations::report(&core, &actor, report, &args.format).await?
        }
        Command::Serve { .. } | Command::Bench(_) | Command::Container(_) | Command::Online(_) => {
            unreachable!("handled above")
        }
    }
    Ok(())
}
