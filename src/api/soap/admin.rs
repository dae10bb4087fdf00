//! The Admin service's codec (`xsd/licentia-admin-v1.xsd`): containers, approvals,
//! customers, users, items, settings (cloud containers in `cloud`, the reading operations
//! and customer deletion in `records`). Requests and responses are the XSD's elements as types,
//! (de)serialised with yaserde; typed values are read by `codec`, and an item's `Options` and
//! the `Settings` by the tables of `typed` (see there for why).
use yaserde::{YaDeserialize, YaSerialize};

use super::codec::{boolean, decode, encode, iso, long, need, opt, opt_boolean, opt_long, Text};
use super::envelope::El;
use super::typed::{typed_json, Typed, OPTIONS, SETTINGS};
use crate::domain::{Actor, ApprovalState, ItemKind, ItemOptions, Role, Settings};
use crate::error::Error;
use crate::service::catalog::{self, CustomerData};
use crate::service::lifecycle::{self, ApprovalView};
use crate::service::{activation, users, Core};

/// The prefix the types below give the service's namespace.
const P: &str = "a";

// ---- requests ----

/// `BlacklistContainer`, `RemoveFromBlacklist`, `ResetContainer`, `AssignContainer`,
/// `DecideManipulation`, `PushLicense`: a container by its serial, and what each names
/// beside it.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Container {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: String,
    #[yaserde(prefix = "a", rename = "Description")]
    description: Option<String>,
    #[yaserde(prefix = "a", rename = "Reason")]
    reason: Option<String>,
    #[yaserde(prefix = "a", rename = "CustomerId")]
    customer_id: Option<String>,
    #[yaserde(prefix = "a", rename = "CustomerScope")]
    customer_scope: Option<String>,
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Option<String>,
    #[yaserde(prefix = "a", rename = "FirmCode")]
    firm_code: Option<String>,
    #[yaserde(prefix = "a", rename = "Decision")]
    decision: Option<String>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "ListApprovals", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct ListApprovals {
    #[yaserde(prefix = "a", rename = "State")]
    state: Option<String>,
}

#[derive(Debug, Default, YaDeserialize)]
#[yaserde(rename = "DecideApproval", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct DecideApproval {
    #[yaserde(prefix = "a", rename = "ApprovalId")]
    approval_id: String,
    #[yaserde(prefix = "a", rename = "Approve")]
    approve: String,
    #[yaserde(prefix = "a", rename = "Reason")]
    reason: Option<String>,
}

/// `PutCustomer` and `GetCustomer`.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct CustomerIn {
    #[yaserde(prefix = "a", rename = "ExternalId")]
    external_id: String,
    #[yaserde(prefix = "a", rename = "Name")]
    name: Option<String>,
    #[yaserde(prefix = "a", rename = "Email")]
    email: Option<String>,
    #[yaserde(prefix = "a", rename = "Locale")]
    locale: Option<String>,
    #[yaserde(prefix = "a", rename = "Scope")]
    scope: Option<String>,
}

/// `AddUser` and `ChangeUser`.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct UserIn {
    #[yaserde(prefix = "a", rename = "Username")]
    username: String,
    #[yaserde(prefix = "a", rename = "Password")]
    password: Option<String>,
    #[yaserde(prefix = "a", rename = "Role")]
    role: Option<String>,
    #[yaserde(prefix = "a", rename = "Active")]
    active: Option<String>,
}

/// `GetItem`, `CreateItem` and `ChangeItem`; their `Options` are read by `typed`.
#[derive(Debug, Default, YaDeserialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct ItemIn {
    #[yaserde(prefix = "a", rename = "ItemId")]
    item_id: String,
    #[yaserde(prefix = "a", rename = "Version")]
    version: Option<String>,
    #[yaserde(prefix = "a", rename = "Name")]
    name: Option<String>,
    #[yaserde(prefix = "a", rename = "Kind")]
    kind: Option<String>,
    #[yaserde(prefix = "a", rename = "FirmCode")]
    firm_code: Option<String>,
    #[yaserde(prefix = "a", rename = "ProductCode")]
    product_code: Option<String>,
    #[yaserde(prefix = "a", rename = "Active")]
    active: Option<String>,
}

// ---- responses ----

/// `BlacklistContainerResponse`, `RemoveFromBlacklistResponse`, `AssignContainerResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct SerialResponse {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "ResetContainerResponse", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct ResetContainerResponse {
    #[yaserde(prefix = "a", rename = "DeletedLicenseId")]
    deleted_license_id: Vec<i64>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "DecideManipulationResponse", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct DecideManipulationResponse {
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "a", rename = "State")]
    state: Text,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "PushLicenseResponse", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct PushLicenseResponse {
    #[yaserde(prefix = "a", rename = "Queued")]
    queued: bool,
}

/// `ListApprovalsResponse` (any number) and `DecideApprovalResponse` (one).
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Approvals {
    #[yaserde(prefix = "a", rename = "Approval")]
    approval: Vec<Approval>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Approval", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Approval {
    #[yaserde(prefix = "a", rename = "ApprovalId")]
    approval_id: i64,
    #[yaserde(prefix = "a", rename = "Kind")]
    kind: Text,
    #[yaserde(prefix = "a", rename = "LicenseId")]
    license_id: Option<i64>,
    #[yaserde(prefix = "a", rename = "OldSerial")]
    old_serial: Text,
    #[yaserde(prefix = "a", rename = "Serial")]
    serial: Text,
    #[yaserde(prefix = "a", rename = "Why")]
    why: Text,
    #[yaserde(prefix = "a", rename = "State")]
    state: Text,
    /// xs:dateTime, written by `iso` (yaserde has no date type).
    #[yaserde(prefix = "a", rename = "RequestedAt")]
    requested_at: Text,
    #[yaserde(prefix = "a", rename = "DecidedBy")]
    decided_by: Option<Text>,
    #[yaserde(prefix = "a", rename = "Reason")]
    reason: Text,
}

impl From<&ApprovalView> for Approval {
    fn from(a: &ApprovalView) -> Approval {
        Approval {
            approval_id: a.approval_id,
            kind: (&a.kind).into(),
            license_id: a.license_id,
            old_serial: (&a.old_serial).into(),
            serial: (&a.serial).into(),
            why: (&a.why).into(),
            state: a.state.as_str().into(),
            requested_at: iso(a.requested_at).into(),
            decided_by: a.decided_by.as_ref().map(Text::from),
            reason: (&a.reason).into(),
        }
    }
}

/// `PutCustomerResponse` and `GetCustomerResponse`.
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct CustomerResponse {
    #[yaserde(prefix = "a", rename = "Customer")]
    customer: Customer,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "Customer", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
pub(super) struct Customer {
    #[yaserde(prefix = "a", rename = "ExternalId")]
    external_id: Text,
    #[yaserde(prefix = "a", rename = "Name")]
    name: Text,
    #[yaserde(prefix = "a", rename = "Email")]
    email: Text,
    #[yaserde(prefix = "a", rename = "Locale")]
    locale: Text,
    /// Only for a customer outside the vendor's scope (a connector's).
    #[yaserde(prefix = "a", rename = "Scope")]
    scope: Option<Text>,
}

impl From<&catalog::Customer> for Customer {
    fn from(c: &catalog::Customer) -> Customer {
        Customer {
            external_id: (&c.external_id).into(),
            name: (&c.name).into(),
            email: (&c.email).into(),
            locale: (&c.locale).into(),
            scope: (!c.scope.is_empty()).then(|| (&c.scope).into()),
        }
    }
}

impl From<&catalog::Customer> for CustomerResponse {
    fn from(c: &catalog::Customer) -> CustomerResponse {
        CustomerResponse {
            customer: Customer::from(c),
        }
    }
}

/// `ListUsersResponse` (any number) and `AddUserResponse`, `ChangeUserResponse` (one).
#[derive(Debug, Default, YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Users {
    #[yaserde(prefix = "a", rename = "User")]
    user: Vec<User>,
}

#[derive(Debug, Default, YaSerialize)]
#[yaserde(rename = "User", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct User {
    #[yaserde(prefix = "a", rename = "Username")]
    username: Text,
    #[yaserde(prefix = "a", rename = "Role")]
    role: Text,
    #[yaserde(prefix = "a", rename = "Active")]
    active: bool,
}

impl From<&[users::User]> for Users {
    fn from(list: &[users::User]) -> Users {
        Users {
            user: list
                .iter()
                .map(|u| User {
                    username: (&u.username).into(),
                    role: u.role.as_str().into(),
                    active: u.active,
                })
                .collect(),
        }
    }
}

/// `ListItemsResponse` (any number) and `GetItemResponse`, `CreateItemResponse`,
/// `ChangeItemResponse` (one).
#[derive(YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Items {
    #[yaserde(prefix = "a", rename = "Item")]
    item: Vec<Item>,
}

#[derive(YaSerialize)]
#[yaserde(rename = "Item", prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct Item {
    #[yaserde(prefix = "a", rename = "ItemId")]
    item_id: Text,
    #[yaserde(prefix = "a", rename = "Name")]
    name: Text,
    #[yaserde(prefix = "a", rename = "Kind")]
    kind: Text,
    #[yaserde(prefix = "a", rename = "FirmCode")]
    firm_code: i64,
    #[yaserde(prefix = "a", rename = "ProductCode")]
    product_code: i64,
    #[yaserde(prefix = "a", rename = "Active")]
    active: bool,
    #[yaserde(prefix = "a", rename = "Version")]
    version: i32,
    #[yaserde(prefix = "a", rename = "Options")]
    options: Typed,
}

impl From<&[catalog::Item]> for Items {
    fn from(list: &[catalog::Item]) -> Items {
        Items {
            item: list
                .iter()
                .map(|i| Item {
                    item_id: (&i.item_id).into(),
                    name: (&i.name).into(),
                    kind: i.kind.as_str().into(),
                    firm_code: i.firm_code,
                    product_code: i.product_code,
                    active: i.active,
                    version: i.version,
                    options: Typed {
                        value: serde_json::to_value(&i.options).unwrap_or_default(),
                        table: OPTIONS,
                    },
                })
                .collect(),
        }
    }
}

/// `GetSettingsResponse` and `PutSettingsResponse`.
#[derive(YaSerialize)]
#[yaserde(prefix = "a", namespaces = {"a" = "http://licentia.dev/ns/admin/v1"})]
struct SettingsResponse {
    #[yaserde(prefix = "a", rename = "Settings")]
    settings: Typed,
}

impl From<&Settings> for SettingsResponse {
    fn from(s: &Settings) -> SettingsResponse {
        SettingsResponse {
            settings: Typed {
                value: serde_json::to_value(s).unwrap_or_default(),
                table: SETTINGS,
            },
        }
    }
}

// ---- operations ----

fn role(path: &str, v: &Option<String>) -> Result<Option<Role>, Error> {
    opt(v)
        .map(|r| {
            Role::parse(&r).map_err(|_| {
                Error::invalid(path, format!("{r:?} is not admin, sales, support or erp"))
            })
        })
        .transpose()
}

/// The `Options` of an item operation, read by their table into the JSON API's type.
fn options_of(op: &El) -> Result<Option<ItemOptions>, Error> {
    let Some(o) = op.child("Options") else {
        return Ok(None);
    };
    let path = format!("{}/Options", op.name);
    let json = typed_json(&path, o, OPTIONS)?;
    serde_json::from_value(serde_json::Value::Object(json))
        .map(Some)
        .map_err(|e| Error::invalid(path, e.to_string()))
}

/// The Admin service's operations: the same service functions as the JSON API.
pub async fn call(core: &Core, actor: &Actor, op: &El) -> Result<String, Error> {
    let name = format!("{P}:{}Response", op.name);
    let at = |field: &str| format!("{}/{field}", op.name);
    match op.name.as_str() {
        "BlacklistContainer"
        | "RemoveFromBlacklist"
        | "ResetContainer"
        | "AssignContainer"
        | "DecideManipulation"
        | "PushLicense" => {
            let r: Container = decode(P, op)?;
            let serial = need(&at("Serial"), &r.serial)?;
            let firm_code = || opt_long(&at("FirmCode"), &r.firm_code);
            let need_opt = |field: &str, v: &Option<String>| {
                need(&at(field), v.as_deref().unwrap_or_default())
            };
            match op.name.as_str() {
                "BlacklistContainer" => {
                    let req = lifecycle::BlacklistAdd {
                        serial: serial.clone(),
                        description: need_opt("Description", &r.description)?,
                        firm_code: firm_code()?,
                    };
                    lifecycle::blacklist_add(core, actor, req).await?;
                }
                "RemoveFromBlacklist" => {
                    let (reason, firm) = (need_opt("Reason", &r.reason)?, firm_code()?);
                    lifecycle::blacklist_remove(core, actor, serial.clone(), firm, reason).await?;
                }
                "ResetContainer" => {
                    let ids = lifecycle::reset(core, actor, serial, firm_code()?).await?;
                    let out = ResetContainerResponse {
                        deleted_license_id: ids,
                    };
                    return encode(&name, &out);
                }
                "AssignContainer" => {
                    let customer = need_opt("CustomerId", &r.customer_id)?;
                    // The vendor's own customer, or one of the scope given.
                    let scope = opt(&r.customer_scope).unwrap_or_default();
                    lifecycle::assign(core, actor, serial.clone(), scope, customer).await?;
                }
                "DecideManipulation" => {
                    let req = lifecycle::ManipulationDecision {
                        decision: lifecycle::Decision::parse(&need_opt("Decision", &r.decision)?)?,
                        reason: need_opt("Reason", &r.reason)?,
                        firm_code: firm_code()?,
                    };
                    lifecycle::decide_manipulation(core, actor, serial.clone(), req).await?;
                    let v = activation::get_container(core, actor, serial).await?;
                    let out = DecideManipulationResponse {
                        serial: (&v.serial).into(),
                        state: (&v.state).into(),
                    };
                    return encode(&name, &out);
                }
                _ => {
                    let license = long(&at("LicenseId"), r.license_id.as_deref().unwrap_or(""))?;
                    activation::push_license(core, actor, serial, license).await?;
                    return encode(&name, &PushLicenseResponse { queued: true });
                }
            }
            encode(
                &name,
                &SerialResponse {
                    serial: serial.into(),
                },
            )
        }
        "ListApprovals" => {
            let r: ListApprovals = decode(P, op)?;
            let state = opt(&r.state);
            if let Some(st) = &state {
                if ApprovalState::parse(st).is_err() {
                    return Err(Error::invalid(
                        "ListApprovals/State",
                        format!("{st:?} is not open, approved or denied"),
                    ));
                }
            }
            let list = lifecycle::list_approvals(core, actor, state).await?;
            let out = Approvals {
                approval: list.iter().map(Approval::from).collect(),
            };
            encode(&name, &out)
        }
        "DecideApproval" => {
            let r: DecideApproval = decode(P, op)?;
            let id = long("DecideApproval/ApprovalId", &r.approval_id)?;
            let approve = boolean("DecideApproval/Approve", &r.approve)?;
            let reason = opt(&r.reason).unwrap_or_default();
            let a = lifecycle::decide(core, actor, id, approve, reason).await?;
            let out = Approvals {
                approval: vec![Approval::from(&a)],
            };
            encode(&name, &out)
        }
        "PutCustomer" | "GetCustomer" => {
            let r: CustomerIn = decode(P, op)?;
            let external_id = need(&at("ExternalId"), &r.external_id)?;
            let scope = opt(&r.scope).unwrap_or_default();
            let c = if op.name == "PutCustomer" {
                let data = CustomerData {
                    scope,
                    external_id,
                    name: opt(&r.name),
                    email: opt(&r.email),
                    locale: opt(&r.locale),
                };
                catalog::put_customer(core, actor, data).await?
            } else {
                catalog::get_customer(core, actor, scope, external_id).await?
            };
            encode(&name, &CustomerResponse::from(&c))
        }
        "ListUsers" => {
            let list = users::list_users(core, actor).await?;
            encode(&name, &Users::from(list.as_slice()))
        }
        "AddUser" => {
            let r: UserIn = decode(P, op)?;
            let req = users::NewUser {
                username: need("AddUser/Username", &r.username)?,
                password: need("AddUser/Password", r.password.as_deref().unwrap_or(""))?,
                role: role("AddUser/Role", &r.role)?
                    .ok_or_else(|| Error::invalid("AddUser/Role", "is missing"))?,
            };
            let u = users::add_user(core, actor, req).await?;
            encode(&name, &Users::from(std::slice::from_ref(&u)))
        }
        "ChangeUser" => {
            let r: UserIn = decode(P, op)?;
            let active = opt_boolean("ChangeUser/Active", &r.active)?;
            let req = users::UserChange {
                password: opt(&r.password),
                role: role("ChangeUser/Role", &r.role)?,
                active,
            };
            let username = need("ChangeUser/Username", &r.username)?;
            let u = users::change_user(core, actor, username, req).await?;
            encode(&name, &Users::from(std::slice::from_ref(&u)))
        }
        "ListItems" => {
            let list = catalog::list_items(core, actor).await?;
            encode(&name, &Items::from(list.as_slice()))
        }
        "GetItem" => {
            let r: ItemIn = decode(P, op)?;
            let i = catalog::get_item(core, actor, need("GetItem/ItemId", &r.item_id)?).await?;
            encode(&name, &Items::from(std::slice::from_ref(&i)))
        }
        "CreateItem" => {
            let r: ItemIn = decode(P, op)?;
            let kind = opt(&r.kind).unwrap_or_else(|| "license".into());
            let req = catalog::NewItem {
                item_id: need("CreateItem/ItemId", &r.item_id)?,
                name: need("CreateItem/Name", r.name.as_deref().unwrap_or(""))?,
                kind: ItemKind::parse(&kind)
                    .map_err(|e| Error::invalid("CreateItem/Kind", e.to_string()))?,
                firm_code: opt_long("CreateItem/FirmCode", &r.firm_code)?,
                product_code: long(
                    "CreateItem/ProductCode",
                    r.product_code.as_deref().unwrap_or(""),
                )?,
                options: options_of(op)?.unwrap_or_default(),
            };
            let i = catalog::create_item(core, actor, req).await?;
            encode(&name, &Items::from(std::slice::from_ref(&i)))
        }
        "ChangeItem" => {
            let r: ItemIn = decode(P, op)?;
            let active = opt_boolean("ChangeItem/Active", &r.active)?;
            let version = long("ChangeItem/Version", r.version.as_deref().unwrap_or(""))?;
            let req = catalog::ItemChange {
                version: i32::try_from(version)
                    .map_err(|_| Error::invalid("ChangeItem/Version", "out of range"))?,
                name: opt(&r.name),
                options: options_of(op)?,
                active,
            };
            let item_id = need("ChangeItem/ItemId", &r.item_id)?;
            let i = catalog::change_item(core, actor, item_id, req).await?;
            encode(&name, &Items::from(std::slice::from_ref(&i)))
        }
        "GetSettings" => {
            let st = catalog::get_settings(core, actor).await?;
            encode(&name, &SettingsResponse::from(&st))
        }
        "PutSettings" => {
            let el = op
                .child("Settings")
                .ok_or_else(|| Error::invalid("PutSettings/Settings", "is missing"))?;
            let json = typed_json("PutSettings/Settings", el, SETTINGS)?;
            let new: Settings = serde_json::from_value(serde_json::Value::Object(json))
                .map_err(|e| Error::invalid("PutSettings/Settings", e.to_string()))?;
            let st = catalog::put_settings(core, actor, new).await?;
            encode(&name, &SettingsResponse::from(&st))
        }
        cloud if super::cloud::OPERATIONS.contains(&cloud) => {
            super::cloud::call(core, actor, op).await
        }
        read if super::records::OPERATIONS.contains(&read) => {
            super::records::call(core, actor, op).await
        }
        other => Err(Error::internal(format!(
            "Admin.{other} is declared but not wired"
        ))),
    }
}
