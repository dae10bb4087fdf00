//! Licentia's client runtime in a vendor's own software: the five calls (create, request,
//! apply, receipt, check) around one online activation.
//!
//! A vendor's Cargo.toml takes the runtime without the server:
//!
//! ```toml
//! licentia = { version = "0.1", default-features = false, features = ["client"] }
//! ```
//!
//! Run against a server with a ticket: `embed SERVER_URL TICKET DIR`. It makes a software
//! container bound to this computer in DIR, activates the ticket's licenses into it, and
//! checks the first license's product the way the vendor's software would, with no server.
use std::path::PathBuf;
use std::process::ExitCode;

use licentia::client::online::Gateway;
use licentia::client::{machine_traits, unix_now, Container};
use licentia::domain::ContainerType;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, ticket, dir] = args.as_slice() else {
        return Err("usage: embed SERVER_URL TICKET DIR".into());
    };
    let dir = PathBuf::from(dir);
    let gateway = Gateway::new(server);

    // 1. create: a software container bound to this computer's traits (two may change).
    let mut container = Container::create(ContainerType::Act, None, &machine_traits(), 2)?;
    // The firm's license template: its public keys, so the container can check updates.
    let info = gateway.ticket(ticket)?;
    let first = info.licenses.first().ok_or("the ticket holds no license")?;
    let (firm_code, product_code) = (first.firm_code, first.product_code);
    let template = gateway.template(firm_code)?;
    container.trust_template(&template);

    // 2. request: the container's signed context, sent with the ticket.
    let request = container.request(firm_code, unix_now())?;
    let issued = gateway.activate(ticket, &[], &request)?;

    // 3. apply: verify and apply the update; keep the container before the receipt leaves.
    let applied = container.apply(&issued.update, unix_now())?;
    container.save(&dir)?;

    // 4. receipt: the signed context after applying; only it makes the licenses activated.
    let receipt = container.receipt(firm_code, unix_now())?;
    let confirmed = gateway.receipt(&receipt)?;

    // 5. check: what the vendor's software does at every start, with no server.
    let ok = container.check(firm_code, product_code, 0, &machine_traits(), unix_now())?;
    container.save(&dir)?;
    println!(
        "container {} (update {}): activated {:?}; product {} licensed, quantity {}, \
         features {:#x}",
        applied.serial,
        applied.update_id,
        confirmed.activated,
        ok.product_code,
        ok.quantity,
        ok.feature_map
    );
    Ok(())
}
