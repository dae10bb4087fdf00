//! What the activation wizard reads before it changes anything: a ticket's licenses, and a
//! firm's license template for a new container.
use std::collections::HashMap;

use crate::domain::ticket::TicketCode;
use crate::domain::{reactivation, Settings};
use crate::error::{Error, Result};
use crate::protocol::{Template, TicketInfo, TicketLicense};
use crate::service::Core;
use crate::store::{firms, licenses, settings, tickets};

/// Ticket info for the activation wizard: the ticket itself is the credential.
pub async fn ticket_info(core: &Core, code: &str) -> Result<TicketInfo> {
    let code = TicketCode::parse(code)?;
    core.db
        .read(move |c| {
            let (tid, state) = tickets::find(c, &code)?;
            let rows = licenses::of_ticket(c, tid)?;
            let mut by_firm: HashMap<i64, (Settings, i64)> = HashMap::new();
            let mut out = vec![];
            for l in rows {
                if let std::collections::hash_map::Entry::Vacant(slot) = by_firm.entry(l.firm_id) {
                    let code = firms::code_of(c, l.firm_id)?;
                    slot.insert((settings::load(c, l.firm_id)?, code));
                }
                let (s, firm_code) = &by_firm[&l.firm_id];
                let o = l.options()?;
                out.push(TicketLicense {
                    license_id: l.id,
                    item_id: l.item_id.clone(),
                    firm_code: *firm_code,
                    product_code: l.product_code,
                    returnable: reactivation::returnable(s, &o),
                    container_types: o.container_types.clone(),
                    state: l.state.as_str().to_string(),
                    serial: l.serial,
                });
            }
            // The ticket rules are the first firm's (one firm per ticket is the usual case).
            let s = by_firm
                .values()
                .next()
                .map(|(s, _)| s.clone())
                .unwrap_or_default();
            Ok(TicketInfo {
                ticket: code.to_string(),
                state: state.as_str().to_string(),
                activation_mode: s.activation_mode,
                single_container: s.single_container,
                licenses: out,
            })
        })
        .await
}

/// The license template for a new container of the firm.
pub async fn template(core: &Core, firm_code: i64) -> Result<Template> {
    core.db
        .read(move |c| {
            let firm =
                firms::find(c, firm_code)?.ok_or_else(|| Error::not_found("firm", firm_code))?;
            let keys = firms::public_keys(c, firm.id)?;
            let settings = settings::load(c, firm.id)?;
            Ok(Template {
                firm_code,
                firm_name: firm.name,
                keys: keys.into_iter().collect(),
                current_key: firm.key_id,
                fingerprint_tolerance: settings.fingerprint_tolerance,
            })
        })
        .await
}
