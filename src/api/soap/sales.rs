//! The Sales service's codec (`xsd/licentia-sales-v1.xsd`): orders, tickets and license
//! control. Requests and responses are the XSD's elements as types, (de)serialised with
//! yaserde; typed values are read by `codec` (see there for why).
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{decode, encode, iso, long, longs, need, opt, Text};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::catalog::CustomerData;
use crate::service::lifecycle::{self, LicenseChange};
use crate::service::orders::{self, LicenseView, NewOrder, OrderLine, OrderView, TicketView};
use crate::service::production::{self, NewProductionOrder, ProductionOrderView};
use crate::service::Core;

/// The prefix the types below give the service's namespace.
const P: &str = "s";

// ---- requests ----

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "CreateOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct CreateOrder {
    #[yaserde(prefix = "s", rename = "Source")]
    source: Option<String>,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: Option<String>,
    #[yaserde(prefix = "s", rename = "Customer")]
    customer: Customer,
    #[yaserde(prefix = "s", rename = "Comment")]
    comment: Option<String>,
    #[yaserde(prefix = "s", rename = "Line")]
    line: Vec<Line>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Customer", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct Customer {
    #[yaserde(prefix = "s", rename = "ExternalId")]
    external_id: String,
    #[yaserde(prefix = "s", rename = "Name")]
    name: Option<String>,
    #[yaserde(prefix = "s", rename = "Email")]
    email: Option<String>,
    #[yaserde(prefix = "s", rename = "Locale")]
    locale: Option<String>,
    #[yaserde(prefix = "s", rename = "Scope")]
    scope: Option<String>,
}

/// The XSD's `OrderLine`.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "Line", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct Line {
    #[yaserde(prefix = "s", rename = "ItemId")]
    item_id: String,
    #[yaserde(prefix = "s", rename = "Quantity")]
    quantity: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "AddToOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct AddToOrder {
    #[yaserde(prefix = "s", rename = "Source")]
    source: String,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: String,
    #[yaserde(prefix = "s", rename = "BatchKey")]
    batch_key: Option<String>,
    #[yaserde(prefix = "s", rename = "Line")]
    line: Vec<Line>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "WithdrawLicenses", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct WithdrawLicenses {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: Vec<String>,
    #[yaserde(prefix = "s", rename = "Reason")]
    reason: Option<String>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "ReplaceLicense", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ReplaceLicense {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: String,
    #[yaserde(prefix = "s", rename = "ItemId")]
    item_id: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "SplitLicense", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct SplitLicense {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: String,
    #[yaserde(prefix = "s", rename = "Quantity")]
    quantity: Vec<String>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "GetTicket", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct GetTicket {
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "GetLicense", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct GetLicense {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: String,
}

/// `DisableTicket` and `EnableTicket`.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct TicketSwitch {
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: String,
    #[yaserde(prefix = "s", rename = "Reason")]
    reason: Option<String>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "GetOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct GetOrder {
    #[yaserde(prefix = "s", rename = "Source")]
    source: String,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: String,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "ResendTicketMail", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ResendTicketMail {
    #[yaserde(prefix = "s", rename = "Source")]
    source: String,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: String,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "ResendTicketMailResponse", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ResendTicketMailResponse {
    #[yaserde(prefix = "s", rename = "Queued")]
    queued: bool,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "CreateProductionOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct CreateProductionOrder {
    #[yaserde(prefix = "s", rename = "Source")]
    source: Option<String>,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: Option<String>,
    #[yaserde(prefix = "s", rename = "Customer")]
    customer: Option<Customer>,
    #[yaserde(prefix = "s", rename = "Comment")]
    comment: Option<String>,
    #[yaserde(prefix = "s", rename = "Dongles")]
    dongles: String,
    #[yaserde(prefix = "s", rename = "Line")]
    line: Vec<Line>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "GetProductionOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct GetProductionOrder {
    #[yaserde(prefix = "s", rename = "ProductionOrderId")]
    production_order_id: String,
}

// ---- responses ----

/// The XSD's `OrderResult`: `CreateOrderResponse`, `AddToOrderResponse`, `GetOrderResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "OrderResult", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct OrderResult {
    #[yaserde(prefix = "s", rename = "OrderId")]
    order_id: i64,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: Text,
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: Text,
    #[yaserde(prefix = "s", rename = "Created")]
    created: bool,
    #[yaserde(prefix = "s", rename = "Line")]
    line: Vec<OrderLineResult>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Line", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct OrderLineResult {
    #[yaserde(prefix = "s", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "s", rename = "Quantity")]
    quantity: i32,
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: Vec<i64>,
}

impl From<&OrderView> for OrderResult {
    fn from(v: &OrderView) -> OrderResult {
        OrderResult {
            order_id: v.order_id,
            erp_order_id: (&v.erp_order_id).into(),
            ticket: (&v.ticket).into(),
            created: v.created,
            line: v
                .lines
                .iter()
                .map(|l| OrderLineResult {
                    item_id: (&l.item_id).into(),
                    quantity: l.quantity,
                    license_id: l.licenses.clone(),
                })
                .collect(),
        }
    }
}

/// The XSD's `LicenseChange`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "License", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct Change {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: i64,
    #[yaserde(prefix = "s", rename = "State")]
    state: Text,
    #[yaserde(prefix = "s", rename = "Serial")]
    serial: Option<Text>,
}

impl From<&LicenseChange> for Change {
    fn from(c: &LicenseChange) -> Change {
        Change {
            license_id: c.license_id,
            state: c.state.as_str().into(),
            serial: c.serial.as_ref().map(Text::from),
        }
    }
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "WithdrawLicensesResponse", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct WithdrawLicensesResponse {
    #[yaserde(prefix = "s", rename = "License")]
    license: Vec<Change>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "ReplaceLicenseResponse", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ReplaceLicenseResponse {
    #[yaserde(prefix = "s", rename = "Old")]
    old: Change,
    #[yaserde(prefix = "s", rename = "New")]
    new: Change,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "SplitLicenseResponse", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct SplitLicenseResponse {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: Vec<i64>,
}

/// The XSD's `TicketResult`: `GetTicketResponse`, `DisableTicketResponse`,
/// `EnableTicketResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "TicketResult", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct TicketResult {
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: Text,
    #[yaserde(prefix = "s", rename = "CustomerId")]
    customer_id: Text,
    #[yaserde(prefix = "s", rename = "State")]
    state: Text,
    #[yaserde(prefix = "s", rename = "License")]
    license: Vec<License>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "License", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct License {
    #[yaserde(prefix = "s", rename = "LicenseId")]
    license_id: i64,
    #[yaserde(prefix = "s", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "s", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "s", rename = "ProductCode")]
    product_code: i64,
    #[yaserde(prefix = "s", rename = "State")]
    state: Text,
    #[yaserde(prefix = "s", rename = "Serial")]
    serial: Option<Text>,
}

impl From<&LicenseView> for License {
    fn from(l: &LicenseView) -> License {
        License {
            license_id: l.license_id,
            item_id: (&l.item_id).into(),
            firm_code: l.firm_code,
            product_code: l.product_code,
            state: (&l.state).into(),
            serial: l.serial.as_ref().map(Text::from),
        }
    }
}

impl From<&TicketView> for TicketResult {
    fn from(t: &TicketView) -> TicketResult {
        TicketResult {
            ticket: (&t.ticket).into(),
            customer_id: (&t.customer_id).into(),
            state: (&t.state).into(),
            license: t.licenses.iter().map(License::from).collect(),
        }
    }
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "GetLicenseResponse", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct GetLicenseResponse {
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: Text,
    #[yaserde(prefix = "s", rename = "License")]
    license: License,
    #[yaserde(prefix = "s", rename = "Generation")]
    generation: i32,
}

/// The XSD's `ProductionOrder`: `CreateProductionOrderResponse` and
/// `GetProductionOrderResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "ProductionOrder", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ProductionOrder {
    #[yaserde(prefix = "s", rename = "ProductionOrderId")]
    production_order_id: i64,
    #[yaserde(prefix = "s", rename = "OrderId")]
    order_id: i64,
    #[yaserde(prefix = "s", rename = "ErpOrderId")]
    erp_order_id: Text,
    #[yaserde(prefix = "s", rename = "Ticket")]
    ticket: Text,
    #[yaserde(prefix = "s", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "s", rename = "Dongles")]
    dongles: i32,
    #[yaserde(prefix = "s", rename = "Created")]
    created: bool,
    #[yaserde(prefix = "s", rename = "Line")]
    line: Vec<ProductionLine>,
    #[yaserde(prefix = "s", rename = "Programmed")]
    programmed: i64,
    #[yaserde(prefix = "s", rename = "Assigned")]
    assigned: i64,
    #[yaserde(prefix = "s", rename = "Withdrawn")]
    withdrawn: i64,
    #[yaserde(prefix = "s", rename = "Failed")]
    failed: i64,
    #[yaserde(prefix = "s", rename = "Remaining")]
    remaining: i64,
    #[yaserde(prefix = "s", rename = "Complete")]
    complete: bool,
    #[yaserde(prefix = "s", rename = "CancelledAt")]
    cancelled_at: Option<Text>,
    #[yaserde(prefix = "s", rename = "Station")]
    station: Vec<StationCount>,
    #[yaserde(prefix = "s", rename = "Slot")]
    slot: Vec<ProductionSlot>,
}

/// The XSD's `OrderLine` in an answer: what each dongle holds.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Line", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ProductionLine {
    #[yaserde(prefix = "s", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "s", rename = "Quantity")]
    quantity: i64,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Station", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct StationCount {
    #[yaserde(prefix = "s", rename = "Name")]
    name: Text,
    #[yaserde(prefix = "s", rename = "Programmed")]
    programmed: i64,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Slot", prefix = "s", namespaces = {"s" = "http://licentia.dev/ns/sales/v1"})]
struct ProductionSlot {
    #[yaserde(prefix = "s", rename = "Slot")]
    slot: i32,
    #[yaserde(prefix = "s", rename = "Serial")]
    serial: Option<Text>,
    #[yaserde(prefix = "s", rename = "Station")]
    station: Option<Text>,
    #[yaserde(prefix = "s", rename = "State")]
    state: Text,
    #[yaserde(prefix = "s", rename = "Failures")]
    failures: i32,
    #[yaserde(prefix = "s", rename = "LastFailure")]
    last_failure: Option<Text>,
    #[yaserde(prefix = "s", rename = "ProgrammedAt")]
    programmed_at: Option<Text>,
}

impl From<&ProductionOrderView> for ProductionOrder {
    fn from(v: &ProductionOrderView) -> ProductionOrder {
        ProductionOrder {
            production_order_id: v.production_order_id,
            order_id: v.order_id,
            erp_order_id: (&v.erp_order_id).into(),
            ticket: (&v.ticket).into(),
            firm_code: v.firm_code,
            dongles: v.dongles,
            created: v.created,
            line: v
                .lines
                .iter()
                .map(|l| ProductionLine {
                    item_id: (&l.item_id).into(),
                    quantity: l.quantity,
                })
                .collect(),
            programmed: v.programmed,
            assigned: v.assigned,
            withdrawn: v.withdrawn,
            failed: v.failed,
            remaining: v.remaining,
            complete: v.complete,
            cancelled_at: v.cancelled_at.map(|t| iso(t).into()),
            station: v
                .stations
                .iter()
                .map(|(name, n)| StationCount {
                    name: name.into(),
                    programmed: *n,
                })
                .collect(),
            slot: v
                .slots
                .iter()
                .map(|s| ProductionSlot {
                    slot: s.slot,
                    serial: s.serial.as_ref().map(Text::from),
                    station: s.station.as_ref().map(Text::from),
                    state: s.state.as_str().into(),
                    failures: s.failures,
                    last_failure: s.last_failure.as_ref().map(Text::from),
                    programmed_at: s.programmed_at.map(|t| iso(t).into()),
                })
                .collect(),
        }
    }
}

// ---- operations ----

/// The `Line`s of an order operation (`op` names the operation in an error's path).
fn order_lines(op: &str, lines: &[Line]) -> Result<Vec<OrderLine>, Error> {
    let mut out = vec![];
    for (i, l) in lines.iter().enumerate() {
        let path = format!("{op}/Line[{}]", i + 1);
        let item_id = need(&format!("{path}/ItemId"), &l.item_id)?;
        let q = need(&format!("{path}/Quantity"), &l.quantity)?;
        let quantity = q.parse::<i32>().map_err(|_| {
            Error::invalid(
                format!("{path}/Quantity"),
                format!("{q:?} is not an xs:int"),
            )
        })?;
        out.push(OrderLine {
            item_id,
            quantity: i64::from(quantity),
        });
    }
    Ok(out)
}

/// The Sales service's operations: the same service functions as the JSON API.
pub async fn call(core: &Core, actor: &Actor, op: &El) -> Result<String, Error> {
    let name = format!("{P}:{}Response", op.name);
    match op.name.as_str() {
        "CreateOrder" => {
            let r: CreateOrder = decode(P, op)?;
            let req = NewOrder {
                source: opt(&r.source).unwrap_or_else(|| "soap".into()),
                erp_order_id: opt(&r.erp_order_id),
                customer: CustomerData {
                    scope: opt(&r.customer.scope).unwrap_or_default(),
                    external_id: need("CreateOrder/Customer/ExternalId", &r.customer.external_id)?,
                    name: opt(&r.customer.name),
                    email: opt(&r.customer.email),
                    locale: opt(&r.customer.locale),
                },
                comment: opt(&r.comment).unwrap_or_default(),
                lines: order_lines("CreateOrder", &r.line)?,
            };
            let v = orders::create_order(core, actor, req).await?;
            encode(&name, &OrderResult::from(&v))
        }
        "AddToOrder" => {
            let r: AddToOrder = decode(P, op)?;
            let req = orders::AddToOrder {
                batch_key: opt(&r.batch_key),
                lines: order_lines("AddToOrder", &r.line)?,
            };
            let source = need("AddToOrder/Source", &r.source)?;
            let erp_order_id = need("AddToOrder/ErpOrderId", &r.erp_order_id)?;
            let v = orders::add_to_order(core, actor, source, erp_order_id, req).await?;
            encode(&name, &OrderResult::from(&v))
        }
        "GetTicket" => {
            let r: GetTicket = decode(P, op)?;
            let t = orders::get_ticket(core, actor, &need("GetTicket/Ticket", &r.ticket)?).await?;
            encode(&name, &TicketResult::from(&t))
        }
        "DisableTicket" | "EnableTicket" => {
            let r: TicketSwitch = decode(P, op)?;
            let code = need(&format!("{}/Ticket", op.name), &r.ticket)?;
            let enabled = op.name == "EnableTicket";
            let reason = opt(&r.reason).unwrap_or_default();
            let t = orders::set_ticket_enabled(core, actor, &code, enabled, reason).await?;
            encode(&name, &TicketResult::from(&t))
        }
        "GetLicense" => {
            let r: GetLicense = decode(P, op)?;
            let id = long("GetLicense/LicenseId", &r.license_id)?;
            let (ticket, l) = orders::license_with_ticket(core, actor, id).await?;
            let out = GetLicenseResponse {
                ticket: ticket.into(),
                license: License::from(&l),
                generation: l.generation,
            };
            encode(&name, &out)
        }
        "GetOrder" => {
            let r: GetOrder = decode(P, op)?;
            let v = orders::get_order(
                core,
                actor,
                need("GetOrder/Source", &r.source)?,
                need("GetOrder/ErpOrderId", &r.erp_order_id)?,
            )
            .await?;
            encode(&name, &OrderResult::from(&v))
        }
        "ResendTicketMail" => {
            let r: ResendTicketMail = decode(P, op)?;
            orders::resend_ticket_mail_of(
                core,
                actor,
                need("ResendTicketMail/Source", &r.source)?,
                need("ResendTicketMail/ErpOrderId", &r.erp_order_id)?,
            )
            .await?;
            encode(&name, &ResendTicketMailResponse { queued: true })
        }
        "WithdrawLicenses" => {
            let r: WithdrawLicenses = decode(P, op)?;
            let req = lifecycle::WithdrawRequest {
                licenses: longs("WithdrawLicenses/LicenseId", &r.license_id)?,
                reason: opt(&r.reason).unwrap_or_default(),
            };
            let out = lifecycle::withdraw(core, actor, req).await?;
            let out = WithdrawLicensesResponse {
                license: out.iter().map(Change::from).collect(),
            };
            encode(&name, &out)
        }
        "ReplaceLicense" => {
            let r: ReplaceLicense = decode(P, op)?;
            let req = lifecycle::ReplaceRequest {
                license_id: long("ReplaceLicense/LicenseId", &r.license_id)?,
                item_id: need("ReplaceLicense/ItemId", &r.item_id)?,
            };
            let r = lifecycle::replace(core, actor, req).await?;
            let out = ReplaceLicenseResponse {
                old: Change::from(&r.old),
                new: Change::from(&r.new),
            };
            encode(&name, &out)
        }
        "SplitLicense" => {
            let r: SplitLicense = decode(P, op)?;
            let mut quantities = vec![];
            for (i, q) in r.quantity.iter().enumerate() {
                let t = q.trim();
                quantities.push(t.parse::<u32>().map_err(|_| {
                    Error::invalid(
                        format!("SplitLicense/Quantity[{}]", i + 1),
                        format!("{t:?} is not a positive xs:int"),
                    )
                })?);
            }
            let req = lifecycle::SplitRequest {
                license_id: long("SplitLicense/LicenseId", &r.license_id)?,
                quantities,
            };
            let ids = lifecycle::split(core, actor, req).await?;
            encode(&name, &SplitLicenseResponse { license_id: ids })
        }
        "CreateProductionOrder" => {
            let r: CreateProductionOrder = decode(P, op)?;
            let customer = match &r.customer {
                None => None,
                Some(c) => Some(CustomerData {
                    scope: opt(&c.scope).unwrap_or_default(),
                    external_id: need("CreateProductionOrder/Customer/ExternalId", &c.external_id)?,
                    name: opt(&c.name),
                    email: opt(&c.email),
                    locale: opt(&c.locale),
                }),
            };
            let d = need("CreateProductionOrder/Dongles", &r.dongles)?;
            let dongles = d.parse::<i32>().map_err(|_| {
                Error::invalid(
                    "CreateProductionOrder/Dongles",
                    format!("{d:?} is not an xs:int"),
                )
            })?;
            let req = NewProductionOrder {
                source: opt(&r.source).unwrap_or_else(|| "soap".into()),
                erp_order_id: opt(&r.erp_order_id),
                customer,
                dongles: i64::from(dongles),
                lines: order_lines("CreateProductionOrder", &r.line)?,
                comment: opt(&r.comment).unwrap_or_default(),
            };
            let v = production::create(core, actor, req).await?;
            encode(&name, &ProductionOrder::from(&v))
        }
        "GetProductionOrder" => {
            let r: GetProductionOrder = decode(P, op)?;
            let id = long(
                "GetProductionOrder/ProductionOrderId",
                &r.production_order_id,
            )?;
            let v = production::get(core, actor, id).await?;
            encode(&name, &ProductionOrder::from(&v))
        }
        other => Err(Error::internal(format!(
            "Sales.{other} is declared but not wired"
        ))),
    }
}
