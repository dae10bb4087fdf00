//! The typed option tables of the Admin service: an item's `Options` and the firm's
//! `Settings` (`xsd/licentia-admin-v1.xsd`), read and written by hand rather than as yaserde
//! types, and why:
//! - Each table names, in the XSD's order, an element, the JSON API's field it stands for and
//!   its lexical type. Reading builds the JSON object of the fields given and hands it to the
//!   same serde types as the JSON API, so that absent fields take the same defaults and the
//!   same validation runs; a declared struct would have to list the 17 + 15 fields again and
//!   still need the table for the typed checks.
//! - A wrong value is named by its path and type (`CreateItem/Options/FeatureMap: "lots" is
//!   not an integer`), the times are checked as xs:dateTime and written back in UTC
//!   (`2030-06-01T12:00:00+02:00` answers `2030-06-01T10:00:00Z`); yaserde has neither path
//!   errors nor a date type.
//!
//! The written element still goes through yaserde's writer: [`Typed`] is a `YaSerialize`
//! whose fields come from the table, so it nests in the `Item` and `Settings` answer types.
use std::io::Write;

use serde_json::Value;
use yaserde::__xml::writer::XmlEvent;
use yaserde::YaSerialize;

use super::envelope::El;
use crate::connectors::xml::esc;
use crate::error::Error;

/// How a field of a typed element (item options, settings) is read and written.
#[derive(Clone, Copy)]
pub enum Ty {
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
pub const OPTIONS: &[(&str, &str, Ty)] = &[
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
            ("AddUnits", "add_units", Ty::Int),
        ]),
    ),
    ("Trial", "trial", Ty::Bool),
    ("LeaseSeconds", "lease_seconds", Ty::Int),
    (
        "SeatCounting",
        "seat_counting",
        Ty::Enum(&["per_access", "per_station"]),
    ),
    (
        "ActivationLimit",
        "activation_limit",
        Ty::Obj(&[
            ("Activations", "activations", Ty::Int),
            ("Days", "days", Ty::Int),
        ]),
    ),
    ("CheckInDays", "check_in_days", Ty::Int),
];

/// The firm's settings: element, JSON field, type.
pub const SETTINGS: &[(&str, &str, Ty)] = &[
    ("DeactivationAllowed", "deactivation_allowed", Ty::Bool),
    (
        "ReactivationBehaviour",
        "reactivation_behaviour",
        Ty::Enum(BEHAVIOURS),
    ),
    ("BlockingPeriodDays", "blocking_period_days", Ty::Int),
    ("SelfServiceCount", "self_service_count", Ty::Int),
    ("LockItem", "lock_item", Ty::Str),
    ("HoneypotItem", "honeypot_item", Ty::Str),
    ("ErpMayBlacklist", "erp_may_blacklist", Ty::Bool),
    (
        "AutomaticUpdateHandling",
        "automatic_update_handling",
        Ty::Bool,
    ),
    ("DuplicateCheck", "duplicate_check", Ty::Bool),
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

/// An xs:dateTime as RFC 3339 in UTC: one with a time zone as it says, one without (which
/// xs:dateTime allows) taken as UTC; fractional seconds are kept, never cut.
pub fn xs_date_time(t: &str) -> Option<String> {
    let utc = match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(d) => d.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc(),
    };
    Some(utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Reads a typed element's children into a JSON object; a wrong value or an unknown field
/// is an error naming the element.
pub fn typed_json(
    path: &str,
    el: &El,
    table: &[(&str, &str, Ty)],
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
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
            Ty::Time => Value::String(xs_date_time(t).ok_or_else(|| {
                bad("an xs:dateTime (2027-06-30T00:00:00, with or without a time zone)")
            })?),
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

/// A typed element as answered: the JSON API's object written through its table.
pub struct Typed {
    pub value: Value,
    pub table: &'static [(&'static str, &'static str, Ty)],
}

impl Typed {
    /// The element's children: those of the table that have a value, in its order.
    fn write<W: Write>(
        writer: &mut yaserde::ser::Serializer<W>,
        v: &Value,
        table: &[(&'static str, &'static str, Ty)],
    ) -> yaserde::Result<()> {
        type Table = [(&'static str, &'static str, Ty)];
        fn element<W: Write>(
            writer: &mut yaserde::ser::Serializer<W>,
            name: &str,
            text: Option<&str>,
            inner: Option<(&Value, &Table)>,
        ) -> yaserde::Result<()> {
            writer.write(XmlEvent::start_element(format!("a:{name}").as_str()))?;
            if let Some(t) = text {
                writer.write(XmlEvent::characters(&esc(t)))?;
            }
            if let Some((o, table)) = inner {
                Typed::write(writer, o, table)?;
            }
            writer.write(XmlEvent::end_element())?;
            Ok(())
        }
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (name, key, ty) in table {
            match (v.get(*key), ty) {
                (None | Some(Value::Null), _) => {}
                (Some(Value::Array(a)), _) => {
                    for e in a {
                        element(writer, name, Some(&text(e)), None)?;
                    }
                }
                (Some(o @ Value::Object(_)), Ty::Obj(inner)) => {
                    element(writer, name, None, Some((o, inner)))?
                }
                (Some(Value::String(s)), Ty::Time) => {
                    let t = xs_date_time(s).unwrap_or_else(|| s.clone());
                    element(writer, name, Some(&t), None)?;
                }
                (Some(other), _) => element(writer, name, Some(&text(other)), None)?,
            }
        }
        Ok(())
    }
}

impl YaSerialize for Typed {
    fn serialize<W: Write>(&self, writer: &mut yaserde::ser::Serializer<W>) -> yaserde::Result<()> {
        let name = writer
            .get_start_event_name()
            .ok_or_else(|| yaserde::Error::custom("a typed element needs a name"))?;
        writer.write(XmlEvent::start_element(name.as_str()))?;
        Typed::write(writer, &self.value, self.table)?;
        writer.write(XmlEvent::end_element())?;
        Ok(())
    }

    fn serialize_attributes(
        &self,
        attributes: Vec<yaserde::__xml::attribute::OwnedAttribute>,
        namespace: yaserde::__xml::namespace::Namespace,
    ) -> yaserde::Result<(
        Vec<yaserde::__xml::attribute::OwnedAttribute>,
        yaserde::__xml::namespace::Namespace,
    )> {
        Ok((attributes, namespace))
    }
}
