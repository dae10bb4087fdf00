//! `licentia cloud …`: the vendor's side of cloud containers (make one, activate and
//! return licenses, issue and revoke credential files) and, with a credential file, the
//! license use API as the vendor's software calls it.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use licentia::client::cli::CloudUseCmd;
use licentia::domain::Actor;
use licentia::service::cloud::{self, CredentialRequest, Format};
use licentia::service::Core;

#[derive(Subcommand)]
pub enum CloudCmd {
    #[command(flatten)]
    Use(CloudUseCmd),
    /// Make a cloud container for a customer; prints its serial.
    Create {
        /// The customer's external id.
        #[arg(long)]
        customer: String,
        /// Its scope: a connector's source (none: the vendor's customers).
        #[arg(long, default_value = "")]
        customer_scope: String,
        #[arg(long)]
        firm_code: Option<i64>,
    },
    /// A cloud container: its licenses with their seats in use, and its credentials (JSON).
    Show { serial: String },
    /// Activate licenses of a ticket into a cloud container (none named: all that may go).
    Activate {
        serial: String,
        #[arg(long)]
        ticket: String,
        #[arg(long = "license")]
        licenses: Vec<i64>,
    },
    /// Return licenses from a cloud container; their seats end.
    Return {
        serial: String,
        #[arg(long = "license", required = true)]
        licenses: Vec<i64>,
    },
    /// Issue a new credential file (any credential in force is revoked at once).
    Credential {
        serial: String,
        /// Where to write the file (it must not exist).
        #[arg(long)]
        out: PathBuf,
        /// pem or pkcs12.
        #[arg(long, default_value = "pem")]
        format: String,
        /// A file holding the passphrase (first line); required for pkcs12.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Revoke the credentials in force (stolen): refused at once, their seats end.
    Revoke {
        serial: String,
        #[arg(long)]
        reason: String,
    },
}

fn print<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

pub async fn run(core: &Core, actor: &Actor, cmd: CloudCmd) -> anyhow::Result<()> {
    match cmd {
        CloudCmd::Use(_) => unreachable!("run without the server"),
        CloudCmd::Create {
            customer,
            customer_scope,
            firm_code,
        } => {
            let c = cloud::create_container(
                core,
                actor,
                cloud::NewCloudContainer {
                    customer,
                    customer_scope,
                    firm_code,
                },
            )
            .await?;
            println!("{}", c.serial);
        }
        CloudCmd::Show { serial } => print(&cloud::get_container(core, actor, serial).await?),
        CloudCmd::Activate {
            serial,
            ticket,
            licenses,
        } => {
            let ids = cloud::activate(
                core,
                actor,
                serial,
                cloud::CloudActivation { ticket, licenses },
            )
            .await?;
            print(&serde_json::json!({ "activated": ids }));
        }
        CloudCmd::Return { serial, licenses } => {
            let ids = cloud::deactivate(core, actor, serial, licenses).await?;
            print(&serde_json::json!({ "returned": ids }));
        }
        CloudCmd::Credential {
            serial,
            out,
            format,
            passphrase_file,
            reason,
        } => {
            let format: Format = serde_json::from_value(serde_json::Value::String(format))
                .map_err(|_| licentia::error::Error::invalid("format", "pem or pkcs12"))?;
            let passphrase = match passphrase_file {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ),
                None => None,
            };
            // The file is made first: an existing one stops the command before a new
            // credential revokes the one in force.
            let mut f = create_new(&out)?;
            let issued = cloud::issue_credential(
                core,
                actor,
                serial,
                CredentialRequest {
                    format,
                    passphrase,
                    reason,
                },
            )
            .await;
            let file = match issued {
                Ok(file) => file,
                Err(e) => {
                    drop(f);
                    let _ = std::fs::remove_file(&out);
                    return Err(e.into());
                }
            };
            let bytes = match format {
                Format::Pem => file.content.clone().into_bytes(),
                Format::Pkcs12 => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(&file.content)?
                }
            };
            use std::io::Write;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "credential {} for {} written to {} (valid until {}; revoked: {:?})",
                file.fingerprint,
                file.serial,
                out.display(),
                file.not_after,
                file.revoked
            );
        }
        CloudCmd::Revoke { serial, reason } => print(
            &cloud::revoke_credentials(core, actor, serial, cloud::Revocation { reason }).await?,
        ),
    }
    Ok(())
}

/// A new file readable by its owner only; an existing file is not replaced.
fn create_new(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}
