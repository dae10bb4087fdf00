//! `licentia mail …`, `webhook …`, `job …`, `connector-log`, `audit …` and `report`: what
//! the server did and does in the background, for support.
use clap::{Args, Subcommand};

use licentia::domain::Actor;
use licentia::service::webhooks::{self, NewSubscription};
use licentia::service::{audit, connectors, jobs, mail, reports, Core};
use licentia::store::checkpoints::Checkpoint;

#[derive(Subcommand)]
pub enum MailCmd {
    /// The newest mails (at most 1,000), optionally in one state: queued, sending, sent, failed.
    List {
        #[arg(long)]
        state: Option<String>,
    },
    /// Put a failed mail back in the queue.
    Requeue { id: i64 },
}

#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Subscribe a URL to kinds of events (license.activated, license.*, *); prints the
    /// subscription with its signing secret, shown this once.
    Add {
        url: String,
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every subscription.
    List,
    /// Stop sending a subscription's events (they are kept and sent on resume).
    Pause {
        id: i64,
    },
    Resume {
        id: i64,
    },
    /// Delete a subscription and its deliveries.
    Delete {
        id: i64,
    },
    /// The newest deliveries (at most 1,000), of one subscription, in one state.
    Deliveries {
        #[arg(long)]
        webhook: Option<i64>,
        #[arg(long)]
        state: Option<String>,
    },
    /// Put a failed delivery back in the queue.
    Requeue {
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum JobCmd {
    /// Every job with its schedule, next and last run.
    List,
    /// Run a job now: expiry_report, never_activated_report, outbox, housekeeping, audit_checkpoint.
    Run { name: String },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of the whole history against the signed checkpoints.
    Verify {
        /// The audit key's public half (hex, as `audit public-key` prints it), kept outside
        /// the database; without it the key in the database is used.
        #[arg(long)]
        public_key: Option<String>,
        /// A file of checkpoints as `audit checkpoints` exports them, kept outside the
        /// database; without it the checkpoints in the database are used.
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
        /// A file of the events' hashes as `audit hashes` exported them, kept outside the
        /// database: names the first event that was changed.
        #[arg(long)]
        hashes: Option<std::path::PathBuf>,
    },
    /// Every event's id and hash, a line each: keep a copy outside the database.
    Hashes,
    /// Sign a checkpoint of the history's head now (the audit_checkpoint job does it on its
    /// schedule).
    Checkpoint,
    /// Every signed checkpoint, as JSON: keep a copy outside the database.
    Checkpoints,
    /// The audit key's public half (hex): keep a copy outside the database.
    PublicKey,
    /// The events of a ticket, an order (Licentia's id), a license or a container, oldest
    /// first, at most 1,000 (JSON).
    History {
        #[arg(long)]
        ticket: Option<String>,
        #[arg(long)]
        order: Option<i64>,
        #[arg(long)]
        license: Option<i64>,
        #[arg(long)]
        serial: Option<String>,
    },
}

/// `licentia report NAME …`.
#[derive(Args)]
pub struct ReportArgs {
    /// container-licenses, expiring, customer-containers, ticket-licenses,
    /// license-history, blacklist, never-activated, activations, production, duplicates,
    /// cloud-seats, cloud-use, check-in, units.
    pub name: String,
    #[arg(long)]
    pub serial: Option<String>,
    #[arg(long)]
    pub days: Option<u32>,
    #[arg(long)]
    pub customer: Option<String>,
    /// The scope of --customer: a connector's source (none: the vendor's customers).
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long)]
    pub ticket: Option<String>,
    #[arg(long)]
    pub license: Option<i64>,
    #[arg(long, default_value = "csv")]
    pub format: String,
}

pub async fn mail(core: &Core, actor: &Actor, cmd: MailCmd) -> anyhow::Result<()> {
    match cmd {
        MailCmd::List { state } => {
            for m in mail::list(core, actor, state).await? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}\t{}",
                    m.id, m.state, m.kind, m.recipient, m.attempts, m.last_error
                );
            }
        }
        MailCmd::Requeue { id } => {
            mail::requeue(core, actor, id).await?;
            println!("mail {id} is queued again");
        }
    }
    Ok(())
}

pub async fn webhook(core: &Core, actor: &Actor, cmd: WebhookCmd) -> anyhow::Result<()> {
    fn pretty(v: &impl serde::Serialize) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }
    match cmd {
        WebhookCmd::Add {
            url,
            events,
            description,
        } => {
            let req = NewSubscription {
                url,
                events,
                description,
            };
            pretty(&webhooks::create(core, actor, req).await?)?
        }
        WebhookCmd::List => pretty(&webhooks::list(core, actor).await?)?,
        WebhookCmd::Pause { id } => pretty(&webhooks::set_active(core, actor, id, false).await?)?,
        WebhookCmd::Resume { id } => pretty(&webhooks::set_active(core, actor, id, true).await?)?,
        WebhookCmd::Delete { id } => {
            webhooks::delete(core, actor, id).await?;
            println!("webhook {id} is deleted");
        }
        WebhookCmd::Deliveries { webhook, state } => {
            for d in webhooks::deliveries(core, actor, webhook, state).await? {
                println!(
                    "{}	webhook {}	event {}	{}	{}	attempts {}	{}",
                    d.id, d.webhook_id, d.event_id, d.kind, d.state, d.attempts, d.last_error
                );
            }
        }
        WebhookCmd::Requeue { id } => {
            webhooks::requeue(core, actor, id).await?;
            println!("webhook delivery {id} is queued again");
        }
    }
    Ok(())
}

pub async fn job(core: &Core, actor: &Actor, cmd: JobCmd) -> anyhow::Result<()> {
    match cmd {
        JobCmd::List => {
            let list = jobs::list(core, actor).await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        JobCmd::Run { name } => {
            println!("{}", jobs::run_now(core, actor, &name).await?);
        }
    }
    Ok(())
}

pub async fn connector_log(
    core: &Core,
    actor: &Actor,
    connector: Option<String>,
) -> anyhow::Result<()> {
    let (notes, writebacks) = connectors::list(core, actor, connector).await?;
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
    Ok(())
}

pub async fn audit(core: &Core, actor: &Actor, cmd: AuditCmd) -> anyhow::Result<()> {
    let trust = match cmd {
        AuditCmd::History {
            ticket,
            order,
            license,
            serial,
        } => {
            let events = audit::history(core, actor, ticket, order, serial, license).await?;
            println!("{}", serde_json::to_string_pretty(&events)?);
            return Ok(());
        }
        AuditCmd::Checkpoint => {
            match audit::checkpoint(core, actor).await? {
                Some(k) => println!("{}", serde_json::to_string_pretty(&k)?),
                None => println!("the newest checkpoint names the history's head already"),
            }
            return Ok(());
        }
        AuditCmd::Checkpoints => {
            let list = audit::checkpoints(core, actor).await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(());
        }
        AuditCmd::Hashes => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = 0;
            loop {
                let page = audit::hashes_after(core, actor, after, 10_000).await?;
                let Some((last, _)) = page.last() else { break };
                after = *last;
                for (id, hash) in &page {
                    writeln!(out, "{id} {hash}")?;
                }
            }
            out.flush()?;
            return Ok(());
        }
        AuditCmd::PublicKey => {
            println!("{}", audit::public_key(core, actor).await?);
            return Ok(());
        }
        AuditCmd::Verify {
            public_key,
            checkpoints,
            hashes,
        } => audit::Trust {
            hashes: hashes.map(|f| read_hashes(&f)).transpose()?,
            public_key: public_key
                .map(|k| {
                    hex::decode(k.trim())
                        .ok()
                        .filter(|k| k.len() == 32)
                        .ok_or_else(|| anyhow::anyhow!("--public-key: 64 hex characters"))
                })
                .transpose()?,
            checkpoints: checkpoints
                .map(|f| -> anyhow::Result<_> {
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| anyhow::anyhow!("--checkpoints {}: {e}", f.display()))?;
                    // `audit checkpoints` writes the list; the JSON API answers it with
                    // the public key beside it.
                    #[derive(serde::Deserialize)]
                    #[serde(untagged)]
                    enum Export {
                        List(Vec<Checkpoint>),
                        Answer { checkpoints: Vec<Checkpoint> },
                    }
                    match serde_json::from_str(&text) {
                        Ok(Export::List(l)) | Ok(Export::Answer { checkpoints: l }) => Ok(l),
                        Err(e) => Err(anyhow::anyhow!(
                            "--checkpoints {}: not an export of checkpoints: {e}",
                            f.display()
                        )),
                    }
                })
                .transpose()?,
        },
    };
    let outside = match (trust.public_key.is_some(), trust.checkpoints.is_some()) {
        (true, true) => "",
        (true, false) => " (the checkpoints in the database were used: give --checkpoints)",
        (false, true) => " (the key in the database was used: give --public-key)",
        (false, false) => {
            " (the key and the checkpoints in the database were used: give --public-key and \
             --checkpoints)"
        }
    };
    let report = audit::verify_chain_with(core, actor, trust).await?;
    if report.problems.is_empty() {
        println!(
            "audit chain intact: {} events, {} signed checkpoint(s) hold{}; {} event(s) after \
             the newest checkpoint",
            report.events, report.checkpoints, outside, report.after_last_checkpoint
        );
        return Ok(());
    }
    for p in &report.problems {
        println!("{p}");
    }
    anyhow::bail!(
        "audit chain broken: {} problem(s) in {} events",
        report.problems.len(),
        report.events
    )
}

/// Reads an export of `audit hashes`: a line "id hash" per event, in order.
fn read_hashes(f: &std::path::Path) -> anyhow::Result<Vec<(i64, String)>> {
    let text =
        std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("--hashes {}: {e}", f.display()))?;
    let mut out: Vec<(i64, String)> = vec![];
    for (n, line) in text.lines().enumerate() {
        let bad = || anyhow::anyhow!("--hashes {} line {}: not \"id hash\"", f.display(), n + 1);
        let (id, hash) = line.split_once(' ').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        if hash.len() != 64 || out.last().is_some_and(|(prev, _)| *prev >= id) {
            return Err(bad());
        }
        out.push((id, hash.to_string()));
    }
    Ok(out)
}

/// Checks the report's name and parameters before anything is opened.
pub fn parse_report(a: &ReportArgs) -> anyhow::Result<reports::Report> {
    let params = reports::Params {
        serial: a.serial.clone(),
        days: a.days.map(|d| d.to_string()),
        customer_id: a.customer.clone(),
        scope: a.scope.clone(),
        ticket: a.ticket.clone(),
        license_id: a.license.map(|l| l.to_string()),
    };
    Ok(reports::Report::parse(&a.name, &params)?)
}

/// Writes the report to standard output as it is read, a page at a time.
pub async fn report(
    core: &Core,
    actor: &Actor,
    report: reports::Report,
    format: &str,
) -> anyhow::Result<()> {
    use std::io::Write;
    let json = match format {
        "csv" => false,
        "json" => true,
        other => anyhow::bail!("unknown format {other:?}: use csv or json"),
    };
    let (mut reading, first) =
        reports::Reading::first(core, actor, report, reports::PAGE_ROWS).await?;
    let columns = reading.columns;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut rows_sent = !first.is_empty();
    if json {
        out.write_all(&reports::json_head(reading.name, columns))?;
        out.write_all(&reports::json_rows(columns, &first, true))?;
    } else {
        out.write_all(&reports::csv_rows(Some(columns), &first)?)?;
    }
    while let Some(rows) = reading.next(core).await? {
        if json {
            out.write_all(&reports::json_rows(columns, &rows, !rows_sent))?;
        } else {
            out.write_all(&reports::csv_rows(None, &rows)?)?;
        }
        rows_sent |= !rows.is_empty();
    }
    if json {
        out.write_all(reports::JSON_TAIL)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
