//! The Admin service's reading and tidying operations (`xsd/licentia-admin-v1.xsd`): a
//! container as support sees it, the history of a ticket, order, license or container, and
//! the customers listed and deleted; the same service functions as the JSON API's
//! `/api/v1/containers/{serial}`, `/api/v1/history` and `/api/v1/customers`.
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{decode, encode, iso, need, opt, opt_long, Text};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::{activation, audit, catalog, Core};

const P: &str = "a";

/// The operations this module answers.
pub const OPERATIONS: &[&str] = &[
    "GetContainer",
    "GetHistory",
    "ListCustomers",
    "DeleteCustomer",
];

/// Every request of these operations: the fields each one reads (the schema checked which
/// it may carry).
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct RecordsIn {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Option<String>,
    #[yaserde(prefix = "a", rename = "Ticket")]
    ticket: Option<String>,
    #[yaserde(prefix = "a", rename = "OrderId")]
    order_id: Option<String>,
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Option<String>,
    #[yaserde(prefix = "a", rename = "ExternalId")]
    external_id: Option<String>,
    #[yaserde(prefix = "a", rename = "After")]
    after: Option<String>,
    #[yaserde(prefix = "a", rename = "Limit")]
    limit: Option<String>,
    #[yaserde(prefix = "a", rename = "Scope")]
    scope: Option<String>,
    #[yaserde(prefix = "a", rename = "AfterScope")]
    after_scope: Option<String>,
}

/// `GetContainerResponse`: the XSD's `ContainerDetails`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct ContainerOut {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "a", rename = "Type")]
    kind: Text,
    #[yaserde(prefix = "a", rename = "State")]
    state: Text,
    #[yaserde(prefix = "a", rename = "StateReason")]
    state_reason: Text,
    #[yaserde(prefix = "a", rename = "CustomerId")]
    customer_id: Option<Text>,
    #[yaserde(prefix = "a", rename = "Firm")]
    firm: Vec<FirmOut>,
    #[yaserde(prefix = "a", rename = "License")]
    license: Vec<LicenseOut>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Firm", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct FirmOut {
    #[yaserde(prefix = "a", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "a", rename = "Counter")]
    counter: i64,
    #[yaserde(prefix = "a", rename = "Digest")]
    digest: Text,
    #[yaserde(prefix = "a", rename = "ConfirmedAt")]
    confirmed_at: Text,
    #[yaserde(prefix = "a", rename = "UnconfirmedUpdateId")]
    unconfirmed_update_id: Vec<i64>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "License", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct LicenseOut {
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: i64,
    #[yaserde(prefix = "a", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "a", rename = "State")]
    state: Text,
}

/// `GetHistoryResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct HistoryOut {
    #[yaserde(prefix = "a", rename = "Event")]
    event: Vec<EventOut>,
}

/// The XSD's `Event`: one entry of the hash-chained history.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Event", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct EventOut {
    #[yaserde(prefix = "a", rename = "EventId")]
    event_id: i64,
    #[yaserde(prefix = "a", rename = "At")]
    at: Text,
    #[yaserde(prefix = "a", rename = "Actor")]
    actor: Text,
    #[yaserde(prefix = "a", rename = "Interface")]
    interface: Text,
    #[yaserde(prefix = "a", rename = "Action")]
    action: Text,
    #[yaserde(prefix = "a", rename = "OrderId")]
    order_id: Option<i64>,
    #[yaserde(prefix = "a", rename = "Ticket")]
    ticket: Option<Text>,
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Option<i64>,
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Option<Text>,
    #[yaserde(prefix = "a", rename = "Details")]
    details: Text,
    #[yaserde(prefix = "a", rename = "Hash")]
    hash: Text,
}

/// `ListCustomersResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct CustomersOut {
    #[yaserde(prefix = "a", rename = "Customer")]
    customer: Vec<super::admin::Customer>,
}

/// `DeleteCustomerResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct DeletedOut {
    #[yaserde(prefix = "a", rename = "ExternalId")]
    external_id: Text,
    #[yaserde(prefix = "a", rename = "UnassignedSerial")]
    unassigned_serial: Vec<Text>,
}

/// One of `OPERATIONS`.
pub async fn call(core: &Core, actor: &Actor, op: &El) -> Result<String, Error> {
    let name = format!("{P}:{}Response", op.name);
    let at = |field: &str| format!("{}/{field}", op.name);
    let r: RecordsIn = decode(P, op)?;
    match op.name.as_str() {
        "GetContainer" => {
            let serial = need(&at("Serial"), r.serial.as_deref().unwrap_or_default())?;
            let v = activation::get_container(core, actor, serial).await?;
            let out = ContainerOut {
                serial: v.serial.into(),
                kind: v.kind.into(),
                state: v.state.into(),
                state_reason: v.state_reason.into(),
                customer_id: v.customer_id.map(Text::from),
                firm: v
                    .firms
                    .into_iter()
                    .map(|f| FirmOut {
                        firm_code: f.firm_code,
                        counter: f.counter,
                        digest: f.digest.into(),
                        confirmed_at: iso(f.confirmed_at).into(),
                        unconfirmed_update_id: f.unconfirmed_updates,
                    })
                    .collect(),
                license: v
                    .licenses
                    .into_iter()
                    .map(|l| LicenseOut {
                        license_id: l.license_id,
                        item_id: l.item_id.into(),
                        state: l.state.into(),
                    })
                    .collect(),
            };
            encode(&name, &out)
        }
        "GetHistory" => {
            let events = audit::history(
                core,
                actor,
                opt(&r.ticket),
                opt_long(&at("OrderId"), &r.order_id)?,
                opt(&r.serial),
                opt_long(&at("LicenseId"), &r.license_id)?,
            )
            .await?;
            let out = HistoryOut {
                event: events
                    .into_iter()
                    .map(|e| EventOut {
                        event_id: e.id,
                        at: iso(e.at).into(),
                        actor: e.actor.into(),
                        interface: e.interface.into(),
                        action: e.action.into(),
                        order_id: e.order_id,
                        ticket: e.ticket.map(Text::from),
                        license_id: e.license_id,
                        serial: e.serial.map(Text::from),
                        details: e.details.into(),
                        hash: e.hash.into(),
                    })
                    .collect(),
            };
            encode(&name, &out)
        }
        "ListCustomers" => {
            let page = catalog::CustomerPage {
                scope: r.scope.clone(),
                after: opt(&r.after),
                after_scope: r.after_scope.clone(),
                limit: opt_long(&at("Limit"), &r.limit)?,
            };
            let list = catalog::list_customers(core, actor, page).await?;
            let out = CustomersOut {
                customer: list.iter().map(super::admin::Customer::from).collect(),
            };
            encode(&name, &out)
        }
        "DeleteCustomer" => {
            let external_id = need(
                &at("ExternalId"),
                r.external_id.as_deref().unwrap_or_default(),
            )?;
            let scope = opt(&r.scope).unwrap_or_default();
            let serials = catalog::delete_customer(core, actor, scope, external_id.clone()).await?;
            let out = DeletedOut {
                external_id: external_id.into(),
                unassigned_serial: serials.into_iter().map(Text::from).collect(),
            };
            encode(&name, &out)
        }
        other => Err(Error::internal(format!(
            "Admin.{other} is routed here but not answered"
        ))),
    }
}
