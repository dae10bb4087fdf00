//! Items (what the vendor sells), customers and the firm's global settings.
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use super::Core;
use crate::domain::{
    check_email, check_id, check_name, Actor, ItemKind, ItemOptions, Role, Settings, MAX_TEXT,
};
use crate::error::{Error, Result};
use crate::store::customers::{self as customer_store, CustomerRow};
use crate::store::items::{self as item_store, CatalogRow};
use crate::store::Conn;

#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub item_id: String,
    pub name: String,
    pub kind: ItemKind,
    pub firm_code: i64,
    pub product_code: i64,
    pub options: ItemOptions,
    pub active: bool,
    pub version: i32,
}

impl Item {
    fn from_row((row, firm_code): (CatalogRow, i64)) -> Result<Item> {
        Ok(Item {
            kind: row.kind,
            options: serde_json::from_str(&row.options)
                .map_err(|e| Error::internal(format!("item options: {e}")))?,
            item_id: row.item_id,
            name: row.name,
            firm_code,
            product_code: row.product_code,
            active: row.active,
            version: row.version,
        })
    }
}

#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub item_id: String,
    pub name: String,
    #[serde(default = "license_kind")]
    pub kind: ItemKind,
    /// Defaults to the server's firm code.
    pub firm_code: Option<i64>,
    pub product_code: i64,
    #[serde(default)]
    pub options: ItemOptions,
}

fn license_kind() -> ItemKind {
    ItemKind::License
}

impl NewItem {
    fn validate(&self) -> Result<()> {
        check_id("item_id", &self.item_id)?;
        check_name("name", &self.name, MAX_TEXT)?;
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        if !(0..=4_294_967_295).contains(&self.product_code) {
            return Err(Error::invalid("product_code", "between 0 and 4294967295"));
        }
        match (self.kind, &self.options.update) {
            (ItemKind::Update, None) => Err(Error::invalid(
                "options.update",
                "an update item must say what it changes",
            )),
            (ItemKind::License | ItemKind::Lock, Some(_)) => Err(Error::invalid(
                "options.update",
                "only update items carry an update effect",
            )),
            (ItemKind::Lock, _) if self.options.trial => Err(Error::invalid(
                "options.trial",
                "only license items can be trials",
            )),
            _ => self.options.validate(),
        }
    }
}

fn load_item(c: &mut Conn, item_id: &str) -> Result<Option<Item>> {
    item_store::find(c, item_id)?
        .map(Item::from_row)
        .transpose()
}

pub async fn create_item(core: &Core, actor: &Actor, req: NewItem) -> Result<Item> {
    actor.require(&[Role::Admin], "manage items")?;
    req.validate()?;
    let firm_code = req.firm_code.unwrap_or(core.default_firm.firm_code);
    let firm = super::firms::find_by_code(&core.db, firm_code).await?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let options = serde_json::to_string(&req.options).expect("options");
            let new = item_store::NewItem {
                firm_id: firm.id,
                item_id: &req.item_id,
                name: &req.name,
                kind: req.kind,
                product_code: req.product_code,
                options: &options,
            };
            if !item_store::insert(c, &new, super::now())? {
                return Err(Error::AlreadyExists { kind: "item", id: req.item_id.clone() });
            }
            audit::record(&actor, Event {
                action: "item.created",
                details: serde_json::json!({"item_id": req.item_id, "kind": req.kind, "product_code": req.product_code}),
                ..Default::default()
            })?;
            load_item(c, &req.item_id)?.ok_or_else(|| Error::internal("item vanished"))
        })
        .await
}

#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemChange {
    /// The version the caller read; a concurrent change makes this a conflict.
    pub version: i32,
    pub name: Option<String>,
    pub options: Option<ItemOptions>,
    pub active: Option<bool>,
}

/// Changes an item for future orders; licenses already sold keep the options they were made with.
pub async fn change_item(
    core: &Core,
    actor: &Actor,
    item_id: String,
    req: ItemChange,
) -> Result<Item> {
    actor.require(&[Role::Admin], "manage items")?;
    if let Some(n) = &req.name {
        check_name("name", n, MAX_TEXT)?;
    }
    if let Some(o) = &req.options {
        o.validate()?;
    }
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let item = load_item(c, &item_id)?.ok_or_else(|| Error::not_found("item", &item_id))?;
            let changed_meanwhile = || {
                Error::Conflict(format!(
                    "item {item_id} was changed meanwhile (version {})",
                    item.version
                ))
            };
            if req.version != item.version {
                return Err(changed_meanwhile());
            }
            let name = req.name.clone().unwrap_or(item.name.clone());
            let options = req.options.clone().unwrap_or(item.options.clone());
            if options.trial && item.kind != ItemKind::License {
                return Err(Error::invalid(
                    "options.trial",
                    "only license items can be trials",
                ));
            }
            let options = serde_json::to_string(&options).expect("options");
            let set = item_store::Change {
                name: &name,
                options: &options,
                active: req.active.unwrap_or(item.active),
            };
            if !item_store::change(c, &item_id, req.version, &set, super::now())? {
                return Err(changed_meanwhile());
            }
            audit::record(
                &actor,
                Event {
                    action: "item.changed",
                    details: serde_json::json!({"item_id": item_id, "version": item.version + 1}),
                    ..Default::default()
                },
            )?;
            load_item(c, &item_id)?.ok_or_else(|| Error::internal("item vanished"))
        })
        .await
}

pub async fn get_item(core: &Core, actor: &Actor, item_id: String) -> Result<Item> {
    let _ = actor;
    core.db
        .read(move |c| load_item(c, &item_id)?.ok_or_else(|| Error::not_found("item", &item_id)))
        .await
}

pub async fn list_items(core: &Core, _actor: &Actor) -> Result<Vec<Item>> {
    core.db
        .read(|c| {
            item_store::all(c)?
                .into_iter()
                .map(Item::from_row)
                .collect()
        })
        .await
}

/// A customer as the JSON and SOAP services show it.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize)]
pub struct Customer {
    #[serde(skip)]
    pub id: i64,
    /// Whose customer id `external_id` is: empty for the vendor's own customers, a
    /// connector's source for those its shop or ERP sends.
    pub scope: String,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

impl Customer {
    /// `C-1`, or `C-1 (of shop)` outside the vendor's scope.
    pub fn named(&self) -> String {
        customer_store::named(&self.scope, &self.external_id)
    }
}

impl From<CustomerRow> for Customer {
    fn from(r: CustomerRow) -> Customer {
        Customer {
            id: r.id,
            scope: r.scope,
            external_id: r.external_id,
            name: r.name,
            email: r.email,
            locale: r.locale,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Customer data as an ERP or shop sends it with an order.
#[derive(schemars::JsonSchema, Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerData {
    /// Whose customer id `external_id` is: empty (the default) for the vendor's own; a
    /// connector's orders name their source.
    #[serde(default)]
    pub scope: String,
    pub external_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

impl CustomerData {
    pub fn validate(&self) -> Result<()> {
        check_scope("customer.scope", &self.scope)?;
        check_id("customer.external_id", &self.external_id)?;
        check_name(
            "customer.name",
            self.name.as_deref().unwrap_or(""),
            MAX_TEXT,
        )?;
        if let Some(e) = self.email.as_deref().filter(|e| !e.is_empty()) {
            check_email("customer.email", e)?;
        }
        if let Some(l) = &self.locale {
            let ok = (2..=10).contains(&l.len())
                && l.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !ok {
                return Err(Error::invalid(
                    "customer.locale",
                    "a language tag like en or de-DE",
                ));
            }
        }
        Ok(())
    }
}

/// A customer's scope: empty (the vendor's), or an id (a connector's source).
pub fn check_scope(field: &str, scope: &str) -> Result<()> {
    if scope.is_empty() {
        Ok(())
    } else {
        check_id(field, scope)
    }
}

/// Finds the customer by scope and external id, creating it or updating the fields given.
/// Inside a write.
pub fn upsert_customer(c: &mut Conn, data: &CustomerData) -> Result<Customer> {
    let now = super::now();
    let row = match customer_store::by_external_id(c, &data.scope, &data.external_id)? {
        None => {
            let contact = customer_store::Contact {
                name: data.name.as_deref().unwrap_or_default(),
                email: data.email.as_deref().unwrap_or_default(),
                locale: data.locale.as_deref().unwrap_or("en"),
            };
            customer_store::insert(c, &data.scope, &data.external_id, &contact, now)?
        }
        Some(cur) => {
            let contact = customer_store::Contact {
                name: data.name.as_deref().unwrap_or(&cur.name),
                email: data.email.as_deref().unwrap_or(&cur.email),
                locale: data.locale.as_deref().unwrap_or(&cur.locale),
            };
            if (contact.name, contact.email, contact.locale)
                == (cur.name.as_str(), cur.email.as_str(), cur.locale.as_str())
            {
                return Ok(cur.into());
            }
            customer_store::update(c, cur.id, &contact, now)?
        }
    };
    Ok(row.into())
}

pub async fn put_customer(core: &Core, actor: &Actor, data: CustomerData) -> Result<Customer> {
    actor.require(&[Role::Admin, Role::Sales, Role::Erp], "manage customers")?;
    data.validate()?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let cust = upsert_customer(c, &data)?;
            audit::record(
                &actor,
                Event {
                    action: "customer.saved",
                    details: serde_json::json!({"external_id": cust.external_id,
                        "scope": cust.scope}),
                    ..Default::default()
                },
            )?;
            Ok(cust)
        })
        .await
}

/// Customer `external_id` of `scope` (`""`: the vendor's).
pub async fn get_customer(
    core: &Core,
    actor: &Actor,
    scope: String,
    external_id: String,
) -> Result<Customer> {
    actor.require(
        &[Role::Admin, Role::Sales, Role::Support, Role::Erp],
        "read customers",
    )?;
    check_scope("scope", &scope)?;
    core.db
        .read(move |c| {
            customer_store::by_external_id(c, &scope, &external_id)?
                .map(Customer::from)
                .ok_or_else(|| {
                    Error::not_found("customer", customer_store::named(&scope, &external_id))
                })
        })
        .await
}

/// The most customers one list answers.
pub const CUSTOMERS_PER_LIST: i64 = 1000;

/// Which customers a list shows and where it starts.
#[derive(Debug, Default)]
pub struct CustomerPage {
    /// Only this scope's (none: every scope's).
    pub scope: Option<String>,
    /// After this customer (an external id) of `after_scope` (none: of `scope`, or the
    /// vendor's when every scope is listed).
    pub after: Option<String>,
    pub after_scope: Option<String>,
    /// At most this many (1 to 1,000; 1,000 if not given).
    pub limit: Option<i64>,
}

/// Customers in the order they were made, a page at a time: the next page starts after the
/// last one of this page.
pub async fn list_customers(
    core: &Core,
    actor: &Actor,
    page: CustomerPage,
) -> Result<Vec<Customer>> {
    let CustomerPage {
        scope,
        after,
        after_scope,
        limit,
    } = page;
    actor.require(&[Role::Admin, Role::Sales, Role::Support], "read customers")?;
    let limit = limit.unwrap_or(CUSTOMERS_PER_LIST);
    if !(1..=CUSTOMERS_PER_LIST).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("{limit} is not between 1 and {CUSTOMERS_PER_LIST}"),
        ));
    }
    if let Some(a) = &after {
        check_id("after", a)?;
    }
    if let Some(s) = &scope {
        check_scope("scope", s)?;
    }
    let after_scope = after_scope.or_else(|| scope.clone()).unwrap_or_default();
    check_scope("after_scope", &after_scope)?;
    core.db
        .read(move |c| {
            let after = after
                .map(|a| customer_store::id_of(c, &after_scope, &a))
                .transpose()?;
            Ok(customer_store::list(c, scope.as_deref(), after, limit)?
                .into_iter()
                .map(Customer::from)
                .collect())
        })
        .await
}

/// Deletes a customer who owns nothing yet (a customer made by mistake, or one the ERP
/// merged away). Refused while they have a ticket (their orders and history name them) or a
/// cloud container. The containers assigned to them belong to nobody afterwards, their single
/// sign-on links are forgotten and their portal sessions end. Answers the serials that were
/// theirs.
pub async fn delete_customer(
    core: &Core,
    actor: &Actor,
    scope: String,
    external_id: String,
) -> Result<Vec<String>> {
    actor.require(&[Role::Admin, Role::Sales, Role::Erp], "delete customers")?;
    check_scope("scope", &scope)?;
    check_id("external_id", &external_id)?;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            let id = customer_store::id_of(c, &scope, &external_id)?;
            let named = customer_store::named(&scope, &external_id);
            let ties = customer_store::ties(c, id)?;
            if ties.tickets > 0 {
                return Err(Error::NotAllowed(format!(
                    "customer {named} owns {} license(s) on {} ticket(s): a customer \
                     is deleted only while no order names them",
                    ties.licenses, ties.tickets
                )));
            }
            if ties.cloud_containers > 0 {
                return Err(Error::NotAllowed(format!(
                    "customer {named} has {} cloud container(s): a cloud container \
                     stays its customer's",
                    ties.cloud_containers
                )));
            }
            crate::store::saml::forget_customer(c, id)?;
            crate::store::portal::end_sessions_of_customer(c, id)?;
            let serials = customer_store::delete(c, id, super::now())?;
            audit::record(
                &actor,
                Event {
                    action: "customer.deleted",
                    details: serde_json::json!({"external_id": external_id, "scope": scope,
                        "containers": serials}),
                    ..Default::default()
                },
            )?;
            Ok(serials)
        })
        .await
}

pub async fn get_settings(core: &Core, actor: &Actor) -> Result<Settings> {
    actor.require(&[Role::Admin, Role::Support], "read settings")?;
    let firm = core.default_firm.id;
    core.db
        .read(move |c| crate::store::settings::load(c, firm))
        .await
}

/// The settings of a firm (defaults until someone changed them).
pub async fn put_settings(core: &Core, actor: &Actor, new: Settings) -> Result<Settings> {
    actor.require(&[Role::Admin], "change settings")?;
    new.validate()?;
    let firm = core.default_firm.id;
    let actor = actor.clone();
    core.db
        .write(move |c| {
            // The lock item goes into blacklisted containers with the lock: one of this
            // firm's items of kind lock, so its product code means the lock and nothing else.
            if let Some(id) = new.lock_item.as_deref() {
                let item = item_store::by_item_id(c, id).map_err(|e| match e {
                    Error::NotFound { .. } => {
                        Error::invalid("lock_item", format!("there is no item {id}"))
                    }
                    other => other,
                })?;
                if item.firm_id != firm || item.kind != ItemKind::Lock {
                    return Err(Error::invalid(
                        "lock_item",
                        format!("item {id} is not a lock item of this firm (kind lock)"),
                    ));
                }
                // Its product code must mean the lock and nothing else: a check that finds
                // it on a locked container must not pass for a product sold.
                let shared: Vec<String> =
                    item_store::with_product_code(c, firm, item.product_code)?
                        .into_iter()
                        .filter(|other| other != id)
                        .collect();
                if !shared.is_empty() {
                    return Err(Error::invalid(
                        "lock_item",
                        format!(
                            "item {id}'s product code {} is also the product code of {}",
                            item.product_code,
                            shared.join(", ")
                        ),
                    ));
                }
            }
            let body = serde_json::to_string(&new).expect("settings");
            crate::store::settings::save(c, firm, &body, super::now())?;
            audit::record(
                &actor,
                Event {
                    action: "settings.changed",
                    details: serde_json::to_value(&new).expect("settings"),
                    ..Default::default()
                },
            )?;
            Ok(new.clone())
        })
        .await
}
