//! The runtime's commands: `licentia container …`, `activate`, `deactivate`, `update`.
//! They need no server configuration; online commands name the server.
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::online::{self, Gateway};
use super::{cerr, hashed_traits, machine_traits, unix_now, CResult, Container};
use crate::domain::ContainerType;
use crate::protocol::Template;

#[derive(Subcommand)]
pub enum ContainerCmd {
    /// Create a container with fresh keys in DIR.
    Create {
        #[arg(long = "type", default_value = "act")]
        kind: String,
        #[arg(long)]
        dir: PathBuf,
        /// A dongle's serial from production (made up if not given).
        #[arg(long)]
        serial: Option<String>,
        /// How many machine traits may change (act).
        #[arg(long, default_value_t = 2)]
        tolerance: u32,
        /// Machine traits as a JSON object instead of this machine's own.
        #[arg(long)]
        traits_file: Option<PathBuf>,
    },
    /// Trust a firm's keys from its license template (GET /api/v1/gateway/template/FIRM).
    Trust {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        template: PathBuf,
    },
    /// Write the container's signed request for a firm code.
    Request {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify and apply an update file; writes the receipt.
    Apply {
        #[arg(long)]
        dir: PathBuf,
        update: PathBuf,
        #[arg(long)]
        receipt_out: Option<PathBuf>,
    },
    /// Write the receipt of the last update applied for a firm code.
    Receipt {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the container and its license entries as JSON.
    List {
        #[arg(long)]
        dir: PathBuf,
    },
    /// This computer's traits hashed with an old container's salt (the portal's restore
    /// shows the salt; the server gives it at GET /containers/SERIAL/salt), as JSON.
    Traits {
        #[arg(long)]
        salt: String,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Machine traits as a JSON object instead of this machine's own.
        #[arg(long)]
        traits_file: Option<PathBuf>,
    },
    /// Check a license with no server, as the vendor's software does.
    Check {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        product_code: i64,
        /// Feature bits that must be set.
        #[arg(long, default_value_t = 0)]
        features: u32,
        #[arg(long)]
        traits_file: Option<PathBuf>,
        /// The release date of the version asking (YYYY-MM-DD): a license with a maintenance
        /// period covers only versions released before its maintenance ended.
        #[arg(long)]
        release_date: Option<String>,
    },
    /// Count units of a pay-per-use product used (as the vendor's software does when it uses
    /// them): refused, counting nothing, when fewer are left; the answer says how many are.
    Use {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        product_code: i64,
        #[arg(long)]
        units: u64,
        #[arg(long)]
        traits_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum OnlineCmd {
    /// Activate a ticket's licenses into the container (the whole round trip).
    Activate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        ticket: String,
        /// License ids; none means every available license of the ticket.
        #[arg(long = "license")]
        licenses: Vec<i64>,
        #[arg(long)]
        server: String,
    },
    /// Return licenses from the container to the server.
    Deactivate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long = "license", required = true)]
        licenses: Vec<i64>,
        #[arg(long)]
        server: String,
    },
    /// Re-activate licenses whose container is lost into this container (no return).
    Reactivate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        ticket: String,
        #[arg(long = "license", required = true)]
        licenses: Vec<i64>,
        #[arg(long)]
        server: String,
    },
    /// Restore the licenses of the act container this computer had before a reinstall.
    Restore {
        #[arg(long)]
        dir: PathBuf,
        /// The lost container's serial.
        #[arg(long)]
        old_serial: String,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        server: String,
        /// Machine traits as `name=value` lines instead of this machine's (for tests).
        #[arg(long)]
        traits_file: Option<PathBuf>,
    },
    /// Pull the automatic updates waiting for the container.
    Update {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        server: String,
    },
}

/// This machine's traits, or those of a JSON object in `file` (for tests).
pub fn traits(file: Option<&Path>) -> CResult<Vec<(String, String)>> {
    match file {
        None => Ok(machine_traits()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| cerr("io", format!("{}: {e}", p.display())))?;
            let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
                .map_err(|e| cerr("invalid_input", format!("{}: {e}", p.display())))?;
            Ok(map.into_iter().collect())
        }
    }
}

fn read(p: &Path) -> CResult<String> {
    std::fs::read_to_string(p).map_err(|e| cerr("io", format!("{}: {e}", p.display())))
}

fn emit(text: &str, out: Option<&Path>) -> CResult<()> {
    match out {
        Some(p) => std::fs::write(p, text).map_err(|e| cerr("io", format!("{}: {e}", p.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

pub fn run_container(cmd: ContainerCmd) -> CResult<()> {
    match cmd {
        ContainerCmd::Create {
            kind,
            dir,
            serial,
            tolerance,
            traits_file,
        } => {
            if Container::exists(&dir) {
                return Err(cerr(
                    "already_exists",
                    format!("{} holds a container already", dir.display()),
                ));
            }
            let kind =
                ContainerType::parse(&kind).map_err(|e| cerr("invalid_input", e.to_string()))?;
            let c = Container::create(kind, serial, &traits(traits_file.as_deref())?, tolerance)?;
            c.save(&dir)?;
            println!(
                "{} container {} created in {}",
                kind.as_str(),
                c.serial,
                dir.display()
            );
        }
        ContainerCmd::Trust { dir, template } => {
            let mut c = Container::load(&dir)?;
            let t: Template = serde_json::from_str(&read(&template)?)
                .map_err(|e| cerr("invalid_input", format!("not a license template: {e}")))?;
            c.trust_template(&t);
            c.save(&dir)?;
            println!("firm code {} ({}) trusted", t.firm_code, t.firm_name);
        }
        ContainerCmd::Request {
            dir,
            firm_code,
            out,
        } => {
            let mut c = Container::load(&dir)?;
            let r = c.request(firm_code, unix_now())?;
            c.save(&dir)?;
            emit(&r, out.as_deref())?;
        }
        ContainerCmd::Apply {
            dir,
            update,
            receipt_out,
        } => {
            let mut c = Container::load(&dir)?;
            let applied = c.apply(&read(&update)?, unix_now())?;
            c.save(&dir)?;
            eprintln!(
                "update {} applied to {}: firm {} counter {}",
                applied.update_id, applied.serial, applied.firm_code, applied.counter
            );
            emit(&applied.receipt, receipt_out.as_deref())?;
        }
        ContainerCmd::Receipt {
            dir,
            firm_code,
            out,
        } => {
            let c = Container::load(&dir)?;
            emit(&c.receipt(firm_code, unix_now())?, out.as_deref())?;
        }
        ContainerCmd::List { dir } => {
            let c = Container::load(&dir)?;
            let firms: Vec<_> = c
                .firms
                .iter()
                .map(|(code, f)| {
                    serde_json::json!({
                        "firm_code": code, "firm_name": f.firm_name, "counter": f.counter,
                        "locked": f.content.locked,
                        "entries": f.content.entries.values().map(|e| &e.entry).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json(&serde_json::json!({"serial": c.serial, "type": c.kind, "firms": firms}));
        }
        ContainerCmd::Traits {
            salt,
            out,
            traits_file,
        } => {
            let hashed = hashed_traits(&salt, &traits(traits_file.as_deref())?);
            let text = serde_json::to_string_pretty(&hashed).expect("traits") + "\n";
            emit(&text, out.as_deref())?;
        }
        ContainerCmd::Check {
            dir,
            firm_code,
            product_code,
            features,
            traits_file,
            release_date,
        } => {
            let released = release_date
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
                        .map_err(|e| {
                            cerr(
                                "invalid_input",
                                format!("--release-date {d:?}: {e} (YYYY-MM-DD)"),
                            )
                        })
                })
                .transpose()?;
            let mut c = Container::load(&dir)?;
            let current = traits(traits_file.as_deref())?;
            let res = c.check_release(
                firm_code,
                product_code,
                features,
                &current,
                unix_now(),
                released,
            );
            // The check remembers the time it saw and first uses, even when it refuses.
            c.save(&dir)?;
            json(&res?);
        }
        ContainerCmd::Use {
            dir,
            firm_code,
            product_code,
            units,
            traits_file,
        } => {
            let mut c = Container::load(&dir)?;
            let current = traits(traits_file.as_deref())?;
            let res = c.use_units(firm_code, product_code, units, &current, unix_now());
            c.save(&dir)?;
            json(&res?);
        }
    }
    Ok(())
}

pub fn run_online(cmd: OnlineCmd) -> CResult<()> {
    let (dir, server) = match &cmd {
        OnlineCmd::Activate { dir, server, .. }
        | OnlineCmd::Deactivate { dir, server, .. }
        | OnlineCmd::Reactivate { dir, server, .. }
        | OnlineCmd::Restore { dir, server, .. }
        | OnlineCmd::Update { dir, server } => (dir.clone(), server.clone()),
    };
    let gw = Gateway::new(&server);
    let mut c = Container::load(&dir)?;
    let mut persist = |c: &Container| c.save(&dir);
    match cmd {
        OnlineCmd::Activate {
            ticket, licenses, ..
        } => json(&online::activate(
            &gw,
            &mut c,
            &ticket,
            &licenses,
            &mut persist,
        )?),
        OnlineCmd::Deactivate { licenses, .. } => {
            let firm_code = c
                .firms
                .iter()
                .find(|(_, f)| licenses.iter().any(|l| f.content.entries.contains_key(l)))
                .map(|(code, _)| *code)
                .ok_or_else(|| cerr("not_found", "the container holds none of these licenses"))?;
            json(&online::deactivate(
                &gw,
                &mut c,
                firm_code,
                &licenses,
                &mut persist,
            )?)
        }
        OnlineCmd::Reactivate {
            ticket, licenses, ..
        } => json(&online::reactivate(
            &gw,
            &mut c,
            &ticket,
            &licenses,
            &mut persist,
        )?),
        OnlineCmd::Restore {
            old_serial,
            firm_code,
            traits_file,
            ..
        } => {
            let current = traits(traits_file.as_deref())?;
            json(&online::restore(
                &gw,
                &mut c,
                &old_serial,
                firm_code,
                &current,
                &mut persist,
            )?)
        }
        OnlineCmd::Update { .. } => json(&online::update(&gw, &mut c, &mut persist)?),
    }
    Ok(())
}

/// The exit code for a runtime error: 2 bad input or message, 3 not found, 4 conflict,
/// 6 not licensed here (check failed), 7 server unreachable, 1 other.
pub fn exit_code(e: &super::ClientError) -> u8 {
    match e.code.as_str() {
        "invalid_input" | "invalid_message" | "invalid_update" | "invalid_ticket"
        | "bad_credential" => 2,
        c if c == "not_found" || c.starts_with("unknown_") => 3,
        "conflict"
        | "context_mismatch"
        | "wrong_counter"
        | "wrong_container"
        | "already_exists"
        | "manipulation_detected"
        | "not_allowed"
        | "blacklisted"
        | "approval_required"
        | "quota_exceeded"
        | "no_seat_free"
        | "lease_lost" => 4,
        "not_licensed"
        | "fingerprint_mismatch"
        | "clock_set_back"
        | "locked"
        | "update_expired" => 6,
        "unreachable" => 7,
        _ => 1,
    }
}

/// Who uses a cloud container: the server and the credential file.
#[derive(clap::Args, Clone)]
pub struct CloudUser {
    /// The server's base URL.
    #[arg(long)]
    pub server: String,
    /// The credential file (PEM or PKCS#12) the vendor issued for the cloud container.
    #[arg(long)]
    pub credential: PathBuf,
    /// A file holding the credential file's passphrase (first line).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

/// The license use API of a cloud container: what the vendor's software does through
/// `licentia::client::cloud`, from the command line.
#[derive(Subcommand)]
pub enum CloudUseCmd {
    /// Open a seat of a license; prints the lease (JSON) with the seat to keep and release.
    Open {
        #[command(flatten)]
        user: CloudUser,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        product_code: i64,
        /// Feature bits the license must have.
        #[arg(long, default_value_t = 0)]
        features: u32,
        /// The station's name (default: this computer's host name).
        #[arg(long)]
        station: Option<String>,
    },
    /// Keep a seat for another lease.
    Heartbeat {
        #[command(flatten)]
        user: CloudUser,
        #[arg(long)]
        seat: i64,
    },
    /// Release a seat.
    Release {
        #[command(flatten)]
        user: CloudUser,
        #[arg(long)]
        seat: i64,
    },
    /// The cloud container's licenses and their seats in use.
    Status {
        #[command(flatten)]
        user: CloudUser,
    },
    /// Activate a ticket's licenses (all that may go, or those named) into the credential's
    /// cloud container.
    ActivateTicket {
        #[command(flatten)]
        user: CloudUser,
        #[arg(long)]
        ticket: String,
        #[arg(long = "license")]
        licenses: Vec<i64>,
    },
    /// Borrow a seat into the local container in DIR for some days (online round trip);
    /// it comes back with `licentia deactivate`.
    Borrow {
        #[command(flatten)]
        user: CloudUser,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        firm_code: i64,
        #[arg(long)]
        product_code: i64,
        #[arg(long, default_value_t = 0)]
        features: u32,
        #[arg(long)]
        days: u32,
    },
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "station".into())
}

pub fn run_cloud(cmd: CloudUseCmd) -> CResult<()> {
    use super::cloud::{Cloud, Credential};
    let user = match &cmd {
        CloudUseCmd::Open { user, .. }
        | CloudUseCmd::Heartbeat { user, .. }
        | CloudUseCmd::Release { user, .. }
        | CloudUseCmd::Status { user }
        | CloudUseCmd::Borrow { user, .. }
        | CloudUseCmd::ActivateTicket { user, .. } => user.clone(),
    };
    let passphrase = match &user.passphrase_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| cerr("io", format!("cannot read {}: {e}", p.display())))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        None => None,
    };
    let cloud = Cloud::new(
        &user.server,
        Credential::read(&user.credential, passphrase.as_deref())?,
    );
    match cmd {
        CloudUseCmd::Open {
            firm_code,
            product_code,
            features,
            station,
            ..
        } => json(&cloud.open(&crate::protocol::cloud::OpenRequest {
            firm_code,
            product_code,
            features,
            station: station.unwrap_or_else(host_name),
        })?),
        CloudUseCmd::Heartbeat { seat, .. } => json(&cloud.heartbeat(seat)?),
        CloudUseCmd::Release { seat, .. } => {
            cloud.release(seat)?;
            println!("seat {seat} released");
        }
        CloudUseCmd::Status { .. } => json(&cloud.status()?),
        CloudUseCmd::ActivateTicket {
            ticket, licenses, ..
        } => json(&serde_json::json!({
            "activated": cloud.activate_ticket(&ticket, &licenses)?
        })),
        CloudUseCmd::Borrow {
            dir,
            firm_code,
            product_code,
            features,
            days,
            ..
        } => {
            let gw = Gateway::new(&user.server);
            let mut c = Container::load(&dir)?;
            let mut persist = |c: &Container| c.save(&dir);
            json(&online::borrow(
                &gw,
                &cloud,
                &mut c,
                firm_code,
                product_code,
                features,
                days,
                &mut persist,
            )?)
        }
    }
    Ok(())
}
