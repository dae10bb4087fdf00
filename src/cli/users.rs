//! `licentia user …` and `licentia firm …`: vendor users and firm signing keys.
use std::io::Read;

use clap::Subcommand;

use licentia::domain::{Actor, Role};
use licentia::service::{firms, users, Core};

#[derive(Subcommand)]
pub enum UserCmd {
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
pub enum FirmCmd {
    /// Give the firm a new signing key, endorsed by the current one.
    RotateKey {
        #[arg(long)]
        firm_code: i64,
    },
}

pub async fn user(core: &Core, actor: &Actor, cmd: UserCmd) -> anyhow::Result<()> {
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
                core,
                actor,
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
            for u in users::list_users(core, actor).await? {
                println!(
                    "{}\t{}\t{}",
                    u.username,
                    u.role,
                    if u.active { "active" } else { "disabled" }
                );
            }
        }
    }
    Ok(())
}

pub async fn firm(core: &Core, actor: &Actor, cmd: FirmCmd) -> anyhow::Result<()> {
    match cmd {
        FirmCmd::RotateKey { firm_code } => {
            let key_id = firms::rotate_key(core, actor, firm_code).await?;
            println!("firm code {firm_code} signs with key {key_id} from now on");
        }
    }
    Ok(())
}
