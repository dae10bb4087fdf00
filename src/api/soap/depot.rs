//! The Depot service's codec: what the activation wizard does.
use super::codec::{iso, license_ids, long, need};
use super::envelope::El;
use crate::domain::Interface;
use crate::error::Error;
use crate::service::connectors::esc;
use crate::service::Core;

/// An update's fields (the Depot's `Update` type), inside an element the caller opens.
fn update_fields(d: &str, u: &crate::service::activation::Issued) -> String {
    let list = |tag: &str, ids: &[i64]| -> String {
        ids.iter()
            .map(|id| format!("<{d}:{tag}>{id}</{d}:{tag}>"))
            .collect()
    };
    format!(
        "<{d}:Serial>{}</{d}:Serial><{d}:FirmCode>{}</{d}:FirmCode><{d}:UpdateId>{}</{d}:UpdateId>\
         <{d}:CounterFrom>{}</{d}:CounterFrom><{d}:CounterTo>{}</{d}:CounterTo>\
         <{d}:ExpiresAt>{}</{d}:ExpiresAt>{}{}{}<{d}:Locked>{}</{d}:Locked><{d}:Update>{}</{d}:Update>",
        esc(&u.serial),
        u.firm_code,
        u.update_id,
        u.counter_from,
        u.counter_to,
        iso(u.expires_at),
        list("Added", &u.added),
        list("Changed", &u.changed),
        list("Deleted", &u.deleted),
        u.locked,
        esc(&u.update)
    )
}

/// The Depot's operations: the same service functions as the JSON gateway.
pub async fn call(core: &Core, ns: &str, op: &El) -> Result<String, Error> {
    use crate::service::{activation, lifecycle};
    let iface = Interface::Soap;
    let wrap = |name: &str, inner: String| {
        format!("<d:{name}Response xmlns:d=\"{ns}\">{inner}</d:{name}Response>")
    };
    Ok(match op.name.as_str() {
        "TicketInfo" => {
            let t = activation::ticket_info(core, &need(op, "Ticket")?).await?;
            let mut x = format!("<d:Ticket>{}</d:Ticket>", esc(&t.ticket));
            for l in &t.licenses {
                x.push_str(&format!(
                    "<d:License><d:LicenseId>{}</d:LicenseId><d:ItemId>{}</d:ItemId>\
                     <d:FirmCode>{}</d:FirmCode><d:ProductCode>{}</d:ProductCode>\
                     <d:State>{}</d:State>{}<d:Returnable>{}</d:Returnable></d:License>",
                    l.license_id,
                    esc(&l.item_id),
                    l.firm_code,
                    l.product_code,
                    esc(&l.state),
                    l.serial
                        .as_ref()
                        .map(|s| format!("<d:Serial>{}</d:Serial>", esc(s)))
                        .unwrap_or_default(),
                    l.returnable
                ));
            }
            wrap("TicketInfo", x)
        }
        "Template" => {
            let t = activation::template(core, long(op, "FirmCode")?).await?;
            let keys: String = t
                .keys
                .iter()
                .map(|(id, k)| {
                    format!(
                        "<d:Key><d:KeyId>{}</d:KeyId><d:PublicKey>{}</d:PublicKey></d:Key>",
                        esc(id),
                        esc(k)
                    )
                })
                .collect();
            wrap(
                "Template",
                format!(
                    "<d:FirmCode>{}</d:FirmCode><d:FirmName>{}</d:FirmName>{keys}\
                     <d:CurrentKey>{}</d:CurrentKey>\
                     <d:FingerprintTolerance>{}</d:FingerprintTolerance>",
                    t.firm_code,
                    esc(&t.firm_name),
                    esc(&t.current_key),
                    t.fingerprint_tolerance
                ),
            )
        }
        "Restore" => {
            let traits = op
                .all("Trait")
                .map(|t| crate::protocol::Trait {
                    name: t.text_of("Name").unwrap_or_default(),
                    hash: t.text_of("Hash").unwrap_or_default(),
                })
                .collect();
            let req = lifecycle::RestoreRequest {
                old_serial: need(op, "OldSerial")?,
                request: need(op, "Request")?,
                traits,
            };
            let u = lifecycle::restore(core, iface, req).await?;
            wrap("Restore", update_fields("d", &u))
        }
        "Activate" => {
            let req = activation::ActivateRequest {
                ticket: need(op, "Ticket")?,
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = activation::activate(core, iface, req).await?;
            wrap("Activate", update_fields("d", &u))
        }
        "Reactivate" => {
            let req = lifecycle::ReactivateRequest {
                ticket: need(op, "Ticket")?,
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = lifecycle::reactivate(core, iface, req).await?;
            wrap("Reactivate", update_fields("d", &u))
        }
        "Return" => {
            let req = activation::ReturnRequest {
                licenses: license_ids(op)?,
                request: need(op, "Request")?,
            };
            let u = activation::deactivate(core, iface, req).await?;
            wrap("Return", update_fields("d", &u))
        }
        "PullUpdates" => {
            let u = activation::pull_updates(core, iface, &need(op, "Request")?).await?;
            let inner = u
                .map(|u| format!("<d:Update>{}</d:Update>", update_fields("d", &u)))
                .unwrap_or_default();
            wrap("PullUpdates", inner)
        }
        "ConfirmReceipt" => {
            let c = activation::confirm_receipt(core, iface, &need(op, "Receipt")?).await?;
            let list = |tag: &str, ids: &[i64]| -> String {
                ids.iter()
                    .map(|id| format!("<d:{tag}>{id}</d:{tag}>"))
                    .collect()
            };
            wrap(
                "ConfirmReceipt",
                format!(
                    "<d:Serial>{}</d:Serial><d:FirmCode>{}</d:FirmCode><d:Counter>{}</d:Counter>\
                     <d:AlreadyConfirmed>{}</d:AlreadyConfirmed>{}{}",
                    esc(&c.serial),
                    c.firm_code,
                    c.counter,
                    c.already_confirmed,
                    list("Activated", &c.activated),
                    list("Released", &c.released)
                ),
            )
        }
        other => {
            return Err(Error::internal(format!(
                "Depot.{other} is declared but not wired"
            )))
        }
    })
}
