//! The Admin service's codec: containers, approvals, customers, users, items, settings.
use super::codec::{boolean, iso, long, need, opt_long};
use super::envelope::El;
use crate::domain::Actor;
use crate::error::Error;
use crate::service::catalog::CustomerData;
use crate::service::connectors::esc;
use crate::service::users;
use crate::service::Core;

fn approval_xml(a: &crate::service::lifecycle::ApprovalView) -> String {
    format!(
        "<a:Approval><a:ApprovalId>{}</a:ApprovalId><a:Kind>{}</a:Kind>{}<a:OldSerial>{}\
         </a:OldSerial><a:Serial>{}</a:Serial><a:Why>{}</a:Why><a:State>{}</a:State>\
         <a:RequestedAt>{}</a:RequestedAt>{}<a:Reason>{}</a:Reason></a:Approval>",
        a.approval_id,
        esc(&a.kind),
        a.license_id
            .map(|l| format!("<a:LicenseId>{l}</a:LicenseId>"))
            .unwrap_or_default(),
        esc(&a.old_serial),
        esc(&a.serial),
        esc(&a.why),
        esc(&a.state),
        iso(a.requested_at),
        a.decided_by
            .as_ref()
            .map(|d| format!("<a:DecidedBy>{}</a:DecidedBy>", esc(d)))
            .unwrap_or_default(),
        esc(&a.reason)
    )
}

fn role(op: &El) -> Result<Option<crate::domain::Role>, Error> {
    op.text_of("Role")
        .map(|r| {
            crate::domain::Role::parse(&r).map_err(|_| {
                Error::invalid(
                    format!("{}/Role", op.name),
                    format!("{r:?} is not admin, sales, support or erp"),
                )
            })
        })
        .transpose()
}

fn customer_xml(c: &crate::service::catalog::Customer) -> String {
    format!(
        "<a:Customer><a:ExternalId>{}</a:ExternalId><a:Name>{}</a:Name><a:Email>{}</a:Email>\
         <a:Locale>{}</a:Locale></a:Customer>",
        esc(&c.external_id),
        esc(&c.name),
        esc(&c.email),
        esc(&c.locale)
    )
}

fn user_xml(u: &users::User) -> String {
    format!(
        "<a:User><a:Username>{}</a:Username><a:Role>{}</a:Role><a:Active>{}</a:Active></a:User>",
        esc(&u.username),
        esc(&u.role),
        u.active
    )
}

/// How a field of a typed element (item options, settings) is read and written.
#[derive(Clone, Copy)]
enum Ty {
    Int,
    Bool,
    Str,
    Time,
    Enum(&'static [&'static str]),
    /// Repeated element, each an enumeration value.
    List(&'static [&'static str]),
    Obj(&'static [(&'static str, &'static str, Ty)]),
}

const POLICIES: &[&str] = &["allowed", "after_blocking_period", "approval", "never"];
const BEHAVIOURS: &[&str] = &["none", "blacklist", "withdraw"];

/// Item options: element, JSON field, type.
const OPTIONS: &[(&str, &str, Ty)] = &[
    (
        "ContainerType",
        "container_types",
        Ty::List(&["act", "dongle", "cloud"]),
    ),
    ("LicenseQuantity", "license_quantity", Ty::Int),
    ("FeatureMap", "feature_map", Ty::Int),
    ("ExpirationTime", "expiration_time", Ty::Time),
    ("UsagePeriodDays", "usage_period_days", Ty::Int),
    ("ActivationTime", "activation_time", Ty::Time),
    ("UnitCounter", "unit_counter", Ty::Int),
    ("MaintenancePeriodDays", "maintenance_period_days", Ty::Int),
    ("Text", "text", Ty::Str),
    ("UserData", "user_data", Ty::Str),
    ("ProtectedData", "protected_data", Ty::Str),
    ("DeactivationAllowed", "deactivation_allowed", Ty::Bool),
    ("Reactivation", "reactivation", Ty::Enum(POLICIES)),
    (
        "ReactivationBehaviour",
        "reactivation_behaviour",
        Ty::Enum(BEHAVIOURS),
    ),
    ("BlockingPeriodDays", "blocking_period_days", Ty::Int),
    ("SelfServiceCount", "self_service_count", Ty::Int),
    (
        "Update",
        "update",
        Ty::Obj(&[
            ("ExtendExpirationDays", "extend_expiration_days", Ty::Int),
            ("ExtendMaintenanceDays", "extend_maintenance_days", Ty::Int),
            ("AddFeatures", "add_features", Ty::Int),
            ("AddQuantity", "add_quantity", Ty::Int),
        ]),
    ),
];

/// The firm's settings: element, JSON field, type.
const SETTINGS: &[(&str, &str, Ty)] = &[
    ("DeactivationAllowed", "deactivation_allowed", Ty::Bool),
    (
        "ReactivationBehaviour",
        "reactivation_behaviour",
        Ty::Enum(BEHAVIOURS),
    ),
    ("BlockingPeriodDays", "blocking_period_days", Ty::Int),
    ("SelfServiceCount", "self_service_count", Ty::Int),
    ("LockItem", "lock_item", Ty::Str),
    (
        "AutomaticUpdateHandling",
        "automatic_update_handling",
        Ty::Bool,
    ),
    ("DuplicateCheck", "duplicate_check", Ty::Bool),
    (
        "AcceptExternallyCreatedEntries",
        "accept_externally_created_entries",
        Ty::Bool,
    ),
    (
        "MonthlyActivationQuota",
        "monthly_activation_quota",
        Ty::Int,
    ),
    ("SingleContainer", "single_container", Ty::Bool),
    (
        "ActivationMode",
        "activation_mode",
        Ty::Enum(&["all", "selected"]),
    ),
    ("FingerprintTolerance", "fingerprint_tolerance", Ty::Int),
    ("UpdateValidityDays", "update_validity_days", Ty::Int),
    ("Reactivation", "reactivation", Ty::Enum(POLICIES)),
    ("Restore", "restore", Ty::Enum(POLICIES)),
];

/// Reads a typed element's children into a JSON object; a wrong value or an unknown field
/// is an error naming the element.
fn typed_json(
    path: &str,
    el: &El,
    table: &[(&str, &str, Ty)],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    for c in &el.children {
        let at = format!("{path}/{}", c.name);
        let (_, key, ty) = table
            .iter()
            .find(|(x, _, _)| *x == c.name)
            .ok_or_else(|| Error::invalid(at.clone(), "is not a field here"))?;
        let t = c.text.trim();
        let bad = |what: &str| Error::invalid(at.clone(), format!("{t:?} is not {what}"));
        let v = match ty {
            Ty::Int => Value::from(t.parse::<i64>().map_err(|_| bad("an integer"))?),
            Ty::Bool => Value::Bool(match t {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad("an xs:boolean")),
            }),
            Ty::Str => Value::String(t.to_string()),
            Ty::Time => {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|_| bad("an xs:dateTime"))?;
                Value::String(t.to_string())
            }
            Ty::Enum(values) | Ty::List(values) => {
                if !values.contains(&t) {
                    return Err(bad(&format!("one of {}", values.join(", "))));
                }
                Value::String(t.to_string())
            }
            Ty::Obj(inner) => Value::Object(typed_json(&at, c, inner)?),
        };
        if let Ty::List(_) = ty {
            match out
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(vec![]))
            {
                Value::Array(a) => a.push(v),
                _ => unreachable!("a list field is an array"),
            }
        } else {
            out.insert(key.to_string(), v);
        }
    }
    Ok(out)
}

/// Writes a JSON object as the typed element's children (fields without a value left out).
fn typed_xml(p: &str, v: &serde_json::Value, table: &[(&str, &str, Ty)]) -> String {
    use serde_json::Value;
    let mut x = String::new();
    for (name, key, ty) in table {
        let text = |v: &Value| match v {
            Value::String(s) => esc(s),
            other => other.to_string(),
        };
        match (v.get(*key), ty) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::Array(a)), _) => {
                for e in a {
                    x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", text(e)));
                }
            }
            (Some(o @ Value::Object(_)), Ty::Obj(inner)) => {
                x.push_str(&format!(
                    "<{p}:{name}>{}</{p}:{name}>",
                    typed_xml(p, o, inner)
                ));
            }
            (Some(Value::String(s)), Ty::Time) => {
                let t = chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    })
                    .unwrap_or_else(|_| s.clone());
                x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", esc(&t)));
            }
            (Some(other), _) => x.push_str(&format!("<{p}:{name}>{}</{p}:{name}>", text(other))),
        }
    }
    x
}

fn item_xml(i: &crate::service::catalog::Item) -> String {
    let options = serde_json::to_value(&i.options).unwrap_or_default();
    format!(
        "<a:Item><a:ItemId>{}</a:ItemId><a:Name>{}</a:Name><a:Kind>{}</a:Kind>\
         <a:FirmCode>{}</a:FirmCode><a:ProductCode>{}</a:ProductCode><a:Active>{}</a:Active>\
         <a:Version>{}</a:Version><a:Options>{}</a:Options></a:Item>",
        esc(&i.item_id),
        esc(&i.name),
        i.kind.as_str(),
        i.firm_code,
        i.product_code,
        i.active,
        i.version,
        typed_xml("a", &options, OPTIONS)
    )
}

fn options_of(op: &El) -> Result<Option<crate::domain::ItemOptions>, Error> {
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
pub async fn call(core: &Core, actor: &Actor, ns: &str, op: &El) -> Result<String, Error> {
    use crate::service::{activation, lifecycle};
    let wrap = |inner: String| {
        format!(
            "<a:{0}Response xmlns:a=\"{ns}\">{inner}</a:{0}Response>",
            op.name
        )
    };
    let serial = |op: &El| need(op, "Serial");
    Ok(match op.name.as_str() {
        "BlacklistContainer" => {
            let s = serial(op)?;
            let req = lifecycle::BlacklistAdd {
                serial: s.clone(),
                description: need(op, "Description")?,
                firm_code: opt_long(op, "FirmCode")?,
            };
            lifecycle::blacklist_add(core, actor, req).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "RemoveFromBlacklist" => {
            let s = serial(op)?;
            let (reason, firm) = (need(op, "Reason")?, opt_long(op, "FirmCode")?);
            lifecycle::blacklist_remove(core, actor, s.clone(), firm, reason).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "ResetContainer" => {
            let ids = lifecycle::reset(core, actor, serial(op)?, opt_long(op, "FirmCode")?).await?;
            wrap(
                ids.iter()
                    .map(|id| format!("<a:DeletedLicenseId>{id}</a:DeletedLicenseId>"))
                    .collect(),
            )
        }
        "AssignContainer" => {
            let s = serial(op)?;
            lifecycle::assign(core, actor, s.clone(), need(op, "CustomerId")?).await?;
            wrap(format!("<a:Serial>{}</a:Serial>", esc(&s)))
        }
        "PushLicense" => {
            activation::push_license(core, actor, serial(op)?, long(op, "LicenseId")?).await?;
            wrap("<a:Queued>true</a:Queued>".into())
        }
        "ListApprovals" => {
            let state = op.text_of("State");
            if let Some(st) = &state {
                if !["open", "approved", "denied"].contains(&st.as_str()) {
                    return Err(Error::invalid(
                        "ListApprovals/State",
                        format!("{st:?} is not open, approved or denied"),
                    ));
                }
            }
            let list = lifecycle::list_approvals(core, actor, state).await?;
            wrap(list.iter().map(approval_xml).collect())
        }
        "DecideApproval" => {
            let id = long(op, "ApprovalId")?;
            let approve = boolean(op, "Approve")?;
            let reason = op.text_of("Reason").unwrap_or_default();
            let a = lifecycle::decide(core, actor, id, approve, reason).await?;
            wrap(approval_xml(&a))
        }
        "PutCustomer" => {
            let data = CustomerData {
                external_id: need(op, "ExternalId")?,
                name: op.text_of("Name"),
                email: op.text_of("Email"),
                locale: op.text_of("Locale"),
            };
            let c = crate::service::catalog::put_customer(core, actor, data).await?;
            wrap(customer_xml(&c))
        }
        "GetCustomer" => {
            let c =
                crate::service::catalog::get_customer(core, actor, need(op, "ExternalId")?).await?;
            wrap(customer_xml(&c))
        }
        "ListItems" => {
            let list = crate::service::catalog::list_items(core, actor).await?;
            wrap(list.iter().map(item_xml).collect())
        }
        "GetItem" => {
            let i = crate::service::catalog::get_item(core, actor, need(op, "ItemId")?).await?;
            wrap(item_xml(&i))
        }
        "CreateItem" => {
            let kind = op.text_of("Kind").unwrap_or_else(|| "license".into());
            let req = crate::service::catalog::NewItem {
                item_id: need(op, "ItemId")?,
                name: need(op, "Name")?,
                kind: crate::domain::ItemKind::parse(&kind)
                    .map_err(|e| Error::invalid("CreateItem/Kind", e.to_string()))?,
                firm_code: opt_long(op, "FirmCode")?,
                product_code: long(op, "ProductCode")?,
                options: options_of(op)?.unwrap_or_default(),
            };
            wrap(item_xml(
                &crate::service::catalog::create_item(core, actor, req).await?,
            ))
        }
        "ChangeItem" => {
            let active = match op.text_of("Active") {
                Some(_) => Some(boolean(op, "Active")?),
                None => None,
            };
            let req = crate::service::catalog::ItemChange {
                version: i32::try_from(long(op, "Version")?)
                    .map_err(|_| Error::invalid("ChangeItem/Version", "out of range"))?,
                name: op.text_of("Name"),
                options: options_of(op)?,
                active,
            };
            let i =
                crate::service::catalog::change_item(core, actor, need(op, "ItemId")?, req).await?;
            wrap(item_xml(&i))
        }
        "GetSettings" => {
            let st = crate::service::catalog::get_settings(core, actor).await?;
            let v = serde_json::to_value(&st).unwrap_or_default();
            wrap(format!(
                "<a:Settings>{}</a:Settings>",
                typed_xml("a", &v, SETTINGS)
            ))
        }
        "PutSettings" => {
            let el = op
                .child("Settings")
                .ok_or_else(|| Error::invalid("PutSettings/Settings", "is missing"))?;
            let json = typed_json("PutSettings/Settings", el, SETTINGS)?;
            let new: crate::domain::Settings =
                serde_json::from_value(serde_json::Value::Object(json))
                    .map_err(|e| Error::invalid("PutSettings/Settings", e.to_string()))?;
            let st = crate::service::catalog::put_settings(core, actor, new).await?;
            let v = serde_json::to_value(&st).unwrap_or_default();
            wrap(format!(
                "<a:Settings>{}</a:Settings>",
                typed_xml("a", &v, SETTINGS)
            ))
        }
        "ListUsers" => {
            let list = users::list_users(core, actor).await?;
            wrap(list.iter().map(user_xml).collect())
        }
        "AddUser" => {
            let req = users::NewUser {
                username: need(op, "Username")?,
                password: need(op, "Password")?,
                role: role(op)?.ok_or_else(|| Error::invalid("AddUser/Role", "is missing"))?,
            };
            wrap(user_xml(&users::add_user(core, actor, req).await?))
        }
        "ChangeUser" => {
            let active = match op.text_of("Active") {
                Some(_) => Some(boolean(op, "Active")?),
                None => None,
            };
            let req = users::UserChange {
                password: op.text_of("Password"),
                role: role(op)?,
                active,
            };
            let u = users::change_user(core, actor, need(op, "Username")?, req).await?;
            wrap(user_xml(&u))
        }
        other => {
            return Err(Error::internal(format!(
                "Admin.{other} is declared but not wired"
            )))
        }
    })
}
