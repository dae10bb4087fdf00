//! The Sales service's codec: orders, tickets and license control.
use super::codec::{license_ids, long, need};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::catalog::CustomerData;
use crate::service::connectors::esc;
use crate::service::orders::{self, NewOrder, OrderLine};
use crate::service::Core;

/// The `Line`s of an order operation.
fn order_lines(op: &El) -> Result<Vec<OrderLine>, Error> {
    let mut lines = vec![];
    for (i, l) in op.all("Line").enumerate() {
        let path = format!("{}/Line[{}]", op.name, i + 1);
        let item_id = l
            .text_of("ItemId")
            .ok_or_else(|| Error::invalid(format!("{path}/ItemId"), "is missing"))?;
        let q = l
            .text_of("Quantity")
            .ok_or_else(|| Error::invalid(format!("{path}/Quantity"), "is missing"))?;
        let quantity = q.parse::<i32>().map_err(|_| {
            Error::invalid(
                format!("{path}/Quantity"),
                format!("{q:?} is not an xs:int"),
            )
        })?;
        lines.push(OrderLine {
            item_id,
            quantity: i64::from(quantity),
        });
    }
    Ok(lines)
}

/// An order's answer (`CreateOrderResponse`, `AddToOrderResponse`).
fn order_xml(ns: &str, element: &str, v: &orders::OrderView) -> String {
    let mut x = format!(
        "<s:{element} xmlns:s=\"{ns}\"><s:OrderId>{}</s:OrderId>\
         <s:ErpOrderId>{}</s:ErpOrderId><s:Ticket>{}</s:Ticket><s:Created>{}</s:Created>",
        v.order_id,
        esc(&v.erp_order_id),
        esc(&v.ticket),
        v.created
    );
    for l in &v.lines {
        x.push_str(&format!(
            "<s:Line><s:ItemId>{}</s:ItemId><s:Quantity>{}</s:Quantity>",
            esc(&l.item_id),
            l.quantity
        ));
        for id in &l.licenses {
            x.push_str(&format!("<s:LicenseId>{id}</s:LicenseId>"));
        }
        x.push_str("</s:Line>");
    }
    x.push_str(&format!("</s:{element}>"));
    x
}

async fn create_order(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    let cust = op
        .child("Customer")
        .ok_or_else(|| Error::invalid("CreateOrder/Customer", "is missing"))?;
    let req = NewOrder {
        source: op.text_of("Source").unwrap_or_else(|| "soap".into()),
        erp_order_id: op.text_of("ErpOrderId"),
        customer: CustomerData {
            external_id: cust
                .text_of("ExternalId")
                .ok_or_else(|| Error::invalid("CreateOrder/Customer/ExternalId", "is missing"))?,
            name: cust.text_of("Name"),
            email: cust.text_of("Email"),
            locale: cust.text_of("Locale"),
        },
        comment: op.text_of("Comment").unwrap_or_default(),
        lines: order_lines(op)?,
    };
    let v = orders::create_order(core, actor, req).await?;
    Ok(order_xml(ns, "CreateOrderResponse", &v))
}

async fn add_to_order(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    let req = orders::AddToOrder {
        batch_key: op.text_of("BatchKey"),
        lines: order_lines(op)?,
    };
    let v = orders::add_to_order(
        core,
        actor,
        need(op, "Source")?,
        need(op, "ErpOrderId")?,
        req,
    )
    .await?;
    Ok(order_xml(ns, "AddToOrderResponse", &v))
}

fn change_xml(tag: &str, c: &crate::service::lifecycle::LicenseChange) -> String {
    format!(
        "<s:{tag}><s:LicenseId>{}</s:LicenseId><s:State>{}</s:State>{}</s:{tag}>",
        c.license_id,
        esc(&c.state),
        c.serial
            .as_ref()
            .map(|s| format!("<s:Serial>{}</s:Serial>", esc(s)))
            .unwrap_or_default()
    )
}

/// WithdrawLicenses, ReplaceLicense, SplitLicense.
async fn license_control(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    use crate::service::lifecycle;
    let inner = match op.name.as_str() {
        "WithdrawLicenses" => {
            let req = lifecycle::WithdrawRequest {
                licenses: license_ids(op)?,
                reason: op.text_of("Reason").unwrap_or_default(),
            };
            let out = lifecycle::withdraw(core, actor, req).await?;
            out.iter().map(|c| change_xml("License", c)).collect()
        }
        "ReplaceLicense" => {
            let req = lifecycle::ReplaceRequest {
                license_id: long(op, "LicenseId")?,
                item_id: need(op, "ItemId")?,
            };
            let r = lifecycle::replace(core, actor, req).await?;
            format!("{}{}", change_xml("Old", &r.old), change_xml("New", &r.new))
        }
        "SplitLicense" => {
            let mut quantities = vec![];
            for (i, q) in op.all("Quantity").enumerate() {
                let t = q.text.trim();
                quantities.push(t.parse::<u32>().map_err(|_| {
                    Error::invalid(
                        format!("SplitLicense/Quantity[{}]", i + 1),
                        format!("{t:?} is not a positive xs:int"),
                    )
                })?);
            }
            let req = lifecycle::SplitRequest {
                license_id: long(op, "LicenseId")?,
                quantities,
            };
            let ids = lifecycle::split(core, actor, req).await?;
            ids.iter()
                .map(|id| format!("<s:LicenseId>{id}</s:LicenseId>"))
                .collect()
        }
        other => {
            return Err(Error::internal(format!(
                "Sales.{other} is declared but not wired"
            )))
        }
    };
    Ok(format!(
        "<s:{0}Response xmlns:s=\"{ns}\">{inner}</s:{0}Response>",
        op.name
    ))
}

async fn get_ticket(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    let code = op
        .text_of("Ticket")
        .ok_or_else(|| Error::invalid("GetTicket/Ticket", "is missing"))?;
    let t = orders::get_ticket(core, actor, &code).await?;
    let mut x = format!(
        "<s:GetTicketResponse xmlns:s=\"{ns}\"><s:Ticket>{}</s:Ticket>\
         <s:CustomerId>{}</s:CustomerId><s:State>{}</s:State>",
        esc(&t.ticket),
        esc(&t.customer_id),
        esc(&t.state)
    );
    for l in &t.licenses {
        x.push_str(&format!(
            "<s:License><s:LicenseId>{}</s:LicenseId><s:ItemId>{}</s:ItemId>\
             <s:FirmCode>{}</s:FirmCode><s:ProductCode>{}</s:ProductCode><s:State>{}</s:State>",
            l.license_id,
            esc(&l.item_id),
            l.firm_code,
            l.product_code,
            esc(&l.state)
        ));
        if let Some(s) = &l.serial {
            x.push_str(&format!("<s:Serial>{}</s:Serial>", esc(s)));
        }
        x.push_str("</s:License>");
    }
    x.push_str("</s:GetTicketResponse>");
    Ok(x)
}

/// The Sales service's operations: the same service functions as the JSON API.
pub async fn call(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    match op.name.as_str() {
        "CreateOrder" => create_order(core, actor, ns, op).await,
        "GetTicket" => get_ticket(core, actor, ns, op).await,
        "AddToOrder" => add_to_order(core, actor, ns, op).await,
        _ => license_control(core, actor, ns, op).await,
    }
}
