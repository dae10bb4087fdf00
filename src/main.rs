use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use licentia::client::cli::{ContainerCmd, OnlineCmd};
use licentia::config::Config;
use licentia::domain::{Actor, Interface, ItemKind, ItemOptions, Role};
use licentia::error::Error;
use licentia::service::{
    audit, catalog, connectors, demo, firms, jobs, lifecycle, mail, orders, reports, users, Core,
};

// Many small, short-lived allocations on many threads (requests, JSON, statements):
// mimalloc spends measurably less time on them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "licentia", version, about = "An open-source license central")]
struct Cli {
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
    /// Seed a demo catalog and an admin user whose password is printed once.
    Demo,
    /// Vendor users.
    #[command(subcommand)]
    User(UserCmd),
    /// Items (the catalog).
    #[command(subcommand)]
    Item(ItemCmd),
    /// Orders.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Tickets.
    #[command(subcommand)]
    Ticket(TicketCmd),
    /// The audit history.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Licenses: withdraw, replace, split.
    #[command(subcommand)]
    License(LicenseCmd),
    /// The blacklist of container serials.
    #[command(subcommand)]
    Blacklist(BlacklistCmd),
    /// Approval requests for re-activations and restores.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// Containers as the server knows them, by serial: reset, assign.
    #[command(subcommand)]
    Serial(SerialCmd),
    /// The outbox: mails queued, sent and failed.
    #[command(subcommand)]
    Mail(MailCmd),
    /// Scheduled jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Connector notifications and ERP write-backs, newest first.
    ConnectorLog {
        #[arg(long)]
        connector: Option<String>,
    },
    /// Reports as CSV (default) or JSON.
    Report {
        /// container-licenses, expiring, customer-containers, ticket-licenses,
        /// license-history, blacklist, never-activated, activations.
        name: String,
        #[arg(long)]
        serial: Option<String>,
        #[arg(long)]
        days: Option<u32>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        ticket: Option<String>,
        #[arg(long)]
        license: Option<i64>,
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Benchmarks against a running server.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Firm codes and their signing keys.
    #[command(subcommand)]
    Firm(FirmCmd),
    /// The container runtime: create, request, apply, receipt, list, check.
    #[command(subcommand)]
    Container(ContainerCmd),
    #[command(flatten)]
    Online(OnlineCmd),
}

#[derive(Subcommand)]
enum FirmCmd {
    /// Give the firm a new signing key, endorsed by the current one.
    RotateKey {
        #[arg(long)]
        firm_code: i64,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from stdin with --password-stdin, else generated and printed.
    Add {
        username: String,
        #[arg(long, default_value = "sales")]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
}

#[derive(Subcommand)]
enum ItemCmd {
    List,
    Show {
        item_id: String,
    },
    Add {
        #[arg(long)]
        item_id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        product_code: i64,
        #[arg(long, default_value = "license")]
        kind: String,
        #[arg(long)]
        firm_code: Option<i64>,
        /// Product item options as JSON, e.g. '{"license_quantity": 5, "feature_map": 3}'.
        #[arg(long, default_value = "{}")]
        options: String,
    },
}

#[derive(Subcommand)]
enum OrderCmd {
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
}

#[derive(Subcommand)]
enum TicketCmd {
    Show { code: String },
}

#[derive(Subcommand)]
enum LicenseCmd {
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
enum BlacklistCmd {
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
enum ApprovalCmd {
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
enum MailCmd {
    /// The newest mails (at most 1,000), optionally in one state: queued, sending, sent, failed.
    List {
        #[arg(long)]
        state: Option<String>,
    },
    /// Put a failed mail back in the queue.
    Requeue { id: i64 },
}

#[derive(Subcommand)]
enum JobCmd {
    /// Every job with its schedule, next and last run.
    List,
    /// Run a job now: expiry_report, never_activated_report, outbox, housekeeping.
    Run { name: String },
}

#[derive(Subcommand)]
enum SerialCmd {
    /// Delete a container's licenses of the firm, take them off their tickets and unlink
    /// the customer (admins; for demo dongles and migrations).
    Reset {
        serial: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
    /// Assign a container to a customer.
    Assign {
        serial: String,
        #[arg(long)]
        customer: String,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain of the whole history.
    Verify,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Create orders over HTTP and print orders/s, p50/p99 and server memory.
    Orders {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 20000)]
        count: usize,
        /// Send orders on a fixed schedule of this many per second (open loop) instead of
        /// each client's next one as soon as its last is answered; latency then counts from
        /// each order's due time.
        #[arg(long, value_parser = positive_rate)]
        rate: Option<f64>,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "SNP-SINGLE")]
        item: String,
    },
    /// Drive simulated containers through online round trips (request, update, apply,
    /// receipt; activate and return in turn) and print round trips/s, p50/p99 and the
    /// machine's raw signing and encryption rates.
    Activate {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value_t = 64)]
        containers: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 20000)]
        round_trips: usize,
        /// Start round trips on a fixed schedule of this many per second (open loop), at
        /// most `concurrency` in flight, instead of each client's next one as soon as its
        /// last ended; latency then counts from each round trip's due time.
        #[arg(long, value_parser = positive_rate)]
        rate: Option<f64>,
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long, env = "LICENTIA_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "SNP-SINGLE")]
        item: String,
    },
}

/// A benchmark's offered rate: a positive, finite number per second.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{s}' is not a positive number per second")),
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
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
            | Error::QuotaExceeded { .. },
        ) => 4,
        Some(Error::Unauthenticated | Error::Forbidden { .. }) => 5,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(run(cli));
    // Everything that held the database is gone with the runtime; let its writers close.
    // A blocking task still running (an SMTP send a stopped worker abandoned) would hold a
    // plain drop of the runtime until it ends (up to smtp_timeout_secs per step of the SMTP
    // dialogue): it is left behind. Writes are not blocking tasks: the writer thread ends
    // with the last handle to the database and `finish_writers` waits for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(250));
    licentia::store::finish_writers(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LICENTIA_LOG")
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs blocking client work (HTTP through ureq, files) off the async executor.
async fn blocking<T: Send + 'static, E: Into<anyhow::Error> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The container runtime and the benchmarks are clients: no server configuration.
    let cli = match cli.command {
        Command::Container(cmd) => {
            return blocking(move || licentia::client::cli::run_container(cmd)).await
        }
        Command::Online(cmd) => {
            return blocking(move || licentia::client::cli::run_online(cmd)).await
        }
        Command::Bench(BenchCmd::Orders {
            url,
            concurrency,
            count,
            rate,
            user,
            password,
            item,
        }) => {
            let b = licentia::bench::OrderBench {
                url,
                concurrency,
                count,
                rate,
                user,
                password,
                item,
            };
            println!(
                "{}",
                blocking(move || licentia::bench::run_orders(&b)).await?
            );
            return Ok(());
        }
        Command::Bench(BenchCmd::Activate {
            url,
            containers,
            concurrency,
            round_trips,
            rate,
            user,
            password,
            item,
        }) => {
            let b = licentia::bench::ActivateBench {
                url,
                containers,
                concurrency,
                round_trips,
                rate,
                user,
                password,
                item,
            };
            println!(
                "{}",
                blocking(move || licentia::bench::run_activate(&b)).await?
            );
            return Ok(());
        }
        _ => cli,
    };
    // LICENTIA_LOG and LICENTIA_BENCH_PASSWORD are read by the CLI itself, not the config.
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "LICENTIA_LOG" && k != "LICENTIA_BENCH_PASSWORD")
        .collect();
    let config = Config::from_parts(cli.config.as_deref(), &env).context("configuration")?;
    let cli_actor = Actor {
        name: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        role: Role::Admin,
        interface: Interface::Cli,
    };
    match cli.command {
        Command::Serve { demo: with_demo } => {
            init_logging(&config);
            let listen = config.listen.clone();
            let running = licentia::app::start(config)
                .await
                .context("starting the server")?;
            if with_demo {
                print_demo(demo::seed(&running.core).await?);
            }
            tracing::info!(addr = %running.addr, requested = %listen, "licentia listening");
            running.until_signal().await.context("server")?;
        }
        Command::Migrate => {
            Core::open(config).await?;
            println!("migrations are up to date");
        }
        Command::Demo => {
            let core = Core::open(config).await?;
            print_demo(demo::seed(&core).await?);
        }
        Command::User(cmd) => {
            let core = Core::open(config).await?;
            match cmd {
                UserCmd::Add {
                    username,
                    role,
                    password_stdin,
                } => {
                    let role = Role::parse(&role)?;
                    let (password, show) = if password_stdin {
                        let mut s = String::new();
                        std::io::stdin().read_to_string(&mut s)?;
                        (s.trim_end_matches(['\r', '\n']).to_string(), false)
                    } else {
                        (users::generate_password(), true)
                    };
                    let u = users::add_user(
                        &core,
                        &cli_actor,
                        users::NewUser {
                            username,
                            password: password.clone(),
                            role,
                        },
                    )
                    .await?;
                    println!("user {} ({}) added", u.username, u.role);
                    if show {
                        println!("password: {password}");
                    }
                }
                UserCmd::List => {
                    for u in users::list_users(&core, &cli_actor).await? {
                        println!(
                            "{}\t{}\t{}",
                            u.username,
                            u.role,
                            if u.active { "active" } else { "disabled" }
                        );
                    }
                }
            }
        }
        Command::Item(cmd) => {
            let core = Core::open(config).await?;
            match cmd {
                ItemCmd::List => {
                    for i in catalog::list_items(&core, &cli_actor).await? {
                        println!(
                            "{}\t{}\t{}\t{}/{}",
                            i.item_id,
                            i.kind.as_str(),
                            i.name,
                            i.firm_code,
                            i.product_code
                        );
                    }
                }
                ItemCmd::Show { item_id } => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &catalog::get_item(&core, &cli_actor, item_id).await?
                        )?
                    );
                }
                ItemCmd::Add {
                    item_id,
                    name,
                    product_code,
                    kind,
                    firm_code,
                    options,
                } => {
                    let options: ItemOptions =
                        serde_json::from_str(&options).map_err(|e| Error::invalid("options", e))?;
                    let kind = ItemKind::parse(&kind)?;
                    let item = catalog::create_item(
                        &core,
                        &cli_actor,
                        catalog::NewItem {
                            item_id,
                            name,
                            kind,
                            firm_code,
                            product_code,
                            options,
                        },
                    )
                    .await?;
                    println!("item {} created", item.item_id);
                }
            }
        }
        Command::Order(OrderCmd::Create {
            customer,
            items,
            erp_order_id,
            source,
            email,
            comment,
        }) => {
            let core = Core::open(config).await?;
            let mut lines = vec![];
            for spec in items {
                let (sku, qty) = spec.split_once('=').unwrap_or((&spec, "1"));
                let quantity = qty.parse().map_err(|_| {
                    Error::invalid("item", format!("'{spec}': quantity must be a number"))
                })?;
                lines.push(orders::OrderLine {
                    item_id: sku.to_string(),
                    quantity,
                });
            }
            let req = orders::NewOrder {
                source,
                erp_order_id,
                customer: catalog::CustomerData {
                    external_id: customer,
                    name: None,
                    email,
                    locale: None,
                },
                comment,
                lines,
            };
            let view = orders::create_order(&core, &cli_actor, req).await?;
            println!("{}", view.ticket);
        }
        Command::Ticket(TicketCmd::Show { code }) => {
            let core = Core::open(config).await?;
            let t = orders::get_ticket(&core, &cli_actor, &code).await?;
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
        }
        Command::Audit(AuditCmd::Verify) => {
            let core = Core::open(config).await?;
            let report = core.db.read(audit::verify).await?;
            if report.problems.is_empty() {
                println!("audit chain intact: {} events", report.events);
            } else {
                for p in &report.problems {
                    println!("{p}");
                }
                anyhow::bail!(
                    "audit chain broken: {} problem(s) in {} events",
                    report.problems.len(),
                    report.events
                );
            }
        }
        Command::Firm(FirmCmd::RotateKey { firm_code }) => {
            let core = Core::open(config).await?;
            let key_id = firms::rotate_key(&core, &cli_actor, firm_code).await?;
            println!("firm code {firm_code} signs with key {key_id} from now on");
        }
        Command::License(cmd) => {
            let core = Core::open(config).await?;
            let out = match cmd {
                LicenseCmd::Withdraw { licenses, reason } => serde_json::to_value(
                    lifecycle::withdraw(
                        &core,
                        &cli_actor,
                        lifecycle::WithdrawRequest { licenses, reason },
                    )
                    .await?,
                )?,
                LicenseCmd::Replace { license, item } => serde_json::to_value(
                    lifecycle::replace(
                        &core,
                        &cli_actor,
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
                    &core,
                    &cli_actor,
                    lifecycle::SplitRequest {
                        license_id: license,
                        quantities,
                    },
                )
                .await?}),
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Blacklist(cmd) => {
            let core = Core::open(config).await?;
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
                    lifecycle::blacklist_add(&core, &cli_actor, req).await?;
                    println!("{serial} is blacklisted");
                }
                BlacklistCmd::Remove {
                    serial,
                    reason,
                    firm_code,
                } => {
                    lifecycle::blacklist_remove(
                        &core,
                        &cli_actor,
                        serial.clone(),
                        firm_code,
                        reason,
                    )
                    .await?;
                    println!("{serial} is off the blacklist");
                }
            }
        }
        Command::Approval(cmd) => {
            let core = Core::open(config).await?;
            let out = match cmd {
                ApprovalCmd::List { state } => serde_json::to_value(
                    lifecycle::list_approvals(&core, &cli_actor, state).await?,
                )?,
                ApprovalCmd::Approve { id, reason } => serde_json::to_value(
                    lifecycle::decide(&core, &cli_actor, id, true, reason).await?,
                )?,
                ApprovalCmd::Deny { id, reason } => serde_json::to_value(
                    lifecycle::decide(&core, &cli_actor, id, false, reason).await?,
                )?,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Serial(cmd) => {
            let core = Core::open(config).await?;
            match cmd {
                SerialCmd::Reset { serial, firm_code } => {
                    let ids =
                        lifecycle::reset(&core, &cli_actor, serial.clone(), firm_code).await?;
                    println!("{serial} reset; licenses deleted: {ids:?}");
                }
                SerialCmd::Assign { serial, customer } => {
                    lifecycle::assign(&core, &cli_actor, serial.clone(), customer.clone()).await?;
                    println!("{serial} belongs to customer {customer}");
                }
            }
        }
        Command::Mail(cmd) => {
            let core = Core::open(config).await?;
            match cmd {
                MailCmd::List { state } => {
                    for m in mail::list(&core, &cli_actor, state).await? {
                        println!(
                            "{}\t{}\t{}\t{}\tattempts {}\t{}",
                            m.id, m.state, m.kind, m.recipient, m.attempts, m.last_error
                        );
                    }
                }
                MailCmd::Requeue { id } => {
                    mail::requeue(&core, &cli_actor, id).await?;
                    println!("mail {id} is queued again");
                }
            }
        }
        Command::Job(cmd) => {
            let core = Core::open(config).await?;
            match cmd {
                JobCmd::List => {
                    let list = jobs::list(&core, &cli_actor).await?;
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                JobCmd::Run { name } => {
                    println!("{}", jobs::run_now(&core, &cli_actor, &name).await?);
                }
            }
        }
        Command::ConnectorLog { connector } => {
            let core = Core::open(config).await?;
            let (notes, writebacks) = connectors::list(&core, &cli_actor, connector).await?;
            for n in notes {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    n.received_at,
                    n.connector,
                    n.reference,
                    n.outcome,
                    n.ticket.unwrap_or_default(),
                    n.detail
                );
            }
            for w in writebacks {
                println!(
                    "write-back {}\t{}\torder {}\t{}\tattempts {}\t{}",
                    w.id, w.connector, w.order_id, w.state, w.attempts, w.last_error
                );
            }
        }
        Command::Report {
            name,
            serial,
            days,
            customer,
            ticket,
            license,
            format,
        } => {
            let report = reports::Report::parse(&name, |p| match p {
                "serial" => serial.clone(),
                "days" => days.map(|d| d.to_string()),
                "customer_id" => customer.clone(),
                "ticket" => ticket.clone(),
                "license_id" => license.map(|l| l.to_string()),
                _ => None,
            })?;
            let core = Core::open(config).await?;
            let table = reports::run(&core, &cli_actor, report).await?;
            match format.as_str() {
                "csv" => print!("{}", table.to_csv()?),
                "json" => println!("{}", serde_json::to_string_pretty(&table.to_json())?),
                other => anyhow::bail!("unknown format {other:?}: use csv or json"),
            }
        }
        Command::Bench(_) | Command::Container(_) | Command::Online(_) => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

fn print_demo(o: demo::DemoOutcome) {
    if !o.items_created.is_empty() {
        println!("demo catalog: {}", o.items_created.join(", "));
    }
    match o.admin_password {
        Some(p) => println!("admin user: admin\nadmin password (shown once): {p}"),
        None => println!("admin user exists already; its password is unchanged"),
    }
}
