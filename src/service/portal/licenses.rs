//! What the customer's pages read: the licenses of the session's tickets with what the
//! vendor's rules let the customer do with each, one license's history, and the split of an
//! available license.
use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::Session;
use crate::domain::ticket::TicketCode;
use crate::domain::{
    reactivation, ActivationMode, ContainerType, ItemOptions, LicenseState, ReactivationBehaviour,
    ReactivationPolicy, Settings,
};
use crate::error::{Error, Result};
use crate::service::lifecycle::{check_parts, split_in};
use crate::service::Core;
use crate::store::portal::{self as store, PortalLicenseRow};
use crate::store::{history, settings, Conn};

/// A license as the portal shows it, with what the vendor's rules allow.
#[derive(Debug, Clone)]
pub struct PortalLicense {
    pub license_id: i64,
    /// The ticket, shown in groups of five.
    pub ticket: String,
    pub item_id: String,
    pub name: String,
    pub firm_code: i64,
    pub state: LicenseState,
    pub serial: Option<String>,
    pub generation: i32,
    pub options: ItemOptions,
    /// When a receipt last proved it activated.
    pub activated_at: Option<NaiveDateTime>,
    /// Whether the customer may return it (the item's setting over the global one).
    pub returnable: bool,
    /// The re-activation policy (the item's over the global one).
    pub reactivation: ReactivationPolicy,
    /// What a re-activation does to the old container.
    pub behaviour: ReactivationBehaviour,
}

impl PortalLicense {
    /// Container types the portal can bind it to (cloud containers live on the server).
    pub fn bindings(&self) -> Vec<ContainerType> {
        [ContainerType::Act, ContainerType::Dongle]
            .into_iter()
            .filter(|t| self.options.container_types.contains(t))
            .collect()
    }
    pub fn can_activate(&self) -> bool {
        self.state == LicenseState::Available && !self.bindings().is_empty()
    }
    pub fn can_return(&self) -> bool {
        self.state == LicenseState::Activated && self.returnable
    }
    /// In a container, and the policy does not forbid re-activation (it may still need
    /// support's approval).
    pub fn can_reactivate(&self) -> bool {
        self.state.in_container() && self.reactivation != ReactivationPolicy::Never
    }
    pub fn can_split(&self) -> bool {
        self.state == LicenseState::Available && self.options.license_quantity >= 2
    }
}

/// One ticket's licenses and rules.
#[derive(Debug, Clone)]
pub struct TicketLicenses {
    pub ticket: String,
    pub activation_mode: ActivationMode,
    pub single_container: bool,
    pub licenses: Vec<PortalLicense>,
}

fn shape(row: PortalLicenseRow, s: &Settings) -> Result<PortalLicense> {
    let options: ItemOptions = serde_json::from_str(&row.options)
        .map_err(|e| Error::internal(format!("license options: {e}")))?;
    Ok(PortalLicense {
        license_id: row.id,
        ticket: TicketCode::parse(&row.ticket)?.to_string(),
        item_id: row.item_id,
        name: row.name,
        firm_code: row.firm_code,
        state: row.state,
        serial: row.serial,
        generation: row.generation,
        returnable: reactivation::returnable(s, &options),
        reactivation: options.reactivation.unwrap_or(s.reactivation),
        behaviour: reactivation::behaviour(s, &options),
        options,
        activated_at: row.activated_at,
    })
}

/// The licenses of `codes`, grouped by ticket in that order, with each firm's rules.
fn read(c: &mut Conn, codes: &[TicketCode]) -> Result<Vec<TicketLicenses>> {
    let stored: Vec<String> = codes.iter().map(|t| t.as_stored().to_string()).collect();
    let rows = store::licenses_of_tickets(c, &stored)?;
    let mut firm_settings: HashMap<i64, Settings> = HashMap::new();
    let mut groups: Vec<TicketLicenses> = codes
        .iter()
        .map(|t| TicketLicenses {
            ticket: t.to_string(),
            activation_mode: ActivationMode::Selected,
            single_container: false,
            licenses: vec![],
        })
        .collect();
    for row in rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = firm_settings.entry(row.firm_id) {
            slot.insert(settings::load(c, row.firm_id)?);
        }
        let s = &firm_settings[&row.firm_id];
        let Some(at) = stored.iter().position(|t| *t == row.ticket) else {
            continue;
        };
        let group = &mut groups[at];
        // The ticket rules are its first firm's (one firm per ticket is the usual case), as
        // the gateway's ticket info says.
        if group.licenses.is_empty() {
            group.activation_mode = s.activation_mode;
            group.single_container = s.single_container;
        }
        group.licenses.push(shape(row, s)?);
    }
    Ok(groups)
}

/// The licenses of the session's tickets, or of its ticket `only`.
pub async fn overview(core: &Core, s: &Session, only: Option<&str>) -> Result<Vec<TicketLicenses>> {
    let codes = match only {
        Some(code) => vec![s.ticket(code)?],
        None => s.tickets().to_vec(),
    };
    core.db.read(move |c| read(c, &codes)).await
}

/// The license `id` if it is on one of the session's tickets.
fn owned(c: &mut Conn, s: &Session, id: i64) -> Result<PortalLicense> {
    let code = store::tickets_of_licenses(c, &[id])?
        .into_iter()
        .next()
        .and_then(|(_, code)| TicketCode::parse(&code).ok())
        .filter(|code| s.tickets().contains(code))
        .ok_or_else(|| Error::not_found("license", id))?;
    read(c, &[code])?
        .into_iter()
        .flat_map(|g| g.licenses)
        .find(|l| l.license_id == id)
        .ok_or_else(|| Error::not_found("license", id))
}

/// One event of a license's history as the customer sees it: no staff names, only through
/// which interface it happened.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub at: NaiveDateTime,
    pub action: String,
    pub interface: String,
    pub serial: Option<String>,
    pub generation: Option<i64>,
}

pub struct LicenseHistory {
    pub license: PortalLicense,
    pub events: Vec<HistoryEntry>,
}

/// A license of the session's tickets with its history, oldest first.
pub async fn license_history(core: &Core, s: &Session, id: i64) -> Result<LicenseHistory> {
    let s = s.clone();
    core.db
        .read(move |c| {
            let license = owned(c, &s, id)?;
            let events = history::of_license(c, id)?
                .into_iter()
                .map(|e| {
                    let details: serde_json::Value =
                        serde_json::from_str(&e.details).unwrap_or_default();
                    HistoryEntry {
                        at: e.at,
                        action: e.action,
                        interface: e.interface,
                        serial: e.serial,
                        generation: details["generation"].as_i64(),
                    }
                })
                .collect();
            Ok(LicenseHistory { license, events })
        })
        .await
}

/// Splits an available license of the session's tickets into licenses whose quantities
/// add up to its quantity (so that they can go into different containers). The same change
/// as support's split (`lifecycle::split`), asked by the customer for their own license.
pub async fn split(core: &Core, s: &Session, id: i64, quantities: Vec<u32>) -> Result<Vec<i64>> {
    check_parts(&quantities, 100)?;
    let s = s.clone();
    let actor = s.actor();
    core.db
        .write(move |c| {
            owned(c, &s, id)?;
            split_in(c, &actor, id, &quantities)
        })
        .await
}
